"""Output files: MP4s probed with PyAV the way a player would see them, images, keypoint JSON lines."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from support.media import audio_duration, drawn_frame, make_clip, probe, top_level_atoms, video_track_duration

from vitpose_live.outputs.paths import IMAGE_OUTPUT_EXTENSIONS, SinkError, check_writable
from vitpose_live.outputs.image import ImageFileSink
from vitpose_live.outputs.keypoints import KeypointsJsonlSink
from vitpose_live.outputs.video import VideoFileSink
from vitpose_live.outputs.records import read_keypoints_jsonl
from vitpose_live.sources import VideoFileSource
from vitpose_live.types import Poses

# Real clips shipped with gradio, found without importing it (that takes seconds).
GRADIO_VIDEOS = Path(importlib.util.find_spec("gradio").origin).parent / "media_assets" / "videos"

VFR_TIMES = [0.0, 0.03, 0.1, 0.12, 0.5, 0.52, 0.9]
CLIPS = {  # 160x120, 30 frames at 30 fps (1 s) unless said
    "aac.mp4": {},
    "mp3.mp4": {"audio_codec": "mp3"},
    "silent.mp4": {"audio": False},
    "pcm.avi": {"codec": "mpeg4", "audio_codec": "pcm_s16le"},
    "pcm.mkv": {"audio_codec": "pcm_s16le", "sample_rate": 22050},
    "vfr.mp4": {"frames": len(VFR_TIMES), "times": VFR_TIMES},
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    clips = {name: make_clip(folder / name, **kwargs) for name, kwargs in CLIPS.items()}
    return clips | {name: GRADIO_VIDEOS / name for name in ("a.mp4", "b.avi")}


def round_trip(source_path: Path, out: Path, **options) -> tuple[VideoFileSource, list]:
    """Decode every frame of ``source_path`` and encode it into ``out`` with the source's audio."""
    with VideoFileSource(source_path) as source:
        info = source.info
        with VideoFileSink(
            out,
            width=info.width,
            height=info.height,
            fps=info.fps,
            time_base=info.time_base,
            audio_from=source_path,
            **options,
        ) as sink:
            frames = []
            for frame in source:
                sink.write(frame.image, frame.time)
                frames.append((frame.index, frame.time))
    return source, frames


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


# --- video: what a player sees -------------------------------------------------------------------

ROUND_TRIPS = [
    # source, audio codec in the output (None: no audio), constant frame rate, options
    ("aac.mp4", "aac", True, {}),  # copied
    ("mp3.mp4", "mp3", True, {}),  # copied
    ("silent.mp4", None, True, {}),
    ("pcm.avi", "aac", True, {}),  # re-encoded
    ("pcm.mkv", "aac", True, {}),  # re-encoded, 22.05 kHz
    ("vfr.mp4", "aac", False, {}),
    ("b.avi", "mp3", False, {}),  # real clip, mp3 audio, one frame missing in its index
    ("a.mp4", "aac", True, {"preset": "ultrafast"}),  # real clip, 1920x1080
]


@pytest.mark.parametrize(
    "name, audio_codec, constant_rate, options", ROUND_TRIPS, ids=[r[0] for r in ROUND_TRIPS]
)
def test_a_round_trip_is_a_browser_playable_copy_of_the_source(
    tmp_path, clips, name, audio_codec, constant_rate, options
):
    source, written = round_trip(clips[name], tmp_path / "out.mp4", **options)
    info = source.info
    seen = probe(tmp_path / "out.mp4")

    assert (seen["video_codec"], seen["pix_fmt"]) == ("h264", "yuv420p")
    assert (seen["width"], seen["height"]) == (info.width, info.height)
    assert seen["frames"] == len(written)
    assert seen["times"] == pytest.approx([time for _, time in written], abs=1e-6)
    video_end = written[-1][1] + 1 / info.fps
    assert video_track_duration(tmp_path / "out.mp4") == pytest.approx(video_end, abs=0.01)
    if constant_rate:
        assert seen["average_rate"] == pytest.approx(info.fps, abs=0.01)

    assert seen["audio_codec"] == audio_codec
    if audio_codec is not None:
        expected = min(audio_duration(clips[name]), video_end)
        assert seen["audio_duration"] == pytest.approx(expected, abs=0.1)

    atoms = top_level_atoms(tmp_path / "out.mp4")
    assert atoms.index("moov") < atoms.index("mdat"), f"not +faststart: {atoms}"


