#!/usr/bin/env bash
# Before a GPU session's first `run`, here: into .whl/ the wheels the device image lacks (av,
# supervision, trackers and their small dependencies) and the transformers this project is tested
# with (the image has an older one), for Python 3.12 x86-64; into .gpu/ gradio's a.mp4. Name
# `.whl` and `.gpu` in the run's `carry`; bench/run_gpu.sh installs the wheels to /tmp/site. The device's package list:
# /work/.library/device/KINDS.md. Versions: the ones the CPU tests ran with.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude="$(git rev-parse --git-common-dir)/info/exclude"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl \
    transformers==5.24.0 av==18.1.0 supervision==0.31.2 trackers==2.6.1 defusedxml==0.7.1 pydeprecate==0.13.0
ls -la .whl
# the clip every GPU figure so far used (gradio's a.mp4; gradio is not on the device): carry .gpu too
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >> "$exclude"
mkdir -p .gpu
python3 -c "import sys; sys.path.insert(0, 'bench'); from bench_e2e import gradio_clip; print(gradio_clip() or '')" \
    | xargs -r -I{} cp {} .gpu/a.mp4
ls -la .gpu
