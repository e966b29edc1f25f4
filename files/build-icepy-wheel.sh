#!/bin/sh
# Build the IcePy 3.6.5 wheel (PyPI sdist zeroc-ice==3.6.5) for the given Python.
# The sdist predates Python 3.11: it includes <eval.h> (gone) and reads
# PyThreadState->frame (gone), so both are patched before building. Python 3.13
# also dropped PyEval_CallObject and PyObject_AsReadBuffer from its headers;
# src/Config.h gets them back for 3.13+ only, so older builds are unchanged.
# Python 3.12 removed the imp module, whose new_module() Ice.py uses to create modules.
# GCC 14 (Debian 13) rejects mcpp's undeclared readlink(); system.c asks for POSIX.1-2001.
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
# PyObject_AsReadBuffer is still exported (stable ABI), only its declaration is gone.
grep -q PyObject_AsReadBuffer "$src/src/Config.h" || sed -i '/#include <Python.h>/a\
#if PY_VERSION_HEX >= 0x030D0000\
#define PyEval_CallObject(f, a) PyObject_CallObject((f), (a))\
extern "C" int PyObject_AsReadBuffer(PyObject*, const void**, Py_ssize_t*);\
#endif' "$src/src/Config.h"
# mcpp's configed.H pins _POSIX_C_SOURCE to 1 (POSIX.1-1990), which hides readlink().
grep -q '_POSIX_C_SOURCE 200112L' "$src/src/ice/mcpp/system.c" ||
    sed -i '/#include    "system.H"/i\
#define _POSIX_C_SOURCE 200112L' "$src/src/ice/mcpp/system.c"
# imp.new_module(name) is types.ModuleType(name), on every Python 3.
sed -i -e 's/^import sys, string, imp, os,/import sys, string, types, os,/' \
    -e 's/imp\.new_module(/types.ModuleType(/' "$src/lib/Ice.py"
# Without debug information (-g0; newer setuptools compiles C++ with CXXFLAGS): the wheel is
# 4.6 MB instead of 34 MB and compiles in half the time.
export CFLAGS="${CFLAGS:+$CFLAGS }-g0" CXXFLAGS="${CXXFLAGS:+$CXXFLAGS }-g0"
mkdir -p "$outdir"
"$python" -m pip wheel --use-pep517 --no-deps -w "$outdir" "$src"
