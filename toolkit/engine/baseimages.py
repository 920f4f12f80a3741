"""Engine component 6: every base image the plan names, on every platform it needs.

An image is taken from its mirror name when the mirror has it, copied there from
its public name when that is reachable, and otherwise made from Debian with
``debootstrap`` (per platform, pushed, joined into one multi-arch tag) when the
matrix gives a ``[bootstrap]`` recipe for it: a suite, and for a stand-in of a
richer image (a CUDA devel image from Debian's non-free ``nvidia-cuda-toolkit``)
its components, packages and links. The rootfs tarballs are cached by recipe, and
the mirror tag once pushed is found there, so a second ``engine up`` builds nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path

from .. import tools
from ..console import step
from ..matrix import Arch, Bootstrap, Matrix
from ..plan import ImageArtifact, Plan
from . import docker
from .host import Status, apt_install

DEBIAN_MIRROR = "http://deb.debian.org/debian"
_PUBLIC_TIMEOUT = 30  # seconds to decide that a public registry is out of reach


@dataclasses.dataclass(frozen=True, kw_only=True)
class BaseImage:
    """A public image name, the name pulled instead, and the platforms the plan needs."""

    public: str
    resolved: str
    archs: tuple[Arch, ...]
    recipe: Bootstrap | None

    @property
    def platforms(self) -> set[str]:
        """The OCI platforms needed."""
        return {a.platform for a in self.archs}


def needed(m: Matrix, plan: Plan) -> list[BaseImage]:
    """The base images of every planned artifact and its smoke tests, with the archs that use them."""
    archs: dict[str, set[Arch]] = {}
    for artifact in plan.artifacts:
        names = [artifact.build.build_image_public]
        if isinstance(artifact, ImageArtifact):
            names.append(artifact.runtime_image_public)
        else:  # smoke tests install wheels into clean interpreters
            names += [m.python_image[p] for p in artifact.pythons if p in m.python_image]
            names += [artifact.sysroot_image_public] if artifact.sysroot_image_public else []
        for name in names:
            archs.setdefault(name, set()).add(artifact.build.arch)
    return [BaseImage(public=name, resolved=m.image(name), recipe=m.bootstrap.get(name),
                      archs=tuple(sorted(found, key=lambda a: a.value))) for name, found in archs.items()]


def status(image: BaseImage) -> Status:
    """Up when the resolved name has every needed platform."""
    have = set(docker.platforms_of(image.resolved) or ())
    missing = sorted(image.platforms - have)
    unmade = image.recipe and any(not image.recipe.makes(a) for a in image.archs if a.platform in missing)
    return Status(name=f"image {image.public}", up=not missing, address=image.resolved,
                  started_by="toolkit" if image.resolved != image.public and not missing else "",
                  detail=(f"missing {', '.join(missing)}" + (f"; {image.recipe.why_not()}" if unmade else ""))
                  if missing else ", ".join(sorted(have)))


def ensure(state: Path, image: BaseImage) -> Status:
    """Make ``image`` available under its resolved name, or say why it cannot be."""
    current = status(image)
    if current.up:
        return current
    if image.resolved != image.public:
        public = set(docker.platforms_of(image.public, timeout=_PUBLIC_TIMEOUT) or ())
        if image.platforms <= public:
            step(f"copying {image.public} to {image.resolved}")
            docker.imagetools_create(image.resolved, [image.public])
            return _written(image)
        if image.recipe:
            _bootstrap(state, image)
            current = _written(image)
            if current.up:
                return current
    return dataclasses.replace(current, detail=(  # a recipe's missing platforms are those it does not make
        f"{current.detail}: {image.public} is not reachable"
        + ("" if image.resolved != image.public else " and [mirror] names no copy")
        + ("" if image.recipe else ", and [bootstrap] has no recipe for it")))


def _written(image: BaseImage) -> Status:
    docker.base_image.cache_clear()  # an answer this run was given for it before the copy is stale
    return status(image)


def _bootstrap(state: Path, image: BaseImage) -> None:
    """Build the platforms the tag lacks that the recipe makes; the join keeps those it has (a plan may
    need fewer)."""
    recipe = image.recipe
    have = set(docker.platforms_of(image.resolved) or ())
    made = {a.platform for a in image.archs if recipe.makes(a)}
    for arch in (a for a in image.archs if a.platform in made - have):
        rootfs = _rootfs(state / "rootfs", recipe, arch)
        context = state / "baseimages" / rootfs.stem
        context.mkdir(parents=True, exist_ok=True)
        (context / "rootfs.tar").unlink(missing_ok=True)
        os.link(rootfs, context / "rootfs.tar")
        (context / "Dockerfile").write_text(_dockerfile(recipe))
        step(f"building {image.resolved} for {arch.platform} from the {recipe.suite} rootfs"
             + (f" with {' '.join(recipe.packages)} (minutes: apt downloads them)" if recipe.packages else ""))
        tools.run(docker.build_commands(dockerfile=context / "Dockerfile", image=image.resolved,
                                        platforms=[arch.platform])[0])
    if made - have:
        tools.run(docker.join_command(image.resolved, sorted(have | made)))


def _dockerfile(recipe: Bootstrap) -> str:
    """The image of a rootfs: the recipe's packages from its suite's archive, then its links."""
    lines = ["FROM scratch", "ADD rootfs.tar /"]
    if recipe.packages:
        lines.append("RUN apt-get update \\\n && DEBIAN_FRONTEND=noninteractive apt-get install -y "
                     f"--no-install-recommends {' '.join(recipe.packages)} \\\n && rm -rf /var/lib/apt/lists/*")
    for path, target in recipe.links.items():
        lines.append(f"RUN mkdir -p {Path(path).parent} && ln -sfn {target} {path}")
    return "\n".join([*lines, 'CMD ["bash"]']) + "\n"


def _rootfs(cache: Path, recipe: Bootstrap, arch: Arch) -> Path:
    """A minbase rootfs tarball of the recipe's suite and components for ``arch``, built once per recipe."""
    suite = recipe.suite
    components = [f"--components={','.join(recipe.components)}"] if recipe.components != ("main",) else []
    command = ["debootstrap", "--variant=minbase", f"--arch={arch.docker}", *components, suite]
    key = hashlib.sha256(" ".join([*command, DEBIAN_MIRROR]).encode()).hexdigest()[:12]
    tarball = cache / f"{suite}-{arch.docker}-{key}.tar"
    if tarball.exists():
        return tarball
    if tools.which("debootstrap") is None:
        apt_install(["debootstrap"], "building base images")
    root = cache / f"{tarball.stem}.d"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    step(f"debootstrap {suite} for {arch.docker} (a minute or two; {arch.value} runs under QEMU "
         "when it is not the host's)")
    tools.run([*command, root, DEBIAN_MIRROR], capture=True)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (root / junk).glob("*"):
            if path.is_file():
                path.unlink()
    partial = tarball.with_suffix(".partial")
    tools.run(["tar", "--numeric-owner", "-C", root, "-cf", partial, "."])
    partial.rename(tarball)
    shutil.rmtree(root)
    return tarball
