"""``toolkit wheels``: build every planned wheel, then audit, size check and manifest.

Native and emulated builds run cibuildwheel: it cannot reach CUDA by itself, so the
rendered configuration points it at a build image with the CUDA toolchain, passes the
matrix's arch flags and local version label in, and mounts the host CA bundle read-only.
Cross builds (aarch64 on x86_64) run the same steps in the cross builder: see cross.py.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from . import audit, cross, fingerprint, preflight, provenance, render, sccache, settings, stamp, tools
from .console import step, task
from .engine import docker
from .engine.daemon import host_arch
from .errors import BuildError
from .manifest import Manifest, now
from .matrix import Arch, BuildMode, Matrix
from .plan import Plan, WheelArtifact

DEFAULT_EPOCH = 315532800  # 1980-01-01, the earliest date a zip file can hold


def source_date_epoch(path: Path) -> int:
    """The last commit time of ``path`` (reproducible builds), else 1980-01-01."""
    if tools.which("git") is None:
        return DEFAULT_EPOCH
    proc = tools.run(["git", "log", "-1", "--format=%ct", "--", "."], cwd=path, capture=True, quiet=True,
                     check=False)
    return int(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else DEFAULT_EPOCH


def ensure_builder(m: Matrix, version: str, archs: list[Arch], root: Path, dry_run: bool, anew: bool = False) -> str:
    """Make sure the CUDA line's wheel-builder image has every platform in ``archs`` (``anew``: made again from
    its Dockerfile, without BuildKit's cache); return it."""
    line = m.cuda[version]
    if line.wheel_image:
        return line.wheel_image
    dockerfile = root / render.builder_dockerfile(version)
    image = render.builder_image(m, version, dockerfile.read_text())
    platforms = [a.platform for a in archs]
    bases = {"BUILD_IMAGE": m.image(line.build_image),
             **({"SYSROOT_IMAGE": m.image(line.sysroot_image)} if line.sysroot_image else {})}
    docker.ensure_image(image, platforms, dockerfile=dockerfile, dry_run=dry_run, build_args=bases,
                        secrets={"ca": settings.ca_mount()}, anew=anew)
    return image


def build_selector(m: Matrix, w: WheelArtifact) -> str:
    """CIBW_BUILD for ``w``: the interpreter that builds it (one for an abi3 wheel)."""
    line = m.cuda[w.build.cuda]
    python = w.pythons[0]
    if not line.wheel_image:
        if not w.abi3 and python != line.builder_python:
            raise BuildError(f"{w.id}: the toolkit's wheel builder has only Python {line.builder_python}; "
                             f'set cuda."{w.build.cuda}".wheel-image (e.g. manylinux_2_28) to build for {python}')
        python = line.builder_python
    return f"cp{python.replace('.', '')}-*"


def cibuildwheel_command(m: Matrix, w: WheelArtifact, root: Path, out: Path,
                         cache: sccache.Session | None = None) -> tuple[list[str], dict[str, str], Path]:
    """argv, environment and working directory of the cibuildwheel run that builds ``w`` (with the compiler
    ``cache``, if any).

    cibuildwheel copies its working directory into the container: it runs in the package's directory, not the
    repository's root, whose virtual environments and release directory would be copied on every build.

    The cache's start and report ride on cibuildwheel's before-build and repair commands, set here rather
    than in the rendered configuration, which stays usable without the toolkit.
    """
    volumes = [f"{settings.ca_mount()}:{render.CA_IN_CONTAINER}:ro", *(cache.volumes() if cache else ())]
    env = {
        "CIBW_ARCHS": w.build.arch.value,
        "CIBW_BUILD": build_selector(m, w),
        "CIBW_CONTAINER_ENGINE": "docker; create_args: " + " ".join(f"--volume {v}" for v in volumes),
        "SOURCE_DATE_EPOCH": str(source_date_epoch(root / w.path)),
    }
    if cache:
        repair = render.repair_command(m.cuda[w.build.cuda]) + " -w {dest_dir} {wheel}"
        env.update(cache.environment(), CIBW_BEFORE_BUILD_LINUX=cache.start(),
                   CIBW_REPAIR_WHEEL_COMMAND_LINUX=f"{cache.report()} && {repair}")
    argv = [sys.executable, "-m", "cibuildwheel", "--platform", "linux",
            "--config-file", str((root / render.cibuildwheel_config(w.build.cuda)).resolve()),
            "--output-dir", str(out.resolve()), "."]
    return argv, env, (root / w.path).resolve()


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_size(w: WheelArtifact, wheel: Path) -> None:
    """Fail when the wheel exceeds the package's max-size-mb, naming its largest files."""
    limit = w.max_size_mb * 1_000_000
    size = wheel.stat().st_size
    if size <= limit:
        return
    with zipfile.ZipFile(wheel) as zf:
        largest = sorted(zf.infolist(), key=lambda i: i.compress_size, reverse=True)[:5]
    listing = ", ".join(f"{i.filename} ({i.compress_size / 1e6:.1f} MB)" for i in largest)
    raise BuildError(f"{wheel.name} is {size / 1e6:.1f} MB, over the {w.max_size_mb} MB limit of "
                     f"package.{w.package}.max-size-mb; largest inside: {listing}")


