from __future__ import annotations

import pytest

from toolkit import cuda

ACCEPTANCE_LIST = "7.5 8.0 8.6 8.9 9.0a 10.0 12.0+PTX"


def test_torch_and_cmake_notations_parse_to_the_same_targets():
    torch_style = cuda.parse_arch_list("8.0 9.0a 12.0+PTX")
    cmake_style = cuda.parse_arch_list("80-real;90a-real;120")
    assert torch_style == cmake_style
    assert [t.sm for t in torch_style] == ["80", "90a", "120"]
    assert [t.ptx for t in torch_style] == [False, False, True]


def test_semicolons_and_spaces_both_separate_torch_entries():
    assert cuda.parse_arch_list("7.5;8.6") == cuda.parse_arch_list(" 7.5  8.6 ")


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("8.0 sm_90", "neither PyTorch notation"),
    ("8.0 8.0+PTX", "appears twice"),
    ("90-virtual", "PTX only"),
    ("all-major", "neither PyTorch notation"),
    ("9.0b", "neither PyTorch notation"),
])
def test_bad_arch_lists_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        cuda.parse_arch_list(text)


def test_renderers_on_the_acceptance_list():
    targets = cuda.parse_arch_list(ACCEPTANCE_LIST)
    assert cuda.torch_arch_list(targets) == "7.5;8.0;8.6;8.9;9.0a;10.0;12.0+PTX"
    assert cuda.cmake_architectures(targets) == "75-real;80-real;86-real;89-real;90a-real;100-real;120"
    assert cuda.gencode_flags(targets) == sorted([
        "-gencode=arch=compute_75,code=sm_75",
        "-gencode=arch=compute_80,code=sm_80",
        "-gencode=arch=compute_86,code=sm_86",
        "-gencode=arch=compute_89,code=sm_89",
        "-gencode=arch=compute_90a,code=sm_90a",
        "-gencode=arch=compute_100,code=sm_100",
        "-gencode=arch=compute_120,code=sm_120",
        "-gencode=arch=compute_120,code=compute_120",
    ])


def test_rendered_lists_parse_back_to_the_same_targets():
    targets = cuda.parse_arch_list(ACCEPTANCE_LIST)
    assert cuda.parse_arch_list(cuda.torch_arch_list(targets)) == targets
    assert cuda.parse_arch_list(cuda.cmake_architectures(targets)) == targets


@pytest.mark.parametrize("arch_list", [ACCEPTANCE_LIST, "8.0;8.6+PTX", "9.0a 10.0 12.0 12.1+PTX", "7.5+PTX"])
def test_gencode_flags_equal_pytorch_cpp_extension(arch_list, monkeypatch):
    from torch.utils import cpp_extension  # the tests session installs torch: without it this fails, never skips
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", arch_list)
    expected = cpp_extension._get_cuda_arch_flags()
    assert cuda.gencode_flags(cuda.parse_arch_list(arch_list)) == expected


def test_families():
    targets = cuda.parse_arch_list("7.5 8.0 8.6 8.9 9.0a 10.0 12.1")
    assert cuda.families(targets) == ["Turing", "Ampere", "Ada Lovelace", "Hopper", "Blackwell"]


def test_support_table_knows_additions_and_removals():
    sm121 = cuda.parse_arch_list("12.1")
    assert cuda.unsupported("12.1", sm121) == ["sm_121"]
    assert cuda.unsupported("12.9", sm121) == []
    assert cuda.unsupported("13.0", cuda.parse_arch_list("7.0 7.5")) == ["sm_70"]
    assert cuda.unsupported("12.8", cuda.parse_arch_list("7.0 10.0")) == []
    assert cuda.unsupported("12.6", cuda.parse_arch_list("10.0")) == ["sm_100"]
