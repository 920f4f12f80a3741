"""``toolkit doctor``: a compatibility verification report generated from facts.

It starts and installs nothing: it reads the host, the engine's state and the
CUDA compilers found, cross-checks the matrix's claims against them, resolves
every framework's requirements per platform (binary wheels only), and says for
every planned artifact whether it can be built and tested here.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import platform
from pathlib import Path

from . import __version__, cross, cuda, engine, hostinfo, resolve
from .console import table
from .engine.daemon import host_arch
from .engine.host import Status
from .errors import ConfigError
from .matrix import BuildMode, Matrix, load_matrix
from .plan import ImageArtifact, Plan, Selection, WheelArtifact, make_plan

PASS, WARN, FAIL = "pass", "warn", "FAIL"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the summary: required checks that fail make the verdict fail."""

    name: str
    result: str
    detail: str
    required: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class Report:
    """Everything the doctor found, in the order the Markdown shows it."""

    date: str
    matrix: str
    host: dict
    components: list[Status]
    toolchains: list[hostinfo.Nvcc]
    gpus: list[hostinfo.Gpu]
    resolved: list[resolve.Result]
    artifacts: list[dict]
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """True when no required check failed."""
        return not any(c.result == FAIL and c.required for c in self.checks)


def examine(matrix_path: Path, selection: Selection, state: Path) -> Report:
    """Collect the facts and run every check; never raises for a bad matrix (that is a finding)."""
    checks: list[Check] = []
    matrix: Matrix | None = None
    plan: Plan | None = None
    try:
        matrix = load_matrix(matrix_path)
        plan = make_plan(matrix, selection)
        checks.append(Check(name="matrix", result=PASS, detail=f"{matrix_path} is valid"))
    except ConfigError as exc:
        checks += [Check(name="matrix", result=FAIL, detail=p) for p in exc.problems]
    components = engine.status(matrix, plan, state) if plan else []
    toolchains, gpus = hostinfo.nvcc_compilers(), hostinfo.gpus()
    checks += _component_checks(components, plan)
    checks += _toolchain_checks(matrix, toolchains)
    resolved = resolve.run(matrix, plan) if plan else []
    checks += [Check(name=f"wheels {r.framework} {r.platform} {r.runtime_image}", required=False,
                     result=PASS if r.status == resolve.RESOLVES else WARN,
                     detail=r.why() or r.detail())
               for r in resolved]
    checks.append(Check(name="gpu", result=PASS if gpus else WARN, required=False,
                        detail=", ".join(f"{g.name} (sm_{g.compute_capability.replace('.', '')})" for g in gpus)
                        or "no NVIDIA GPU: GPU smoke tests will be reported as skipped"))
    return Report(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  matrix=str(matrix_path),
                  host={"arch": host_arch().value, "os": hostinfo.os_name(), "kernel": platform.release(),
                        "python": platform.python_version(), "toolkit": __version__},
                  components=components, toolchains=toolchains, gpus=gpus, resolved=resolved,
                  artifacts=_feasibility(matrix, plan, components, gpus, resolved) if plan else [], checks=checks)


def _component_checks(components: list[Status], plan: Plan | None) -> list[Check]:
    foreign = plan and any(a.build.arch is not host_arch() for a in plan.artifacts)
    out = []
    for s in components:
        optional = s.name.startswith("image ") or (s.name == "emulation" and not foreign)
        result = PASS if s.up else (WARN if optional else FAIL)
        out.append(Check(name=s.name, result=result, required=not optional,
                         detail=" ".join(filter(None, [s.version, s.address, s.detail])) or "down"))
    return out


def _toolchain_checks(matrix: Matrix | None, toolchains: list[hostinfo.Nvcc]) -> list[Check]:
    """The matrix's CUDA table against every nvcc found: each must build what we claim it can."""
    out = []
    for nvcc in toolchains:
        table_sms = {f"sm_{sm}" for sm in cuda.CUDA_SASS.get(nvcc.version, ()) if sm.isdigit()}
        agrees = not table_sms or table_sms == set(nvcc.gpu_code)
        out.append(Check(name=f"nvcc {nvcc.version}", result=PASS if agrees else FAIL,
                         detail=f"{nvcc.path}: {' '.join(nvcc.gpu_code)}"
                         + ("" if agrees else f"; the toolkit's table says {' '.join(sorted(table_sms))}")))
        line = matrix.cuda.get(nvcc.version) if matrix else None
        if line:
            missing = [t.sm for t in line.archs if f"sm_{t.sm.rstrip('af')}" not in nvcc.gpu_code]
            out.append(Check(name=f"cuda {nvcc.version} archs", result=FAIL if missing else PASS,
                             detail=f"nvcc cannot build {', '.join(missing)}" if missing
                             else f"nvcc builds every arch the matrix claims ({cuda.torch_arch_list(line.archs)})"))
    if not toolchains:
        out.append(Check(name="nvcc", result=WARN, required=False, detail="no nvcc found on this host"))
    return out