@pytest.mark.parametrize("name", ["aac.mp4", "pcm.avi"])
def test_the_pictures_survive_the_round_trip(tmp_path, clips, name):
    round_trip(clips[name], tmp_path / "out.mp4")

    pictures = decoded(tmp_path / "out.mp4")

    assert len(pictures) == 30
    for index, picture in enumerate(pictures):
        assert mean_difference(picture, drawn_frame(index, 160, 120)) < 6


def test_audio_is_interleaved_with_the_video_not_appended_at_the_end(tmp_path):
    # Longer than FFmpeg's own 10 s interleaving window, which would hide audio added at close.
    source = make_clip(tmp_path / "long.mp4", width=64, height=48, frames=130, fps=10)
    round_trip(source, tmp_path / "out.mp4", preset="ultrafast")

    with av.open(str(tmp_path / "out.mp4")) as container:
        packets = [
            (packet.stream.type, float(packet.pts * packet.time_base), packet.pos)
            for packet in container.demux()
            if packet.size
        ]
    audio = [(time, pos) for kind, time, pos in packets if kind == "audio"]
    video = [(time, pos) for kind, time, pos in packets if kind == "video"]

    assert audio and video
    late = [(ta, tv) for ta, pa in audio for tv, pv in video if tv < ta - 1.0 and pv > pa]
    early = [(ta, tv) for ta, pa in audio for tv, pv in video if tv > ta + 1.0 and pv < pa]
    assert not late and not early, "audio and video more than 1 s apart in the file"


def test_frames_without_times_are_spaced_by_the_frame_rate(tmp_path):
    with VideoFileSink(tmp_path / "out.mp4", width=64, height=48, fps=25) as sink:
        for i in range(10):
            sink.write(drawn_frame(i, 64, 48))

    seen = probe(tmp_path / "out.mp4")

    assert seen["times"] == pytest.approx([i / 25 for i in range(10)], abs=1e-6)
    assert seen["average_rate"] == pytest.approx(25, abs=0.01)


def test_variable_frame_rate_times_survive_the_default_time_base(tmp_path):
    with VideoFileSink(tmp_path / "out.mp4", width=64, height=48, fps=30) as sink:
        for i, time in enumerate(VFR_TIMES):
            sink.write(drawn_frame(i, 64, 48), time)

    assert probe(tmp_path / "out.mp4")["times"] == pytest.approx(VFR_TIMES, abs=1 / 90000)


def test_repeated_or_backwards_times_still_give_strictly_increasing_timestamps(tmp_path):
    with VideoFileSink(tmp_path / "out.mp4", width=64, height=48, fps=30) as sink:
        for i, time in enumerate([0.0, 0.0, 0.1, 0.05, None]):
            sink.write(drawn_frame(i, 64, 48), time)

    times = probe(tmp_path / "out.mp4")["times"]

    assert len(times) == 5
    assert all(a < b for a, b in itertools.pairwise(times))


def test_an_odd_size_is_padded_to_even_with_the_picture_untouched(tmp_path):
    pictures = [drawn_frame(i, 641, 479) for i in range(3)]
    with VideoFileSink(tmp_path / "odd.mp4", width=641, height=479, fps=30) as sink:
        assert sink.coded_size == (642, 480)
        for picture in pictures:
            sink.write(picture)

    seen = probe(tmp_path / "odd.mp4")
    stored = decoded(tmp_path / "odd.mp4")

    assert (seen["video_codec"], seen["pix_fmt"], seen["width"], seen["height"]) == (
        "h264",
        "yuv420p",
        642,
        480,
    )
    assert seen["frames"] == 3
    for picture, frame in zip(pictures, stored):
        assert mean_difference(frame[:479, :641], picture) < 3
        assert mean_difference(frame[:479, 641], picture[:, 640]) < 6  # the copied last column
        assert mean_difference(frame[479, :641], picture[478]) < 6  # the copied last row


