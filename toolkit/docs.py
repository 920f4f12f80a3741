"""The support matrix: every status derived from matrix.toml and recorded results.

Nothing here is written by hand. A status cell either names the manifest record
(artifact id, sha256 or digest, smoke run) it comes from, or says *untested*.
The release manifest of the last real run is committed as RELEASE_MANIFEST so
that the drift check can re-render the page anywhere.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import channels, cuda, preflight, resolve
from .errors import ConfigError
from .manifest import identity, smoke_runs
from .matrix import Matrix, exclusions
from .plan import Plan, Selection, cuda_tag, make_plan

RELEASE_MANIFEST = "docs/verification/release-manifest.json"
SUPPORT_MATRIX = "docs/support-matrix.md"
GPU_RESULTS = "docs/verification/gpu-smoke-*.json"


def load_records(root: Path) -> dict[str, dict[str, Any]]:
    """The committed release manifest's artifact records (empty before any release)."""
    path = root / RELEASE_MANIFEST
    return json.loads(path.read_text())["artifacts"] if path.exists() else {}


def gpu_runs(root: Path, records: dict[str, dict[str, Any]]) -> list[dict]:
    """Passing GPU runs: from the release manifest, and from GPU-host results committed beside it
    (a GPU host is a separate machine) that cover the very file the manifest names (same sha256)."""
    runs = [r for rec in records.values() for r in _passes(rec)]
    for path in sorted(root.glob(GPU_RESULTS)):
        result = json.loads(path.read_text())
        record = records.get(result["artifact"])
        if record:  # _passes drops the runs unless their sha256 is this record's
            runs += _passes({**record, "smoke": result["smoke"]})
    return [r for r in runs if "__CUDA_ARCH__" in r.get("gpu", "")]


def publish_manifest(dist: Path, root: Path) -> Path:
    """Copy the release manifest of a real run next to the docs it feeds."""
    source = dist / "manifest.json"
    if not source.is_file():
        raise ConfigError([f"{source}: no release manifest there; build first (`toolkit wheels`, or `nox -s demo`) "
                           "or pass --dist DIR"])
    target = root / RELEASE_MANIFEST
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def _passes(record: dict) -> list[dict]:
    return [r for r in smoke_runs(record) if r["result"] == "pass"]


def _arch_status(arch: str, records: Iterable[tuple[str, dict]]) -> tuple[str, str]:
    native, emulated = [], []
    for artifact_id, record in records:
        if not artifact_id.endswith(f":{arch}"):
            continue
        for run in _passes(record):
            host = record["smoke"].get("host")
            (native if host == arch else emulated).append(f"`{artifact_id}` on Python {run['python']}")
    if native:
        return "Supported", "built and smoke-tested natively: " + ", ".join(native)
    if emulated:
        return "Experimental", "smoke-tested only under emulation: " + ", ".join(emulated)
    return "Untested", "no passing smoke record"


def _gpu_rows(m: Matrix, records: dict[str, dict], gpu_runs: list[dict]) -> list[list[str]]:
    audited = {}
    for record in records.values():
        for obj in (record.get("audit") or {}).get("objects", []):
            audited.setdefault(record.get("cuda"), set()).update(obj["sass"])
    rows = []
    for family in cuda.families(tuple(t for line in m.cuda.values() for t in line.archs)):
        cells = [family]
        for version in m.axes.cuda:
            targets = [t for t in m.cuda[version].archs if t.family == family]
            if not targets:
                cells.append("—")
                continue
            sms = ", ".join(f"sm_{t.sm}" + (" +PTX" if t.ptx else "") for t in targets)
            built = all(t.sm in audited.get(version, ()) for t in targets)
            cells.append(f"{sms}: {'SASS audited in built wheels' if built else 'planned, untested'}")
        tested = [r["gpu"] for r in gpu_runs if f"({family}," in r["gpu"]]
        cells.append(tested[0] if tested else "untested on a GPU")
        rows.append(cells)
    return rows


