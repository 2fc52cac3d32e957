"""The annotated video: an MP4 file that plays in browsers (H.264 + the source's audio).

The sink checks its output directory when it is made and raises :class:`SinkError` with a
one-line message a user can act on; it writes as it goes, so memory does not grow with length.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..system.priority import made_in_background
from .audio import AudioCopy
from ..errors import os_reason
from .base import FileSink
from .paths import VIDEO_EXTENSIONS, SinkError, check_writable

log = logging.getLogger(__name__)


class VideoFileSink(FileSink):
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
        self._audio: AudioCopy | None = None
        self._container = None
        try:
            if background:  # x264's threads inherit the lowered priority of the thread that opens it
                made_in_background(lambda: self._open(crf, preset, audio_from))
            else:
                self._open(crf, preset, audio_from)
        except BaseException as error:
            self._abort_quietly()
            if isinstance(error, (OSError, av.error.FFmpegError)):
                raise SinkError(f"cannot write '{self.path}': {os_reason(error)}") from None
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
            self._audio = AudioCopy.open(Path(audio_from), self._container)
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
            raise SinkError(f"cannot write '{self.path}': {os_reason(error)}") from None
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
            raise SinkError(f"cannot write '{self.path}': {os_reason(error)}") from None

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
