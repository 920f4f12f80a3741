#!/bin/sh
# Build framework images with Dynamo's build.sh interface; `container/build.sh --help` lists the options,
# generated from the same parser that runs them (toolkit/container.py). Works from a fresh clone.
. "$(dirname "$0")/toolkit-python.sh"
exec "$TOOLKIT_PY" -m toolkit container-build "$@"