def label(w: WheelArtifact, built: Path, out: Path) -> Path:
    """The built wheel with the release's local label stamped on when the project built the release's version
    without it (a static version that does not read TOOLKIT_LOCAL_VERSION); any other wheel as it is.

    Only the dist-info changes (``stamp`` refuses a copy whose other files differ), so the CUDA lines of such
    a project still build files of their own names.
    """
    planned = Version(w.version)
    if planned.local and parse_wheel_filename(built.name)[1] == Version(planned.public):
        step(f"{w.id}: {built.name} has no local label: stamping +{planned.local} on it")
        return stamp.with_version(built, w.version, out)
    return built


def check_built_name(w: WheelArtifact, filename: str) -> None:
    """BuildError when the built file is not the planned one: its name, version or Python tag differ.

    The manifest records the plan's version; a wheel that says otherwise would be published under a
    false record, and two CUDA lines would build files of the same name.
    """
    name, version, _, tags = parse_wheel_filename(filename)
    built = sorted(f"{t.interpreter}-{t.abi}" for t in tags)
    problems = []
    if canonicalize_name(name) != canonicalize_name(w.package):
        problems.append(f"the distribution is {name!r}, not {w.package!r}: name the [package.NAME] table "
                        "after the project's name in its pyproject.toml")
    if version != Version(w.version):
        problems.append(f"its version is {version}, the plan's {w.version}: set [project] version to the version "
                        "the package builds (its local label is stamped on when missing), or make the version "
                        "dynamic and read TOOLKIT_LOCAL_VERSION, as examples/saxpy does")
    if w.python_tag not in built:
        problems.append(f"its Python tag is {', '.join(built)}, the plan's {w.python_tag}: "
                        + (f"build for the lowest Python of the axis (scikit-build-core: wheel.py-api = "
                           f"\"{w.python_tag.split('-')[0]}\"; setuptools: py_limited_api)" if w.abi3 else
                           "set [package] abi3 to what the package builds"))
    if problems:
        raise BuildError(f"{w.id}: built {filename}, which is not the planned wheel: " + "; ".join(problems))


