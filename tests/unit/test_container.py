from __future__ import annotations

import pytest

from toolkit import container
from toolkit.errors import ConfigError
from toolkit.matrix import load_matrix


def _build(write_matrix, *flags):
    path = write_matrix()
    args = container.build_parser().parse_args(["--matrix", str(path), *flags])
    return container.build_commands(args, load_matrix(path))


def test_build_sh_maps_dynamo_flags_onto_buildx(write_matrix, monkeypatch):
    monkeypatch.setattr("toolkit.images.labels", lambda *a: {})  # labels read git; not under test here
    (amd, arm) = _build(write_matrix, "--framework", "none", "--platform", "linux/amd64,linux/arm64",
                        "--build-arg", "FOO=1", "--cache-from", "type=registry,ref=x", "--no-cache", "--push",
                        "--target", "dev", "--tag", "me/none:dev")
    assert amd[:4] == ["docker", "buildx", "build", "--platform=linux/amd64"] and "--platform=linux/arm64" in arm
    for flag in ("--target=dev", "--build-arg=FOO=1", "--cache-from=type=registry,ref=x", "--no-cache", "--push",
                 "--tag=me/none:dev-amd64", "--tag=me/none:latest-amd64"):
        assert flag in amd
    assert "--load" not in amd


def test_base_image_override_and_no_latest(write_matrix, monkeypatch):
    monkeypatch.setattr("toolkit.images.labels", lambda *a: {})
    (only,) = _build(write_matrix, "--platform", "linux/amd64", "--base-image", "ubuntu", "--base-image-tag",
                     "24.04", "--no-tag-latest", "--cuda-version", "13.0")
    assert "--build-arg=BUILD_IMAGE=ubuntu:24.04" in only and "--build-arg=RUNTIME_IMAGE=ubuntu:24.04" in only
    assert not any("latest" in a for a in only) and "--load" in only


def test_unsupported_variant_is_a_clear_error(write_matrix):
    with pytest.raises(ConfigError, match="vllm supports arch x86_64 only"):
        _build(write_matrix, "--framework", "vllm", "--platform", "linux/arm64")


def test_run_sh_defaults_to_the_framework_image_build_sh_tags(write_matrix, monkeypatch):
    args = container.run_parser().parse_args(["--matrix", str(write_matrix()), "--framework", "vllm",
                                              "--platform", "linux/arm64"])
    assert container.default_image(args) == "127.0.0.1:5000/gpu-toolkit/vllm:latest-arm64"
    args = container.run_parser().parse_args(["--matrix", str(write_matrix()), "--framework", "vlm"])
    with pytest.raises(ConfigError, match=r"--framework vlm: .* has no \[framework\.vlm\] table \(did you mean"):
        container.default_image(args)


def test_run_sh_defaults_and_mounts(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    args = container.run_parser().parse_args(["--image", "img", "--gpus", "none", "--mount-workspace",
                                              "--hf-cache", "/cache", "--", "python", "-V"])
    argv = container.run_command(args, "img")
    assert argv[:3] == ["docker", "run", "--rm"] and "--shm-size=10G" in argv and "--ipc=host" in argv
    assert not any(a.startswith("--gpus") for a in argv)
    assert f"{tmp_path}:/workspace" in argv and "/cache:/root/.cache/huggingface" in argv
    assert argv[-3:] == ["img", "python", "-V"]
