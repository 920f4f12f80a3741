"""Before a build: which planned artifacts this machine cannot build, because a base image is out of reach.

Asked before anything is built, so that a selection that names an unreachable base image (a public
``nvidia/cuda`` image without a registry that serves it) fails in seconds with what to do, instead of
minutes later inside BuildKit with a DNS error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .console import step
from .engine import docker
from .errors import EngineError
from .matrix import Arch, Matrix
from .plan import Artifact, ImageArtifact, Plan

_PUBLIC_TIMEOUT = 30  # seconds to decide that a public registry is out of reach


def blocked(m: Matrix, artifacts: Iterable[Artifact]) -> dict[str, str]:
    """Artifact id -> why it cannot be built here, for those of ``artifacts`` whose base images are missing."""
    held: dict[str, list[str]] = {}  # image name -> the platforms its registry holds (one query per name)

    def platforms(ref: str, timeout: float | None = None) -> list[str]:
        if ref not in held:
            held[ref] = (docker.platforms_of(ref, timeout) if timeout else docker.platforms_of(ref, base=True)) or []
        return held[ref]

    out = {}
    for a in artifacts:
        why = "; ".join(dict.fromkeys(r for n in _bases(a) if (r := _why_unavailable(m, n, a.build.arch, platforms))))
        if why:
            out[a.id] = why
    return out


def unmade(m: Matrix, artifact: Artifact) -> str:
    """Why ``artifact`` cannot be built wherever its base images must be bootstrapped ('' if it can): a
    [bootstrap] recipe that does not make its arch. Known from the matrix alone, for the support matrix."""
    return "; ".join(f"{public} for {artifact.build.platform}: {recipe.why_not()}" for public in _bases(artifact)
                     if (recipe := m.bootstrap.get(public)) and not recipe.makes(artifact.build.arch))


def public_only(m: Matrix, artifact: Artifact) -> list[str]:
    """The base images of ``artifact`` that come from their public registry alone: no [mirror] copy, no
    [bootstrap] recipe (``nvidia/cuda`` where Docker Hub or NGC cannot be reached). From the matrix alone."""
    return [public for public in _bases(artifact) if public not in m.mirror and public not in m.bootstrap]


def _bases(a: Artifact) -> list[str]:
    """The public names of the images building ``a`` starts from."""
    return [a.build.build_image_public] + ([a.runtime_image_public] if isinstance(a, ImageArtifact) else
                                           [a.sysroot_image_public] if a.sysroot_image_public else [])


def _why_unavailable(m: Matrix, public: str, arch: Arch, platforms: Callable[..., list[str]]) -> str:
    """'' when a build can start from ``public`` (by its mirror name) for ``arch``, else why not."""
    resolved, platform, recipe = m.image(public), arch.platform, m.bootstrap.get(public)
    if platform in platforms(resolved):
        return ""
    if resolved != public:
        if (recipe and recipe.makes(arch)) or platform in platforms(public, _PUBLIC_TIMEOUT):
            return f"{resolved} lacks {platform}: run `toolkit engine up` first (it makes the mirror copy)"
        return (f"base image {public} ({platform}) is neither in its mirror {resolved} nor reachable here, and "
                + (recipe.why_not() if recipe else "[bootstrap] has no recipe for it"))
    if platform in platforms(public, _PUBLIC_TIMEOUT):
        return ""
    return (f"base image {public} ({platform}) cannot be pulled here: name a copy you can reach in [mirror] "
            "(and a Debian suite in [bootstrap] where it is a plain Debian image)")


def refuse(m: Matrix, plan: Plan, found: dict[str, str]) -> EngineError:
    """The error that lists every artifact this machine cannot build, with what to do instead."""
    cut = {a.build.cuda for a in plan.artifacts if a.id in found}
    buildable = [v for v in dict.fromkeys(a.build.cuda for a in plan.artifacts) if v not in cut]
    hint = f"select what can be built (--cuda {','.join(buildable)}), or " if buildable else ""
    return EngineError(f"{len(found)} planned artifact(s) cannot be built on this machine:\n"
                       + "\n".join(f"  {artifact}: {why}" for artifact, why in found.items())
                       + f"\n{hint}pass --skip-unavailable to build the rest and report these as not built")


def settle(m: Matrix, plan: Plan, missing: dict[str, str], skip_unavailable: bool) -> list[dict]:
    """Stop with every reason, or with ``skip_unavailable`` report each as not built: its ``not_built`` record."""
    if missing and not skip_unavailable:
        raise refuse(m, plan, missing)
    for artifact, why in missing.items():
        step(f"{artifact}: not built here: {why}")
    return [{"id": artifact, "not_built": why} for artifact, why in missing.items()]
