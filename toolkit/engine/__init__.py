"""The local build engine: Docker, buildx, emulation, registry, index, channel server and base images.

``up`` brings up, in order and only where missing, everything the plan needs;
``status`` reports without changing anything; ``down`` stops only what the
toolkit itself started.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import channels, locks, settings
from ..matrix import Matrix
from ..plan import Plan
from . import baseimages, credentials, daemon, docker, host, services
from .host import Status

# Stopped in this order: dependents first.
SERVICES = (("channels", "channels-server"), ("index", "index"), ("registry", "registry"), ("dockerd", ""))


def _addresses(m: Matrix) -> tuple[str, str, str]:
    return (services.registry_address(m.publish.image_repository), services.index_address(m.publish.index_url),
            services.index_address(m.publish.channel_url))


def up(m: Matrix, plan: Plan, state: Path) -> list[Status]:
    """Bring up every component the plan needs; return their statuses."""
    with locks.hold(state / "engine", f"the engine state in {state}"):
        return _up(m, plan, state)


def _up(m: Matrix, plan: Plan, state: Path) -> list[Status]:
    registry, index, channel_server = _addresses(m)
    archs = sorted({a.build.arch for a in plan.artifacts}, key=lambda a: a.value)
    found = [daemon.ensure_dockerd(state), daemon.ensure_buildx(state), daemon.ensure_binfmt(archs, state)]
    registry_cred = credentials.load(state, "registry")
    found.append(services.ensure_registry(state, registry, registry_cred))
    found.append(services.ensure_index(state, index, credentials.load(state, "index")))
    found.append(services.ensure_channels(state, channel_server, channels.local_root(m, state)))
    images = baseimages.needed(m, plan)
    found += [baseimages.ensure(state, image) for image in images]
    found[2] = _verify_emulation(found[2], images, registry_cred)
    return found


def _verify_emulation(emulation: Status, images: list[baseimages.BaseImage],
                      cred: credentials.Credential) -> Status:
    """Run ``uname -m`` in a container of each emulated platform that a base image offers."""
    seen = []
    for arch in {a for image in images for a in image.archs if a is not daemon.host_arch()}:
        image = next((i for i in images if arch in i.archs and baseimages.status(i).up), None)
        if image is None:
            continue
        docker.pull(image.resolved, platform=arch.platform, cred=cred)
        machine = docker.run(image.resolved, ["uname", "-m"], platform=arch.platform).strip()
        seen.append(f"{arch.platform} runs ({machine})")
    return dataclasses.replace(emulation, detail="; ".join(seen) or emulation.detail)


def login(m: Matrix, state: Path) -> None:
    """Log this run in to the matrix's registry, where the toolkit knows the credential: its own local
    registry when it answers, or any registry named with TOOLKIT_REGISTRY_USERNAME/PASSWORD.

    Logins last for the run only (a private DOCKER_CONFIG), so every command that pushes or reads
    images logs in again.
    """
    address = services.registry_address(m.publish.image_repository)
    own = services.is_local(address) and host.port_open(*services.split_address(address))
    if own or settings.env_credentials(settings.REGISTRY_USER_ENV, settings.REGISTRY_PASSWORD_ENV):
        docker.login(address, credentials.load(state, "registry"))


def status(m: Matrix, plan: Plan, state: Path) -> list[Status]:
    """Report every component without starting or installing anything."""
    registry, index, channel_server = _addresses(m)
    found = [daemon.dockerd_status(state), daemon.buildx_status(), daemon.binfmt_status(),
             services.registry_status(state, registry), services.index_status(state, index),
             services.channels_status(state, channel_server)]
    images = baseimages.needed(m, plan)
    if found[0].up:
        login(m, state)  # the mirror tags of the base images are read from the registry
        return found + [baseimages.status(image) for image in images]
    return found + [Status(name=f"image {i.public}", up=False, detail="docker is down") for i in images]


def down(state: Path) -> list[str]:
    """Stop the services the toolkit started, by pid; return their names."""
    with locks.hold(state / "engine", f"the engine state in {state}"):
        return [name for name, sub in SERVICES if host.stop_service(name, state / sub if sub else state)]
