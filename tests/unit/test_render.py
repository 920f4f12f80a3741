from __future__ import annotations

import json
import shutil

import pytest

from toolkit import cross, docs, matrix, render
from toolkit.engine import baseimages
from toolkit.errors import DriftError
from toolkit.matrix import Arch, BuildMode
from toolkit.plan import Selection, make_plan


@pytest.fixture
def small(write_matrix):
    return matrix.load_matrix(write_matrix())


def test_every_cuda_line_and_framework_gets_its_files(small):
    paths = {o.path for o in render.outputs(small)}
    assert paths == {"container/Dockerfile.wheel-builder-cu130", "container/cibuildwheel-cu130.toml",
                     "container/Dockerfile.wheel-builder-cu128", "container/cibuildwheel-cu128.toml",
                     "container/Dockerfile.none", "container/Dockerfile.vllm",
                     "container/Dockerfile.none.dockerignore", "container/Dockerfile.vllm.dockerignore",
                     ".github/workflows/release.yml", ".github/workflows/ci.yml", "docs/support-matrix.md",
                     "container/docker-bake.hcl"}


def test_an_image_build_context_holds_only_the_wheels_it_installs(small):
    out = {o.path: o.text for o in render.outputs(small)}
    rules = [line for line in out["container/Dockerfile.none.dockerignore"].splitlines()
             if line and not line.startswith("#")]
    assert rules == ["*", "!saxpy-1.2.0-*.whl", "!saxpy-1.2.0+cu130-*.whl"]  # 12.8: no local label


def test_image_dockerfiles_take_matrix_values_as_arg_defaults(small):
    out = {o.path: o.text for o in render.outputs(small)}
    none = out["container/Dockerfile.none"]
    assert 'ARG LOCAL_WHEELS="saxpy-1.2.0+cu130-*"' in none
    assert 'ARG TORCH_CUDA_ARCH_LIST="7.5;8.0;9.0a;12.0+PTX"' in none
    assert "amd64) ARCH=x86_64 ;; arm64) ARCH=aarch64 ;;" in none
    assert 'CMD ["python", "-c", "print(\'ok\')"]' in none
    vllm = out["container/Dockerfile.vllm"]
    assert 'ARG REQUIREMENTS="vllm==0.32.0"' in vllm and 'ARG LOCAL_WHEELS=""' in vllm
    assert "ARG TARGETARCH" in vllm and "ARG TARGETARCH\n" not in vllm.split("FROM")[0]


def test_outputs_are_stamped_and_carry_the_matrix_values(small):
    out = {o.path: o.text for o in render.outputs(small)}
    config = out["container/cibuildwheel-cu130.toml"]
    assert config.startswith(f"# {render.STAMP} from templates/cibuildwheel.toml.j2")
    assert 'CUDAARCHS = "75-real;80-real;90a-real;120"' in config
    assert 'TOOLKIT_LOCAL_VERSION = "cu130"' in config
    assert "--exclude libcuda.so.1" in config
    dockerfile = out["container/Dockerfile.wheel-builder-cu130"]
    assert "ARG BUILD_IMAGE=debian:bookworm-slim" in dockerfile  # the public name, not the mirror
    assert 'ARG CUDA_REQUIREMENTS="nvidia-cuda-nvcc==13.0.*"' in dockerfile
    assert "ENV CUDA_HOME=/opt/cuda-wheels/nvidia/cu13" in dockerfile
    image_line = out["container/Dockerfile.wheel-builder-cu128"]
    assert "CUDA_REQUIREMENTS" not in image_line and "ENV CUDA_HOME=/usr/local/cuda" in image_line


def test_builder_tag_follows_the_dockerfile(small):
    out = {o.path: o.text for o in render.outputs(small)}
    image = render.builder_image(small, "13.0", out["container/Dockerfile.wheel-builder-cu130"])
    assert f'manylinux-x86_64-image = "{image}"' in out["container/cibuildwheel-cu130.toml"]
    assert image != render.builder_image(small, "13.0", out["container/Dockerfile.wheel-builder-cu130"] + "#")


def test_write_then_check_passes_and_a_hand_edit_fails(small, tmp_path):
    assert render.write(small, tmp_path)
    render.check(small, tmp_path)
    assert render.write(small, tmp_path) == []
    edited = tmp_path / "container/cibuildwheel-cu130.toml"
    edited.write_text(edited.read_text().replace("cu130", "cu131"))
    with pytest.raises(DriftError, match=r"cibuildwheel-cu130\.toml: differs"):
        render.check(small, tmp_path)


