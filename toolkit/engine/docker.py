"""The one adapter to the container engine.

The docker SDK covers ping, run, inspect, pull and push; builds go through the
``docker buildx`` CLI because the SDK only drives the legacy builder (no
``RUN --mount``, no other platforms).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import docker
import docker.errors
import docker.types
import requests
from packaging.version import Version

from .. import settings, tools
from ..console import task
from ..errors import CommandError, EngineError
from . import credentials
from .credentials import Credential

MIN_BUILDX = Version("0.13")


@functools.cache
def client() -> docker.DockerClient:
    """A docker SDK client for DOCKER_HOST or the local socket."""
    try:
        return docker.from_env(timeout=600)
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot reach the Docker engine: {exc}") from None


def ping() -> bool:
    """True when a Docker engine answers."""
    try:
        return docker.from_env(timeout=5).ping()
    except (docker.errors.DockerException, OSError):
        return False


def engine_version() -> str:
    """The engine's version, e.g. ``20.10.24+dfsg1``."""
    return client().version()["Version"]


def buildx_version() -> Version | None:
    """The installed buildx version, or None when the plugin is missing."""
    if tools.which("docker") is None:
        return None
    proc = tools.run(["docker", "buildx", "version"], capture=True, check=False, quiet=True)
    match = re.search(r"\bv?(\d+\.\d+\.\d+)", proc.stdout) if proc.returncode == 0 else None
    return Version(match.group(1)) if match else None


def inspect_raw(ref: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """``imagetools inspect --raw``: the manifest (list) a registry holds for ``ref``; callers read the
    status, since absent, refused and unreachable mean different things to each of them."""
    return tools.run(["docker", "buildx", "imagetools", "inspect", "--raw", ref], capture=True, check=False,
                     quiet=True, timeout=timeout)


def image_configs(ref: str, timeout: float | None = None) -> list[dict] | None:
    """The image configuration (os, architecture, labels …) of each platform of ``ref``; None when absent."""
    proc = tools.run(["docker", "buildx", "imagetools", "inspect", "--format", "{{json .Image}}", ref],
                     capture=True, check=False, quiet=True, timeout=timeout)
    if proc.returncode != 0:
        return None
    image = json.loads(proc.stdout)
    return [image] if "architecture" in image else list(image.values())  # one platform, or one per platform


def imagetools_create(tag: str, refs: list[str], *, capture: bool = False) -> None:
    """Make ``tag`` a manifest list of ``refs`` (tags or digests of the same registry), or a copy of one."""
    tools.run(_create_argv(tag, refs), capture=capture)


def _create_argv(tag: str, refs: list[str]) -> list[str]:
    return ["docker", "buildx", "imagetools", "create", f"--tag={tag}", *refs]


_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


def _distribution(ref: str, timeout: float) -> dict | None:
    """What a registry holds for ``ref`` (its manifest's descriptor and platforms, in the engine's answer's
    shape), or None when absent, refused or unreachable in time. Builds ask before every run."""
    registry = ref.split("/")[0]
    auth = _logins.get(registry)
    if auth and (found := _index(ref, auth, timeout)):
        return found
    try:  # one API call (~15 ms), where a buildx process takes ~0.1 s
        return _client(timeout).inspect_distribution(
            ref, auth_config={"username": auth.username, "password": auth.password} if auth else None)
    except (docker.errors.DockerException, requests.RequestException):
        return None


def _index(ref: str, auth: Credential, timeout: float) -> dict | None:
    """The answer for a multi-platform ``ref`` read with one GET from a registry this run logged into with a
    password (~4 ms: the engine's answer makes three authenticated requests); None for anything else (a
    token-auth registry, a single-platform manifest, an error), which the engine is then asked about."""
    registry, _, path = ref.partition("/")
    if "@" in path:
        repo, _, tag = path.partition("@")  # a digest
    else:
        repo, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "latest")
    host = registry.split(":")[0]
    scheme = "http" if host == "localhost" or host.startswith("127.") else "https"  # the engine's insecure default
    try:
        answer = _session().get(f"{scheme}://{registry}/v2/{repo}/manifests/{tag}", timeout=timeout,
                                auth=(auth.username, auth.password), headers={"Accept": ", ".join(_INDEX_TYPES)})
        digest = answer.headers.get("Docker-Content-Digest")
        if answer.status_code != 200 or answer.headers.get("Content-Type") not in _INDEX_TYPES or not digest:
            return None
        return {"Descriptor": {"digest": digest},
                "Platforms": [m["platform"] for m in answer.json().get("manifests", []) if "platform" in m]}
    except requests.RequestException:  # a body that is not JSON included
        return None


