"""``toolkit smoke``: install every built artifact where its users will run it, and run it.

Wheels go into a fresh container per (arch, Python) made from a clean interpreter
image of that platform (QEMU for foreign archs); Pythons without such an image are
recorded as *untested*, never as passed. Wheels of a CUDA line with a glibc floor
(``sysroot-image``) also go into an interpreter of that floor: CPython built from source
on that image. With ``--host`` a wheel of the host's arch
is installed into a fresh venv on this machine instead, one that also sees the host's
packages (torch, for an extension): how the GPU path is proven on a GPU host without
a container engine or a package index. Where a GPU is present the package's
``gpu-smoke`` command runs too and its kernel report is compared with the audit.
Results are keyed by the artifact's sha256, so a rebuilt artifact is never covered
by an old pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shlex
import site
import sys
import tempfile
import time
from pathlib import Path

from packaging.requirements import Requirement

from . import cuda, hostinfo, render, sccache, settings, tools
from .console import step
from .engine import docker
from .engine.daemon import host_arch
from .errors import CommandError, EngineError, SmokeError
from .manifest import Manifest, identity, merged_runs, now, slot, smoke_runs
from .matrix import Matrix
from .plan import ImageArtifact, Plan, Selection, WheelArtifact, make_plan

PASS, FAIL, UNTESTED = "pass", "FAIL", "untested"
PIP_CACHE = "/var/cache/pip"
# CPython as Debian ships it (upstream tarballs on the Debian mirror, sha256 from Debian's Sources index), built
# into interpreter images of a glibc floor, whose own python3 is older (bullseye's is 3.9).
PYTHON_SOURCES = {
    "3.11": ("http://deb.debian.org/debian/pool/main/p/python3.11/python3.11_3.11.2.orig.tar.gz",
             "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"),
    "3.13": ("http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_3.13.5.orig.tar.xz",
             "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"),
}
MACHINE = "smoke-machine="  # the import probe's line: what the package was imported on


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    """One smoke run of one artifact on one platform and Python."""

    artifact: str
    platform: str
    python: str
    where: str  # "container", "host" or "" when nothing ran
    result: str
    gpu: str
    seconds: float
    detail: str
    started_at: str = ""  # when it started (records made before this field have none)


def python_image(m: Matrix, python: str) -> str:
    """The clean-interpreter image built from [python-image] for ``python`` (tag follows its Dockerfile)."""
    text = (m.source.resolve().parent / render.PYTHON_DOCKERFILE).read_text()
    return render.hashed_tag(m, "smoke-python", python.replace(".", ""), text)


def _ensure_python_images(m: Matrix, plan: Plan) -> dict[str, str]:
    """Every clean-interpreter image the plan's wheels need, on all their platforms at once."""
    platforms: dict[str, set[str]] = {}
    for w in plan.wheels:
        for python in w.pythons:
            if python in m.python_image:
                platforms.setdefault(python, set()).add(w.build.platform)
    return {python: _ensure_python_image(m, python, sorted(found)) for python, found in platforms.items()}


def _ensure_python_image(m: Matrix, python: str, platforms: list[str]) -> str:
    image = python_image(m, python)
    dockerfile = m.source.resolve().parent / render.PYTHON_DOCKERFILE
    docker.ensure_image(image, platforms, dockerfile=dockerfile, dry_run=False,
                        build_args={"BASE_IMAGE": m.image(m.python_image[python])})
    return image


def floor_pythons(w: WheelArtifact) -> list[str]:
    """The Pythons of ``w`` smoke-tested in interpreters of its glibc floor (its line's sysroot-image)."""
    return [p for p in w.pythons if w.sysroot_image_public and p in PYTHON_SOURCES]


def _ensure_floor_images(m: Matrix, pending: list[tuple[WheelArtifact, list[tuple[str, str]]]]) -> dict:
    """(floor image, Python) -> an interpreter image built on that floor, for every floor run pending."""
    dockerfile = m.source.resolve().parent / render.FLOOR_PYTHON_DOCKERFILE
    wanted: dict[tuple[str, str], set[str]] = {}
    for w, todo in pending:
        for where, python in todo:
            if where == "floor":
                wanted.setdefault((w.sysroot_image_public, python), set()).add(w.build.platform)
    text = dockerfile.read_text() if wanted else ""  # the Dockerfile exists only for a matrix with a floor
    images = {}
    for (base, python), platforms in wanted.items():
        source, sha = PYTHON_SOURCES[python]
        tag = python.replace(".", "") + "-" + hashlib.sha256(base.encode()).hexdigest()[:8]
        images[(base, python)] = image = render.hashed_tag(m, "smoke-python-floor", tag, text)
        docker.ensure_image(image, sorted(platforms), dockerfile=dockerfile, dry_run=False,
                            build_args={"BASE_IMAGE": m.image(base), "PYTHON_SOURCE": source, "PYTHON_SHA256": sha})
    return images


