"""The GitHub Actions side: the plan as job matrices, and the values the workflow templates print.

Every job of the release workflow is a slice of the same plan (`toolkit plan --github`),
so the pipeline scales out by adding runners, never by editing YAML.
"""

from __future__ import annotations

import json
import re

from .matrix import Matrix
from .plan import Plan
from .provenance import RUN_IDENTITY

# Third-party actions, pinned by commit (the comment names the release).
ACTIONS = {
    "checkout": "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8  # v5.0.0",
    "setup-python": "actions/setup-python@e797f83bcb11b83ae66e0230d6156d7c80228e7c  # v6.0.0",
    "upload-artifact": "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02  # v4.6.2",
    "download-artifact": "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093  # v4.3.0",
    "cache": "actions/cache@0400d5f644dc74513175e3cd8d07132dd4860809  # v4.2.4",
}


def _key(artifact_id: str) -> str:
    """An artifact id as an artifact/job name (``wheel-saxpy-cu130-x86_64``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", artifact_id)


def job_matrices(m: Matrix, plan: Plan) -> dict[str, list[dict[str, str]]]:
    """One include-list per job kind: every entry names its runner and its plan filters."""
    wheels = [{"id": w.id, "key": _key(w.id), "arch": w.build.arch.value, "cuda": w.build.cuda,
               "runner": m.ci.runners.get(w.build.arch.value, "")} for w in plan.wheels]
    images = [{"id": i.id, "key": _key(i.id), "arch": i.build.arch.value, "cuda": i.build.cuda,
               "framework": i.framework, "runner": m.ci.runners.get(i.build.arch.value, "")} for i in plan.images]
    return {"wheels": wheels, "images": images}


def github_output(m: Matrix, plan: Plan) -> str:
    """``name=json`` lines for $GITHUB_OUTPUT."""
    return "\n".join(f"{name}={json.dumps(rows, separators=(',', ':'))}"
                     for name, rows in job_matrices(m, plan).items())


def context(m: Matrix) -> dict[str, object]:
    """What the workflow templates print: pinned actions, runners, Python, GPU labels, dispatch inputs."""
    axes = [axis for axis in ("arch", "cuda", "framework") if getattr(m.axes, axis)]
    return {"selection_axes": axes,
            # an empty value selects everything, so a tag push (no inputs) releases the whole plan
            "select_flags": " ".join(f'--{a} "$SELECT_{a.upper()}"' for a in axes),
            "provenance_env": ",".join(RUN_IDENTITY),
            "actions": ACTIONS, "python": m.ci.python, "gpu_runner": json.dumps(list(m.ci.gpu_runner)),
            "plan_runner": m.ci.runners.get("x86_64") or next(iter(m.ci.runners.values())),
            "has_gpu_arch": "x86_64" in (a.value for a in m.axes.arch),
            "native_runners": ", ".join(f"{a.value} on {m.ci.runners.get(a.value, '(no runner)')}"
                                        for a in m.axes.arch)}