@functools.cache  # one connection pool per process
def _session() -> requests.Session:
    return requests.Session()


@functools.cache  # the engine's API version is asked once, not before every query
def _client(timeout: float) -> docker.APIClient:
    return docker.from_env(timeout=timeout).api


@functools.cache  # one registry query per image and run: the preflight, the pins and the fingerprints share it
def base_image(ref: str) -> dict | None:
    """The registry's answer for an image that builds start from (a base or builder image), asked once per run."""
    return _distribution(ref, 60)


def manifest_digest(ref: str) -> str:
    """The sha256 of the manifest a registry holds for ``ref`` (bare hex; this run's answer), or "unavailable"."""
    found = base_image(ref)
    return found["Descriptor"]["digest"].removeprefix("sha256:") if found else "unavailable"


def platforms_of(ref: str, timeout: float = 60, *, base: bool = False) -> list[str] | None:
    """The platforms a registry holds for ``ref`` (``linux/amd64`` …), or None when absent; ``base``: this
    run's answer for a base image (asked once), else a fresh one."""
    found = base_image(ref) if base else _distribution(ref, timeout)
    if found is None:
        return None
    return [f"{p['os']}/{p['architecture']}" for p in found.get("Platforms") or [] if p.get("os") != "unknown"]


@functools.cache
def private_config() -> Path:
    """This run's own DOCKER_CONFIG (0700, in the state directory), removed when the run ends.

    ``docker login`` stores the password there, never in the user's ~/.docker/config.json. It starts
    as a copy of the user's config, and links their plugins, builders and contexts, so their own logins,
    credential helpers and buildx keep working.
    """
    home = settings.state_dir() / "docker-config"
    home.mkdir(parents=True, exist_ok=True)
    for stale in home.iterdir():  # left by runs that were killed
        if not stale.name.isdigit() or not Path(f"/proc/{stale.name}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    mine = home / str(os.getpid())
    mine.mkdir(mode=0o700, exist_ok=True)
    users = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    if (users / "config.json").is_file():
        credentials.write_private(mine / "config.json", (users / "config.json").read_bytes())
    for shared in ("cli-plugins", "buildx", "contexts"):  # a user's buildx plugin, builders and contexts
        if (users / shared).is_dir() and not (mine / shared).exists():
            (mine / shared).symlink_to(users / shared)
    os.environ["DOCKER_CONFIG"] = str(mine)  # for every docker and buildx command this run starts
    atexit.register(shutil.rmtree, mine, ignore_errors=True)
    return mine


_logins: dict[str, Credential] = {}  # registry -> the credential this run logged in with


@functools.cache
def login(registry: str, cred: Credential) -> None:
    """``docker login`` (once per run) into this run's private config; the password goes via stdin."""
    private_config()
    tools.run(["docker", "login", "--username", cred.username, "--password-stdin", registry],
              input=cred.password, capture=True)
    _logins[registry] = cred  # for the engine's API calls, which do not read the CLI's config


def run(image: str, argv: list[str], *, platform: str | None = None, **kwargs) -> str:
    """Run a throw-away container and return its output; raise on a non-zero exit."""
    try:
        out = client().containers.run(image, argv, platform=platform, remove=True, stdout=True,
                                      stderr=True, **kwargs)
    except docker.errors.ContainerError as exc:
        raise CommandError(f"{' '.join(argv)} in {image} ({platform}) exited with "
                           f"{exc.exit_status}: {exc.stderr.decode(errors='replace')[-2000:]}") from None
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot run {image} ({platform}): {exc}") from None
    return out.decode(errors="replace")


def build_argv(*, dockerfile: Path, platform: str, tag: str, context: Path, push: bool = True,
               build_args: dict[str, str] | None = None, secrets: dict[str, Path] | None = None,
               options: list[str] | None = None, builder: str | None = None, output: str | None = None) -> list[str]:
    """The one ``docker buildx build`` command line: one platform, pushed (or loaded into the engine, or with
    ``output``, an exporter such as ``type=local,dest=DIR``, its files exported instead)."""
    destination = [f"--output={output}"] if output else [f"--tag={tag}", "--push" if push else "--load"]
    return ["docker", "buildx", "build", *([f"--builder={builder}"] if builder else []), f"--platform={platform}",
            f"--file={dockerfile}", *(options or []),
            *(f"--secret=id={k},src={v}" for k, v in (secrets or {}).items()), *destination,
            *(f"--build-arg={k}={v}" for k, v in (build_args or {}).items()), str(context)]


def export_argv(ref: str, platform: str, output: str, context: Path) -> list[str]:
    """The ``docker buildx build`` that exports the files of the image ``ref`` (``output``: an exporter such as
    ``type=local,dest=DIR``); its one-line Dockerfile is written into the empty folder ``context``."""
    (context / "Dockerfile").write_text(f"FROM {ref}\n")
    return build_argv(dockerfile=context / "Dockerfile", platform=platform, tag="", context=context, output=output)


def build_commands(*, dockerfile: Path, image: str, platforms: list[str], context: Path | None = None,
                   build_args: dict[str, str] | None = None, secrets: dict[str, Path] | None = None,
                   joined: list[str] | None = None, options: list[str] | None = None) -> list[list[str]]:
    """buildx commands that push one IMAGE-<arch> per platform, then join them (or ``joined``) into IMAGE."""
    commands = [build_argv(dockerfile=dockerfile, platform=p, tag=f"{image}-{p.split('/')[1]}",
                           context=context or dockerfile.parent, build_args=build_args, secrets=secrets,
                           options=options)
                for p in platforms]
    return [*commands, join_command(image, joined or platforms)]


def join_command(image: str, platforms: list[str]) -> list[str]:
    """The ``imagetools create`` that makes IMAGE a manifest list of its IMAGE-<arch> tags."""
    return _create_argv(image, [f"{image}-{p.split('/')[1]}" for p in platforms])


def ensure_image(image: str, platforms: list[str], *, dockerfile: Path, dry_run: bool,
                 build_args: dict[str, str] | None = None, secrets: dict[str, Path] | None = None,
                 anew: bool = False) -> bool:
    """Build the platforms of ``image`` that the registry lacks and join them with those it has (``anew``:
    build all of ``platforms`` again, without BuildKit's cache, and pull the result into the engine).

    True if anything was built. The join keeps the platforms already there: asking for arm64 alone
    must not drop amd64 from the tag.
    """
    have = [] if dry_run else platforms_of(image) or []
    missing = [p for p in platforms if p not in have or anew]
    if not missing:
        return False
    commands = build_commands(dockerfile=dockerfile, image=image, platforms=missing, build_args=build_args,
                              secrets=secrets, joined=sorted({*have, *platforms}),
                              options=["--no-cache"] if anew else None)
    if anew:  # containers start from the engine's copy of the tag, which the registry's new one replaces
        commands.append(["docker", "pull", "--quiet", image])
    if dry_run:
        print("\n".join(shlex.join(argv) for argv in commands))
        return True
    log = settings.state_dir() / "logs" / (re.sub(r"[^\w.-]", "_", image) + ".log")
    with task(image, f"building {', '.join(missing)}", log):
        for argv in commands:
            tools.run(argv)
    return True


def gpu_options(gpu: bool) -> dict:
    """``--gpus all`` for containers.run when a GPU and the NVIDIA container runtime are present."""
    if not gpu or "nvidia" not in client().info().get("Runtimes", {}):
        return {}
    return {"device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]}


def registry_credential() -> Credential:
    """The credential for the engine's registry (environment first, then the state directory)."""
    return credentials.load(settings.state_dir(), "registry")


def has_image(ref: str) -> bool:
    """True when the engine holds ``ref`` locally."""
    try:
        client().images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot inspect {ref}: {exc}") from None
    return True


def layers(ref: str, *, platform: str) -> list[tuple[int, str]]:
    """The layers of the image ``ref`` in the engine as (bytes, the instruction that made it), newest first;
    pulled first when the engine lacks it (pushed from a remote builder)."""
    try:
        try:
            history = client().api.history(ref)  # one API call: the build waits for it
        except docker.errors.NotFound:
            pull(ref, platform=platform, cred=registry_credential())
            history = client().api.history(ref)
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot read the layers of {ref}: {exc}") from None
    return [(h["Size"], h.get("CreatedBy", "")) for h in history if h.get("Size")]


def pull(ref: str, *, platform: str, cred: Credential | None = None) -> None:
    """Pull one platform of ``ref`` (with registry credentials when given)."""
    auth = {"username": cred.username, "password": cred.password} if cred else None
    try:
        client().images.pull(ref, platform=platform, auth_config=auth)
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot pull {ref} ({platform}): {exc}") from None
