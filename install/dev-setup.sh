#!/bin/sh
# Set up a development environment in ./.venv: the clearshot package (editable) and test tools.
# Works with only Python 3 (3.10-3.13) and pip: if the venv module lacks ensurepip (Debian
# without python3-venv), the venv is created without pip and pip is installed into it by the
# system pip.
set -eu
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        "$PY" -m venv --without-pip .venv
        "$PY" -m pip --python .venv/bin/python install --quiet pip
    fi
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
echo "clearshot installed in .venv (run .venv/bin/clearshot --help)"
