"""``container/build.sh`` and ``container/run.sh``: Dynamo-style wrappers over the toolkit.

The scripts only exec ``python -m toolkit container-build|container-run``; their ``--help``
comes from the parsers below, so the documented interface cannot drift from what runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import tempfile
from pathlib import Path

from packaging.version import Version

from . import engine, hostinfo, settings, tools
from .engine import docker
from .engine.daemon import host_arch
from .errors import ConfigError, allowed_list, suggest
from .images import build_command
from .matrix import Arch, Matrix, load_matrix
from .plan import Selection, make_plan


def build_parser() -> argparse.ArgumentParser:
    """The options of container/build.sh (those of Dynamo's build.sh that apply here)."""
    p = argparse.ArgumentParser(prog="container/build.sh", description="Build framework images with BuildKit, "
                                "one per platform, from the rendered Dockerfiles (a wrapper over `toolkit images`).")
    p.add_argument("--matrix", help="matrix file (default: $TOOLKIT_MATRIX, else ./matrix.toml)")
    p.add_argument("--framework", default="none", help="image variant from matrix.toml (default: %(default)s)")
    p.add_argument("--target", default="runtime", help="Dockerfile stage: devel, wheel-build, dev, runtime")
    p.add_argument("--platform", default="", help="linux/amd64, linux/arm64 or a comma list (default: all planned)")
    p.add_argument("--cuda-version", default="", help="CUDA line from matrix.toml (default: the newest planned)")
    p.add_argument("--base-image", help="replace the runtime and build base image (repository)")
    p.add_argument("--base-image-tag", help="tag for --base-image")
    p.add_argument("--tag", help="image tag (default: <image-repository>/<framework>:<version>-<cuda>)")
    p.add_argument("--no-tag-latest", action="store_true", help="do not also tag <framework>:latest")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V", help="extra build argument")
    p.add_argument("--build-context", action="append", default=[], metavar="NAME=PATH", help="named context")
    p.add_argument("--cache-from", action="append", default=[], help="external cache source (repeatable)")
    p.add_argument("--cache-to", action="append", default=[], help="external cache destination (repeatable)")
    p.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    p.add_argument("--push", action="store_true", help="push the result instead of loading it")
    p.add_argument("--no-load", action="store_true", help="neither load nor push (build only)")
    p.add_argument("--builder", help="BuildKit builder to use")
    p.add_argument("--dist", default="dist", help="wheel directory, the build context (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the docker commands, run nothing")
    return p


def build_commands(args: argparse.Namespace, m: Matrix) -> list[list[str]]:
    """The docker buildx commands that build.sh runs for ``args``."""
    archs = [a.value for a in Arch if a.platform in args.platform.split(",")] if args.platform else []
    plan = make_plan(m, Selection(framework=(args.framework,), arch=tuple(archs),
                                  cuda=(args.cuda_version,) if args.cuda_version else ()))
    newest = max((i.build.cuda for i in plan.images), key=Version)
    root, commands = m.source.resolve().parent, []
    for image in (i for i in plan.images if i.build.cuda == newest):
        if args.base_image:
            base = f"{args.base_image}:{args.base_image_tag}" if args.base_image_tag else args.base_image
            image = dataclasses.replace(image, runtime_image=base,
                                        build=dataclasses.replace(image.build, build_image=base))
        tag = args.tag or image.tag
        argv = build_command(m, image, root, Path(args.dist), Path(tempfile.gettempdir()) / "build-sh.json",
                             push=args.push, builder=args.builder, target=args.target)
        argv = [a for a in argv if not a.startswith(("--tag=", "--load", "--push"))]
        argv[-1:-1] = [f"--tag={tag}-{image.build.arch.docker}" if len(plan.images) > 1 else f"--tag={tag}"]
        if not args.no_tag_latest:
            argv.insert(-1, f"--tag={tag.rsplit(':', 1)[0]}:latest-{image.build.arch.docker}")
        argv[-1:-1] = [f"--build-arg={a}" for a in args.build_arg]
        argv[-1:-1] = [f"--build-context={c}" for c in args.build_context]
        argv[-1:-1] = [f"--cache-from={c}" for c in args.cache_from] + [f"--cache-to={c}" for c in args.cache_to]
        argv[-1:-1] = (["--no-cache"] if args.no_cache else []) + (
            ["--push"] if args.push else [] if args.no_load else ["--load"])
        commands.append(argv)
    return commands


def run_parser() -> argparse.ArgumentParser:
    """The options of container/run.sh."""
    p = argparse.ArgumentParser(prog="container/run.sh", description="Run a framework image with GPU, shared "
                                "memory and IPC settings suited to inference servers.")
    p.add_argument("--matrix", help="matrix file (default: $TOOLKIT_MATRIX, else ./matrix.toml)")
    p.add_argument("--framework", default="none", help="image variant from matrix.toml whose image to run: what "
                   "build.sh tagged <image-repository>/<framework>:latest-<arch> (default: %(default)s)")
    p.add_argument("--image", help="image to run instead of the framework's")
    p.add_argument("--gpus", help="docker --gpus value (default: all when an NVIDIA runtime exists, else none)")
    p.add_argument("--shm-size", default="10G", help="shared memory size (default: %(default)s)")
    p.add_argument("--ipc", default="host", help="IPC namespace (default: %(default)s)")
    p.add_argument("--platform", help="platform to run, e.g. linux/arm64 (emulated when not native)")
    p.add_argument("--mount-workspace", action="store_true", help="mount the current directory at /workspace")
    p.add_argument("--hf-cache", help="host directory mounted as the Hugging Face cache")
    p.add_argument("--dry-run", action="store_true", help="print the docker command, run nothing")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command to run in the container")
    return p


def run_command(args: argparse.Namespace, image: str) -> list[str]:
    """The docker run command that run.sh runs for ``args``."""
    gpus = args.gpus or ("all" if hostinfo.gpus() and docker.gpu_options(True) else "none")
    argv = ["docker", "run", "--rm", "-i", f"--shm-size={args.shm_size}",
            f"--ipc={args.ipc}"]
    argv += [f"--gpus={gpus}"] if gpus != "none" else []
    argv += [f"--platform={args.platform}"] if args.platform else []
    argv += ["--volume", f"{Path.cwd()}:/workspace", "--workdir", "/workspace"] if args.mount_workspace else []
    argv += ["--volume", f"{args.hf_cache}:/root/.cache/huggingface"] if args.hf_cache else []
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return [*argv, image, *command]


def default_image(args: argparse.Namespace) -> str:
    """The image build.sh tagged for ``--framework`` on this host's (or ``--platform``'s) architecture."""
    m = load_matrix(settings.matrix_path(args.matrix))
    if args.framework not in m.framework:
        raise ConfigError([f"--framework {args.framework}: {m.source} has no [framework.{args.framework}] table"
                           + suggest(args.framework, m.framework) + f"; defined: {allowed_list(m.framework)}"])
    arch = args.platform.split("/")[-1] if args.platform else host_arch().docker
    return f"{m.publish.image_repository}/{args.framework}:latest-{arch}"


def main_build(argv: list[str]) -> int:
    """Entry of container/build.sh."""
    args = build_parser().parse_args(argv)
    m = load_matrix(settings.matrix_path(args.matrix))
    if not args.dry_run:
        engine.login(m, settings.state_dir())
    for command in build_commands(args, m):
        if args.dry_run:
            print(shlex.join(command))
        else:
            tools.run(command)
    return 0


def main_run(argv: list[str]) -> int:
    """Entry of container/run.sh."""
    args = run_parser().parse_args(argv)
    image = args.image or default_image(args)
    command = run_command(args, image)
    if args.dry_run:
        print(shlex.join(command))
        return 0
    if not args.image and not docker.has_image(image):
        raise ConfigError([f"no image {image} here: build it first with "
                           f"`container/build.sh --framework {args.framework}`, or pass --image"])
    return tools.run(command, check=False).returncode