def _build_mode(matrix: Matrix, a: WheelArtifact | ImageArtifact) -> tuple[BuildMode | None, str]:
    """The build mode of a wheel here (images: None), or None and why the matrix's mode cannot build it."""
    if not isinstance(a, WheelArtifact):
        return None, ""
    try:
        return cross.resolve(matrix, a, host_arch()), ""
    except ConfigError as exc:
        return None, "; ".join(exc.problems)


def _feasibility(matrix: Matrix, plan: Plan, components: list[Status], gpus: list[hostinfo.Gpu],
                 resolved: list[resolve.Result]) -> list[dict]:
    emulated = next((s.address for s in components if s.name == "emulation" and s.up), "")
    images = {s.name.removeprefix("image "): s.up for s in components if s.name.startswith("image ")}
    uninstallable = resolve.blocked(plan, resolved)
    rows = []
    for a in plan.artifacts:
        b = a.build
        mode, refused = _build_mode(matrix, a)
        if refused:
            how, why = "impossible", refused
        elif b.arch is host_arch():
            how, why = "native", ""
        elif mode is BuildMode.CROSS:
            how, why = "cross", "x86_64 nvcc with an aarch64 host compiler, no QEMU"
        elif b.platform in emulated:
            how, why = "emulated", "QEMU"
        else:
            how, why = "impossible", f"no emulation for {b.platform}"
        if how != "impossible" and not images.get(b.build_image_public, False):
            how, why = "impossible", f"base image {b.build_image_public} unavailable"
        if a.id in uninstallable:
            how, why = "impossible", "; ".join(filter(None, [why if how == "impossible" else "", uninstallable[a.id]]))
        if not gpus:
            gpu_test = "skipped: no GPU"
        else:
            gpu_test = "possible" if b.arch is host_arch() else f"needs a {b.arch.value} host with a GPU"
        rows.append({"artifact": a.id, "platform": b.platform, "build": how, "why": why, "gpu_test": gpu_test})
    return rows


def to_markdown(r: Report) -> str:
    """The report as Markdown, in the layout of a hand-written compatibility report."""
    lines = ["# Compatibility verification report", "",
             f"Generated by `toolkit doctor` {r.host['toolkit']} on {r.date} for `{r.matrix}`. "
             "Every line below was read from this machine, not written by hand.", "",
             "## Host", "", _md(("fact", "value"), list(r.host.items())), "",
             "## Engine", "", _md(("component", "state", "version", "address", "started by", "detail"),
                                  [(s.name, "up" if s.up else "down", s.version, s.address, s.started_by,
                                    s.detail) for s in r.components]), "",
             "## CUDA toolchains", "",
             _md(("nvcc", "release", "GPU code"), [(t.path, t.version, " ".join(t.gpu_code)) for t in r.toolchains])
             if r.toolchains else "No nvcc found.", "",
             "## GPUs", "",
             _md(("name", "compute capability", "driver"), [(g.name, g.compute_capability, g.driver) for g in r.gpus])
             if r.gpus else "No NVIDIA GPU present.", "",
             "## Framework requirements per platform (binary wheels only)", "",
             _md(("framework", "platform", "runtime image", "Python", "glibc", "result", "detail"),
                 [(x.framework, x.platform, x.runtime_image, x.python, x.glibc, x.status,
                   x.detail())
                  for x in r.resolved]) if r.resolved else "No framework image with requirements is planned.", "",
             "## Artifacts", "",
             _md(("artifact", "platform", "build here", "why", "GPU test"),
                 [(a["artifact"], a["platform"], a["build"], a["why"], a["gpu_test"]) for a in r.artifacts])
             if r.artifacts else "No plan (see the matrix check below).", "",
             "## Summary", "",
             _md(("check", "result", "required", "detail"),
                 [(c.name, c.result, "yes" if c.required else "no", c.detail) for c in r.checks]), "",
             f"**Verdict: {'PASS' if r.ok else 'FAIL'}**", ""]
    return "\n".join(lines)


def _md(headers: tuple[str, ...], rows: list) -> str:
    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")
    return "\n".join([f"| {' | '.join(headers)} |", f"|{'---|' * len(headers)}"]
                     + [f"| {' | '.join(cell(v) for v in row)} |" for row in rows])


def write(r: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write doctor.md and doctor.json into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "doctor.md", out_dir / "doctor.json"
    md.write_text(to_markdown(r))
    js.write_text(json.dumps({**dataclasses.asdict(r), "verdict": "PASS" if r.ok else "FAIL"}, indent=2) + "\n")
    return md, js


def summary(r: Report) -> str:
    """The summary table for the terminal."""
    return table(("check", "result", "detail"), [(c.name, c.result, c.detail) for c in r.checks])
