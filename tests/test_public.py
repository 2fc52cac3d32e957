"""The README's Python section works as written: the public names build the engine, open a
source and run the loop (with the tiny models in place of the Hub's)."""

import subprocess
import sys

import vitpose_live as vl
from support.media import make_clip


def test_importing_the_package_loads_no_torch():
    code = "import sys, vitpose_live; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_engine_builder_a_source_and_the_loop_give_every_frame_its_poses(pose_dir, detector_dir, tmp_path):
    engine = vl.build_engine(vl.EngineOptions(vl.ModelOptions(model=pose_dir, detector=detector_dir, device="cpu")))
    seen = []
    source = vl.open_source(make_clip(tmp_path / "clip.mp4", width=160, height=120, frames=4, audio=False))
    report = vl.run(source, engine, vl.Outputs(), vl.RunOptions(progress=False),
                    on_frame=lambda result, picture, stats: seen.append((result.frame.index, len(result.poses))))
    assert report.frames == 4 == len(seen) and [index for index, _ in seen] == [0, 1, 2, 3]
    assert report.stats["fps"] > 0


def test_every_error_meant_for_a_person_derives_from_the_one_base():
    for kind in (vl.UserError, vl.SourceError, vl.SinkError, vl.ModelLoadError, vl.PipelineError):
        assert issubclass(kind, vl.VitposeError)
    assert vl.UserError("--x must be 1\nmore").one_line() == "--x must be 1"