def test_a_build_renders_missing_files_but_still_fails_on_drift(small, tmp_path, capsys):
    # A repository that has just adopted the toolkit has no generated files yet: that is not drift.
    with pytest.raises(DriftError, match=r"\(missing\)"):
        render.check(small, tmp_path)
    render.check(small, tmp_path, for_build=True)
    assert "rendered container/cibuildwheel-cu130.toml (it did not exist yet)" in capsys.readouterr().err
    assert not (tmp_path / "docs").exists()  # a build reads container/ only: it checks nothing else
    assert render.write(small, tmp_path) == [f"wrote {o.path}" for o in render.outputs(small)
                                             if not o.path.startswith(render.BUILD_INPUTS)]
    (tmp_path / "docs" / "support-matrix.md").write_text("edited\n")
    render.check(small, tmp_path, for_build=True)
    with pytest.raises(DriftError, match=r"support-matrix\.md: differs"):
        render.check(small, tmp_path)
    edited = tmp_path / "container/cibuildwheel-cu130.toml"
    edited.write_text(edited.read_text() + "# edited\n")
    with pytest.raises(DriftError, match=r"cibuildwheel-cu130\.toml: differs"):
        render.check(small, tmp_path, for_build=True)


def test_stale_generated_files_are_reported_and_deleted(small, small_matrix, write_matrix, tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    render.write(small, root)
    (root / "container" / "build.sh").write_text("#!/bin/sh\n# hand-written, not stamped\n")
    text = small_matrix.replace('cuda = ["12.8", "13.0"]', 'cuda = ["13.0"]')
    only13 = matrix.load_matrix(write_matrix(text.replace('cuda = "12.8"\nframework', 'cuda = "13.0"\nframework')))
    with pytest.raises(DriftError, match=r"Dockerfile\.wheel-builder-cu128: generated file no longer produced"):
        render.check(only13, root)
    changed = render.write(only13, root)
    assert "deleted container/Dockerfile.wheel-builder-cu128" in changed
    assert (root / "container" / "build.sh").exists()
    shutil.rmtree(root)


def test_a_gpu_result_counts_only_for_the_file_it_tested(tmp_path):
    run = {"result": "pass", "gpu": "H100 (Hopper, sm_90, …): ran __CUDA_ARCH__=900 from SASS"}
    result = {"artifact": "wheel:x:cu130:x86_64", "smoke": {"sha256": "aaa", "runs": [run]}}
    (tmp_path / "docs" / "verification").mkdir(parents=True)
    (tmp_path / "docs" / "verification" / "gpu-smoke-h100.json").write_text(json.dumps(result))
    assert docs.gpu_runs(tmp_path, {"wheel:x:cu130:x86_64": {"sha256": "aaa"}}) == [run]
    assert docs.gpu_runs(tmp_path, {"wheel:x:cu130:x86_64": {"sha256": "rebuilt"}}) == []


def test_an_artifact_rebuilt_since_its_smoke_test_shows_untested(small):
    plan = make_plan(small)
    image = plan.images[0]
    run = {"python": "-", "result": "pass"}
    tested = {"kind": "image", "platform_tag": "t", "digest": "sha256:new", "smoke": {"digest": "sha256:new",
                                                                                       "runs": [run]}}
    rebuilt = {**tested, "smoke": {**tested["smoke"], "digest": "sha256:old"}}
    row = {r[0]: r[-1] for r in docs._artifact_rows(small, plan, {image.id: tested}, [])}
    assert row[f"`{image.id}`"] == "-: pass"
    row = {r[0]: r[-1] for r in docs._artifact_rows(small, plan, {image.id: rebuilt}, [])}
    assert row[f"`{image.id}`"] == "untested"


def test_a_line_with_a_torch_unpacks_it_for_each_target_and_keeps_its_libraries_out_of_wheels(small_matrix,
                                                                                           write_matrix):
    plain = {o.path: o.text for o in render.outputs(matrix.load_matrix(write_matrix()))}
    assert "TORCH" not in plain["container/Dockerfile.wheel-builder-cu130"]
    assert "libtorch" not in plain["container/cibuildwheel-cu130.toml"]
    text = small_matrix.replace('local-version = "cu130"', 'local-version = "cu130"\ntorch = "2.11.0"')
    text = text.replace('"nvidia-cuda-nvcc==13.0.*"]', '"nvidia-cuda-nvcc==13.0.*", "nvidia-cuda-runtime==13.0.*"]')
    out = {o.path: o.text for o in render.outputs(matrix.load_matrix(write_matrix(text)))}
    builder = out["container/Dockerfile.wheel-builder-cu130"]
    assert 'ARG TORCH="torch==2.11.0"' in builder and "ENV TORCH_ROOT=/opt/torch\n" in builder
    assert "unzip -q /tmp/torch/*.whl 'torch/version.py' 'torch/include/*' 'torch/lib/*'" in builder
    cross = out["container/Dockerfile.cross-builder-cu130"]
    assert "ENV TORCH_ROOT=/opt/cross/aarch64/torch" in cross
    assert '--platform manylinux_2_28_aarch64 "${TORCH}"' in cross
    assert ("repair-wheel-command = \"auditwheel repair --exclude libcuda.so.1 --exclude 'libtorch*.so' "
            "--exclude 'libc10*.so' -w {dest_dir} {wheel}\"") in out["container/cibuildwheel-cu130.toml"]
    assert "TORCH" not in out["container/Dockerfile.wheel-builder-cu128"]  # a line without a torch


def test_a_glibc_floor_links_against_the_sysroot_and_auditwheel_enforces_it(small_matrix, write_matrix):
    floor = 'local-version = "cu130"\nglibc = "2.28"\nsysroot-image = "debian:bullseye-slim"'
    text = small_matrix.replace('local-version = "cu130"', floor)
    text = text.replace('"nvidia-cuda-nvcc==13.0.*"]', '"nvidia-cuda-nvcc==13.0.*", "nvidia-cuda-runtime==13.0.*"]')
    m = matrix.load_matrix(write_matrix(text))
    out = {o.path: o.text for o in render.outputs(m)}
    builder = out["container/Dockerfile.wheel-builder-cu130"]
    assert "ARG SYSROOT_IMAGE=debian:bullseye-slim\n" in builder and "FROM ${SYSROOT_IMAGE} AS sysroot" in builder
    assert builder.index("FROM ${SYSROOT_IMAGE} AS sysroot") < builder.index("FROM ${BUILD_IMAGE}")
    assert "COPY --from=sysroot / /opt/sysroot" in builder and "find /opt/sysroot -type l -lname '/*'" in builder
    config = out["container/cibuildwheel-cu130.toml"]
    assert ('repair-wheel-command = "auditwheel repair --plat manylinux_2_28_$(uname -m) --exclude libcuda.so.1 '
            '-w {dest_dir} {wheel}"') in config
    assert 'LDFLAGS = "--sysroot=/opt/sysroot -L/opt/sysroot-lib"' in config
    assert 'CUDAFLAGS = "-Xcompiler=--sysroot=/opt/sysroot"' in config
    # The cross builder has no aarch64 sysroot: the floor's aarch64 wheels build emulated.
    assert "container/Dockerfile.cross-builder-cu130" not in out
    assert "SYSROOT" not in out["container/Dockerfile.wheel-builder-cu128"]
    plan = make_plan(m, Selection(cuda=("13.0",), framework=("none",)))
    assert {w.sysroot_image_public for w in plan.wheels} == {"debian:bullseye-slim"}
    needed = {b.public: b.platforms for b in baseimages.needed(m, plan)}  # the engine makes it for both platforms
    assert needed["debian:bullseye-slim"] == {"linux/amd64", "linux/arm64"}
    arm = next(w for w in plan.wheels if w.build.arch.value == "aarch64")
    assert cross.resolve(m, arm, Arch.X86_64) is BuildMode.EMULATED
    assert "no aarch64 sysroot" in cross.why_not_cross(m, arm, Arch.X86_64)


def test_a_cell_whose_base_image_recipe_lacks_its_arch_says_why_it_is_not_built_here(small_matrix, write_matrix):
    text = small_matrix.replace("[mirror]", '[bootstrap."nvidia/cuda:12.8.1-devel-ubuntu24.04"]\nsuite = "trixie"\n'
                                'packages = ["nvidia-cuda-toolkit"]\narch = ["x86_64"]\n\n[mirror]')
    m = matrix.load_matrix(write_matrix(text))
    plan = make_plan(m)
    rows = {r[0]: r[2] for r in docs._artifact_rows(m, plan, {}, [])}
    assert rows["`wheel:saxpy:cu128:x86_64`"] == "not built"
    assert rows["`wheel:saxpy:cu128:aarch64`"] == (
        "not built here: nvidia/cuda:12.8.1-devel-ubuntu24.04 for linux/arm64: its [bootstrap] recipe makes it for "
        "x86_64 only (Debian trixie has nvidia-cuda-toolkit for no other)")
    assert rows["`wheel:saxpy:cu130:aarch64`"] == "not built"
    assert rows["`image:none:cu128:x86_64`"] == ("not built: nvidia/cuda:12.8.1-runtime-ubuntu24.04 only from the "
                                                 "public registry (no [mirror] copy or [bootstrap] recipe)")


def test_the_install_commands_are_those_of_what_was_published(small):
    plan = make_plan(small)
    image, wheel = plan.images[0], plan.wheels[0]
    run = {"python": "-", "result": "pass"}
    tested_image = {"digest": "sha256:d", "smoke": {"digest": "sha256:d", "runs": [run]}}
    tested_wheel = {"sha256": "s", "smoke": {"sha256": "s", "runs": [run]}}
    unpublished = docs._install_lines(small, plan, {image.id: tested_image, wheel.id: tested_wheel})
    assert unpublished == []  # built and smoke-passed, but a tag waits for its other platforms
    published = {"at": "t"}
    lines = docs._install_lines(small, plan, {image.id: {**tested_image, "published": published},
                                              wheel.id: {**tested_wheel, "published": published}})
    assert f"docker pull {image.tag}" in lines
    assert any(line.startswith("pip install") and f"'{wheel.package}==" in line for line in lines)
