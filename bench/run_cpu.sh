#!/usr/bin/env bash
# Every CPU benchmark in one go (about 10 minutes on 2 otherwise idle cores, plus about 9 for the
# two CPU-profile runs, timed on a loaded machine): end to end vs the recipe at 5, 1 and 20 persons
# per frame, model throughput vs the FLOP limit, live latency, the CPU profile's candidates and
# its live bar, drawing, a collection locally and on a local Ray, --io-processes, the offline
# analysis and its second pass. JSON goes to $OUT (default bench/results, committed: bench/RESULTS.md cites these
# files), logs to $OUT/logs. The GPU counterpart is bench/run_gpu.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
mkdir -p "$OUT/logs"
python bench/bench_e2e.py --out "$OUT/cpu-e2e-tiny-5persons.json" 2>&1 | tee "$OUT/logs/cpu-e2e-tiny-5persons.log"
for persons in 1 20; do
    python bench/bench_e2e.py --frames 60 --cli-runs 1 --max-persons "$persons" \
        --out "$OUT/cpu-e2e-tiny-${persons}person$([ "$persons" = 1 ] || echo s).json" 2>&1 \
        | tee "$OUT/logs/cpu-e2e-tiny-$persons.log"
done
python bench/bench_live.py --out "$OUT/cpu-live-tiny.json" 2>&1 | tee "$OUT/logs/cpu-live-tiny.log"
python bench/bench_models.py --out "$OUT/cpu-models.json" 2>&1 | tee "$OUT/logs/cpu-models.log"
python bench/bench_cpu_profile.py --out "$OUT/cpu-profile.json" 2>&1 | tee "$OUT/logs/cpu-profile.log"
python bench/bench_live.py --profile cpu --seconds 60 --max-persons 1 --out "$OUT/cpu-live-profile.json" 2>&1 \
    | tee "$OUT/logs/cpu-live-profile.log"
python bench/bench_render.py 2>&1 | tee "$OUT/logs/cpu-render.log" && cp bench/out/render.json "$OUT/cpu-render.json"
python bench/bench_batch.py --out "$OUT/cpu-batch.json" 2>&1 | tee "$OUT/logs/cpu-batch.log"
python bench/bench_crops.py --out "$OUT/cpu-crops.json" 2>&1 | tee "$OUT/logs/cpu-crops.log"
python bench/syncs.py --cpu --out "$OUT/cpu-syncs.json" 2>&1 | tee "$OUT/logs/cpu-syncs.log"
python bench/bench_io_processes.py --out "$OUT/cpu-io-processes.json" 2>&1 | tee "$OUT/logs/cpu-io-processes.log"
python bench/bench_offline.py --memory --out "$OUT/offline-cpu-5persons-10min.json" 2>&1 | tee "$OUT/logs/cpu-offline.log"
python bench/bench_offline_passes.py --out "$OUT/offline-passes-cpu.json" 2>&1 | tee "$OUT/logs/cpu-offline-passes.log"
