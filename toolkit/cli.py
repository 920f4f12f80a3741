"""The command line: argparse subcommands mapped onto stage functions.

This is the only place that turns errors into exit codes. Settings are read in
one documented order: built-in defaults < matrix.toml < environment < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from . import (
    __version__,
    audit,
    bench,
    console,
    container,
    cuda,
    demo,
    doctor,
    engine,
    images,
    locks,
    manifest,
    publish,
    rehearse,
    render,
    report,
    resolve,
    settings,
    smoke,
    wheels,
    workflows,
)
from .console import table
from .errors import (
    BuildError,
    ConfigError,
    EngineError,
    PublishError,
    RehearsalError,
    ToolkitError,
    allowed_list,
    suggest,
)
from .manifest import Manifest, now
from .matrix import AXES, BuildMode, Matrix, load_matrix, schema
from .plan import Selection, make_plan, to_json


def add_selection_args(parser: argparse.ArgumentParser) -> None:
    """The plan filters every building stage shares; repeatable or comma-separated."""
    group = parser.add_argument_group("selection (repeat a flag or give a comma list)")
    for axis in AXES:
        group.add_argument(f"--{axis}", action="append", default=[], metavar=axis.upper(),
                           help=f"only these values of axes.{axis}")


def selection_from(args: argparse.Namespace) -> Selection:
    """Build a Selection from parsed filter flags."""
    return Selection(**{axis: tuple(v for item in getattr(args, axis) for v in item.split(",") if v)
                        for axis in AXES})


def matrix_from(args: argparse.Namespace) -> Matrix:
    """Load the matrix named by --matrix, else $TOOLKIT_MATRIX, else ./matrix.toml."""
    return load_matrix(settings.matrix_path(args.matrix))


def registry_matrix_from(args: argparse.Namespace) -> Matrix:
    """The matrix of a command that builds, pushes or reads images: this run is logged in to its registry."""
    matrix = matrix_from(args)
    engine.login(matrix, settings.state_dir())
    return matrix


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        matrix = matrix_from(args)
    except ConfigError as exc:
        if not args.json:
            raise
        _print_json({"matrix": str(settings.matrix_path(args.matrix)), "valid": False,
                     "problems": list(exc.problems)})
        return exc.exit_code
    plan = make_plan(matrix)
    if args.json:
        _print_json({"matrix": str(matrix.source), "valid": True, "wheels": len(plan.wheels),
                     "images": len(plan.images)})
    else:
        print(f"{matrix.source}: valid ({len(plan.wheels)} wheels, {len(plan.images)} images)")
    return 0


def _print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2)
    print()


def cmd_plan(args: argparse.Namespace) -> int:
    matrix = matrix_from(args)
    plan = make_plan(matrix, selection_from(args))
    if args.github:
        print(workflows.github_output(matrix, plan))
        return 0
    if args.json:
        _print_json(to_json(plan))
        return 0
    rows = [(w.id, w.build.platform, w.python_tag, w.version, w.build.toolchain.value,
             w.build.torch_arch_list, w.build.build_image) for w in plan.wheels]
    rows += [(i.id, i.build.platform, "-", i.tag, i.build.toolchain.value,
              i.build.torch_arch_list, i.build.build_image) for i in plan.images]
    print(table(("artifact", "platform", "python", "version/tag", "toolchain", "gpu archs", "build image"),
                rows))
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    matrix = matrix_from(args)
    results = resolve.run(matrix, make_plan(matrix, selection_from(args)))
    if args.write:
        print(f"wrote {resolve.write(results, matrix.source.resolve().parent)}", file=sys.stderr)
    if args.json:
        _print_json([dataclasses.asdict(r) for r in results])
        return 0
    if not results:
        print("no framework image of the selection has requirements")
        return 0
    print(table(("framework", "platform", "runtime image", "python", "glibc", "binary wheels", "detail", "seconds"),
                [(r.framework, r.platform, r.runtime_image, r.python, r.glibc, r.status, r.detail(), r.seconds)
                 for r in results]))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    _print_json(schema())
    return 0


def _print_statuses(statuses: list, as_json: bool) -> None:
    if as_json:
        _print_json([dataclasses.asdict(s) for s in statuses])
        return
    print(table(("component", "state", "version", "address", "started by", "detail"),
                [(s.name, "up" if s.up else "DOWN", s.version, s.address, s.started_by, s.detail)
                 for s in statuses]))


def cmd_engine(args: argparse.Namespace) -> int:
    state = settings.state_dir()
    if args.action == "down":
        stopped = engine.down(state)
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing of the toolkit's was running")
        return 0
    matrix = matrix_from(args)
    plan = make_plan(matrix, selection_from(args))
    statuses = (engine.up if args.action == "up" else engine.status)(matrix, plan, state)
    _print_statuses(statuses, args.json)
    down = [s.name for s in statuses if not s.up]
    if down:
        print(f"not available: {', '.join(down)}", file=sys.stderr)
        if args.strict:
            raise EngineError(f"{len(down)} component(s) not available: {', '.join(down)}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    report = doctor.examine(settings.matrix_path(args.matrix), selection_from(args), settings.state_dir())
    md, js = doctor.write(report, Path(args.output))
    if args.json:
        print(js.read_text(), end="")
    else:
        print(doctor.summary(report))
        print(f"\nverdict: {'PASS' if report.ok else 'FAIL'}  (report: {md}, {js})")
    if report.ok:
        return 0
    return ConfigError.exit_code if any(c.name == "matrix" and c.result == doctor.FAIL
                                        for c in report.checks) else 1


def cmd_docs(args: argparse.Namespace) -> int:
    copied, changed, page = report.record_docs(matrix_from(args), Path(args.dist))
    print(f"release manifest: {copied}")
    print("\n".join(changed) if changed else "generated files are up to date")
    print(f"release report: {page}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    matrix = registry_matrix_from(args) if args.screenshot else matrix_from(args)
    dist = Path(args.dist)
    out = Path(args.out) if args.out else matrix.source.resolve().parent / report.REPORT
    page = report.write(matrix, Manifest(dist / "manifest.json").data["artifacts"], dist / "logs", out)
    print(f"release report: {page}")
    if args.screenshot:
        report.browse(matrix, page, Path(args.screenshot))
        print(f"screenshot (headless chromium): {args.screenshot}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    matrix = matrix_from(args)
    root = matrix.source.resolve().parent
    if args.check:
        render.check(matrix, root)
        print(f"{len(render.outputs(matrix))} generated files match {matrix.source}")
        return 0
    changed = render.write(matrix, root)
    print("\n".join(changed) if changed else "generated files are up to date")
    return 0


def cmd_wheels(args: argparse.Namespace) -> int:
    matrix = registry_matrix_from(args)
    records = wheels.build(matrix, make_plan(matrix, selection_from(args)), matrix.source.resolve().parent,
                           Path(args.dist), dry_run=args.dry_run, force=args.force,
                           mode=BuildMode(args.build_mode) if args.build_mode else None,
                           skip_unavailable=args.skip_unavailable, cache=not args.no_cache)
    if args.json:
        _print_json(records)
    elif records:
        _print_built(records, ("artifact", "wheel", "mode", "MB", "seconds", "sha256"), lambda r: (
            r["id"], r["file"], r.get("build_mode", "-"), f"{r['size'] / 1e6:.1f}", r["build_seconds"],
            r["sha256"][:16]))
    return 0


def _print_built(records: list[dict], headers: tuple[str, ...], row: Callable[[dict], tuple]) -> None:
    """The table of what was built or is up to date, then a line for each artifact not built here."""
    built = [(*row(r), "up to date" if r.get("up_to_date") else "built") for r in records if "not_built" not in r]
    if built:
        print(table((*headers, "this run"), built))
    for r in records:
        if "not_built" in r:
            print(f"not built here: {r['id']}: {r['not_built']}")


def _expected_targets(args: argparse.Namespace, wheel: Path) -> tuple:
    if args.expect:
        try:
            return cuda.parse_arch_list(args.expect)
        except ValueError as exc:
            raise ConfigError([f"--expect {args.expect}: {exc}"]) from None
    matrix = matrix_from(args)
    if args.cuda:
        if args.cuda not in matrix.cuda:
            raise ConfigError([f"--cuda {args.cuda}: {matrix.source} has no [cuda.\"{args.cuda}\"] table"
                               + suggest(args.cuda, matrix.cuda) + f"; defined: {allowed_list(matrix.cuda)}"])
        return matrix.cuda[args.cuda].archs
    try:
        label = parse_wheel_filename(wheel.name)[1].local or ""
    except InvalidWheelFilename as exc:
        raise ConfigError([f"{wheel}: {exc}"]) from None
    line = next((line for line in matrix.cuda.values() if label and line.local_version == label), None)
    if line is None:
        raise ConfigError([f"{wheel.name}: no CUDA line of {matrix.source} has local-version {label!r}; "
                           "pass --cuda X.Y or --expect ARCHLIST"])
    return line.archs


def cmd_audit(args: argparse.Namespace) -> int:
    reports = [audit.audit_wheel(Path(w), _expected_targets(args, Path(w))) for w in args.wheels]
    if args.json:
        _print_json([audit.to_json(r) | {"wheel": r.wheel} for r in reports])
    for r in reports:
        if not args.json:
            print(table(("object", "SASS", "PTX", "missing", "cuobjdump"),
                        [(o.name, " ".join(o.sass), " ".join(o.ptx), ", ".join(o.missing) or "-", o.cuobjdump)
                         for o in r.objects]) or f"{r.wheel}: no device code")
    failed = [r for r in reports if not r.ok]
    if failed:
        raise BuildError("\n".join(audit.describe(r) for r in failed))
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    matrix = registry_matrix_from(args)
    if args.join:
        made = images.join(make_plan(matrix, selection_from(args)), make_plan(matrix, Selection()),
                           Manifest(Path(args.dist) / "manifest.json"), strict=True)
        print("\n".join(f"joined: {tag}" for tag in made) or "no image tags in the selection")
        return 0
    records = images.build(matrix, make_plan(matrix, selection_from(args)), matrix.source.resolve().parent,
                           Path(args.dist), push=args.push, dry_run=args.dry_run, builder=args.builder,
                           parallel=not args.sequential, force=args.force, skip_unavailable=args.skip_unavailable,
                           cache=not args.no_cache)
    if args.json:
        _print_json(records)
    elif records:
        _print_built(records, ("artifact", "tag", "platform", "seconds", "MB", "digest"), lambda r: (
            r["id"], r["platform_tag"], r["platform"], r["build_seconds"], r.get("size_mb", "-"), r["digest"][:19]))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    matrix = registry_matrix_from(args)
    # A folder of its own: the forced rebuilds must not replace the release's records in --dist.
    rows = bench.run(matrix, Path(args.dist) / "bench", runs=args.runs)
    md, js = bench.write(rows, matrix.source.resolve().parent)
    print(md.read_text())
    print(f"written: {md}, {js}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    matrix = registry_matrix_from(args)
    selection = selection_from(args)
    if selection == Selection():
        selection = Selection(cuda=demo.DEFAULT_CUDA, framework=demo.DEFAULT_FRAMEWORK)
    print(demo.run(matrix, make_plan(matrix, selection), Path(args.dist)))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    matrix = registry_matrix_from(args)
    plan = make_plan(matrix, selection_from(args))
    dist = Path(args.dist)
    send = args.yes and not args.dry_run
    decided = publish.publish(matrix, plan, dist, yes=send, partial=args.partial)
    problems = publish.verify(matrix) if send else []
    if args.json:
        _print_json({"sent": send, "actions": [dataclasses.asdict(a) for a in decided], "verify": problems})
    else:
        print(table(("artifact", "target", "action", "detail"),
                    [(a.subject, a.target, a.action, a.detail) for a in decided]))
        held = [a.subject for a in decided if a.action == publish.HOLD]
        if held:
            print(f"\nheld back, nothing published under: {', '.join(held)} (see detail)")
        if not send:
            print("\ndry run: nothing was sent (pass --yes to publish)")
        elif not problems:
            print(f"\nverified as a client: every wheel and image tag of {matrix.project.version} from the index, "
                  "the CUDA channels, the variants index and the registry, their provenance and SBOM attestations, "
                  "the image signatures and that of SHA256SUMS; "
                  f"SHA256SUMS(.sig), sbom.cdx.json and attestations/ in {dist}")
    if problems:
        raise PublishError(problems)
    return 0


def cmd_verify_release(args: argparse.Namespace) -> int:
    matrix = registry_matrix_from(args)
    version = args.version or matrix.project.version
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    problems = publish.verify(matrix, version=version, key=Path(args.key) if args.key else None, out=out)
    if args.json:
        _print_json({"version": version, "verified": not problems, "problems": problems})
    elif not problems:
        print(f"{version}: every signature, attestation and checksum verifies"
              + (f"; the release metadata and the verified statements are in {out}" if out else ""))
    if problems:
        raise PublishError(problems)
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    records = manifest.merge([Path(f) for f in args.fragments])
    out = Manifest(Path(args.out))
    out.data["artifacts"] = records
    out.save()
    print(f"{args.out}: {len(records)} artifact records from {len(args.fragments)} fragment(s)")
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    matrix = matrix_from(args)
    plan = make_plan(matrix, selection_from(args))
    if args.artifact:
        known = [a.id for a in plan.artifacts]
        unknown = [a for a in args.artifact if a not in known]
        if unknown:
            raise ConfigError([f"--artifact {a}: not an artifact of the selection" + suggest(a, known)
                               + f"; planned: {', '.join(known)}" for a in unknown])
        plan = dataclasses.replace(plan, wheels=tuple(w for w in plan.wheels if w.id in args.artifact),
                                   images=tuple(i for i in plan.images if i.id in args.artifact))
    engine.login(matrix, settings.state_dir())
    runs = smoke.smoke(matrix, plan, Path(args.dist), host=args.host, force=args.force,
                       require_gpu=args.require_gpu, require_built=args.require_built)
    if args.json:
        _print_json([dataclasses.asdict(r) for r in runs])
    else:
        print(table(("artifact", "platform", "python", "where", "result", "gpu", "seconds"),
                    [(r.artifact, r.platform, r.python, r.where or "-", r.result, r.gpu, r.seconds) for r in runs]))
    smoke.require_pass(runs)
    return 0


def cmd_rehearse(args: argparse.Namespace) -> int:
    repo = Path.cwd()
    if args.dry_run:
        print(table(("job", "needs", "runs-on"), rehearse.check(repo, Path(args.workflow))))
        print("\ndry run: every step can be stood in for; nothing was run")
        return 0
    inputs = {}
    for item in args.input:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError([f"--input {item!r}: expected NAME=VALUE (e.g. --input cuda=13.0)"])
        inputs[name] = value
    runs = rehearse.rehearse(repo, workflow=Path(args.workflow), inputs=inputs, root=Path(args.dir))
    if args.json:
        _print_json([dataclasses.asdict(r) for r in runs])
    else:
        print(table(("job", "name", "result", "seconds", "note"),
                    [(r.job, r.name, r.result, r.seconds, r.note) for r in runs]))
    failed = [r for r in runs if r.result == rehearse.FAILURE]
    if failed:
        raise RehearsalError("\n".join(f"{r.name}: failed ({r.note}); log: {r.log}" for r in failed))
    return 0


SKIP_HELP = ("build what this machine can and report the rest as not built (default: stop before building "
             "when a planned artifact's base image is out of reach)")
NO_CACHE_HELP = ("compile without the compiler cache for this run (sccache: per CUDA line, arch and toolchain in the "
                 "state directory, a BuildKit cache mount in images); what is built stays the same")


def build_parser() -> argparse.ArgumentParser:
    """The full CLI; stages register their subcommands here."""
    parser = argparse.ArgumentParser(
        prog="toolkit", description="Build, test and publish multi-arch CUDA wheels and images "
        "from one matrix.toml.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    matrix_help = f"matrix file (default: ${settings.MATRIX_ENV}, else ./matrix.toml)"
    parser.add_argument("--matrix", metavar="PATH", help=matrix_help)
    verbose_help = "stream the build tools' output (default: to each task's log file, shown when it fails)"
    plain_help = "progress as one line per state change, no live display (the default without a terminal)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    parser.add_argument("--plain", action="store_true", help=plain_help)
    parser.epilog = "container/build.sh and container/run.sh run `toolkit container-build|container-run`."
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        # Also after the subcommand (`nox -s wheels -- --matrix F` puts it there); SUPPRESS keeps the
        # value given before the subcommand when none comes after it.
        p.add_argument("--matrix", metavar="PATH", default=argparse.SUPPRESS, help=matrix_help)
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
        p.add_argument("--plain", action="store_true", default=argparse.SUPPRESS, help=plain_help)
        return p

    p = command("validate", cmd_validate, "check matrix.toml and report every problem")
    p.add_argument("--json", action="store_true", help="print the verdict and every problem as JSON")
    p = command("plan", cmd_plan, "expand the matrix into artifacts")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--github", action="store_true", help="print job matrices as name=json lines for $GITHUB_OUTPUT")
    add_selection_args(p)
    p = command("resolve", cmd_resolve, "resolve every framework's requirements per platform, binary wheels only, "
                "before any build: which framework images cannot be installed where, and why")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--write", action="store_true", help=f"record them in {resolve.RESOLVED} (the support matrix "
                   "shows them)")
    add_selection_args(p)
    command("schema", cmd_schema, "print the JSON Schema of matrix.toml")
    p = command("engine", cmd_engine, "bring the local build engine up, report it, or stop it")
    p.add_argument("action", choices=("up", "status", "down"),
                   help="up: start/install what is missing (idempotent); status: report; "
                   "down: stop what the toolkit started")
    p.add_argument("--json", action="store_true", help="print component statuses as JSON")
    p.add_argument("--strict", action="store_true",
                   help="fail when a base image of the selection cannot be made available")
    add_selection_args(p)
    p = command("docs", cmd_docs, "record the release manifest beside the docs and regenerate the support matrix")
    p.add_argument("--dist", default="dist", metavar="DIR", help="where the release manifest is")
    p = command("report", cmd_report, "write the release report: a static HTML page of the artifact grid, the "
                "timeline of every recorded stage, sizes, smoke results and build logs")
    p.add_argument("--dist", default="dist", metavar="DIR", help="where the release manifest and logs are")
    p.add_argument("--out", metavar="PATH", help=f"the page (default: {report.REPORT} beside matrix.toml)")
    p.add_argument("--screenshot", metavar="PNG", help="also load the page in headless chromium and save a PNG")
    p = command("render", cmd_render, "write generated files (Dockerfiles, cibuildwheel configs, workflows, docs)")
    p.add_argument("--check", action="store_true", help="fail with a diff when a committed file differs")
    p = command("wheels", cmd_wheels, "build, repair, audit and record the planned wheels (cibuildwheel, cross)")
    p.add_argument("--dist", default="dist", metavar="DIR", help="output directory (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the build commands, build nothing")
    p.add_argument("--json", action="store_true", help="print the manifest records as JSON")
    p.add_argument("--force", action="store_true", help="rebuild even what is up to date")
    p.add_argument("--skip-unavailable", action="store_true", help=SKIP_HELP)
    p.add_argument("--no-cache", action="store_true", help=NO_CACHE_HELP)
    p.add_argument("--build-mode", choices=[m.value for m in BuildMode], metavar="MODE",
                   help="for wheels of another arch than this host's: auto (cross where possible, else "
                        "emulated), cross, emulated or native; default: the matrix's build-mode")
    add_selection_args(p)
    p = command("audit", cmd_audit, "list each wheel's SASS/PTX and fail on a promised arch it lacks")
    p.add_argument("wheels", nargs="+", metavar="WHEEL")
    p.add_argument("--cuda", metavar="X.Y", help="expect this CUDA line's archs (default: from the local label)")
    p.add_argument("--expect", metavar="ARCHLIST", help="expect these archs (PyTorch or CMake notation)")
    p.add_argument("--json", action="store_true", help="print the audit as JSON")
    p = command("images", cmd_images, "build the planned images with BuildKit, one per platform")
    p.add_argument("--push", action="store_true", help="push per platform and join one multi-arch tag")
    p.add_argument("--join", action="store_true",
                   help="build nothing: make each multi-arch build tag from the pushed platforms in the manifest "
                        "(after every runner pushed its own); a platform never pushed is an error")
    p.add_argument("--dry-run", action="store_true", help="print the build commands, build nothing")
    p.add_argument("--builder", metavar="NAME", help="the BuildKit builder to use (e.g. a remote one)")
    p.add_argument("--sequential", action="store_true", help="build the platforms of a tag one after another")
    p.add_argument("--no-cache", action="store_true", help=NO_CACHE_HELP)
    p.add_argument("--dist", default="dist", metavar="DIR", help="wheel directory (the build context)")
    p.add_argument("--json", action="store_true", help="print the manifest records as JSON")
    p.add_argument("--force", action="store_true", help="redo it even when it is up to date")
    p.add_argument("--skip-unavailable", action="store_true", help=SKIP_HELP)
    add_selection_args(p)
    p = command("bench", cmd_bench, "measure the toolkit against the raw tools; write BENCHMARKS.md")
    p.add_argument("--runs", type=int, default=3, help="runs per cheap measurement (default: %(default)s)")
    p.add_argument("--dist", default="dist", metavar="DIR", help="where the demo's artifacts are")
    p = command("demo", cmd_demo, "the whole release on local defaults: engine, wheels, images, smoke, "
                "publish, verification, docs (default selection: --cuda 13.0 --framework none)")
    p.add_argument("--dist", default="dist", metavar="DIR", help="output directory (default: %(default)s)")
    add_selection_args(p)
    p = command("publish", cmd_publish, "publish smoke-tested wheels and images (a dry run unless --yes)")
    p.add_argument("--yes", action="store_true", help="really send (CI passes this)")
    p.add_argument("--json", action="store_true", help="print the decisions and the client verification as JSON")
    p.add_argument("--partial", action="store_true",
                   help="make image tags from the selected platforms alone (version tags never move: the others "
                        "can never join them)")
    p.add_argument("--dry-run", action="store_true", help="show what would be uploaded, skipped and refused")
    p.add_argument("--dist", default="dist", metavar="DIR", help="where the artifacts and manifest are")
    add_selection_args(p)
    p = command("verify-release", cmd_verify_release, "check a published release as a client would: SHA256SUMS and "
                "its signature, each wheel from the index, each image tag, their signatures and their provenance "
                "and SBOM attestations")
    p.add_argument("version", nargs="?", help="the release (default: [project] version of the matrix)")
    p.add_argument("--key", metavar="PATH", help="the public key to trust (default: a keyless release's workflow "
                   "identity, else this machine's key from the state directory)")
    p.add_argument("--out", metavar="DIR", help="write the release metadata and the verified statements here")
    p.add_argument("--json", action="store_true", help="print the verdict and every problem as JSON")
    p = command("rehearse", cmd_rehearse, "run the committed release workflow here, job by job, as GitHub would "
                "(before pushing a tag)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                   help="a workflow_dispatch input (e.g. --input cuda=13.0 --input framework=none); without any, "
                        "the tag push is rehearsed")
    p.add_argument("--workflow", default=str(rehearse.RELEASE_WORKFLOW), metavar="PATH",
                   help="the workflow, as committed at HEAD (default: %(default)s)")
    p.add_argument("--dir", default="build/rehearse", metavar="DIR",
                   help="the run's jobs, logs and artifacts, emptied first (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="check that every job and step can be run; run nothing")
    p.add_argument("--json", action="store_true", help="print every job instance's result as JSON")
    p = command("manifest", cmd_manifest, "merge the manifest fragments of a release's jobs into one manifest")
    p.add_argument("action", choices=("merge",), help="merge: join FRAGMENTs; two builds of one artifact fail")
    p.add_argument("fragments", nargs="+", metavar="FRAGMENT", help="manifest.json files, one per job or slice")
    p.add_argument("--out", required=True, metavar="PATH", help="the merged manifest (e.g. dist/manifest.json)")
    p = command("smoke", cmd_smoke, "install and run every built artifact per platform and Python")
    p.add_argument("--artifact", action="append", default=[], metavar="ID", help="only this artifact (repeatable)")
    p.add_argument("--host", action="store_true",
                   help="install host-arch wheels into a fresh venv here instead of containers (GPU hosts)")
    p.add_argument("--require-built", action="store_true",
                   help="fail when a planned artifact was not built (default: report it untested)")
    p.add_argument("--require-gpu", action="store_true",
                   help="fail, instead of skipping the GPU smoke, where no GPU is found (GPU runners)")
    p.add_argument("--dist", default="dist", metavar="DIR", help="where the wheels and manifest are")
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.add_argument("--force", action="store_true", help="redo it even when it is up to date")
    add_selection_args(p)
    p = command("doctor", cmd_doctor, "write a compatibility verification report (Markdown and JSON)")
    p.add_argument("--output", default="build/doctor", metavar="DIR", help="report directory (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the summary")
    add_selection_args(p)
    return parser


def run_summary(dist: Path, since: str) -> str:
    """What a run that stopped early (interrupted, or failed) recorded (each record is written whole, when its
    step ends), and that a re-run does only the rest."""
    done: dict[str, list[str]] = {"built": [], "smoke-tested": [], "published": []}
    for artifact, record in Manifest(dist / "manifest.json").data["artifacts"].items():
        for what, at in (("built", record.get("built_at")), ("smoke-tested", (record.get("smoke") or {}).get("at")),
                         ("published", (record.get("published") or {}).get("at"))):
            if at and at >= since:
                done[what].append(artifact)
    lines = [f"{what} in this run: {', '.join(ids)}" for what, ids in done.items() if ids]
    return "\n".join([*(lines or ["nothing was recorded in this run"]),
                      f"{dist / 'manifest.json'} holds every finished step; a re-run does only the rest"])


# Commands with their own parser: the container/*.sh wrappers.
WRAPPERS = {"container-build": container.main_build, "container-run": container.main_run}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    wrapper = WRAPPERS.get(argv[0]) if argv else None
    started, args = now(), None
    try:
        if wrapper:
            return wrapper(argv[1:])
        args = build_parser().parse_args(argv)
        console.configure(verbose=args.verbose, plain=args.plain)
        # Commands that record into a release directory hold it: two runs would overwrite each other's records.
        with locks.hold(Path(args.dist) / "manifest.json", f"{args.dist}/") if "dist" in args else nullcontext():
            return args.func(args)
    except ToolkitError as exc:
        print(f"error: {exc}".replace("\n", "\nerror: "), file=sys.stderr)
        if args and "dist" in args and (Path(args.dist) / "manifest.json").exists():
            print(f"before that: {run_summary(Path(args.dist), started)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted" + (f": {run_summary(Path(args.dist), started)}" if args and "dist" in args
                                  else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `toolkit plan | head`: the reader left; no traceback for that
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a path the user gave that cannot be read or written: the message names it
        print(f"error: {exc}", file=sys.stderr)
        return 1
