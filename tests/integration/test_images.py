"""Framework images: real BuildKit builds, a real registry, and what ends up in the layers."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import docker
import pytest

from toolkit import images, settings, tools
from toolkit.engine import credentials
from toolkit.engine import docker as adapter
from toolkit.errors import BuildError
from toolkit.manifest import Manifest
from toolkit.plan import Selection, make_plan

pytestmark = pytest.mark.integration

TAG = "127.0.0.1:5000/gpu-toolkit/none:0.1.0-cu130-build"  # what `toolkit images --push` joins


def test_multi_arch_tag_holds_both_platforms(built_images):
    assert sorted(adapter.platforms_of(TAG)) == ["linux/amd64", "linux/arm64"]
    _, records = built_images
    assert {r["platform"] for r in records.values()} == {"linux/amd64", "linux/arm64"}
    assert all(r["digest"].startswith("sha256:") for r in records.values())


def test_a_join_fails_for_a_platform_the_registry_never_received(built_images, repo_matrix, tmp_path):
    dist, records = built_images
    manifest = Manifest(tmp_path / "manifest.json")
    manifest.data["artifacts"] = json.loads((dist / "manifest.json").read_text())["artifacts"]
    # the aarch64 runner's fragment says pushed, but its push never reached the registry
    manifest.record("image:none:cu130:aarch64", digest="sha256:" + "0" * 64)
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("none",)))
    with pytest.raises(BuildError, match="does not hold every pushed platform"):
        images.join(plan, make_plan(repo_matrix, Selection()), manifest, strict=True)
    assert sorted(adapter.platforms_of(TAG)) == ["linux/amd64", "linux/arm64"]  # the build tag was left as it was
    manifest.record("image:none:cu130:aarch64", digest=records["image:none:cu130:aarch64"]["digest"])
    assert images.join(plan, make_plan(repo_matrix, Selection()), manifest, strict=True) == [TAG]


@pytest.mark.parametrize("platform, machine", [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")])
def test_each_platform_runs_and_imports_the_wheel(built_images, platform, machine):
    adapter.pull(TAG, platform=platform, cred=adapter.registry_credential())
    out = adapter.run(TAG, ["sh", "-c", "uname -m && python -m saxpy --info"], platform=platform)
    first, rest = out.split("\n", 1)
    assert first == machine
    info = json.loads(rest)
    assert info["version"] == "0.1.0+cu130" and info["machine"] == machine


def test_labels_carry_cuda_archs_and_framework(built_images, request):
    adapter.pull(TAG, platform="linux/amd64", cred=adapter.registry_credential())  # this build's, not an older pull
    image = docker.from_env().images.get(TAG)
    labels = image.labels
    # The last commit that changed this framework's inputs (its Dockerfile, the matrix, its wheel's source).
    last = subprocess.run(["git", "log", "-1", "--format=%H %cI", "--", "container/Dockerfile.none", "matrix.toml",
                           "examples/saxpy"], cwd=request.config.rootpath, capture_output=True, text=True, check=True)
    assert [labels["org.opencontainers.image.revision"], labels["org.opencontainers.image.created"]] == \
        last.stdout.split()
    assert labels["io.gpu-toolkit.cuda"] == "13.0"
    assert labels["io.gpu-toolkit.gpu-archs"] == "7.5;8.0;8.6;8.9;9.0a;10.0;12.0+PTX"
    assert labels["io.gpu-toolkit.framework"] == "none"
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert "TORCH_CUDA_ARCH_LIST=7.5;8.0;8.6;8.9;9.0a;10.0;12.0+PTX" in image.attrs["Config"]["Env"]


def _proxy_certificate_line() -> str:
    """A base64 line of a certificate that is in the host bundle but in no public one."""
    import certifi

    public = open(certifi.where()).read()
    bundle = settings.ca_bundle()
    assert bundle is not None
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----\n(.*?)-----END", bundle.read_text(), re.S)
    private = [b for b in blocks if b.splitlines()[1] not in public]
    return (private or blocks)[-1].splitlines()[1]


def test_no_credential_or_ca_bundle_in_layers_or_history(built_images, engine_up):
    needles = [credentials.load(engine_up, "registry").password, credentials.load(engine_up, "index").password,
               _proxy_certificate_line()]
    for platform in ("linux/amd64", "linux/arm64"):
        adapter.pull(TAG, platform=platform, cred=adapter.registry_credential())
        history = tools.run(["docker", "history", "--no-trunc", TAG], capture=True, quiet=True).stdout
        saved = subprocess.run(["docker", "save", TAG], capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
            layers = [outer.extractfile(m).read() for m in outer.getmembers() if m.isfile()]
        files = []
        for blob in layers:
            try:
                with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
                    files += [layer.extractfile(m).read() for m in layer.getmembers() if m.isfile()]
            except tarfile.ReadError:
                files.append(blob)  # config and manifest JSON
        assert files and history
        for needle in needles:
            assert needle not in history
            assert not any(needle.encode() in content for content in files), f"secret found in {platform}"


def test_an_unchanged_rebuild_comes_from_cache(built_images, repo_matrix, request):
    dist, records = built_images
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("none",), arch=("x86_64",)))
    (again,) = images.build(repo_matrix, plan, request.config.rootpath, dist, push=True, force=True)
    assert again["digest"] == records["image:none:cu130:x86_64"]["digest"]
    # Every step comes from the cache, the wheel-build stage too: the manifest and the logs that changed in
    # the build context since (dist/) are not part of it.
    log = (dist / "logs" / "image_none_cu130_x86_64.log").read_text()
    steps = re.findall(r"^#(\d+) \[(?!internal|auth)[^]]+\] (?:RUN|COPY)", log, re.M)
    assert "wheel-build" in log and steps
    assert [s for s in steps if f"#{s} CACHED" not in log] == [], log


def test_rendered_dockerfiles_pass_hadolint(request):
    root = request.config.rootpath
    dockerfiles = sorted(p for p in (root / "container").glob("Dockerfile.*") if p.suffix != ".dockerignore")
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    out = subprocess.run([hadolint, "--config", str(root / ".hadolint.yaml"), *map(str, dockerfiles)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dry_run_prints_commands_and_builds_nothing(repo_matrix, request, tmp_path, capsys):
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("vllm",)))
    assert images.build(repo_matrix, plan, request.config.rootpath, tmp_path, dry_run=True) == []
    out = capsys.readouterr().out
    assert "--build-arg=REQUIREMENTS=vllm==0.32.0" in out and "--platform=linux/arm64" in out
    assert not (tmp_path / "manifest.json").exists()


@pytest.mark.slow
def test_vllm_image_has_the_version_the_matrix_asks_for(engine_up, repo_matrix, request, tmp_path):
    """`nox -s images -- --framework vllm --arch x86_64`: a real vLLM from its pip requirement, its wheel with
    the project's patch (0.32.0+gpu.toolkit), which both the module and the installed distribution report."""
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("vllm",), arch=("x86_64",)))
    (record,) = images.build(repo_matrix, plan, request.config.rootpath, tmp_path)
    print(f"vllm image: {record['build_seconds']} s")
    wanted = repo_matrix.patched("vllm").split("==")[1]
    assert record["patched_wheel"]["changed"] == ["vllm/_version.py"]
    out = adapter.run(record["platform_tag"], ["python", "-c", "import importlib.metadata as md, vllm; "
                                               "print(vllm.__version__, md.version('vllm'))"], platform="linux/amd64")
    assert out.strip().splitlines()[-1] == f"{wanted} {wanted}"


