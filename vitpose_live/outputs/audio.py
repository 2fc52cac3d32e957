"""The source's audio in the annotated MP4: copied packet by packet when the codec plays in browsers
(AAC, MP3), otherwise decoded and re-encoded to AAC; muxed up to each video frame's time, so the
audio never runs past the video."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import logging

import av

from ..errors import os_reason
from .paths import SinkError

# Audio codecs copied into the MP4 as they are; browsers play both. Others are re-encoded to AAC.
log = logging.getLogger(__name__)

REMUX_AUDIO_CODECS = frozenset({"aac", "mp3"})
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


class AudioCopy:
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
    def open(path: Path, container) -> AudioCopy | None:
        if not path.is_file():
            raise SinkError(f"cannot read audio from '{path}': file not found")
        try:
            source = av.open(str(path), metadata_errors="ignore")
        except av.error.FFmpegError as error:
            raise SinkError(f"cannot read audio from '{path}': {os_reason(error)}") from None
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
                return AudioCopy(source, stream, container, container.add_stream_from_template(stream), zero)
            return AudioTranscode(source, stream, container, zero)
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


class AudioTranscode(AudioCopy):
    """Like :class:`AudioCopy`, but decodes and re-encodes to AAC (for PCM, Vorbis, AC-3...)."""

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
