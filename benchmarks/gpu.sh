#!/usr/bin/env bash
# GPU numbers for hpstudy, on a machine with JAX and PyTorch (Python 3.12) but no TensorFlow and no internet.
#
#   bash benchmarks/gpu.sh fetch          # here, with PyPI: the wheels that machine lacks, into .whl/
#   bash benchmarks/gpu.sh run [ARGS]     # there, from the repository root: install them, run benchmarks/gpu.py ARGS
#
# `run` installs into /tmp/site (nothing system-wide), puts it and the repository (hpstudy itself) on
# PYTHONPATH and runs under KERAS_BACKEND=jax; gpu.py writes benchmarks/gpu.md. `run --quick` is a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=.whl
SITE=${SITE:-/tmp/site}
# What the GPU machine lacks (it has numpy, h5py, ml-dtypes, rich, absl-py, grpcio, protobuf, requests,
# packaging, pandas, scikit-learn, matplotlib, pyyaml, pillow, scipy, typing-extensions), pinned to the
# versions hpstudy is tested with.
# six: keras-tuner imports it without declaring it (elsewhere TensorFlow brings it).
PURE="keras==3.15.1 keras-tuner==1.4.8 kt-legacy==1.0.5 namex==0.1.0 tqdm==4.70.1 six==1.17.0"
BINARY="optree==0.20.0"
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"

fetch() {
    mkdir -p "$WHEELS"
    for package in $PURE; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform any -d "$WHEELS" "$package"
    done
    for package in $BINARY; do
        # shellcheck disable=SC2086 - one --platform flag per word
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            $PLATFORMS -d "$WHEELS" "$package"
    done
    ls -l "$WHEELS"
    echo "copy the repository (with $WHEELS/) to the GPU machine and run: bash benchmarks/gpu.sh run"
}

run() {
    ls "$WHEELS"/*.whl > /dev/null || { echo "no wheels in $WHEELS/: run 'bash benchmarks/gpu.sh fetch' first" >&2; exit 2; }
    python3 -m pip install -q --no-index --no-deps --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    export KERAS_BACKEND=jax
    python3 benchmarks/gpu.py "$@"
}

case "${1:-}" in
    fetch) fetch ;;
    run) shift; run "$@" ;;
    *) echo "usage: bash benchmarks/gpu.sh fetch | run [--quick] [gpu.py options]" >&2; exit 2 ;;
esac
