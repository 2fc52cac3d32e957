#!/usr/bin/env bash
# On a CUDA machine: the CUDA tests, then the end-to-end, model and live benchmarks.
# Logs and JSON go to $OUT (default bench/results: commit the JSON, which bench/RESULTS.md cites).
# Packages the machine lacks can sit as wheels in .whl/ (installed to /tmp/site); a clip in
# .gpu/a.mp4 replaces gradio's bundled one.
#   bash bench/run_gpu.sh [tests] [e2e] [syncs] [models] [live]     (default: all)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || exit 1
    export PYTHONPATH="$PYTHONPATH:/tmp/site"  # ahead of site-packages: the carried versions win
fi
steps=${*:-tests e2e syncs models live}
clip=()
[ -f .gpu/a.mp4 ] && clip=(--source .gpu/a.mp4)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 -c "import torch, transformers, av, supervision, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'av', av.__version__, 'cv2', cv2.__version__, 'cpus', __import__('os').cpu_count())"
for step in $steps; do
    echo "=== $step $(date +%T)"
    case $step in
        tests) python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/tests_cuda.log" ;;
        e2e) python3 bench/bench_e2e.py --device cuda --dtype auto --size base "${clip[@]}" --cli-runs 2 ${E2E_ARGS:-} \
                 --out "$OUT/e2e_cuda_base.json" 2>&1 | tee "$OUT/e2e_cuda_base.log" ;;
        profile) python3 bench/profile_gpu_file.py "${clip[@]}" 2>&1 | tee "$OUT/profile.log" ;;
        compile) python3 bench/compile_probe.py 2>&1 | tee "$OUT/compile.log" ;;
        syncs) python3 bench/syncs.py 2>&1 | tee "$OUT/syncs.log" ;;
        models) python3 bench/bench_models.py --device cuda --eager --graphs ${MODELS_ARGS:-} --out "$OUT/models_cuda.json" 2>&1 | tee "$OUT/models_cuda.log" ;;
        live) python3 bench/bench_live.py --device cuda --size base --out "$OUT/live_cuda.json" 2>&1 | tee "$OUT/live_cuda.log" ;;
        *) echo "unknown step $step" ;;
    esac
done
echo "=== done $(date +%T)"
