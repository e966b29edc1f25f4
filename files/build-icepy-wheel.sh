#!/bin/sh
# Build the IcePy 3.6.5 wheel (PyPI sdist zeroc-ice==3.6.5) for the given Python.
# The sdist predates Python 3.11: it includes <eval.h> (gone) and reads
# PyThreadState->frame (gone), so both are patched before building.
# Usage: build-icepy-wheel.sh PYTHON OUTDIR  (PYTHON: a venv python whose pip.conf reaches the index)
set -eu
python=$1
outdir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --no-deps --no-binary :all: -d "$work" zeroc-ice==3.6.5
tar -xzf "$work"/zeroc-ice-3.6.5.tar.gz -C "$work"
src="$work/zeroc-ice-3.6.5"
sed -i '/#include <eval.h>/d' "$src/src/Slice.cpp"
sed -i "s/PyThreadState_GET()->frame/PyEval_GetFrame()/" "$src/src/Util.cpp"
mkdir -p "$outdir"
"$python" -m pip wheel --use-pep517 --no-deps -w "$outdir" "$src"
