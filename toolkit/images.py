"""``toolkit images``: one BuildKit build per planned platform, joined into one multi-arch tag.

Each build uses the framework's rendered Dockerfile, the matrix's values as
``--build-arg`` (mirrors substituted for public base names), the host CA bundle
as a secret, OCI labels, pip/apt cache mounts and a metadata file whose digest
goes into the release manifest. Platforms of one tag build in parallel.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import shlex
import tempfile
import time
from pathlib import Path

from . import fingerprint, patches, preflight, provenance, render, resolve, sccache, settings, tools, wheels
from .console import step, task
from .engine import docker
from .engine.daemon import host_arch
from .errors import BuildError, CommandError
from .manifest import Manifest, now
from .matrix import Matrix
from .plan import ImageArtifact, Plan, Selection, make_plan


def last_commit(m: Matrix, framework: str, root: Path) -> tuple[str, str]:
    """The last commit that changed a framework's image inputs, and its time (not the clock's): an image
    whose inputs did not change gets the same labels, hence the same digest, at every commit."""
    if not tools.which("git"):
        return "", ""
    inputs = [render.image_dockerfile(framework), "matrix.toml",
              *(m.package[w].path for w in m.framework[framework].wheels)]
    revision, _, created = tools.run(["git", "log", "-1", "--format=%H %cI", "--", *inputs], cwd=root,
                                     capture=True, quiet=True, check=False).stdout.strip().partition(" ")
    return revision, created


def labels(m: Matrix, image: ImageArtifact, root: Path, commit: tuple[str, str] | None = None) -> dict[str, str]:
    """OCI labels plus the CUDA version, GPU archs and framework of the image (``commit``: its framework's
    ``last_commit``, when already found)."""
    revision, created = commit or last_commit(m, image.framework, root)
    return {"org.opencontainers.image.source": m.project.source,
            "org.opencontainers.image.revision": revision,
            "org.opencontainers.image.version": m.project.version,
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.title": f"{m.project.name}-{image.framework}",
            "io.gpu-toolkit.cuda": image.build.cuda,
            "io.gpu-toolkit.gpu-archs": image.build.torch_arch_list,
            "io.gpu-toolkit.framework": image.framework,
            "io.gpu-toolkit.artifact": image.id}


def build_command(m: Matrix, image: ImageArtifact, root: Path, dist: Path, metadata: Path, *,
                  push: bool, builder: str | None, target: str = "runtime",
                  pins: dict[str, str] | None = None, cache: Path | None = None,
                  commit: tuple[str, str] | None = None) -> list[str]:
    """The ``docker buildx build`` of one image artifact (one platform); ``pins`` (reference -> sha256) name
    the base images by digest too, so that the build uses the very ones its provenance records; ``cache``:
    sccache's settings file, the secret that makes the wheel-build stage compile through sccache;
    ``commit``: its framework's ``last_commit``, when already found."""
    args = render.image_build_args(m, image.framework, image.build.cuda)
    pinned = {ref: f"{ref}@sha256:{digest}" for ref, digest in (pins or {}).items() if digest != "unavailable"}
    args["BUILD_IMAGE"], args["RUNTIME_IMAGE"] = (pinned.get(ref, ref)
                                                  for ref in (image.build.build_image, image.runtime_image))
    options = [f"--target={target}", f"--metadata-file={metadata}",
               *(f"--label={k}={v}" for k, v in labels(m, image, root, commit).items() if v)]
    return docker.build_argv(dockerfile=root / render.image_dockerfile(image.framework), platform=image.build.platform,
                             tag=platform_tag(image), context=dist, push=push, build_args=args,
                             secrets={"ca": settings.ca_mount(), **({"sccache": cache} if cache else {})},
                             options=options, builder=builder)


def build_tag(image: ImageArtifact) -> str:
    """The multi-arch tag a pushed build gets (``…:0.1.0-cu130-build``); it moves with every build.

    The release tags (``…:0.1.0-cu130``, immutable, and ``…:cu130``) are made by ``toolkit publish``
    only, after the smoke tests passed.
    """
    return f"{image.tag}-build"


def platform_tag(image: ImageArtifact) -> str:
    """The per-platform tag that the multi-arch tag joins (``…:0.1.0-cu130-arm64``)."""
    return f"{image.tag}-{image.build.arch.docker}"


LARGEST_LAYERS = 5


def size(image: ImageArtifact) -> dict:
    """The built image's size in the engine (uncompressed, as ``docker images`` shows it) and its largest
    layers, each with the instruction that made it."""
    found = docker.layers(platform_tag(image), platform=image.build.platform)
    largest = sorted(found, key=lambda layer: layer[0], reverse=True)[:LARGEST_LAYERS]
    return {"size_mb": round(sum(n for n, _ in found) / 1e6, 1),
            "largest_layers": [{"mb": round(n / 1e6, 1), "instruction": _instruction(made_by)}
                               for n, made_by in largest]}


