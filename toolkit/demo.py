"""``toolkit demo``: the whole release on local defaults, in one command.

engine up -> wheels -> images (pushed) -> smoke -> publish -> client verification -> docs.
Every stage skips what is already up to date, so a second run builds nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import channels, docs, engine, images, publish, report, settings, smoke, wheels
from .console import step, table
from .errors import EngineError, PublishError
from .manifest import Manifest, identity, published_to
from .matrix import Matrix
from .plan import Plan

DEFAULT_CUDA = ("13.0",)
DEFAULT_FRAMEWORK = ("none",)


def run(m: Matrix, plan: Plan, dist: Path) -> str:
    """Run every stage for ``plan``; return the closing summary."""
    root = m.source.resolve().parent
    started = time.monotonic()
    stages = [
        ("engine up", lambda: _engine(m, plan)),
        ("wheels", lambda: wheels.build(m, plan, root, dist)),
        ("images", lambda: images.build(m, plan, root, dist, push=True)),
        ("smoke", lambda: smoke.require_pass(smoke.smoke(m, plan, dist))),
        ("publish", lambda: publish.publish(m, plan, dist, yes=True)),
        ("verify", lambda: _verify(m)),
        ("docs", lambda: report.record_docs(m, dist)),
    ]
    for number, (name, stage) in enumerate(stages, 1):
        step(f"[{number}/{len(stages)}] {name}")
        stage()
    return _summary(m, plan, dist, time.monotonic() - started)


def _engine(m: Matrix, plan: Plan) -> None:
    down = [s.name for s in engine.up(m, plan, settings.state_dir()) if not s.up]
    if down:
        raise EngineError(f"not available: {', '.join(down)}")


def _verify(m: Matrix) -> None:
    problems = publish.verify(m)
    if problems:
        raise PublishError(problems)


def _summary(m: Matrix, plan: Plan, dist: Path, seconds: float) -> str:
    records = Manifest(dist / "manifest.json").data["artifacts"]
    rows = []
    for a in plan.artifacts:
        r = records.get(a.id, {})
        runs = (r.get("smoke") or {}).get("runs", [])
        result = ", ".join(sorted({x["result"] for x in runs})) or "-"
        size = f"{r['size'] / 1e6:.1f} MB" if "size" in r else f"{r['size_mb']} MB" if "size_mb" in r else "-"
        ident = identity(r)[1][:19] or "-"
        rows.append((a.id, a.build.platform, size, ident, result, published_to(r) or "-"))
    return "\n".join([
        table(("artifact", "platform", "size", "sha256/digest", "smoke", "published"), rows), "",
        f"done in {seconds:.0f} s. Where to find everything:",
        f"  wheels, SHA256SUMS(.sig), SBOM, attestations/, manifest: {dist.resolve()}",
        f"  package index (the default CUDA line, no local label): {m.publish.read_url}",
        f"  channels: {m.publish.channel_url.rstrip('/')}/<cuda>/simple/, variants: "
        f"{channels.channel(m, channels.VARIANTS).simple_url}  (README: Installing)",
        f"  images: {m.publish.image_repository}/<framework>:<version>-<cuda>",
        f"  build logs: {dist.resolve() / 'logs'}",
        f"  support matrix: {m.source.resolve().parent / docs.SUPPORT_MATRIX}",
        f"  release report: {m.source.resolve().parent / report.REPORT}",
    ])
