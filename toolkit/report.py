"""``toolkit report``: the release as one static, self-contained HTML page.

An artifact grid (arch x CUDA x framework, one cell per planned artifact, coloured by its recorded status
with the evidence behind it), a timeline of every recorded stage (build, each smoke run, publish) on one
time axis, sizes, smoke results per Python and GPU, and links to the build logs. Everything comes from the
release manifest; nothing is loaded from the network. The page is checked in Debian's chromium, headless,
in a throw-away container (:func:`browse`).
"""

from __future__ import annotations

import datetime
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from . import docs, render, tools
from .engine import docker
from .manifest import identity, published_to, smoke_runs
from .matrix import Matrix
from .plan import Artifact, Selection, WheelArtifact, make_plan

REPORT = "docs/release-report.html"
TEMPLATE = "report.html.j2"
WIDTH = 1000  # of the timeline, in SVG units
PUBLISHED, PASSED, FAILED, BUILT, NOT_BUILT = "published", "passed", "failed", "built, untested", "not built"
BROWSER_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends chromium fonts-dejavu-core \\
 && rm -rf /var/lib/apt/lists/*
"""


def _time(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp).timestamp()


def status(record: dict[str, Any]) -> str:
    """What the manifest says happened to one artifact, in the grid's words."""
    key, ident = identity(record)
    if not ident:
        return NOT_BUILT
    runs = smoke_runs(record)
    if any(r["result"] == "FAIL" for r in runs):
        return FAILED
    if (record.get("published") or {}).get(key) == ident:
        return PUBLISHED
    return PASSED if any(r["result"] == "pass" for r in runs) else BUILT


def stages(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every recorded stage of one artifact with its start and end (epoch seconds): build (an image's with its
    push), audit, each smoke run, publish."""
    found = []
    if record.get("build_started_at") and record.get("built_at"):
        found.append({"stage": "build", "start": _time(record["build_started_at"]), "end": _time(record["built_at"]),
                      "detail": f"{record.get('build_mode', '')} build{' and push' if record.get('pushed') else ''}"})
    checked = record.get("audit") or {}
    if checked.get("started_at") and checked.get("at"):
        found.append({"stage": "audit", "start": _time(checked["started_at"]), "end": _time(checked["at"]),
                      "detail": "SASS/PTX of every shared object against the promised GPU targets"})
    for run in smoke_runs(record):
        if run.get("started_at"):
            start = _time(run["started_at"])
            found.append({"stage": "smoke", "start": start, "end": start + run["seconds"],
                          "detail": f"Python {run['python']} ({run['where']}): {run['result']}"})
    published = record.get("published") or {}
    if published.get("started_at") and published.get("at"):
        found.append({"stage": "publish", "start": _time(published["started_at"]), "end": _time(published["at"]),
                      "detail": published_to(record)})
    return found


def _cell(a: Artifact, record: dict[str, Any], logs: Path, page: Path) -> dict[str, Any]:
    key, ident = identity(record)
    log = logs / f"{a.id.replace(':', '_')}.log"
    return {"id": a.id, "status": status(record), "ident": f"{key} {ident}" if ident else "",
            "size": f"{record['size'] / 1e6:.1f} MB" if "size" in record else "",
            "file": record.get("file") or record.get("tag", ""),
            "runs": [f"Python {r['python']} ({r['where'] or 'not run'}): {r['result']}; GPU: {r['gpu']}"
                     for r in smoke_runs(record)],
            "log": os.path.relpath(log.resolve(), page.resolve().parent) if log.exists() else "",
            "published": published_to(record)}


def context(m: Matrix, records: dict[str, dict[str, Any]], logs: Path, page: Path) -> dict[str, Any]:
    """What the report template prints: grid rows, timeline bars and the time axis."""
    plan = make_plan(m, Selection())
    cells = {a.id: _cell(a, records.get(a.id, {}), logs, page) for a in plan.artifacts}
    rows = []
    for a in plan.artifacts:
        what = f"wheel {a.package}" if isinstance(a, WheelArtifact) else f"image {a.framework}"
        row = next((r for r in rows if r["what"] == what and r["cuda"] == a.build.cuda), None)
        if row is None:
            row = {"what": what, "cuda": a.build.cuda, "cells": {}}
            rows.append(row)
        row["cells"][a.build.arch.value] = cells[a.id]
    bars = [{"id": a.id, **s} for a in plan.artifacts for s in stages(records.get(a.id, {}))]
    start = min((b["start"] for b in bars), default=0.0)
    span = max((b["end"] for b in bars), default=1.0) - start or 1.0
    for i, b in enumerate(bars):
        b.update(x=round((b["start"] - start) / span * WIDTH, 1), y=i * 22,
                 w=max(round((b["end"] - b["start"]) / span * WIDTH, 1), 2.0), seconds=round(b["end"] - b["start"]))
    counts = {s: sum(c["status"] == s for c in cells.values()) for s in (PUBLISHED, PASSED, FAILED, BUILT, NOT_BUILT)}
    return {"project": m.project, "archs": [a.value for a in m.axes.arch], "rows": rows, "bars": bars,
            "width": WIDTH, "height": len(bars) * 22 + 30, "span": round(span),
            "started": datetime.datetime.fromtimestamp(start, datetime.timezone.utc).isoformat(timespec="seconds")
            if bars else "", "counts": counts, "planned": len(cells)}


def write(m: Matrix, records: dict[str, dict[str, Any]], logs: Path, out: Path) -> Path:
    """Render the page for ``records`` (a release manifest's artifacts) to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render.template(TEMPLATE, html=True).render(**context(m, records, logs, out)))
    return out


def record_docs(m: Matrix, dist: Path) -> tuple[Path, list[str], Path]:
    """``toolkit docs``: the release manifest of ``dist`` copied beside the docs, the files it feeds
    regenerated, and this report written from it (links to ``dist``'s build logs)."""
    root = m.source.resolve().parent
    copied = docs.publish_manifest(dist, root)
    changed = render.write(m, root)
    return copied, changed, write(m, docs.load_records(root), dist / "logs", root / REPORT)


def browser(m: Matrix) -> str:
    """The image with Debian trixie's chromium (built once into the release registry, by its content)."""
    base = m.image("debian:trixie-slim")
    image = f"{m.publish.image_repository}/toolkit-chromium:" + hashlib.sha256(
        (BROWSER_DOCKERFILE + base).encode()).hexdigest()[:12]
    with tempfile.TemporaryDirectory(prefix="browser-") as tmp:
        dockerfile = Path(tmp) / "Dockerfile"
        dockerfile.write_text(BROWSER_DOCKERFILE)
        docker.ensure_image(image, ["linux/amd64"], dockerfile=dockerfile, dry_run=False, build_args={"BASE": base})
    return image


def browse(m: Matrix, page: Path, screenshot: Path | None = None) -> tuple[str, str]:
    """Load ``page`` in headless chromium: the DOM after its scripts ran, and the browser's console log
    (stderr). With ``screenshot``, a PNG of the page is written there too."""
    image = browser(m)
    folder = page.resolve().parent
    shots = Path(tempfile.mkdtemp(prefix="shot-"))
    argv = ["docker", "run", "--rm", "--platform=linux/amd64", f"--volume={folder}:/page:ro", f"--volume={shots}:/out",
            image, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            "--window-size=1400,1500", f"file:///page/{page.name}"]
    dom = tools.run([*argv[:-1], "--dump-dom", argv[-1]], capture=True, quiet=True)
    if screenshot:
        tools.run([*argv[:-1], "--screenshot=/out/page.png", argv[-1]], capture=True, quiet=True)
        screenshot.write_bytes((shots / "page.png").read_bytes())
    return dom.stdout, dom.stderr
