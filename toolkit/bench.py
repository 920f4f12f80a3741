"""``toolkit bench``: the toolkit measured against the raw tools it drives, in one run.

Writes BENCHMARKS.md and benchmarks.json. Timings are reported, never asserted.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from . import cross, hostinfo, images, render, sccache, settings, tools, wheels
from .console import step, table
from .engine import docker
from .manifest import now
from .matrix import Arch, BuildMode, Matrix, load_matrix
from .plan import Selection, make_plan

TORCH_EXAMPLE = "examples/saxpy-torch"  # a PyTorch extension with a matrix of its own
SYNTHETIC_FRAMEWORKS = 25  # 2 archs x 4 Pythons x 5 CUDA lines x 25 frameworks = 1,000 cells


def _times(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        docker.base_image.cache_clear()  # each run asks the registry anew, as a new process does
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def _in_turns(*fns: Callable[[], object], runs: int) -> list[list[float]]:
    """``runs`` timings of each of ``fns``, taken in turns, so that a slower spell of the machine weighs on all
    alike."""
    rounds = [[_times(fn, 1)[0] for fn in fns] for _ in range(runs)]
    return [list(column) for column in zip(*rounds, strict=True)]


def _row(name: str, ours: list[float], raw: list[float] | None = None, goal: str = "") -> dict:
    row = {"name": name, "runs": len(ours), "min_s": round(min(ours), 3), "median_s": round(statistics.median(ours), 3)}
    if raw:
        row.update(raw_min_s=round(min(raw), 3), raw_median_s=round(statistics.median(raw), 3),
                   ratio=round(statistics.median(ours) / statistics.median(raw), 3))
    row["goal"] = goal
    return row


def _quiet(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    tools.run(argv, env=env, cwd=cwd, capture=True, quiet=True)


def synthetic_matrix(path: Path) -> Path:
    """A valid 1,000-cell matrix (non-abi3, so every cell is a wheel or an image), with a package beside it."""
    (path.parent / "examples" / "saxpy").mkdir(parents=True, exist_ok=True)
    (path.parent / "examples" / "saxpy" / "pyproject.toml").touch()
    frameworks = [f"fw{i}" for i in range(SYNTHETIC_FRAMEWORKS)]
    lines = ["[project]", 'name = "synthetic"', 'version = "1.0.0"', "[axes]", 'arch = ["x86_64", "aarch64"]',
             'python = ["3.10", "3.11", "3.12", "3.13"]', 'cuda = ["12.4", "12.6", "12.8", "12.9", "13.0"]',
             f"framework = {json.dumps(frameworks)}", "[package.saxpy]", 'path = "examples/saxpy"', "abi3 = false"]
    for version in ("12.4", "12.6", "12.8", "12.9"):
        lines += [f'[cuda."{version}"]', 'archs = "8.0 9.0a"', 'toolchain = "image"',
                  f'local-version = "cu{version.replace(".", "")}"',
                  f'build-image = "nvidia/cuda:{version}.0-devel"',
                  f'runtime-image = "nvidia/cuda:{version}.0-runtime"']
    lines += ['[cuda."13.0"]', 'archs = "7.5 8.0 9.0a 12.0+PTX"', 'toolchain = "pypi"',
              'toolchain-requirements = ["nvidia-cuda-nvcc==13.0.*"]', 'local-version = "cu130"',
              'build-image = "debian:bookworm-slim"',
              'runtime-image = "debian:bookworm-slim"']
    for fw in frameworks:
        lines += [f"[framework.{fw}]", 'wheels = ["saxpy"]', f'requirements = ["pkg-{fw}==1.0"]']
    path.write_text("\n".join(lines) + "\n")
    return path


def run(m: Matrix, dist: Path, runs: int = 3) -> list[dict]:
    """Measure everything; return the rows that BENCHMARKS.md shows."""
    root = m.source.resolve().parent
    x86 = Selection(cuda=("13.0",), framework=("none",), arch=("x86_64",))
    both = Selection(cuda=("13.0",), framework=("none",))
    plan_x86 = make_plan(m, x86)
    rows = []

    step("plan + render --check on a synthetic 1,000-cell matrix")
    with tempfile.TemporaryDirectory() as tmp:
        big = synthetic_matrix(Path(tmp) / "matrix.toml")
        rows.append(_row("`toolkit plan --json` + `render` outputs, 1,000 cells (in-process)", _times(
            lambda: (make_plan(load_matrix(big)), render.outputs(load_matrix(big))), runs), goal="< 1 s"))

    (w,) = plan_x86.wheels
    step("builder images for every mode (not timed: each timed build then finds its builder ready)")
    wheels.ensure_builder(m, w.build.cuda, list(Arch), root, dry_run=False)
    cross.ensure_builder(m, w.build.cuda, root, settings.ca_mount(), dry_run=False)

    step("one wheel: toolkit wheels against raw cibuildwheel on the same rendered config (no compiler cache)")
    # With the cache off, sccache still drives the compilers (a throwaway cache) so that the bits do not depend
    # on the cache: the toolkit is measured against cibuildwheel doing the same, and that choice on its own.
    argv, env, cwd = wheels.cibuildwheel_command(m, w, root, dist / "bench-raw")
    line = m.cuda[w.build.cuda]
    with sccache.session(line, w.build.cuda, w.build.arch, BuildMode.NATIVE, w.build.arch, enabled=False) as s:
        same = wheels.cibuildwheel_command(m, w, root, dist / "bench-raw", s)
        ours, raw, bare = _in_turns(lambda: wheels.build(m, plan_x86, root, dist, force=True, cache=False),
                                    lambda: _quiet(*same), lambda: _quiet(argv, env, cwd), runs=runs)
    rows.append(_row("wheel x86_64: `toolkit wheels --force --no-cache` vs raw `cibuildwheel` with the same "
                     "compiler launcher (sccache, throwaway cache)", ours, raw, "ratio <= 1.05"))
    rows.append(_row("wheel x86_64: raw `cibuildwheel` through sccache (reproducible nvcc temporaries) vs without",
                     raw, bare, "reported (the bits equal with and without the cache)"))
    native = ours

    step("aarch64 wheel: cross against native x86_64 and against emulated (QEMU)")
    plan_arm = make_plan(m, Selection(cuda=("13.0",), framework=("none",), arch=("aarch64",)))
    with tempfile.TemporaryDirectory(dir=dist) as tmp:
        crossed = _times(lambda: wheels.build(m, plan_arm, root, Path(tmp), force=True, mode=BuildMode.CROSS,
                                              cache=False), runs)
        emulated = _times(lambda: wheels.build(m, plan_arm, root, Path(tmp), force=True, mode=BuildMode.EMULATED,
                                               cache=False), 1)
    rows.append(_row("wheel x86_64 native (cibuildwheel) vs aarch64 cross (both `--force --no-cache`)", native,
                     crossed, "ratio <= 1.1"))
    rows.append(_row("wheel aarch64: cross vs emulated under QEMU (both `--no-cache`)", crossed, emulated,
                     "ratio < 1"))

    step("one image: toolkit images against raw docker buildx build of the same Dockerfile")
    (image,) = plan_x86.images
    images_only = dataclasses.replace(plan_x86, wheels=())
    with tempfile.TemporaryDirectory() as tmp:
        raw_argv = images.build_command(m, image, root, dist, Path(tmp) / "meta.json", push=False, builder=None)
        # Five times the runs: a build of a third of a second varies by more than the toolkit adds.
        ours, raw = _in_turns(lambda: images.build(m, images_only, root, dist, force=True), lambda: _quiet(raw_argv),
                              runs=5 * runs)
    rows.append(_row("image x86_64 (warm cache): `toolkit images --force` vs raw `docker buildx build`", ours, raw,
                     "ratio <= 1.05"))

    step("full plan: rebuild everything against a no-op re-run")
    plan_both = make_plan(m, both)
    cold = _times(lambda: (wheels.build(m, plan_both, root, dist, force=True),
                           images.build(m, plan_both, root, dist, force=True)), 1)
    noop = _times(lambda: (wheels.build(m, plan_both, root, dist), images.build(m, plan_both, root, dist)), runs)
    rows.append(_row("full plan (2 wheels, 2 images): no-op re-run vs forced rebuild", noop, cold, "ratio <= 0.02"))

    step("per-arch image builds: parallel against sequential (no cache)")
    par = _times(lambda: _no_cache_images(m, plan_both, root, dist, True), runs)
    seq = _times(lambda: _no_cache_images(m, plan_both, root, dist, False), runs)
    rows.append(_row("2 platforms of one image, cold layers: parallel vs sequential", par, seq, "ratio < 1"))

    rows += _torch_rows(root, runs)

    abi3 = len(make_plan(m, Selection(cuda=("13.0",), framework=("none",))).wheels)
    per_python = abi3 * len(m.axes.python)
    rows.append({"name": f"wheel builds for {len(m.axes.python)} Pythons x 2 archs: abi3 vs one per Python",
                 "runs": 1, "min_s": abi3, "median_s": abi3, "raw_median_s": per_python,
                 "ratio": round(abi3 / per_python, 3), "goal": "counts, not seconds"})
    return rows


def _torch_rows(root: Path, runs: int) -> list[dict]:
    """The PyTorch extension example (its own matrix, in a copy): its aarch64 wheel cross-compiled against the
    x86_64 one built natively and against the aarch64 one built under QEMU."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "saxpy-torch"
        shutil.copytree(root / TORCH_EXAMPLE, project,
                        ignore=shutil.ignore_patterns("container", "docs", ".github", "dist"))  # generated
        tm = load_matrix(project / "matrix.toml")
        render.write(tm, project)
        step("torch extension: builder images for every mode (not timed)")
        version = tm.axes.cuda[0]
        wheels.ensure_builder(tm, version, list(Arch), project, dry_run=False)
        cross.ensure_builder(tm, version, project, settings.ca_mount(), dry_run=False)

        def build(arch: Arch, mode: BuildMode | None = None) -> Callable[[], object]:
            plan = make_plan(tm, Selection(arch=(arch.value,)))
            return lambda: wheels.build(tm, plan, project, project / "dist", force=True, mode=mode)

        step("torch extension: aarch64 cross against x86_64 native and aarch64 emulated")
        native = _times(build(Arch.X86_64), runs)
        crossed = _times(build(Arch.AARCH64, BuildMode.CROSS), runs)
        emulated = _times(build(Arch.AARCH64, BuildMode.EMULATED), 1)
        rows = [_row(f"torch extension ({TORCH_EXAMPLE}) aarch64 cross vs x86_64 native", crossed, native,
                     "ratio <= 1.5"),
                _row("torch extension aarch64: cross vs emulated under QEMU", crossed, emulated, "ratio < 1")]
        return rows + _compiler_cache_rows(tm, project, runs)


