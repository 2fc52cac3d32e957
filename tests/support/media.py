"""Small media files made on the fly for tests: clips (PyAV) and still images (OpenCV).

Every picture is :func:`drawn_frame`: a dark background, a white square in the top-left corner
(to tell which way is up), a red rectangle that moves with the frame number and the number
itself, so consecutive frames differ and a test can recompute what any frame should look like.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

CORNER = 12  # side of the white top-left marker square, in pixels

_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
_SAMPLE_FORMATS = {"aac": "fltp", "mp3": "fltp", "libmp3lame": "fltp", "pcm_s16le": "s16"}


def drawn_frame(index: int, width: int, height: int) -> np.ndarray:
    """The RGB picture number ``index`` of every generated clip."""
    image = np.full((height, width, 3), 40, np.uint8)
    image[:CORNER, :CORNER] = 255
    side = max(4, min(width, height) // 4)
    x = (index * 5) % max(1, width - side)
    y = height // 2 - side // 2
    image[y : y + side, x : x + side] = (220, 30, 30)
    cv2.putText(image, str(index), (CORNER + 4, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 200, 0), 2)
    return image


def make_clip(
    path: str | Path,
    *,
    width: int = 160,
    height: int = 120,
    frames: int = 30,
    fps: int | Fraction = 30,
    audio: bool = True,
    codec: str = "libx264",
    audio_codec: str = "aac",
    times: Sequence[float] | None = None,
    rotation: int = 0,
    faststart: bool = True,
    sample_rate: int = 44100,
) -> Path:
    """Write a clip of ``frames`` :func:`drawn_frame` pictures and, with ``audio``, a 440 Hz tone
    as long as the video.

    ``times`` (seconds, one per frame) makes a variable-frame-rate clip; ``rotation`` stores a
    display matrix (degrees counter-clockwise, as ``av.VideoFrame.rotation`` reads it back).
    The container follows the extension: .mp4/.mov/.mkv/.avi.
    """
    path = Path(path)
    options = {"movflags": "+faststart"} if faststart and path.suffix in (".mp4", ".m4v", ".mov") else {}
    with av.open(str(path), "w", format=_FORMATS[path.suffix.lower()], options=options) as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        time_base = Fraction(1, 90000) if times is not None else Fraction(1) / Fraction(fps)
        video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = _add_audio(container, audio_codec, sample_rate) if audio else None

        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(drawn_frame(i, width, height), format="rgb24")
            frame.pts = round(times[i] / time_base) if times is not None else i
            frame.time_base = time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())

        if sound is not None:
            seconds = (times[-1] + 1 / float(fps)) if times is not None else frames / float(fps)
            _write_tone(container, sound, seconds, sample_rate)
    return path


def _add_audio(container, codec: str, sample_rate: int):
    name = "libmp3lame" if codec == "mp3" else codec
    stream = container.add_stream(name, rate=sample_rate)
    stream.layout = "stereo"
    stream.format = _SAMPLE_FORMATS[codec]
    return stream


def _write_tone(container, stream, seconds: float, sample_rate: int) -> None:
    total = round(seconds * sample_rate)
    t = np.arange(total) / sample_rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    chunk = stream.codec_context.frame_size or 1024
    planar = stream.format.is_planar
    for start in range(0, total, chunk):
        part = tone[start : start + chunk]
        if len(part) < chunk and stream.codec_context.frame_size:
            part = np.pad(part, (0, chunk - len(part)))
        data = (part * 32767).astype(np.int16) if stream.format.name == "s16" else part
        array = np.stack([data, data]) if planar else np.stack([data, data], axis=1).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(array), format=stream.format.name, layout="stereo"
        )
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def make_song(path: str | Path, *, seconds: float = 0.5, sample_rate: int = 44100) -> Path:
    """An MP3 with cover art: a tone plus one JPEG picture that FFmpeg lists as a video stream
    (with the ``attached_pic`` disposition)."""
    path = Path(path)
    with av.open(str(path), "w", format="mp3") as container:
        sound = _add_audio(container, "mp3", sample_rate)
        cover = container.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 64, 48, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(drawn_frame(0, 64, 48), format="rgb24")
        picture.pts = 0
        container.mux(cover.encode(picture))
        container.mux(cover.encode())
        _write_tone(container, sound, seconds, sample_rate)
    return path


def make_image(path: str | Path, *, width: int = 64, height: int = 48, mode: str = "rgb") -> np.ndarray:
    """Write :func:`drawn_frame` 0 as an image file and return the array written (RGB order).

    ``mode``: ``"rgb"`` (HxWx3 uint8), ``"gray"`` (HxW uint8), ``"rgba"`` (HxWx4 uint8, alpha a
    gradient), ``"rgb16"`` (HxWx3 uint16), ``"gray16"`` (HxW uint16); 16-bit values are
    ``256 * v + 128`` for the 8-bit value ``v``.
    """
    rgb = drawn_frame(0, width, height)
    if mode == "rgb":
        array = rgb
    elif mode == "gray":
        array = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif mode == "rgba":
        alpha = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, axis=0)
        array = np.dstack([rgb, alpha])
    elif mode == "rgb16":  # low bytes set, so dropping them is not the same as scaling
        array = rgb.astype(np.uint16) * 256 + 128
    elif mode == "gray16":
        array = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 256 + 128
    else:
        raise ValueError(f"unknown image mode {mode!r}")
    if array.ndim == 3:
        bgr = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    else:
        bgr = array
    if not cv2.imwrite(str(path), bgr):
        raise OSError(f"could not write {path}")
    return array


def probe(path: str | Path) -> dict:
    """What a player would see: codecs, sizes, counts and rates of ``path``'s first streams."""
    with av.open(str(path)) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        out = {"format": container.format.name}
        if video is not None:
            times = [float(f.pts * f.time_base) for f in container.decode(video)]
            out |= {
                "video_codec": video.codec_context.codec.canonical_name,
                "pix_fmt": video.codec_context.pix_fmt,
                "width": video.codec_context.width,
                "height": video.codec_context.height,
                "frames": len(times),
                "average_rate": float(video.average_rate) if video.average_rate else None,
                "times": times,
            }
        out |= {"audio_codec": None, "audio_duration": None}
        if audio is not None:
            out["audio_codec"] = audio.codec_context.codec.canonical_name
    if audio is not None:
        out["audio_duration"] = audio_duration(path)
    return out


