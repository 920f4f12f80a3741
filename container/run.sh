#!/bin/sh
# Run a framework image (GPUs, shared memory, IPC, optional workspace and cache mounts);
# `container/run.sh --help` lists the options. Works from a fresh clone.
. "$(dirname "$0")/toolkit-python.sh"
exec "$TOOLKIT_PY" -m toolkit container-run "$@"