def _artifact_rows(m: Matrix, plan: Plan, records: dict[str, dict],
                   resolved: list[resolve.Result]) -> list[list[str]]:
    impossible = resolve.blocked(plan, resolved)
    rows = []
    for artifact in plan.artifacts:
        record = records.get(artifact.id)
        if not record:
            built = (f"impossible: {impossible[artifact.id]}" if artifact.id in impossible else
                     f"not built here: {why}" if (why := preflight.unmade(m, artifact)) else
                     f"not built: {', '.join(public)} only from the public registry (no [mirror] copy or "
                     "[bootstrap] recipe)" if (public := preflight.public_only(m, artifact)) else "not built")
            rows.append([f"`{artifact.id}`", artifact.build.platform, built, "-", "untested"])
            continue
        built = record.get("file") or record.get("platform_tag", "")
        ident = identity(record)[1][:19]
        runs = smoke_runs(record)  # not those of an earlier build of the artifact
        results = ", ".join(f"{r['python']}: {r['result']}" for r in runs) if runs else "untested"
        if runs and not _passes(record):
            results += " (no pass)"
        rows.append([f"`{artifact.id}`", artifact.build.platform, f"`{built}` ({ident})",
                     record.get("build_mode", "-"), results])
    return rows


def context(m: Matrix, root: Path) -> dict[str, object]:
    """Everything the support-matrix template prints."""
    plan = make_plan(m, Selection())
    planned = {a.id for a in plan.artifacts}
    records = {k: v for k, v in load_records(root).items() if k in planned}
    resolved = resolve.load(root, m, plan)
    smoked = [rec["smoke"]["at"] for rec in records.values() if rec.get("smoke")]
    wheel_files = [rec["file"] for rec in records.values() if rec.get("kind") == "wheel"]
    return {
        "project": m.project, "matrix_version": m.project.version,
        "last_verified": max(smoked)[:10] if smoked else "never",
        "archs": [[f"**{a.value}**", *_arch_status(a.value, records.items())] for a in m.axes.arch],
        "cuda_versions": list(m.axes.cuda),
        "gpu_rows": _gpu_rows(m, records, gpu_runs(root, records)),
        "platform_tags": sorted({f.rsplit("-", 1)[1].removesuffix(".whl") for f in wheel_files}),
        "cuda_rows": [[v, m.cuda[v].toolchain.value, cuda.torch_arch_list(m.cuda[v].archs),
                       m.cuda[v].local_version or "—", f"`{m.cuda[v].build_image}`", f"`{m.cuda[v].runtime_image}`"]
                      for v in m.axes.cuda],
        "framework_rows": [[n, ", ".join(f"`{r}`" for r in m.framework[n].requirements) or "—",
                            ", ".join(m.framework[n].wheels) or "—",
                            ", ".join(a.value for a in m.framework[n].arch) or "all",
                            ", ".join(m.framework[n].cuda) or "all"] for n in m.axes.framework],
        "python_versions": ", ".join(m.axes.python),
        "artifact_rows": _artifact_rows(m, plan, records, resolved),
        "resolve_rows": [[r.framework, r.platform, f"`{r.runtime_image}` ({r.python}, {r.glibc})", r.status,
                          r.detail()]
                         for r in resolved],
        "resolved_path": resolve.RESOLVED,
        "install": _install_lines(m, plan, records),
        "excluded": [[" ".join(f"{k}={v}" for k, v in r.values().items()), r.reason] for r in exclusions(m)],
        "manifest_path": RELEASE_MANIFEST,
    }


def _install_lines(m: Matrix, plan: Plan, records: dict[str, dict]) -> list[str]:
    """Per passed and published wheel, the command of each channel it went to (README: Installing); per
    published image tag, its pull (a tag waiting for a platform built elsewhere is not published yet)."""
    lines = []
    variants = channels.channel(m, channels.VARIANTS).simple_url
    published = {k for k, r in records.items() if r.get("published")}
    for w in plan.wheels:
        if w.id in published and _passes(records[w.id]):
            line = cuda_tag(w.build.cuda)
            if w.build.cuda == m.publish.default_line(m.axes.cuda):
                lines.append(f"pip install --index-url {m.publish.read_url} '{w.package}=={m.project.version}'  "
                             f"# {line}, the default line")
            lines.append(f"pip install --index-url {channels.channel(m, line).simple_url} "
                         f"'{w.package}=={w.version}'  # {line} channel")
            lines.append(f"uv pip install --preview-features wheel-variants --index-url {variants} "
                         f"'{w.package}=={m.project.version}'  # the variant for the GPU and driver uv finds")
    lines += [f"docker pull {tag}" for tag in dict.fromkeys(i.tag for i in plan.images if i.id in published)]
    return list(dict.fromkeys(lines))
