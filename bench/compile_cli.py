"""The CLI with --compile on a GPU: real-size random models, a 1080p clip, timings per run.

    python bench/compile_cli.py [--source CLIP]          # needs CUDA
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "tests")]

from bench_e2e import build_models, prepare_clip  # noqa: E402

from vitpose_live import cli  # noqa: E402
from vitpose_live.sources import VideoFileSource  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source")
    args = parser.parse_args()
    clip, _ = prepare_clip(0, args.source)
    with tempfile.TemporaryDirectory() as tmp:
        pose_dir, det_dir, _ = build_models("base", Path(tmp))
        argv = ["--source", str(clip), "--output", f"{tmp}/o.mp4", "--model", str(pose_dir), "--detector", str(det_dir),
                "--device", "cuda", "--max-persons", "5", "--no-progress", "--stats-json", f"{tmp}/s.json", "--compile"]
        engine = cli.build_engine(cli.build_parser().parse_args(argv), live=False)
        source = VideoFileSource(clip)
        frames = [frame for _, frame in zip(range(16), source)]
        source.close()
        start = time.perf_counter()
        engine.process_batch(frames[:8])
        print(f"first batch of 8 (compiles the detector): {time.perf_counter() - start:.1f} s", flush=True)
        for count in (8, 1, 8):  # graphs for the pose buckets; a short batch is padded (no recompile)
            engine.process_batch(frames[:count])
        original = cli.build_engine
        cli.build_engine = lambda args, live: engine  # the CLI's own run on the warm engine
        try:
            start = time.perf_counter()
            code = cli.main(argv)
        finally:
            cli.build_engine = original
        print(f"CLI --compile on the warm engine: exit {code}, {time.perf_counter() - start:.2f} s;",
              Path(f"{tmp}/s.json").read_text().replace("\n", " ")[:400], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
