"""The progress bar tells the truth: no rate until it means something, a --realtime file's bar
counts the frames it dropped (so it ends at 100 %), and a collection's bar shows the frames of
the input in progress."""

from pathlib import Path

import vitpose_live.runtime.run as run_module
from vitpose_live.apps.collection import Job, Recorder
from vitpose_live.runtime.pipeline import PipelineStats
from vitpose_live.runtime.run import RATE_AFTER_FRAMES, RATE_AFTER_S, Outputs, RunOptions, _Loop


def loop_of(total: int) -> _Loop:
    return _Loop(None, Outputs(), RunOptions(total=total, progress=True), (None, None), None, None)


def test_no_rate_is_shown_until_a_second_and_enough_frames_have_passed(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(run_module.time, "monotonic", lambda: now[0])
    loop = loop_of(100)
    rates = []
    for frame in range(1, 31):  # five frames arrive at once (a batch), then one every 0.1 s
        loop.frames = frame
        now[0] += 0.0 if frame <= 5 else 0.1
        rates.append(loop.rate())
    shown = [i + 1 for i, rate in enumerate(rates) if rate is not None]
    assert shown[0] >= max(RATE_AFTER_FRAMES, 5 + RATE_AFTER_S / 0.1)  # not at frame 5, as 65 frames/s did
    assert 8 <= rates[-1] <= 12  # about the 10 frames/s it really runs at
    loop._bar.close()


def test_a_realtime_files_bar_counts_its_dropped_frames_and_ends_at_100_percent(capsys):
    loop, stats = loop_of(10), PipelineStats()
    loop.frames, stats.frames_dropped = 7, 3  # 7 written, 3 dropped for being late
    loop._advance(stats)
    assert loop._bar.n == 10
    loop._bar.close()
    assert "100%" in capsys.readouterr().err


def test_a_collections_bar_shows_the_frames_of_the_input_in_progress(tmp_path):
    recorder = Recorder(tmp_path, 3, progress=True)
    job = Job(Path("a.mp4"), "sub/a.mp4", tmp_path / "sub" / "a", ".mp4", ("jsonl",))
    recorder.start(job)
    recorder.counting(job)(42)
    assert recorder._bar.postfix == "sub/a.mp4: 42 frame(s)"
    recorder.close()