def build(m: Matrix, plan: Plan, root: Path, dist: Path, *, dry_run: bool = False, force: bool = False,
          mode: BuildMode | None = None, skip_unavailable: bool = False, cache: bool = True) -> list[dict]:
    """Build, audit and record every wheel of ``plan`` whose inputs changed; return their records.

    A wheel whose input fingerprint matches its record (and whose file exists) is up to date:
    it is reported with ``up_to_date`` and not rebuilt, unless ``force``. ``mode`` overrides
    the matrix's build-mode for wheels of other architectures than the host's. Wheels whose base
    image this machine cannot reach stop the build before it starts, or with ``skip_unavailable``
    are reported as ``not_built``.
    """
    if not plan.wheels:
        return []
    host = host_arch()
    modes = {w.id: cross.resolve(m, w, host, mode) for w in plan.wheels}
    for w in plan.wheels:
        if modes[w.id] is BuildMode.EMULATED and not mode and (why := cross.why_not_cross(m, w, host)):
            step(f"{w.id}: emulated under QEMU, not cross-compiled: {why}")
    render.check(m, root, for_build=True)  # build exactly what is committed
    manifest = Manifest(dist / "manifest.json")
    records, todo = [], []
    for w in plan.wheels:
        fp = fingerprint.wheel(w, root, modes[w.id], [docker.manifest_digest(w.build.build_image)])
        record = manifest.get(w.id)
        if not force and record.get("fingerprint") == fp and (dist / record.get("file", "-")).exists() \
                and "provenance" in record:  # one recorded without provenance is built again
            step(f"{w.id}: up to date ({record['file']})")
            records.append({"id": w.id, **record, "up_to_date": True})
        else:
            todo.append((w, fp))
    missing = preflight.blocked(m, [w for w, _ in todo])
    records += preflight.settle(m, plan, missing, skip_unavailable)
    todo = [(w, fp) for w, fp in todo if w.id not in missing]
    builders, cross_images = {}, {}
    for version in dict.fromkeys(w.build.cuda for w, _ in todo):
        line_todo = [w for w, _ in todo if w.build.cuda == version]
        archs = {host if modes[w.id] is BuildMode.CROSS else w.build.arch for w in line_todo}
        builders[version] = ensure_builder(m, version, sorted(archs, key=lambda a: a.value), root, dry_run)
        if any(modes[w.id] is BuildMode.CROSS for w in line_todo):
            cross_images[version] = cross.ensure_builder(m, version, root, settings.ca_mount(), dry_run)
    for w, fp in todo:
        compiler = host if modes[w.id] is BuildMode.CROSS else w.build.arch  # the arch the compilers run on
        with tempfile.TemporaryDirectory(prefix="wheel-", dir=_mkdir(dist)) as tmp, \
                sccache.session(m.cuda[w.build.cuda], w.build.cuda, w.build.arch, modes[w.id], compiler,
                                enabled=cache, fetch=not dry_run) as compiler_cache:
            if modes[w.id] is BuildMode.CROSS:
                epoch = {"SOURCE_DATE_EPOCH": str(source_date_epoch(root / w.path))}
                argv, env, cwd = cross.command(m, w.build.cuda, cross_images[w.build.cuda], root / w.path,
                                               Path(tmp), root, settings.ca_mount(), epoch, compiler_cache), {}, root
            else:
                argv, env, cwd = cibuildwheel_command(m, w, root, Path(tmp), compiler_cache)
            if dry_run:
                print(f"# {w.id}: {modes[w.id].value}")
                print(f"cd {shlex.quote(str(cwd))} &&", *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
                      shlex.join(argv))
                continue
            builder = cross_images.get(w.build.cuda, "") if modes[w.id] is BuildMode.CROSS else builders[w.build.cuda]
            bases = {ref: docker.manifest_digest(ref) for ref in (w.build.build_image, builder)}
            inputs = provenance.inputs(m, w, root, mode=modes[w.id].value, base_images=bases, builder_image=builder)
            records.append(_build_one(w, modes[w.id], argv, env, cwd, Path(tmp), dist, manifest, inputs,
                                      compiler_cache))
            manifest.record(w.id, fingerprint=fp)
    return records


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _build_one(w: WheelArtifact, mode: BuildMode, argv: list[str], env: dict[str, str], cwd: Path, tmp: Path,
               dist: Path, manifest: Manifest, inputs: dict, cache: sccache.Session) -> dict:
    tool = "the cross builder" if mode is BuildMode.CROSS else "cibuildwheel"
    started, started_at = time.monotonic(), now()
    with task(w.id, f"{tool} ({w.build.arch.value}, {mode.value})", dist / "logs" / f"{w.id.replace(':', '_')}.log"):
        tools.run(argv, env=env, cwd=cwd)
    seconds, built_at = round(time.monotonic() - started, 1), now()
    compiler_cache = cache.read()
    built = sorted(tmp.glob("*.whl"))
    if len(built) != 1:
        raise BuildError(f"{w.id}: {tool} produced {len(built)} wheels ({[b.name for b in built]}), not one")
    labelled = label(w, built[0], tmp / "labelled")
    check_built_name(w, labelled.name)
    wheel = dist / labelled.name
    shutil.move(labelled, wheel)
    check_size(w, wheel)
    audited_from = now()
    report = audit.audit_wheel(wheel, w.build.gpu_targets)
    stamped = {"stamped_from": built[0].name} if labelled != built[0] else {}
    record = {"kind": "wheel", "file": wheel.name, "sha256": sha256(wheel), "size": wheel.stat().st_size, **stamped,
              "version": w.version, "platform": w.build.platform, "python_tag": w.python_tag,
              "cuda": w.build.cuda, "build_mode": mode.value, "build_seconds": seconds,
              "build_started_at": started_at, "built_at": built_at, "compiler_cache": compiler_cache,
              "provenance": inputs,
              "audit": {**audit.to_json(report), "started_at": audited_from, "at": now()}}
    manifest.record(w.id, **record)
    if not report.ok:
        raise BuildError(f"{w.id}: {audit.describe(report)}")
    step(f"{w.id}: {wheel.name} ({record['size'] / 1e6:.1f} MB, {seconds} s, {sccache.describe(compiler_cache)}) "
         "audit ok")
    return {"id": w.id, **record}
