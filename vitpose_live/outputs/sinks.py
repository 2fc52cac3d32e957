"""Where results go: an MP4 file (H.264 + the source's audio), image files, keypoints as JSON lines.

Every sink checks its output directory when it is made and raises :class:`SinkError` with a
one-line message a user can act on; each writes as it goes, so memory does not grow with length.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .paths import IMAGE_OUTPUT_EXTENSIONS, VIDEO_EXTENSIONS, SinkError, _os_reason, check_writable
from ..system.priority import made_in_background
from .text_sink import TextSink
from ..types import Poses

log = logging.getLogger(__name__)

# Audio codecs copied into the MP4 as they are; browsers play both. Others are re-encoded to AAC.
REMUX_AUDIO_CODECS = frozenset({"aac", "mp3"})
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


class VideoFileSink:
    """An MP4 file that plays in browsers: H.264 ``yuv420p`` with ``+faststart``, plus the audio
    of ``audio_from`` (copied when AAC or MP3, otherwise re-encoded to AAC).

    Frames are RGB uint8 ``height x width x 3``. H.264 in ``yuv420p`` cannot store an odd width or
    height (chroma is subsampled by 2 and the format has no one-pixel crop), so an odd size is
    padded by repeating the last column / row: 641x479 is stored as 642x480, the picture itself
    untouched. :attr:`coded_size` is the stored size. With ``background`` the encoder's threads
    run below normal priority (:mod:`~vitpose_live.system.priority`: next to models on the same CPU).

    ``write(image, time)`` takes the frame's presentation time in seconds from the start of the
    source (``Frame.time``), so variable frame rates and gaps survive; ``None`` means "next frame
    at ``fps``". Timestamps are kept strictly increasing. The stream ``time_base`` is 1/90000
    unless another (e.g. the source's ``VideoInfo.time_base``) is given.

    Audio is read from its own demuxer on ``audio_from`` and muxed up to the time of each video
    frame as it is written, and at :meth:`close` up to the end of the last frame, so the audio
    never runs past the video, even when the run stops early.

    As a context manager: leaving normally or by ``KeyboardInterrupt`` finalises a playable file;
    any other exception aborts it (the file is deleted). :meth:`close` and :meth:`abort` may be
    called any number of times; the first one decides.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: float | Fraction,
        audio_from: str | Path | None = None,
        time_base: Fraction | None = None,
        crf: int = 23,
        preset: str = "veryfast",
        background: bool = False,
    ) -> None:
        self.path = Path(path)
        if width <= 0 or height <= 0:
            raise ValueError(f"width and height must be positive, got {width}x{height}")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if self.path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise SinkError(f"cannot write '{path}': video output must be .mp4 (or .m4v/.mov)")
        check_writable(self.path)
        if audio_from is not None and Path(audio_from).resolve() == self.path.resolve():
            raise SinkError(f"cannot write '{path}': it is the input file, which would be overwritten")
        self.width, self.height = int(width), int(height)
        self.coded_size = (self.width + self.width % 2, self.height + self.height % 2)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.time_base = Fraction(time_base) if time_base else Fraction(1, 90000)
        self.frames_written = 0
        self._last_pts: int | None = None
        self._end_pts = 0
        self._frame_ticks = max(1, round(1 / (self.fps * self.time_base)))
        self._canvas = np.empty((self.coded_size[1], self.coded_size[0], 3), np.uint8)
        self._state = "open"
        self._audio: _AudioCopy | None = None
        self._container = None
        try:
            if background:  # x264's threads inherit the lowered priority of the thread that opens it
                made_in_background(lambda: self._open(crf, preset, audio_from))
            else:
                self._open(crf, preset, audio_from)
        except BaseException as error:
            self._abort_quietly()
            if isinstance(error, (OSError, av.error.FFmpegError)):
                raise SinkError(f"cannot write '{self.path}': {_os_reason(error)}") from None
            raise

    def _open(self, crf: int, preset: str, audio_from: str | Path | None) -> None:
        with open(self.path, "wb"):  # clear errors (ENOENT, EACCES...) before FFmpeg's
            pass
        self._container = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
        self._video = self._container.add_stream("libx264", rate=self.fps, options={"crf": str(crf), "preset": preset})
        self._video.width, self._video.height = self.coded_size
        self._video.pix_fmt = "yuv420p"
        self._video.codec_context.thread_type = "FRAME"  # x264 frame threads: throughput on many cores
        self._video.codec_context.time_base = self.time_base
        self._video.codec_context.colorspace = 6  # BT.601 (SMPTE 170M): what swscale converts with
        self._video.codec_context.color_range = 1  # limited ("tv") range
        if audio_from is not None:
            self._audio = _AudioCopy.open(Path(audio_from), self._container)
        self._container.start_encoding()

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def write(self, image: np.ndarray, time: float | None = None) -> None:
        """Encode one RGB frame shown at ``time`` seconds (or one frame after the last)."""
        if self._state != "open":
            raise SinkError(f"cannot write '{self.path}': it is already {self._state}")
        image = np.asarray(image)
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"expected a {self.height}x{self.width}x3 uint8 image, got {image.shape} {image.dtype}"
            )
        if time is None:
            pts = round(self.frames_written / (self.fps * self.time_base))
        else:
            pts = round(max(0.0, float(time)) / self.time_base)
        if self._last_pts is not None:
            pts = max(pts, self._last_pts + 1)
        if self._audio is not None:
            self._audio.copy_until(float(pts * self.time_base))
        # OpenCV's RGB→I420 (BT.601, limited range, as tagged) is several times cheaper than
        # PyAV's rgb24 frame + the encoder's own conversion.
        yuv = cv2.cvtColor(self._pad(image), cv2.COLOR_RGB2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base, frame.duration = pts, self.time_base, self._frame_ticks
        try:
            self._container.mux(self._video.encode(frame))
        except (OSError, av.error.FFmpegError) as error:  # e.g. the disk filled up mid-run
            raise SinkError(f"cannot write '{self.path}': {_os_reason(error)}") from None
        self._last_pts = pts
        self._end_pts = pts + self._frame_ticks
        self.frames_written += 1

    def _pad(self, image: np.ndarray) -> np.ndarray:
        if self.coded_size == (self.width, self.height):
            return image
        canvas, h, w = self._canvas, self.height, self.width
        canvas[:h, :w] = image
        canvas[h:, :w] = image[h - 1 :]
        canvas[:, w:] = canvas[:, w - 1 : w]
        return canvas

    def close(self) -> None:
        """Flush the encoder, add the audio up to the end of the video and finalise the file.

        With no frame written there is nothing to play: the empty file is deleted instead.
        """
        if self._state != "open":
            return
        if not self.frames_written:
            log.warning("no frames were written to '%s'; not keeping an empty video", self.path)
            self._abort_quietly()
            return
        self._state = "closed"
        try:
            try:
                self._container.mux(self._video.encode())
                if self._audio is not None:
                    self._audio.finish(float(self._end_pts * self.time_base))
            finally:
                try:
                    self._container.close()
                finally:
                    if self._audio is not None:
                        self._audio.close()
        except (OSError, av.error.FFmpegError) as error:  # e.g. the disk filled up while finalising
            self.path.unlink(missing_ok=True)
            raise SinkError(f"cannot write '{self.path}': {_os_reason(error)}") from None

    def abort(self) -> None:
        """Stop and delete the partial file (nothing happens after :meth:`close`)."""
        if self._state != "open":
            return
        self._abort_quietly()

    def _abort_quietly(self) -> None:
        self._state = "aborted"
        for closable in (self._container, self._audio):
            if closable is not None:
                try:
                    closable.close()
                except Exception as error:  # the file is being thrown away anyway
                    log.debug("ignored while aborting '%s': %s", self.path, error)
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("could not delete the partial file '%s': %s", self.path, error)

    def __enter__(self) -> VideoFileSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or issubclass(exc_type, KeyboardInterrupt):
            self.close()
        else:
            self.abort()


class _AudioCopy:
    """The first audio stream of a file, muxed into an output container up to a given time."""

    def __init__(self, source, in_stream, container, out_stream, zero: float) -> None:
        self._source = source
        self._container = container
        self._in = in_stream
        self._out = out_stream
        self._zero = zero  # source seconds that map to output time 0 (its video stream start)
        self._packets: Iterator | None = source.demux(in_stream)
        self._held = None  # the first packet not yet due

    @staticmethod
    def open(path: Path, container) -> _AudioCopy | None:
        if not path.is_file():
            raise SinkError(f"cannot read audio from '{path}': file not found")
        try:
            source = av.open(str(path), metadata_errors="ignore")
        except av.error.FFmpegError as error:
            raise SinkError(f"cannot read audio from '{path}': {_os_reason(error)}") from None
        if not source.streams.audio:
            source.close()
            return None
        stream = source.streams.audio[0]
        pictures = [s for s in source.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        timed = pictures[0] if pictures else stream  # times are relative to the video's start
        zero = float(timed.start_time * timed.time_base) if timed.start_time is not None else 0.0
        codec = stream.codec_context.codec.canonical_name
        extradata = stream.codec_context.extradata
        try:
            if codec in REMUX_AUDIO_CODECS and (codec != "aac" or extradata):  # no extradata: ADTS
                return _AudioCopy(source, stream, container, container.add_stream_from_template(stream), zero)
            return _AudioTranscode(source, stream, container, zero)
        except BaseException:
            source.close()
            raise

    def _next_packet(self):
        if self._held is not None:
            packet, self._held = self._held, None
            return packet
        if self._packets is None:
            return None
        try:
            return next(self._packets)
        except StopIteration:
            pass
        except (av.error.FFmpegError, ValueError, OSError) as error:
            log.warning("stopped copying audio from '%s': %s", self._source.name, error)
        self._packets = None
        return None

    def copy_until(self, seconds: float) -> None:
        """Mux every packet that starts before ``seconds`` (output time)."""
        while (packet := self._next_packet()) is not None:
            if packet.size == 0 or (packet.pts is None and packet.dts is None):
                continue
            start = float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base)
            if start - self._zero >= seconds:
                self._held = packet
                return
            self._mux(packet, start - self._zero)

    def _mux(self, packet, seconds: float) -> None:
        end = seconds + float((packet.duration or 0) * packet.time_base)
        if end <= 0:  # entirely before the video starts
            return
        shift = round(self._zero / packet.time_base)
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self._out
        self._container.mux(packet)

    def finish(self, seconds: float) -> None:
        self.copy_until(seconds)

    def close(self) -> None:
        self._source.close()


class _AudioTranscode(_AudioCopy):
    """Like :class:`_AudioCopy`, but decodes and re-encodes to AAC (for PCM, Vorbis, AC-3...)."""

    def __init__(self, source, in_stream, container, zero: float) -> None:
        rate = in_stream.codec_context.sample_rate
        rate = rate if rate in _AAC_RATES else 48000
        layout = "mono" if in_stream.codec_context.channels == 1 else "stereo"
        out = container.add_stream("aac", rate=rate)
        out.layout, out.format = layout, "fltp"
        super().__init__(source, in_stream, container, out, zero)
        self._rate = rate
        self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=1024)
        self._next_sample: int | None = None

    def _mux(self, packet, seconds: float) -> None:
        if seconds + float((packet.duration or 0) * packet.time_base) <= 0:  # before the video starts
            return
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError) as error:
            log.warning("skipped an undecodable audio packet in '%s': %s", self._source.name, error)
            return
        for frame in frames:
            if self._next_sample is None:
                start = seconds if frame.pts is None else float(frame.pts * frame.time_base) - self._zero
                self._next_sample = max(0, round(start * self._rate))
            self._encode(self._resampler.resample(frame))

    def _encode(self, frames) -> None:
        for frame in frames:
            frame.pts, frame.time_base = self._next_sample, Fraction(1, self._rate)
            self._next_sample += frame.samples
            self._container.mux(self._out.encode(frame))

    def finish(self, seconds: float) -> None:
        self.copy_until(seconds)
        if self._next_sample is not None:
            self._encode(self._resampler.resample(None))
        self._container.mux(self._out.encode())