@pytest.mark.parametrize(
    "shape, dtype",
    [((48, 64), np.uint8), ((48, 64, 4), np.uint8), ((64, 48, 3), np.uint8), ((48, 64, 3), np.float32)],
)
def test_frames_of_another_size_or_type_are_refused(tmp_path, shape, dtype):
    with VideoFileSink(tmp_path / "out.mp4", width=64, height=48, fps=30) as sink:
        sink.write(np.zeros((48, 64, 3), np.uint8))
        with pytest.raises(ValueError, match="48x64x3 uint8"):
            sink.write(np.zeros(shape, dtype))


# --- video: stopping -----------------------------------------------------------------------------


def test_ctrl_c_inside_the_with_block_leaves_a_playable_file_with_the_frames_written(tmp_path, clips):
    with pytest.raises(KeyboardInterrupt):
        with VideoFileSink(
            tmp_path / "out.mp4", width=160, height=120, fps=30, audio_from=clips["aac.mp4"]
        ) as sink:
            for i in range(12):
                sink.write(drawn_frame(i, 160, 120), i / 30)
            raise KeyboardInterrupt

    seen = probe(tmp_path / "out.mp4")

    assert (seen["video_codec"], seen["frames"]) == ("h264", 12)
    assert seen["audio_codec"] == "aac"
    assert 0.3 < seen["audio_duration"] < 12 / 30 + 0.05  # the audio stops with the video


def test_any_other_exception_inside_the_with_block_deletes_the_partial_file(tmp_path, clips):
    with pytest.raises(RuntimeError):
        with VideoFileSink(
            tmp_path / "out.mp4", width=160, height=120, fps=30, audio_from=clips["aac.mp4"]
        ) as sink:
            sink.write(drawn_frame(0, 160, 120))
            raise RuntimeError("model crashed")

    assert not (tmp_path / "out.mp4").exists()


def test_audio_from_a_longer_source_stops_near_the_last_video_frame(tmp_path, clips):
    with VideoFileSink(
        tmp_path / "out.mp4", width=160, height=120, fps=30, audio_from=clips["pcm.avi"]
    ) as sink:
        for i in range(10):  # a third of the 1 s source
            sink.write(drawn_frame(i, 160, 120), i / 30)

    assert probe(tmp_path / "out.mp4")["audio_duration"] == pytest.approx(10 / 30, abs=0.06)


def test_close_and_abort_can_be_called_again_and_the_first_one_decides(tmp_path):
    closed = VideoFileSink(tmp_path / "closed.mp4", width=64, height=48, fps=30)
    closed.write(drawn_frame(0, 64, 48))
    closed.close()
    closed.close()
    closed.abort()  # too late: the file is finished and stays

    aborted = VideoFileSink(tmp_path / "aborted.mp4", width=64, height=48, fps=30)
    aborted.write(drawn_frame(0, 64, 48))
    aborted.abort()
    aborted.abort()
    aborted.close()

    assert probe(tmp_path / "closed.mp4")["frames"] == 1
    assert not (tmp_path / "aborted.mp4").exists()
    with pytest.raises(SinkError, match="already closed"):
        closed.write(drawn_frame(1, 64, 48))


def test_a_sink_closed_before_any_frame_leaves_no_file(tmp_path):
    with VideoFileSink(tmp_path / "out.mp4", width=64, height=48, fps=30):
        pass

    assert not (tmp_path / "out.mp4").exists()


# --- unwritable outputs --------------------------------------------------------------------------

UNWRITABLE = [
    # (what, path, message pattern after "cannot write '<path>': ")
    ("a directory that cannot be created", "/proc/missing/dir/out{ext}",
     r"cannot create directory '/proc/missing/dir': (no such file or directory|permission denied)$"),
    ("a file as directory", "/proc/version/out{ext}", r"'/proc/version' is not a directory$"),
    ("a file above the directory", "/proc/version/sub/out{ext}", r"'/proc/version' is not a directory$"),
    (
        "a directory nobody can create files in",
        "/proc/out{ext}",
        r"(no such file or directory|permission denied)$",
    ),
]