def audio_duration(path: str | Path) -> float | None:
    """Seconds from the first audio packet's start to the last one's end (any container)."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        first = end = None
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            start = float(packet.pts * packet.time_base)
            first = start if first is None else min(first, start)
            stop = start + float((packet.duration or 0) * packet.time_base)
            end = stop if end is None else max(end, stop)
        return None if first is None else end - first


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """(name, payload start, payload end) of the MP4 boxes laid side by side in ``data[start:end]``."""
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, name = (
            int.from_bytes(data[start : start + 4], "big"),
            data[start + 4 : start + 8].decode("latin-1"),
        )
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[start + 8 : start + 16], "big"), 16
        elif size == 0:
            size = end - start
        yield name, start + header, start + size
        start += size


def video_track_duration(path: str | Path) -> float:
    """Seconds the video track lasts for a player: its ``tkhd`` duration (edit list included)
    in the ``mvhd`` time scale. FFmpeg's own estimate sums decode-time deltas instead, which
    comes out short for variable frame rates with B-frames."""
    data = Path(path).read_bytes()
    moov = next((s, e) for name, s, e in _boxes(data) if name == "moov")
    children = {name: (s, e) for name, s, e in _boxes(data, *moov) if name != "trak"}
    mvhd = data[children["mvhd"][0] :]
    timescale = int.from_bytes(mvhd[12:16] if mvhd[0] == 0 else mvhd[20:24], "big")
    for name, s, e in _boxes(data, *moov):
        if name != "trak":
            continue
        parts = {n: (ps, pe) for n, ps, pe in _boxes(data, s, e)}
        mdia = {n: (ps, pe) for n, ps, pe in _boxes(data, *parts["mdia"])}
        if data[mdia["hdlr"][0] + 8 : mdia["hdlr"][0] + 12] != b"vide":
            continue
        tkhd = data[parts["tkhd"][0] :]
        duration = int.from_bytes(tkhd[20:24] if tkhd[0] == 0 else tkhd[28:36], "big")
        return duration / timescale
    raise ValueError(f"{path} has no video track")


def top_level_atoms(path: str | Path) -> list[str]:
    """The names of an MP4 file's top-level boxes, in file order (``ftyp``, ``moov``, ``mdat``...)."""
    names = []
    with open(path, "rb") as f:
        while header := f.read(8):
            if len(header) < 8:
                break
            size = int.from_bytes(header[:4], "big")
            names.append(header[4:8].decode("latin-1"))
            if size == 1:
                size = int.from_bytes(f.read(8), "big")
                f.seek(size - 16, 1)
            elif size == 0:
                break
            else:
                f.seek(size - 8, 1)
    return names
