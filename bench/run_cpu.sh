#!/usr/bin/env bash
# Every CPU benchmark in one go (about 8 minutes on 2 cores): end to end vs the recipe, model
# throughput vs the FLOP limit, live latency, drawing. Logs and JSON go to $OUT (default bench/out).
# The GPU counterpart is bench/run_gpu.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
python bench/bench_e2e.py --out "$OUT/e2e.json" 2>&1 | tee "$OUT/e2e.log"
python bench/bench_models.py --out "$OUT/models.json" 2>&1 | tee "$OUT/models.log"
python bench/bench_live.py --out "$OUT/live.json" 2>&1 | tee "$OUT/live.log"
python bench/bench_render.py 2>&1 | tee "$OUT/render.log"
python bench/bench_crops.py --out "$OUT/crops_cpu.json" 2>&1 | tee "$OUT/crops.log"
python bench/syncs.py --cpu --out "$OUT/syncs_cpu.json" 2>&1 | tee "$OUT/syncs.log"
