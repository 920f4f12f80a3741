# Sourced by build.sh and run.sh: sets TOOLKIT_PY to a Python that runs this checkout's toolkit.
# $PYTHON when set; else the checkout's .venv; else python3 if it has the toolkit's dependencies; else a
# .venv made here on first use (python3 -m venv, pip install -e .), as a fresh clone needs.
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
runs_toolkit() { "$1" -c "import toolkit.cli" 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
    TOOLKIT_PY=$PYTHON
elif runs_toolkit "$root/.venv/bin/python"; then
    TOOLKIT_PY=$root/.venv/bin/python
elif runs_toolkit python3; then
    TOOLKIT_PY=python3
else
    echo "$(basename "$0"): installing the toolkit into $root/.venv (first run of this checkout)" >&2
    if ! { python3 -m venv "$root/.venv" && "$root/.venv/bin/python" -m pip install --quiet -e "$root"; } >&2; then
        echo "$(basename "$0"): could not make $root/.venv; run: python3 -m venv .venv && .venv/bin/pip install -e ." >&2
        exit 2
    fi
    TOOLKIT_PY=$root/.venv/bin/python
fi