def _instruction(made_by: str) -> str:
    """A layer's instruction on one line: BuildKit writes a RUN as ``RUN |N ARG=value … /bin/sh -c COMMAND``
    (values may hold spaces), so the command is what follows the shell."""
    _, shell, command = made_by.partition("/bin/sh -c ")
    text = (f"RUN {command}" if shell else made_by).removesuffix(" # buildkit")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= 100 else text[:99] + "…"


def over_budget(m: Matrix, image: ImageArtifact, measured: dict) -> str | None:
    """Why the image is too large for its framework's ``max-size-mb``, naming its largest layers; None if not."""
    if not image.max_size_mb or measured["size_mb"] <= image.max_size_mb:
        return None
    layers = "; ".join(f"{layer['mb']} MB {layer['instruction']}" for layer in measured["largest_layers"])
    return (f"{image.id}: the image is {measured['size_mb']} MB, over the {image.max_size_mb} MB limit of "
            f"framework.{image.framework}.max-size-mb in {m.source}; largest layers: {layers}")


def _run_build(argv: list[str], image: ImageArtifact, metadata: Path, log: Path,
               cache: bool) -> tuple[float, str, str, dict | None]:
    """Seconds, digest, start time, and the compiler cache's counters when the wheel-build stage ran."""
    started, started_at = time.monotonic(), now()
    try:
        with task(image.id, f"docker buildx build ({image.build.platform})", log):
            tools.run(argv)
    except CommandError as exc:
        raise BuildError(f"{image.id}: {exc}") from None
    digest = json.loads(metadata.read_text()).get("containerimage.digest", "")
    stats = sccache.from_build_log(log.read_text(errors="replace"), cache) if log.is_file() else None
    return round(time.monotonic() - started, 1), digest, started_at, stats