class ImageFileSink:
    """A still image file (PNG, JPEG... by extension) written from an RGB array."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_writable(self.path)
        if not cv2.haveImageWriter(str(self.path)):
            raise SinkError(f"cannot write '{self.path}': no image format for '{self.path.suffix}'")

    def write(self, image: np.ndarray, time: float | None = None) -> None:
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        try:
            ok, encoded = cv2.imencode(self.path.suffix, image)
        except cv2.error as error:
            raise SinkError(f"cannot write '{self.path}': {str(error).strip().splitlines()[-1]}") from None
        if not ok:
            raise SinkError(f"cannot write '{self.path}': OpenCV could not encode the image")
        try:
            self.path.write_bytes(encoded.tobytes())
        except OSError as error:
            self.path.unlink(missing_ok=True)
            raise SinkError(f"cannot write '{self.path}': {_os_reason(error)}") from None

    def close(self) -> None:
        pass

    def abort(self) -> None:
        """Delete what was written."""
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> ImageFileSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _rounded(array: np.ndarray, decimals: int) -> list:
    """``array`` as nested lists of floats rounded to ``decimals``; NaN and inf become ``None``."""
    values = np.round(np.asarray(array, dtype=np.float64), decimals)
    if np.isfinite(values).all():
        return values.tolist()
    return np.where(np.isfinite(values), values, None).tolist()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, Fraction)):
        return str(value) if isinstance(value, Path) else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def keypoints_header(engine, source_info: dict) -> dict:
    """The header of a keypoints file: models, keypoint names and edges, and the source's
    ``source``, ``width``, ``height`` and ``fps``."""
    return {
        "model": engine.pose.name,
        "detector": engine.detector.name,
        "keypoint_names": list(engine.skeleton.keypoint_names),
        "edges": [list(edge) for edge in engine.skeleton.edges],
        **source_info,
    }


def frame_record(frame_index: int, time: float | None, poses: Poses) -> dict:
    """One frame's poses as the JSON-ready record of a keypoints line."""
    xy = _rounded(poses.keypoints, 2)
    scores = _rounded(poses.scores, 4)
    boxes = _rounded(poses.boxes, 2)
    box_scores = _rounded(poses.box_scores, 4)
    persons = []
    for n in range(len(poses)):
        person = {
            "box": boxes[n],
            "score": box_scores[n],
            "keypoints": [[x, y, s] for (x, y), s in zip(xy[n], scores[n])],
        }
        if poses.track_ids is not None:
            person["track_id"] = int(poses.track_ids[n])
        persons.append(person)
    seconds = None if time is None else round(float(time), 4)
    return {"frame": int(frame_index), "time": seconds, "persons": persons}