@pytest.mark.parametrize("what, template, reason", UNWRITABLE, ids=[row[0] for row in UNWRITABLE])
@pytest.mark.parametrize(
    "make, ext",
    [
        (lambda path: VideoFileSink(path, width=64, height=48, fps=30), ".mp4"),
        (lambda path: ImageFileSink(path).write(np.zeros((4, 4, 3), np.uint8)), ".png"),
        (lambda path: KeypointsJsonlSink(path, header={}), ".jsonl"),
    ],
    ids=["video", "image", "keypoints"],
)
def test_unwritable_outputs_fail_up_front_with_a_one_line_message(
    tmp_path, monkeypatch, what, template, reason, make, ext
):
    monkeypatch.chdir(tmp_path)
    path = template.format(ext=ext)

    with pytest.raises(SinkError, match=r"^cannot write '" + ".*" + r"': " + reason) as caught:
        make(path)

    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "make, ext",
    [
        (lambda path: VideoFileSink(path, width=64, height=48, fps=30).close(), ".mp4"),
        (lambda path: ImageFileSink(path).write(np.zeros((4, 4, 3), np.uint8)), ".png"),
        (lambda path: KeypointsJsonlSink(path, header={}).close(), ".jsonl"),
    ],
    ids=["video", "image", "keypoints"],
)
def test_an_output_in_a_missing_folder_gets_its_parents_created(tmp_path, make, ext):
    make(tmp_path / "new" / "sub" / f"out{ext}")

    assert (tmp_path / "new" / "sub").is_dir()


@pytest.mark.parametrize("what, template, reason", UNWRITABLE, ids=[row[0] for row in UNWRITABLE])
def test_check_writable_tells_the_cli_early_about_an_impossible_path_even_as_root(
    tmp_path, monkeypatch, what, template, reason
):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(SinkError, match=r"^cannot write '.*': " + reason):
        check_writable(template.format(ext=".mp4"))
    check_writable(tmp_path / "fine.mp4")  # no error for a path that can be made
    assert list(tmp_path.iterdir()) == []  # and the probe is gone


def test_a_video_sink_never_overwrites_the_file_it_takes_audio_from(tmp_path, clips):
    source = tmp_path / "clip.mp4"
    source.write_bytes(clips["aac.mp4"].read_bytes())

    with pytest.raises(SinkError, match="it is the input file"):
        VideoFileSink(source, width=160, height=120, fps=30, audio_from=source)

    assert source.read_bytes() == clips["aac.mp4"].read_bytes()


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("out.avi", {}, r"^cannot write '.*out\.avi': video output must be \.mp4"),
        (
            "out.mp4",
            {"audio_from": "missing.mp4"},
            r"^cannot read audio from 'missing\.mp4': file not found$",
        ),
    ],
)
def test_video_outputs_that_cannot_be_made_fail_up_front(tmp_path, monkeypatch, name, options, message):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(SinkError, match=message):
        VideoFileSink(name, width=64, height=48, fps=30, **options)

    assert not (tmp_path / name).exists()


# --- images --------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", sorted(IMAGE_OUTPUT_EXTENSIONS))
def test_an_image_sink_writes_the_rgb_picture_in_every_listed_format(tmp_path, extension):
    picture = drawn_frame(3, 64, 48)
    name = f"out{extension}"
    tolerance = 4 if extension in (".jpg", ".jpeg", ".webp") else 0

    with ImageFileSink(tmp_path / name) as sink:
        sink.write(picture)

    assert mean_difference(cv2.imread(str(tmp_path / name))[..., ::-1], picture) <= tolerance


def test_an_image_sink_refuses_an_unknown_extension(tmp_path):
    with pytest.raises(SinkError, match=r"no image format for '\.xyz'"):
        ImageFileSink(tmp_path / "out.xyz")


# --- keypoints -----------------------------------------------------------------------------------


def poses(n: int, *, tracked: bool, seed: int = 0) -> Poses:
    rng = np.random.default_rng(seed)
    return Poses(
        keypoints=rng.uniform(0, 640, (n, 17, 2)),
        scores=rng.uniform(0, 1, (n, 17)),
        boxes=rng.uniform(0, 640, (n, 4)),
        box_scores=rng.uniform(0, 1, n),
        track_ids=np.arange(n) + 7 if tracked else None,
    )


