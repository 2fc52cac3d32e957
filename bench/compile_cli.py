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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source")
    args = parser.parse_args()
    clip, _ = prepare_clip(0, args.source)
    with tempfile.TemporaryDirectory() as tmp:
        pose_dir, det_dir, _ = build_models("base", Path(tmp))
        for label, extra in (("--compile, first run (compiles)", ["--compile"]), ("--cuda-graphs", ["--cuda-graphs"])):
            start = time.perf_counter()
            code = cli.main(["--source", str(clip), "--output", f"{tmp}/o.mp4", "--model", str(pose_dir),
                             "--detector", str(det_dir), "--device", "cuda", "--max-persons", "5", "--no-progress",
                             "--stats-json", f"{tmp}/s.json", *extra])  # fmt: skip
            print(f"{label}: exit {code}, {time.perf_counter() - start:.1f} s in all;",
                  Path(f"{tmp}/s.json").read_text().replace("\n", " ")[:300], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