@contextlib.contextmanager
def _compiler_cache(folder: str) -> Iterator[None]:
    """The compiler cache in ``folder`` for the block (a cold one: the bench's own)."""
    before = os.environ.get(settings.COMPILER_CACHE_ENV)
    os.environ[settings.COMPILER_CACHE_ENV] = folder
    try:
        yield
    finally:
        os.environ.pop(settings.COMPILER_CACHE_ENV)
        if before is not None:
            os.environ[settings.COMPILER_CACHE_ENV] = before


def _compile_seconds(record: dict) -> float:
    """Time the build waited for its compilers: every launcher call, timed (see ``sccache.LAUNCH_SCRIPT``)."""
    return record["compiler_cache"]["compile_seconds"]


def _call_seconds(record: dict, source: str) -> float:
    """The time of the build's compile of ``source`` (one of its slowest)."""
    return next(c["seconds"] for c in record["compiler_cache"]["slowest_compiles"] if c["source"].endswith(source))


def _compiler_cache_rows(tm: Matrix, project: Path, runs: int) -> list[dict]:
    """The compiler cache on the torch extension's x86_64 wheel (cibuildwheel, a new container every build):
    cold, rebuilt unchanged, one .cu file changed, and from a new builder image of the same toolchain."""
    plan = make_plan(tm, Selection(arch=(Arch.X86_64.value,)))
    kernels = project / "csrc" / "kernels.cu"

    def build() -> dict:
        (record,) = wheels.build(tm, plan, project, project / "dist", force=True)
        return record

    with tempfile.TemporaryDirectory() as cache, _compiler_cache(cache):
        step("compiler cache (torch extension, x86_64): cold, then rebuilt with nothing changed")
        cold = build()
        warm = [build() for _ in range(runs)]
        step("compiler cache: one .cu file changed")
        changed = []
        for n in range(runs):
            kernels.write_text(kernels.read_text() + f"\n__global__ void toolkit_bench_touch_{n}() {{}}\n")
            changed.append(build())
        share = statistics.median(_call_seconds(r, "/csrc/kernels.cu") for r in changed) / _compile_seconds(cold)
        step("compiler cache: a new builder image of the same toolchain (made again without BuildKit's cache)")
        wheels.ensure_builder(tm, tm.axes.cuda[0], [Arch.X86_64], project, dry_run=False, anew=True)
        renewed = build()
    hits, compiles = renewed["compiler_cache"]["hits"], renewed["compiler_cache"]["hits"] + \
        renewed["compiler_cache"]["misses"]
    return [
        _row("compiler cache, torch extension x86_64: time in the compilers (each call timed), rebuilt unchanged "
             "(`--force`, new container) vs cold", [_compile_seconds(r) for r in warm], [_compile_seconds(cold)],
             "ratio <= 0.05"),
        _row("compiler cache, torch extension x86_64: whole build rebuilt unchanged vs cold (wall clock)",
             [r["build_seconds"] for r in warm], [cold["build_seconds"]], "reported"),
        _row("compiler cache: compile time with kernels.cu changed vs cold (the file's own compile is "
             f"{share:.3f} of cold)", [_compile_seconds(r) for r in changed], [_compile_seconds(cold)],
             f"ratio <= {0.10 + share:.3f} (0.10 + the file)"),
        {"name": "compiler cache: compiles that hit after a new builder image of the same toolchain", "runs": 1,
         "min_s": hits, "median_s": hits, "raw_median_s": compiles, "ratio": round(hits / compiles, 3),
         "goal": "ratio = 1 (counts, not seconds)"},
    ]