def test_image_smoke_checks_arch_arch_list_and_version(built_images, repo_matrix):
    from toolkit import smoke

    dist, _ = built_images
    plan = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("none",)))
    runs = [r for r in smoke.smoke(repo_matrix, plan, dist) if r.artifact.startswith("image:")]
    assert {(r.platform, r.result) for r in runs} == {("linux/amd64", "pass"), ("linux/arm64", "pass")}
    assert all('"version": "0.1.0+cu130"' in r.detail for r in runs)


def test_records_carry_the_size_the_engine_reports_and_the_largest_layers(built_images):
    _, records = built_images
    for r in records.values():
        repo = r["tag"].rsplit(":", 1)[0]
        adapter.pull(f"{repo}@{r['digest']}", platform=r["platform"], cred=adapter.registry_credential())
        local = adapter.client().images.get(f"{repo}@{r['digest']}")
        assert r["size_mb"] == round(local.attrs["Size"] / 1e6, 1)
        layers = r["largest_layers"]
        assert len(layers) == min(images.LARGEST_LAYERS, len([h for h in local.history() if h["Size"]]))
        assert [x["mb"] for x in layers] == sorted((x["mb"] for x in layers), reverse=True)
        # the runtime stage's install, written as its command, not BuildKit's "RUN |2 ARG=… /bin/sh -c"
        assert any(x["instruction"].startswith("RUN pip install --no-cache-dir") for x in layers), layers
        assert not any("/bin/sh -c" in x["instruction"] for x in layers)


def test_a_size_budget_fails_the_build_naming_its_largest_layers(built_images, repo_matrix, request):
    dist, records = built_images
    fw = repo_matrix.framework["none"]
    small = dataclasses.replace(repo_matrix, framework={**repo_matrix.framework,
                                                        "none": dataclasses.replace(fw, max_size_mb=100)})
    plan = make_plan(small, Selection(cuda=("13.0",), framework=("none",), arch=("x86_64",)))
    before = (dist / "manifest.json").read_text()
    with pytest.raises(BuildError) as caught:
        images.build(small, plan, request.config.rootpath, dist, force=True)
    size = records["image:none:cu130:x86_64"]["size_mb"]
    assert f"the image is {size} MB, over the 100 MB limit of framework.none.max-size-mb" in str(caught.value)
    assert f"largest layers: {records['image:none:cu130:x86_64']['largest_layers'][0]['mb']} MB " in str(caught.value)
    assert (dist / "manifest.json").read_text() == before  # nothing recorded for smoke or publish to take
    roomy = dataclasses.replace(small, framework={**small.framework, "none": dataclasses.replace(fw, max_size_mb=1000)})
    (record,) = images.build(roomy, make_plan(roomy, Selection(cuda=("13.0",), framework=("none",),
                                                                  arch=("x86_64",))), request.config.rootpath, dist,
                             push=True, force=True)
    assert record["size_mb"] == size


def test_image_smoke_fails_an_image_that_carries_compilers(built_images, repo_matrix, request, tmp_path):
    """The devel stage (compilers, sccache) run as if it were the released image."""
    from toolkit import smoke

    dist, _ = built_images
    (image,) = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("none",), arch=("x86_64",))).images
    argv = images.build_command(repo_matrix, image, request.config.rootpath, dist, tmp_path / "meta.json",
                                push=False, builder=None, target="devel")
    tag = "toolkit-test/devel-stage:leftovers"
    tools.run([f"--tag={tag}" if a.startswith("--tag=") else a for a in argv], quiet=True)
    probe_only = dataclasses.replace(image, module="", smoke=())  # the stage has no saxpy to import
    run = smoke._image_run(repo_matrix, probe_only, {"platform_tag": tag, "pushed": False}, gpu=False)
    assert run.result == smoke.FAIL
    assert "the runtime image carries build tools or caches: " in run.detail, run.detail
    assert "g++" in run.detail and "nvcc" in run.detail and "sccache" in run.detail, run.detail
