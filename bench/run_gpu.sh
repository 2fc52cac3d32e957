#!/usr/bin/env bash
# On a CUDA machine: the CUDA tests, then the benchmarks, as one prepared run.
# One log ($OUT/run_gpu.log) and one JSON per benchmark go to $OUT (the device tool's folder there;
# default bench/results: commit the JSON, which bench/RESULTS.md cites).
# Packages the machine lacks can sit as wheels in .whl/ (installed to /tmp/site); a clip in
# .gpu/a.mp4 replaces gradio's bundled one. bench/gpu_wheels.sh fetches the wheels (run it here,
# then name .whl, and .gpu if used, in the run's carry).
#   bash bench/run_gpu.sh                  # the default steps: tests syncs profile compile profile_compile
# With the device tool (10 minutes a command, 15 minutes of device time a session, start-up
# included) run it as two calls on one warm machine, estimated from the last H100 session:
#   bash bench/run_gpu.sh tests syncs profile     # ~7 min: CUDA tests; the engine and the CLI with
#                                                 # --cuda-graphs (pose model and, since issue 14, the detector)
#   bash bench/run_gpu.sh compile profile_compile # ~7 min (R50 compiles of ~80 s each)
# Then, in a later session: e2e e2e_compile live live_compile models, and io_processes (~2 min:
# --io-processes, whether it becomes the default on CUDA).
# Each step has its own time limit (STEP_LIMIT_<step>=seconds overrides it) so that one hung step
# cannot spend the machine's time.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
LOG="$OUT/run_gpu.log"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/site"  # ahead of site-packages: the carried versions win
fi
steps=${*:-tests syncs profile compile profile_compile}
clip=()
[ -f .gpu/a.mp4 ] && clip=(--source .gpu/a.mp4)
{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
    df -h /dev/shm  # --io-processes keeps 2 x batch + 4 frames there (1080p, batch 8: 124 MiB)
    python3 -c "import torch, transformers, av, supervision, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'av', av.__version__, 'cv2', cv2.__version__, 'cpus', __import__('os').cpu_count())"
} 2>&1 | tee -a "$LOG"
limit() { local name="STEP_LIMIT_$1"; echo "${!name:-$2}"; }
for step in $steps; do
    echo "=== $step $(date +%T)" | tee -a "$LOG"
    case $step in
        # the CUDA tests, the compiled detector on a second thread among them
        tests) timeout "$(limit tests 240)" python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py ;;
        # host syncs per pass, transformers' RT-DETR forward next to the fixed-shape one
        syncs) timeout "$(limit syncs 90)" python3 bench/syncs.py --out "$OUT/syncs_cuda.json" ;;
        # compiled (reduce-overhead) R50 at buckets 1 and 8, compiled and timed on a worker thread
        compile) timeout "$(limit compile 240)" python3 bench/compile_probe.py --out "$OUT/compile_cuda.json" ;;
        # the engine alone and the CLI, with --compile (compile time inside the CLI runs: see the log)
        profile_compile) timeout "$(limit profile_compile 200)" python3 bench/profile_gpu_file.py "${clip[@]}" --compile \
                             --out "$OUT/profile_compile.json" ;;
        profile) timeout "$(limit profile 200)" python3 bench/profile_gpu_file.py "${clip[@]}" --out "$OUT/profile.json" ;;
        e2e) timeout "$(limit e2e 420)" python3 bench/bench_e2e.py --device cuda --dtype auto --size base "${clip[@]}" \
                 --cli-runs 2 --cuda-graphs ${E2E_ARGS:-} --out "$OUT/e2e_cuda_base.json" ;;
        e2e_compile) timeout "$(limit e2e_compile 420)" python3 bench/bench_e2e.py --device cuda --dtype auto --size base \
                         "${clip[@]}" --cli-runs 2 --cuda-graphs --compile ${E2E_ARGS:-} --out "$OUT/e2e_cuda_base_compile.json" ;;
        models) timeout "$(limit models 300)" python3 bench/bench_models.py --device cuda --eager --graphs ${MODELS_ARGS:-} \
                    --out "$OUT/models_cuda.json" ;;
        # the inference thread alone, next to threaded decode + draw + encode, and next to --io-processes
        io_processes) timeout "$(limit io_processes 300)" python3 bench/bench_io_processes.py --device cuda --dtype auto \
                          --size base "${clip[@]}" --cuda-graphs --runs 2 --out "$OUT/io_processes_cuda.json" ;;
        live) timeout "$(limit live 150)" python3 bench/bench_live.py --device cuda --size base --out "$OUT/live_cuda.json" ;;
        live_compile) timeout "$(limit live_compile 240)" python3 bench/bench_live.py --device cuda --size base --compile \
                          --out "$OUT/live_cuda_compile.json" ;;
        *) echo "unknown step $step" ;;
    esac 2>&1 | tee -a "$LOG"
done
echo "=== done $(date +%T)" | tee -a "$LOG"
