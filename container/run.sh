#!/bin/sh
# Run a framework image (GPUs, shared memory, IPC, optional workspace and cache mounts);
# `container/run.sh --help` lists the options.
exec "${PYTHON:-python3}" -m toolkit container-run "$@"