def _script(w: WheelArtifact, wheel: str | None) -> str:
    """Shell steps: install ``wheel`` (unless None) with its dependencies, import the package, run its smoke
    command."""
    module = w.package.replace("-", "_")
    steps = [f"pip install --quiet {shlex.quote(wheel)}"] if wheel else []
    probe = f"import platform, {module}; print({MACHINE!r} + platform.machine())"
    steps.append(f"python -c {shlex.quote(probe)}")
    return " && ".join(steps + ([shlex.join(w.smoke)] if w.smoke else []))


def _verdict(w: WheelArtifact, output: str) -> tuple[str, str]:
    """PASS when the import probe names the wheel's arch (what ran is what was meant); a short detail."""
    lines = output.strip().splitlines()
    # Found by its prefix: an import may warn on stderr (torch without numpy does), which comes first.
    at = next((i for i, line in enumerate(lines) if line.startswith(MACHINE)), None)
    machine = lines[at][len(MACHINE):].strip() if at is not None else ""
    if machine != w.build.arch.value:
        return FAIL, f"ran on {machine or 'nothing'}, expected {w.build.arch.value}: {' '.join(output.split())[-300:]}"
    return PASS, " ".join(" ".join(lines[at + 1:]).split())[-300:] or f"imported on {machine}"


def _gpu_verdict(output: str, jit: bool, audited_sass: list[str]) -> tuple[bool, str]:
    """Read the gpu-smoke JSON: right numbers, and code loaded as observed agreeing with the audit."""
    try:
        report = json.loads(output[output.index("{"):])
    except ValueError:
        return False, "gpu-smoke printed no JSON report"
    if not report.get("devices"):
        return False, f"the package saw no GPU: {report.get('gpu', 'no devices reported')}"
    device, kernel = report["devices"][0], report.get("kernel") or {}
    sm = f"{device.get('major')}{device.get('minor')}"
    family = cuda.GpuTarget(major=int(device.get("major") or 0), minor=int(device.get("minor") or 0)).family
    audited = any(s.rstrip("af") == sm for s in audited_sass)
    loaded = "PTX (JIT)" if jit else "SASS (ran with CUDA_DISABLE_PTX_JIT=1)"
    detail = (f"{device.get('name')} ({family}, sm_{sm}, CUDA driver API {_version(device.get('driver_version'))}, "
              f"runtime {_version(device.get('runtime_version'))}): "
              f"ran __CUDA_ARCH__={kernel.get('cuda_arch')} from {loaded}, max error {report.get('max_abs_error')}")
    if audited == jit:
        detail += f"; the audit {'lists' if audited else 'does not list'} SASS for sm_{sm}"
    return bool(report.get("ok")) and audited != jit, detail


def _version(encoded: int | None) -> str:
    """CUDA's 1000*major + 10*minor encoding, e.g. 13000 -> 13.0."""
    return f"{encoded // 1000}.{encoded % 1000 // 10}" if isinstance(encoded, int) else "?"


def _gpu_run(command: list[str], env: dict[str, str], cwd: Path, audited_sass: list[str]) -> tuple[bool, str, str]:
    """Run gpu-smoke with PTX JIT disabled, and again with it only where no kernel could run: so which
    code the device loaded is observed, not inferred."""
    proc = tools.run(command, env={**env, "CUDA_DISABLE_PTX_JIT": "1"}, capture=True, check=False, cwd=cwd)
    jit = '"cuda_arch"' not in proc.stdout
    if jit:
        proc = tools.run(command, env=env, capture=True, check=False, cwd=cwd)
    return *_gpu_verdict(proc.stdout, jit, audited_sass), proc.stdout