def build(m: Matrix, plan: Plan, root: Path, dist: Path, *, push: bool = False, dry_run: bool = False,
          builder: str | None = None, parallel: bool = True, force: bool = False,
          skip_unavailable: bool = False, cache: bool = True) -> list[dict]:
    """Build every planned image whose inputs changed (its wheels first); return the manifest records.

    As for wheels, images this machine cannot build stop the run first, or are reported as ``not_built``.
    """
    if not plan.images:
        return []
    build_wheels = bool(plan.wheels) and not dry_run  # the wheels the images contain; that checks the rendered files
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as side:
        # The labels' git query per framework (first: a process of its own, it runs while Python works),
        # registry queries and the resolver (a framework whose requirements have no binary wheel for a
        # platform would fail there after many minutes), while the files are checked.
        commits = {fw: side.submit(last_commit, m, fw, root) for fw in dict.fromkeys(i.framework for i in plan.images)}
        asked = side.submit(preflight.blocked, m, plan.images)
        resolved = side.submit(resolve.run, m, plan)
        if not build_wheels:
            render.check(m, root, for_build=True)
        unreachable, uninstallable = asked.result(), resolve.blocked(plan, resolved.result())
        blocked = {i: "; ".join(filter(None, (unreachable.get(i), uninstallable.get(i))))
                   for i in {**unreachable, **uninstallable}}  # both reasons where a cell has both
    if blocked and not skip_unavailable:  # before the wheels: one message names everything
        raise preflight.refuse(m, plan, {**preflight.blocked(m, plan.wheels), **blocked})
    unbuilt = {}
    if build_wheels:
        unbuilt = {r["id"]: r["not_built"] for r in wheels.build(m, Plan(wheels=plan.wheels, images=()), root, dist,
                                                                  skip_unavailable=skip_unavailable, cache=cache)
                   if "not_built" in r}
    manifest = Manifest(dist / "manifest.json")
    patched = {image.id: patches.make(m, image, root, dist) for image in plan.images
               if image.patches and image.id not in blocked and not dry_run}
    records, todo, bases = [], [], {}
    for image in plan.images:
        bases[image.id] = {ref: docker.manifest_digest(ref) for ref in (image.build.build_image, image.runtime_image)}
        contained = [manifest.get(w).get("sha256", "") for w in image.wheels] + \
            ([patched[image.id]["sha256"]] if image.id in patched else [])
        fp = fingerprint.image(image, root, contained, list(bases[image.id].values()))
        record = manifest.get(image.id)
        if not force and not dry_run and record.get("fingerprint") == fp and record.get("pushed", False) >= push \
                and {"provenance", "size_mb"} <= set(record):  # one recorded without them is built again
            step(f"{image.id}: up to date ({record['digest'][:19]})")
            records.append({"id": image.id, **record, "up_to_date": True})
        else:
            todo.append((image, fp))
    missing = {image.id: blocked[image.id] for image, _ in todo if image.id in blocked}
    missing.update({image.id: f"its wheel {w} was not built" for image, _ in todo for w in image.wheels
                    if w in unbuilt and image.id not in missing})
    records += preflight.settle(m, plan, missing, skip_unavailable)
    todo = [(image, fp) for image, fp in todo if image.id not in missing]
    if not todo:
        return sorted(records, key=lambda r: r["id"])
    with tempfile.TemporaryDirectory(prefix="images-") as tmp, sccache.settings_file(cache) as cache_settings:
        jobs = [(image, Path(tmp) / f"{i}.json") for i, (image, _) in enumerate(todo)]
        prints = dict((image.id, fp) for image, fp in todo)
        mode = {image.id: "native" if image.build.arch is host_arch() else "emulated" for image, _ in todo}
        commands = [(image, build_command(m, image, root, dist, meta, push=push, builder=builder,
                                          pins=bases[image.id], cache=cache_settings,
                                          commit=commits[image.framework].result()), meta) for image, meta in jobs]
        if dry_run:
            for _, argv, _ in commands:
                print(shlex.join(argv))
            return []
        dist.mkdir(parents=True, exist_ok=True)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2 if parallel else 1) as pool, \
                concurrent.futures.ThreadPoolExecutor(max_workers=1) as side:
            logs = dist / "logs"
            logs.mkdir(exist_ok=True)
            futures = {pool.submit(_run_build, argv, image, meta, logs / f"{image.id.replace(':', '_')}.log",
                                   cache): image for image, argv, meta in commands}
            # What the records need and the builds do not (git queries) is found while they run.
            inputs = {image.id: side.submit(provenance.inputs, m, image, root, mode=mode[image.id],
                                            base_images=bases[image.id]) for image, _ in todo}
            too_large = []
            for future in concurrent.futures.as_completed(futures):
                image = futures[future]
                seconds, digest, started_at, compiled = future.result()
                measured = size(image)
                biggest = "".join(f"; largest layer {layer['mb']} MB: {layer['instruction']}"
                                  for layer in measured["largest_layers"][:1])  # none in an empty image
                step(f"{image.id}: {measured['size_mb']} MB in {seconds} s{biggest}")
                if problem := over_budget(m, image, measured):
                    too_large.append(problem)  # not recorded: nothing may smoke-test or publish it
                    continue
                record = {"kind": "image", "tag": image.tag, "platform_tag": platform_tag(image),
                          "build_tag": build_tag(image) if push else "",
                          "fingerprint": prints[image.id],
                          "platform": image.build.platform, "digest": digest, "pushed": push,
                          "cuda": image.build.cuda, "framework": image.framework, "build_seconds": seconds,
                          "build_mode": mode[image.id], "build_started_at": started_at, "built_at": now(),
                          **measured,
                          "wheels": [manifest.get(w).get("sha256") for w in image.wheels],
                          **({"patched_wheel": patched[image.id]} if image.id in patched else {}),
                          "provenance": inputs[image.id].result(),
                          # None: the wheel-build stage came from BuildKit's cache (nothing compiled)
                          "compiler_cache": compiled}
                manifest.record(image.id, **record)
                records.append({"id": image.id, **record})
    if too_large:
        raise BuildError("\n".join(sorted(too_large)))
    if push:
        join(plan, make_plan(m, Selection()), manifest, strict=False)
    return sorted(records, key=lambda r: r["id"])


def join(plan: Plan, whole: Plan, manifest: Manifest, *, strict: bool) -> list[str]:
    """Make each selected image's build tag from every platform that the (merged) manifest records as pushed.

    A tag waits until all of its planned platforms (``whole``: the unselected plan) are pushed, so that one
    runner's build never drops the others' platforms; ``strict`` (``--join``, after every runner) makes a
    platform never pushed, or a digest the registry does not hold, an error. Returns the tags made.
    """
    problems, made = [], []
    for image in {build_tag(i): i for i in plan.images}.values():
        repo = image.tag.rsplit(":", 1)[0]
        pushed = {r["platform"]: r["digest"] for r in manifest.data["artifacts"].values()
                  if r.get("kind") == "image" and r.get("tag") == image.tag and r.get("pushed") and r.get("digest")}
        missing = sorted({i.build.platform for i in whole.images if i.tag == image.tag} - set(pushed))
        if missing:
            if strict:
                problems.append(f"{build_tag(image)}: {', '.join(missing)} never pushed (no pushed record in "
                                f"{manifest.path}); run `toolkit images --push` for it first")
            else:
                step(f"{build_tag(image)}: joined once {', '.join(missing)} are pushed too (`toolkit images --join`)")
            continue
        step(f"joining {build_tag(image)} from {len(pushed)} platform(s)")
        try:
            docker.imagetools_create(build_tag(image), [f"{repo}@{d}" for _, d in sorted(pushed.items())],
                                     capture=True)
        except CommandError as exc:
            problems.append(f"{build_tag(image)}: the registry does not hold every pushed platform "
                            f"({', '.join(sorted(pushed))}): {exc}")
            continue
        made.append(build_tag(image))
    if problems:
        raise BuildError("\n".join(problems))
    return made
