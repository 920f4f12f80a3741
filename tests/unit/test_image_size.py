"""An image's size budget and how its largest layers are named (pure logic; the engine's side is in
tests/integration/test_images.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from toolkit import images
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan

# As the engine's history gives them for a BuildKit build: build args (values may hold spaces) before the shell.
RUN = ("RUN |3 TARGETARCH=amd64 TORCH_CUDA_ARCH_LIST=7.5 8.0 9.0a 12.0+PTX CMAKE_CUDA_ARCHITECTURES=75-real "
       "/bin/sh -c pip install --no-cache-dir --no-index --find-links /wheels /wheels/*.whl # buildkit")


def test_a_run_layer_is_named_by_its_command():
    assert images._instruction(RUN) == "RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/*.whl"
    assert images._instruction("COPY /opt/cuda-wheels /opt/cuda-wheels # buildkit") == \
        "COPY /opt/cuda-wheels /opt/cuda-wheels"
    long = images._instruction("RUN /bin/sh -c " + "x" * 300)
    assert len(long) == 100 and long.endswith("…")


def test_the_budget_names_the_file_key_and_largest_layers():
    repo_matrix = load_matrix(Path("matrix.toml"))
    (image,) = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("vllm",), arch=("x86_64",))).images
    measured = {"size_mb": 9000.5, "largest_layers": [{"mb": 7000.0, "instruction": "RUN pip install …"},
                                                      {"mb": 1500.2, "instruction": "COPY a b"}]}
    assert images.over_budget(repo_matrix, dataclasses.replace(image, max_size_mb=0), measured) is None  # none set
    assert images.over_budget(repo_matrix, dataclasses.replace(image, max_size_mb=9001), measured) is None
    at_the_limit = {**measured, "size_mb": 9000.0}
    assert images.over_budget(repo_matrix, dataclasses.replace(image, max_size_mb=9000), at_the_limit) is None
    why = images.over_budget(repo_matrix, dataclasses.replace(image, max_size_mb=9000), measured)
    assert why == (f"image:vllm:cu130:x86_64: the image is 9000.5 MB, over the 9000 MB limit of "
                   f"framework.vllm.max-size-mb in {repo_matrix.source}; largest layers: 7000.0 MB RUN pip "
                   "install …; 1500.2 MB COPY a b")


def test_publish_refuses_an_image_over_its_budget_or_never_measured():
    from toolkit import publish

    repo_matrix = load_matrix(Path("matrix.toml"))
    (image,) = make_plan(repo_matrix, Selection(cuda=("13.0",), framework=("none",), arch=("x86_64",))).images
    record = {"pushed": True, "provenance": {}, "size_mb": 193.2,
              "largest_layers": [{"mb": 116.7, "instruction": "ADD rootfs.tar /"}]}
    assert publish._image_gates(repo_matrix, dataclasses.replace(image, max_size_mb=400), record, Path("dist")) == []
    lowered = publish._image_gates(repo_matrix, dataclasses.replace(image, max_size_mb=150), record, Path("dist"))
    assert lowered == [images.over_budget(repo_matrix, dataclasses.replace(image, max_size_mb=150), record)]
    unmeasured = {k: v for k, v in record.items() if k not in ("size_mb", "largest_layers")}
    assert publish._image_gates(repo_matrix, dataclasses.replace(image, max_size_mb=400), unmeasured, Path("dist")) == [
        "image:none:cu130:x86_64: built before builds measured their size, so its size budget is unchecked; "
        "build it again (--force)"]
    assert publish._image_gates(repo_matrix, dataclasses.replace(image, max_size_mb=0), unmeasured, Path("dist")) == []
