#!/bin/sh
# Build framework images with Dynamo's build.sh interface; `container/build.sh --help` lists the options,
# generated from the same parser that runs them (toolkit/container.py).
exec "${PYTHON:-python3}" -m toolkit container-build "$@"