def _container_run(w: WheelArtifact, wheel: Path, python: str, image: str, gpu: bool, where: str = "container") -> Run:
    platform = w.build.platform
    inside = f"/wheels/{wheel.name}"
    # Dependencies (torch and its CUDA wheels: gigabytes) are downloaded once into a cache of the state
    # directory, where the index's responses may be cached; every container still installs them afresh.
    cache = settings.state_dir() / "smoke-pip-cache"
    cache.mkdir(parents=True, exist_ok=True)
    volumes = {str(wheel.resolve()): {"bind": inside, "mode": "ro"},
               str(settings.ca_mount()): {"bind": render.CA_IN_CONTAINER, "mode": "ro"},
               str(cache): {"bind": PIP_CACHE, "mode": "rw"}}
    started, started_at = time.monotonic(), now()
    floor = f" on its glibc floor ({w.sysroot_image_public})" if where == "floor" else ""
    step(f"{w.id}: installing it with its dependencies into a clean Python {python} ({platform}){floor} and running it")
    try:
        docker.pull(image, platform=platform, cred=docker.registry_credential())
        out = docker.run(image, ["sh", "-c", _script(w, inside)], platform=platform, volumes=volumes,
                         environment={"PIP_CERT": render.CA_IN_CONTAINER, "PIP_CACHE_DIR": PIP_CACHE})
        result, detail = _verdict(w, out)
    except (CommandError, EngineError) as exc:
        result, detail = FAIL, str(exc)[-600:]
    return Run(artifact=w.id, platform=platform, python=python, where=where, result=result,
               gpu="skipped: no GPU" if not gpu else "not run in containers here", seconds=_since(started),
               detail=detail, started_at=started_at)


def _host_run(w: WheelArtifact, wheel: Path, audited_sass: list[str], gpu: bool) -> Run:
    started, started_at = time.monotonic(), now()
    python = ".".join(map(str, sys.version_info[:2]))
    with tempfile.TemporaryDirectory(prefix="smoke-") as tmp:
        venv = Path(tmp) / "venv"
        try:
            # No pip inside the venv: Debian/Ubuntu hosts often lack ensurepip, and this pip can install there.
            tools.run([sys.executable, "-m", "venv", "--without-pip", venv], quiet=True)
            _see_host_packages(venv)
            tools.run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet",
                       "--no-index", "--no-deps", wheel])
            env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": "", "PYTHONNOUSERSITE": "1"}
            out = tools.run(["sh", "-c", _script(w, None)], env=env, capture=True, cwd=Path(tmp)).stdout
            (result, detail), gpu_result = _verdict(w, out), "skipped: no GPU"
            if gpu and w.gpu_smoke:
                ok, gpu_result, gpu_out = _gpu_run(list(w.gpu_smoke), env, Path(tmp), audited_sass)
                result = result if ok else FAIL
                detail = gpu_out.strip()[-2000:]
        except CommandError as exc:
            result, detail, gpu_result = FAIL, str(exc)[-600:], "not reached"
    return Run(artifact=w.id, platform=w.build.platform, python=python, where="host", result=result,
               gpu=gpu_result, seconds=_since(started), detail=detail, started_at=started_at)


def _see_host_packages(venv: Path) -> None:
    """Let the venv import what the interpreter running the toolkit has (after its own packages): a GPU host
    has no package index, and a torch extension needs the host's torch, as its users' machines have it."""
    purelib = Path(tools.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture=True, quiet=True).stdout.strip())
    (purelib / "_toolkit_host.pth").write_text("\n".join(dict.fromkeys(site.getsitepackages())) + "\n")


def require_pass(runs: list[Run]) -> None:
    """Raise SmokeError naming every failed run (untested ones are not failures)."""
    failed = [r for r in runs if r.result == FAIL]
    if failed:
        raise SmokeError("\n".join(f"{r.artifact} ({r.platform}, Python {r.python}): {r.detail}" for r in failed))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 1)


def _image_expectations(m: Matrix, image: ImageArtifact) -> tuple[str, str]:
    """(distribution, version) the image must carry: a pinned requirement it installs (a patched wheel's
    labelled version), else the project's wheel."""
    for req in m.installed(image.framework):
        parsed = Requirement(req)
        pins = [s.version for s in parsed.specifier if s.operator == "=="]
        if pins:
            return parsed.name, pins[0]
    contained = [w for w in make_plan(m, Selection(cuda=(image.build.cuda,), arch=(image.build.arch.value,),
                                                   framework=(image.framework,))).wheels if w.id in image.wheels]
    return (contained[0].package, contained[0].version) if contained else ("", "")


# What the runtime stage must not carry: the devel stage's compilers and the build's caches.
BUILD_LEFTOVERS = {"commands": ("cc", "c++", "gcc", "g++", "nvcc", "sccache"),
                   "folders": ("/root/.cache/pip", "/root/.cache/uv", sccache.CACHE)}