HEADER = {
    "model": "usyd-community/vitpose-base-simple",
    "keypoint_names": list(Poses.empty().keypoint_names),
    "edges": [list(edge) for edge in Poses.empty().edges],
    "fps": 30.0,
    "width": 640,
    "height": 480,
}


@pytest.mark.parametrize("tracked", [False, True])
def test_keypoints_round_trip_through_json_lines(tmp_path, tracked):
    written = [poses(n, tracked=tracked, seed=n) for n in (2, 0, 1)]
    with KeypointsJsonlSink(tmp_path / "kp.jsonl", header=HEADER) as sink:
        for index, these in enumerate(written):
            sink.write(index, index / 30, these)

    header, frames = read_keypoints_jsonl(tmp_path / "kp.jsonl")

    assert header == HEADER
    assert [(f["frame"], f["time"]) for f in frames] == [(0, 0.0), (1, 0.0333), (2, 0.0667)]
    for these, frame in zip(written, frames):
        assert len(frame["persons"]) == len(these)
        for n, person in enumerate(frame["persons"]):
            keypoints = np.array(person["keypoints"])
            np.testing.assert_allclose(keypoints[:, :2], these.keypoints[n], atol=0.005 + 1e-4)
            np.testing.assert_allclose(keypoints[:, 2], these.scores[n], atol=5e-5 + 1e-6)
            np.testing.assert_allclose(person["box"], these.boxes[n], atol=0.005 + 1e-4)
            assert person["score"] == pytest.approx(float(these.box_scores[n]), abs=5e-5 + 1e-6)
            assert ("track_id" in person) is tracked
            if tracked:
                assert person["track_id"] == n + 7


def test_each_line_is_a_rounded_json_record(tmp_path):
    with KeypointsJsonlSink(tmp_path / "kp.jsonl", header={"fps": np.float64(29.97)}) as sink:
        sink.write(np.int64(5), None, poses(1, tracked=False))

    header_line, frame_line = (tmp_path / "kp.jsonl").read_text().splitlines()
    frame = json.loads(frame_line)

    assert json.loads(header_line) == {"type": "header", "fps": 29.97}
    assert set(frame) == {"frame", "time", "persons"} and (frame["frame"], frame["time"]) == (5, None)
    assert all(
        round(x, 2) == x and round(y, 2) == y and round(s, 4) == s
        for x, y, s in frame["persons"][0]["keypoints"]
    )
    assert len(frame_line) < 1200  # 17 keypoints, no float noise like 123.45000457763672


def test_missing_keypoints_are_written_as_null_not_nan(tmp_path):
    these = poses(1, tracked=False)
    keypoints = these.keypoints.copy()
    keypoints[0, 3] = np.nan
    with KeypointsJsonlSink(tmp_path / "kp.jsonl", header={}) as sink:
        sink.write(0, 0.0, these.replace(keypoints=keypoints))

    _, frames = read_keypoints_jsonl(tmp_path / "kp.jsonl")

    assert frames[0]["persons"][0]["keypoints"][3][:2] == [None, None]
    assert "NaN" not in (tmp_path / "kp.jsonl").read_text()


def test_keypoint_lines_reach_the_disk_while_the_sink_is_still_open(tmp_path):
    sink = KeypointsJsonlSink(tmp_path / "kp.jsonl", header={}, flush_every=2)
    for index in range(4):
        sink.write(index, None, poses(1, tracked=False))

    lines_so_far = (tmp_path / "kp.jsonl").read_text().splitlines()
    sink.close()
    sink.close()

    assert len(lines_so_far) == 5
    assert not math.isnan(json.loads(lines_so_far[-1])["persons"][0]["score"])


def test_a_file_without_a_header_is_not_a_keypoints_file(tmp_path):
    (tmp_path / "kp.jsonl").write_text('{"frame": 0}\n')

    with pytest.raises(ValueError, match="not a keypoints file"):
        read_keypoints_jsonl(tmp_path / "kp.jsonl")