class KeypointsJsonlSink(TextSink):
    """Poses as JSON lines: a ``{"type": "header", ...}`` line, then one line per frame::

        {"frame": 0, "time": 0.0, "persons": [{"box": [x1, y1, x2, y2], "score": s,
         "keypoints": [[x, y, score], ...], "track_id": 3}]}

    Pixels are rounded to 2 decimals, scores and times to 4; ``track_id`` is there only when
    the poses are tracked. The file is flushed every ``flush_every`` frames and on close.
    """

    def __init__(self, path: str | Path, *, header: dict, flush_every: int = 30) -> None:
        super().__init__(path)
        self._flush_every = max(1, int(flush_every))
        try:
            self._line({"type": "header", **header})
            self._guarded(self._file.flush)
        except SinkError:
            self.abort()
            raise

    def _line(self, record: dict) -> None:
        self._guarded(self._file.write, json.dumps(record, default=_json_default, allow_nan=False) + "\n")

    def write_record(self, record: dict) -> None:
        self._line(record)
        self.frames_written += 1
        if self.frames_written % self._flush_every == 0:
            self._guarded(self._file.flush)


def read_keypoints_jsonl(path: str | Path) -> tuple[dict, list[dict]]:
    """The header and the frame records of a file written by :class:`KeypointsJsonlSink`."""
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    if not records or records[0].get("type") != "header":
        raise ValueError(f"'{path}' is not a keypoints file (its first line is not a header)")
    header = {k: v for k, v in records[0].items() if k != "type"}
    return header, records[1:]