def _image_script(image: ImageArtifact, distribution: str) -> str:
    probe = ("import importlib.metadata as md, os, platform, shutil; print(platform.machine()); "
             "print(os.environ.get('TORCH_CUDA_ARCH_LIST', '')); "
             # '' when absent: the version check says so, and the lines after it still come
             f"print(next((d.version for d in md.distributions(name={distribution!r})), '') if {bool(distribution)} "
             "else ''); "
             f"print(' '.join([*filter(shutil.which, {BUILD_LEFTOVERS['commands']!r}), "
             f"*(d for d in {BUILD_LEFTOVERS['folders']!r} if os.path.isdir(d) and os.listdir(d))]))")
    steps = [f"python -c {shlex.quote(probe)}"]
    if image.module:
        steps.append(f"python -c {shlex.quote(f'import {image.module}')}")
    return " && ".join(steps + ([shlex.join(image.smoke)] if image.smoke else []))


def _image_run(m: Matrix, image: ImageArtifact, record: dict, gpu: bool) -> Run:
    distribution, version = _image_expectations(m, image)
    started, started_at = time.monotonic(), now()
    ref = record["platform_tag"]
    gpus = docker.gpu_options(gpu)
    try:
        if record.get("pushed"):
            docker.pull(ref, platform=image.build.platform, cred=docker.registry_credential())
        out = docker.run(ref, ["sh", "-c", _image_script(image, distribution)], platform=image.build.platform,
                         **gpus)
        machine, arch_list, found, leftovers, *rest = [*out.splitlines(), "", "", "", ""]
        problems = [f"{what}: got {got!r}, expected {want!r}" for what, got, want in (
            ("uname -m", machine, image.build.arch.value),
            ("TORCH_CUDA_ARCH_LIST", arch_list, image.build.torch_arch_list),
            (f"{distribution} version", found, version)) if got != want]
        if leftovers:
            problems.append(f"the runtime image carries build tools or caches: {leftovers}")
        result = FAIL if problems else PASS
        detail = "; ".join(problems) or " ".join(" ".join(rest).split())[-300:] or f"{distribution} {found}"
    except (CommandError, EngineError) as exc:
        result, detail = FAIL, str(exc)[-600:]
    return Run(artifact=image.id, platform=image.build.platform, python="-", where="container", result=result,
               gpu="skipped: no GPU" if not gpu else "ran with --gpus all" if gpus else
               "no NVIDIA container runtime", seconds=_since(started), detail=detail, started_at=started_at)


def _valid_runs(record: dict) -> list[Run]:
    """The recorded runs that tested exactly this artifact (same sha256/digest)."""
    return [Run(**r) for r in smoke_runs(record)]


def _slot(run: Run) -> tuple[str, str]:
    return slot(run.where, run.python)


def _record(manifest: Manifest, artifact_id: str, found: list[Run], **extra: object) -> None:
    """Record ``found`` beside the runs already recorded for the same build: a run replaces only an earlier
    one of the same place and Python, so a host GPU run and container runs stand side by side."""
    record = manifest.data["artifacts"][artifact_id]
    runs = merged_runs(smoke_runs(record), [dataclasses.asdict(r) for r in found])
    key, ident = identity(record)
    manifest.record(artifact_id, smoke={key: ident, "at": now(), "host": host_arch().value, **extra,
                                        "runs": runs})


def coverage_problems(m: Matrix, artifact: WheelArtifact | ImageArtifact, record: dict) -> list[str]:
    """Why the recorded smoke runs do not cover this build of ``artifact``: a container pass for every Python
    of the artifact that has a clean interpreter image (an image: one container pass), and no failure."""
    ident = identity(record)[1]
    runs = _valid_runs(record)
    problems = [f"{artifact.id}: smoke FAILED ({r.where or 'nowhere'}, Python {r.python}) for {ident[:19]}"
                for r in runs if r.result == FAIL]
    passed = {r.python for r in runs if r.where == "container" and r.result == PASS}
    needed = [p for p in artifact.pythons if p in m.python_image] if isinstance(artifact, WheelArtifact) else ["-"]
    missing = [p for p in needed if p not in passed]
    if missing or not runs:
        what = f"Python {', '.join(missing)}" if isinstance(artifact, WheelArtifact) and missing else "a container"
        problems.append(f"{artifact.id}: no passing smoke record ({what}) for {ident[:19]}")
    floor_passed = {r.python for r in runs if r.where == "floor" and r.result == PASS}
    floor_missing = [p for p in floor_pythons(artifact) if p not in floor_passed] \
        if isinstance(artifact, WheelArtifact) else []
    if floor_missing:
        problems.append(f"{artifact.id}: no passing smoke record on its glibc floor ({artifact.sysroot_image_public}, "
                        f"Python {', '.join(floor_missing)}) for {ident[:19]}")
    return problems


