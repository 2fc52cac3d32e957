#!/usr/bin/env bash
# Before a GPU session's first `run`: the wheels the device image lacks (av, supervision, trackers
# and their small dependencies) and the transformers this project is tested with (the image has
# an older one), downloaded here into .whl/ for Python 3.12 x86-64. Name `.whl` in the run's
# `carry`; bench/run_gpu.sh installs them to /tmp/site. The device's package list:
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