def _no_cache_images(m: Matrix, plan, root: Path, dist: Path, parallel: bool) -> None:
    """Both platforms with the runtime stage forced to rebuild (a new build arg busts its cache)."""
    bust = time.time_ns()
    with tempfile.TemporaryDirectory() as tmp:
        commands = [images.build_command(m, i, root, dist, Path(tmp) / f"{n}.json", push=False, builder=None)
                    for n, i in enumerate(plan.images)]
        commands = [[*c[:-1], "--no-cache-filter=runtime", f"--build-arg=TOOLKIT_BENCH={bust}", c[-1]]
                    for c in commands]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(commands) if parallel else 1) as pool:
            list(pool.map(_quiet, commands))


def write(rows: list[dict], root: Path) -> tuple[Path, Path]:
    """BENCHMARKS.md and benchmarks.json in ``root``."""
    machine = {"date": now(), "cpu": platform.machine(), "cores": os.cpu_count(), "os": hostinfo.os_name(),
               "python": sys.version.split()[0]}
    js = root / "benchmarks.json"
    js.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    md = root / "BENCHMARKS.md"
    body = table(("measurement", "runs", "toolkit min / median", "raw / baseline median", "ratio", "goal"),
                 [(r["name"], r["runs"], f"{r['min_s']} / {r['median_s']}", r.get("raw_median_s", "-"),
                   r.get("ratio", "-"), r["goal"]) for r in rows])
    md.write_text("# Benchmarks\n\nWritten by `nox -s bench` (`toolkit bench`) on "
                  f"{machine['date']}: {machine['cores']} cores, {machine['cpu']}, {machine['os']}, Python "
                  f"{machine['python']}. Seconds unless a row says otherwise; every figure was measured in the "
                  "same run as its baseline. Raw numbers: `benchmarks.json`.\n\n```\n" + body + "\n```\n")
    return md, js