def _not_built(artifact: WheelArtifact | ImageArtifact, manifest: Manifest, stage: str, required: bool) -> Run:
    why = f"not built (no record in {manifest.path}); run `toolkit {stage}` first"
    if required:
        raise SmokeError(f"{artifact.id}: {why}")
    step(f"{artifact.id}: untested, {why}")
    return Run(artifact=artifact.id, platform=artifact.build.platform, python="-", where="", result=UNTESTED,
               gpu="-", seconds=0.0, detail=why)


def smoke(m: Matrix, plan: Plan, dist: Path, *, host: bool = False, force: bool = False,
          require_gpu: bool = False, require_built: bool = False) -> list[Run]:
    """Smoke-test every built artifact of ``plan`` not yet tested in its current form; record the runs.

    A run already recorded for the same sha256/digest, place and Python is not repeated (unless ``force``).
    ``require_gpu`` makes a host run without a GPU a failure instead of a skip. An artifact of the plan
    that was not built is reported untested, or with ``require_built`` is an error.
    """
    manifest = Manifest(dist / "manifest.json")
    gpus = [dataclasses.asdict(g) for g in hostinfo.gpus()]
    gpu = bool(gpus)
    if require_gpu and not gpu:
        raise SmokeError("--require-gpu: no NVIDIA GPU found here (nvidia-smi, /proc/driver/nvidia/gpus)")
    runs: list[Run] = []
    pending: list[tuple[WheelArtifact, list[str]]] = []
    here = ".".join(map(str, sys.version_info[:2]))
    for w in plan.wheels:
        record = manifest.data["artifacts"].get(w.id)
        if not record or not (dist / record["file"]).exists():
            runs.append(_not_built(w, manifest, "wheels", require_built))
            continue
        done = {} if force else {_slot(r): r for r in _valid_runs(record) if r.result != FAIL}
        wanted = [("host", here)] if host and w.build.arch is host_arch() else [] if host else [
            ("container", p) for p in w.pythons] + [("floor", p) for p in floor_pythons(w)]
        todo = [key for key in wanted if key not in done]
        runs += [done[key] for key in wanted if key in done]
        if todo:
            pending.append((w, todo))
        elif wanted:
            step(f"{w.id}: smoke-tested already for {record['sha256'][:19]}")
    interpreters = {} if host else _ensure_python_images(m, dataclasses.replace(plan, wheels=tuple(
        dataclasses.replace(w, pythons=tuple(p for where, p in todo if where == "container")) for w, todo in pending)))
    floors = {} if host else _ensure_floor_images(m, pending)
    for w, todo in pending:
        record = manifest.data["artifacts"][w.id]
        wheel = dist / record["file"]
        sass = [s for o in record.get("audit", {}).get("objects", []) for s in o["sass"]]
        if host:
            found = [_host_run(w, wheel, sass, gpu)]
            if require_gpu and not w.gpu_smoke:
                found = [dataclasses.replace(found[0], result=FAIL, detail="--require-gpu: the package has no "
                                             "gpu-smoke command")]
        else:
            found = [_container_run(w, wheel, p, floors[(w.sysroot_image_public, p)], gpu, where="floor")
                     if where == "floor" else _container_run(w, wheel, p, interpreters[p], gpu) if p in interpreters
                     else Run(artifact=w.id, platform=w.build.platform, python=p, where="", result=UNTESTED,
                              gpu="-", seconds=0.0, detail="no [python-image] for this Python")
                     for where, p in todo]
        _record(manifest, w.id, found, **({"gpus": gpus} if host else {}))
        runs += found
    for image in () if host else plan.images:
        record = manifest.data["artifacts"].get(image.id)
        if not record or not record.get("digest"):
            runs.append(_not_built(image, manifest, "images", require_built))
            continue
        done = None if force else next((r for r in _valid_runs(record)
                                        if r.where == "container" and r.result != FAIL), None)
        if done:
            step(f"{image.id}: smoke-tested already for {record['digest'][:19]}")
            runs.append(done)
            continue
        run = _image_run(m, image, record, gpu)
        _record(manifest, image.id, [run])
        runs.append(run)
    return runs
