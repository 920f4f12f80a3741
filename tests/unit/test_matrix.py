from __future__ import annotations

import json

import jsonschema
import pytest

from toolkit import cli, matrix
from toolkit.errors import ConfigError

REPO_MATRIX = "matrix.toml"

# (name, text to replace, replacement, text the error must contain). Each case is
# a distinct mistake; every message must name the offending key.
BAD = [
    ("unknown cuda version", 'cuda = ["12.8", "13.0"]', 'cuda = ["12.8", "13.7"]',
     "axes.cuda[1]: unknown CUDA version"),
    ("sm_121 with CUDA 12.1", '[cuda."12.8"]\narchs = "80-real;90a-real;120"',
     '[cuda."12.1"]\narchs = "80-real;121-real"',
     'cuda."12.1".archs: sm_121 needs CUDA >= 12.9'),
    ("sm_70 with CUDA 13", 'archs = "7.5 8.0 9.0a 12.0+PTX"', 'archs = "7.0 8.0"',
     'cuda."13.0".archs: sm_70 was dropped after CUDA 12.9'),
    ("unknown arch axis value", 'arch = ["x86_64", "aarch64"]', 'arch = ["x86_64", "arm64"]',
     "axes.arch[1]: 'arm64' is not allowed"),
    ("typo in a key", 'local-version = "cu130"', 'local-versoin = "cu130"',
     'cuda."13.0".local-versoin: unknown key (did you mean "local-version"?)'),
    ("typo in a top-level table", "[package.saxpy]", "[packages.saxpy]",
     'packages: unknown key (did you mean "package"?)'),
    ("exclude names an unknown value", 'cuda = "12.8"\nframework = "vllm"', 'cuda = "12.8"\nframework = "vlm"',
     "exclude[0].framework: 'vlm' is not a value of axes.framework (did you mean \"vllm\"?)"),
    ("include misses an axis", "[mirror]", '[[include]]\narch = "aarch64"\ncuda = "13.0"\nreason = "x"\n[mirror]',
     "include[0]: an include must name every axis; missing: python, framework"),
    ("expands to nothing", 'reason = "vLLM wheels target CUDA 13.0"',
     'reason = "x"\n[[exclude]]\narch = "x86_64"\nreason = "a"\n[[exclude]]\narch = "aarch64"\nreason = "b"',
     "axes: the matrix expands to nothing"),
    ("newline in an image name", 'build-image = "debian:bookworm-slim"',
     'build-image = "debian:bookworm-slim\\nRUN curl evil"', 'cuda."13.0".build-image:'),
    ("$ in a mirror value", '= "127.0.0.1:5000/mirror/debian:bookworm-slim"',
     '= "127.0.0.1:5000/mirror/$(id):x"', 'mirror."debian:bookworm-slim":'),
    ("backtick in a smoke command", '"--selftest"]', '"`id`"]', "package.saxpy.smoke[3]:"),
    ("quote in a requirement", 'requirements = ["vllm==0.32.0"]', 'requirements = ["vllm==0.32.0\\" && id"]',
     "framework.vllm.requirements[0]: a requirement is a name"),
    ("semicolon in a package path", 'path = "examples/saxpy"', 'path = "examples/saxpy;id"',
     "package.saxpy.path:"),
    ("python written as a float", 'python = ["3.10", "3.12"]', "python = [3.10, 3.12]",
     "axes.python[0]: write Python versions as strings"),
    ("unknown python", 'python = ["3.10", "3.12"]', 'python = ["3.10", "3.21"]',
     "axes.python[1]: unknown Python version"),
    ("framework without a table", 'framework = ["none", "vllm"]', 'framework = ["none", "vllm", "sglang"]',
     "axes.framework[2]: 'sglang' has no [framework.sglang] table"),
    ("pypi toolchain on CUDA 12", 'toolchain = "image"', 'toolchain = "pypi"\ntoolchain-requirements = ["x==1"]',
     'cuda."12.8".toolchain: \'pypi\' needs CUDA >= 13.0'),
    ("cross for x86_64", "[mirror]", '[build-mode]\nx86_64 = "cross"\n[mirror]',
     "build-mode.x86_64: 'cross' builds aarch64 wheels on x86_64 only"),
    ("cross without a PyPI cudart", "[mirror]", '[build-mode]\naarch64 = "cross"\n[mirror]',
     "build-mode.aarch64: 'cross' needs toolchain = 'pypi' with nvidia-cuda-runtime"),
    ("unknown build mode", "[mirror]", '[build-mode]\naarch64 = "qemu"\n[mirror]',
     "build-mode.aarch64: 'qemu' is not allowed"),
    ("build mode of an unknown arch", "[mirror]", '[build-mode]\narm64 = "auto"\n[mirror]',
     "build-mode.arm64: not an architecture"),
    ("unknown toolchain", 'toolchain = "image"', 'toolchain = "conda"',
     'cuda."12.8".toolchain: \'conda\' is not allowed'),
    ("missing required key", 'version = "1.2.0"\n', "", "project.version: required key is missing"),
    ("wheel names an unknown package", 'wheels = ["saxpy"]', 'wheels = ["saxpi"]',
     "framework.none.wheels[0]: 'saxpi' is not a [package] table (did you mean \"saxpy\"?)"),
    ("bool where an int belongs", "[package.saxpy]", "[package.saxpy]\nmax-size-mb = true",
     "package.saxpy.max-size-mb: expected an integer"),
    ("version with a local label", 'version = "1.2.0"', 'version = "1.2.0+cu130"', "project.version:"),
    ("the same value twice in an axis", 'python = ["3.10", "3.12"]', 'python = ["3.10", "3.12", "3.10"]',
     "axes.python[2]: '3.10' is listed twice (first at [0])"),
    ("the same arch twice in a framework", 'arch = ["x86_64"]\n', 'arch = ["x86_64", "x86_64"]\n',
     "framework.vllm.arch[1]: 'x86_64' is listed twice"),
    ("package path that does not exist", 'path = "examples/saxpy"', 'path = "examples/saxpi"',
     "package.saxpy.path: 'examples/saxpi' does not exist"),
    ("package path outside the project", 'path = "examples/saxpy"', 'path = "examples/../../saxpy"',
     "package.saxpy.path: 'examples/../../saxpy' leaves"),
    ("package path without pyproject.toml", 'path = "examples/saxpy"', 'path = "examples"',
     "package.saxpy.path: 'examples' has no pyproject.toml"),
    ("negative max-size-mb", "[package.saxpy]", "[package.saxpy]\nmax-size-mb = -5",
     "package.saxpy.max-size-mb: must be a positive number of MB"),
    ("an image budget of zero", "[framework.vllm]", "[framework.vllm]\nmax-size-mb = 0",
     "framework.vllm.max-size-mb: must be a positive number of MB"),
    ("a patch file that is not there", "[framework.vllm]", '[framework.vllm]\npatches = ["patches/gone.patch"]',
     "framework.vllm.patches[0]: 'patches/gone.patch' does not exist"),
    ("patches for a requirement without one pinned version", 'requirements = ["vllm==0.32.0"]',
     'requirements = ["vllm>=0.32"]\npatches = ["examples/saxpy/pyproject.toml"]',
     "framework.vllm.patches: patches apply to the wheel of the first requirement, which must pin one version"),
    ("credentials in the index URL", "[mirror]", '[publish]\nindex-url = "https://ci:hunter2@pypi.example.org/"\n'
     "[mirror]", "publish.index-url: credentials do not belong in the matrix"),
    ("index URL without a scheme", "[mirror]", '[publish]\nindex-url = "pypi.example.org/legacy/"\n[mirror]',
     "publish.index-url: not an http(s) URL with a host"),
    ("upper case image repository", "[mirror]", '[publish]\nimage-repository = "ghcr.io/My-Org"\n[mirror]',
     "publish.image-repository: not an OCI repository"),
    ("image repository without a registry", "[mirror]", '[publish]\nimage-repository = "my-org"\n[mirror]',
     "publish.image-repository: not an OCI repository"),
    ("toolchain pinned to two minors", 'toolchain-requirements = ["nvidia-cuda-nvcc==13.0.*"]',
     'toolchain-requirements = ["nvidia-cuda-nvcc==13.0.*", "nvidia-nvvm==13.5.*"]',
     'cuda."13.0".toolchain-requirements[1]: \'nvidia-nvvm==13.5.*\' is pinned to 13.5'),
    ("toolchain wheel not pinned", 'toolchain-requirements = ["nvidia-cuda-nvcc==13.0.*"]',
     'toolchain-requirements = ["nvidia-cuda-nvcc==13.0.*", "nvidia-nvvm>=13"]',
     'cuda."13.0".toolchain-requirements[1]: \'nvidia-nvvm>=13\' is not pinned'),
    ("two CUDA lines with one local label", 'toolchain = "image"', 'toolchain = "image"\nlocal-version = "cu130"',
     'cuda."13.0".local-version: local-version \'cu130\', like cuda."12.8": their wheels would have the same'),
    ("local label in upper case", 'local-version = "cu130"', 'local-version = "CU130"',
     'cuda."13.0".local-version: a PEP 440 local label'),
    ("default line not on the axis", "[mirror]", '[publish]\ndefault-cuda = "12.6"\n[mirror]',
     "publish.default-cuda: '12.6' is not a line of [axes] cuda (did you mean \"12.8\"?); allowed: 12.8, 13.0"),
    ("channel root with a space", "[mirror]", '[publish]\nchannel-root = "s3:my bucket"\n[mirror]',
     "publish.channel-root: a local directory or an rclone remote"),
    ("framework cuda unknown", 'arch = ["x86_64"]\n', 'arch = ["x86_64"]\ncuda = ["11.8"]\n',
     "framework.vllm.cuda[0]: unknown CUDA version"),
    ("torch extension on lines without a torch", 'path = "examples/saxpy"', 'path = "examples/saxpy"\ntorch = true',
     'package.saxpy.torch: a PyTorch extension builds against each CUDA line\'s torch; name one for cuda."12.8", '
     'cuda."13.0"'),
    ("glibc floor that is no version", 'local-version = "cu130"', 'local-version = "cu130"\nglibc = "2.5"',
     'cuda."13.0".glibc: a glibc version 2.17 or newer, such as 2.28'),
    ("sysroot beside a wheel image", 'local-version = "cu130"', 'local-version = "cu130"\nwheel-image = "m:1"\n'
     'sysroot-image = "debian:bullseye-slim"', 'cuda."13.0".sysroot-image: links against a sysroot in the toolkit'),
    ("torch with a local label", 'local-version = "cu130"', 'local-version = "cu130"\ntorch = "2.11.0+cu130"',
     'cuda."13.0".torch: write the version in its normalized PEP 440 form without a local label'),
    ("bootstrap component typo", "[mirror]", '[bootstrap."nvidia/cuda:12.8.1-devel-ubuntu24.04"]\nsuite = "trixie"\n'
     'components = ["main", "nonfree"]\n[mirror]', 'bootstrap."nvidia/cuda:12.8.1-devel-ubuntu24.04".components[1]: '
     "'nonfree' is not a Debian archive component (did you mean \"non-free\"?); allowed: contrib, main, non-free"),
    ("bootstrap link not absolute", "[mirror]", '[bootstrap."nvidia/cuda:12.8.1-devel-ubuntu24.04"]\nsuite = "trixie"\n'
     'links = { "/usr/local/cuda" = "../lib/cuda" }\n[mirror]',
     "bootstrap.\"nvidia/cuda:12.8.1-devel-ubuntu24.04\".links: '../lib/cuda' is not an absolute path"),
]


def test_repo_matrix_is_valid(capsys, monkeypatch, request):
    monkeypatch.chdir(request.config.rootpath)
    assert cli.main(["validate"]) == 0
    assert "matrix.toml: valid" in capsys.readouterr().out


def test_repo_matrix_conforms_to_generated_schema(request):
    import tomllib

    raw = tomllib.loads((request.config.rootpath / REPO_MATRIX).read_text())
    jsonschema.validate(raw, matrix.schema())


def test_schema_rejects_what_the_loader_rejects(small_matrix):
    import tomllib

    raw = tomllib.loads(small_matrix.replace("local-version", "local-versoin"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, matrix.schema())


def test_small_matrix_is_valid(write_matrix):
    m = matrix.load_matrix(write_matrix())
    assert m.cuda["13.0"].local_version == "cu130"
    assert m.image("debian:bookworm-slim").startswith("127.0.0.1:5000/mirror/")
    assert m.image("nvidia/cuda:12.8.1-devel-ubuntu24.04") == "nvidia/cuda:12.8.1-devel-ubuntu24.04"


def test_a_torch_extension_needs_a_torch_on_every_line_it_builds_for(small_matrix, write_matrix):
    text = small_matrix.replace('local-version = "cu130"', 'local-version = "cu130"\ntorch = "2.11.0"')
    assert matrix.load_matrix(write_matrix(text)).cuda["13.0"].torch == "2.11.0"
    with pytest.raises(ConfigError) as err:
        matrix.load_matrix(write_matrix(text.replace('smoke = ["python"', 'torch = true\nsmoke = ["python"', 1)))
    (problem,) = err.value.problems
    assert 'name one for cuda."12.8" (torch = "2.11.0"' in problem


@pytest.mark.parametrize("name, old, new, expected", BAD, ids=[case[0] for case in BAD])
def test_bad_matrix_is_rejected_with_exit_2(name, old, new, expected, small_matrix, write_matrix, capsys):
    assert old in small_matrix, "the case no longer applies to the small matrix"
    path = write_matrix(small_matrix.replace(old, new, 1))
    assert cli.main(["--matrix", str(path), "validate"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected}" in err
    assert "valid (" not in err


def test_every_problem_is_reported_at_once(small_matrix, write_matrix):
    # A bad value in [axes], a typo in [framework.none], and two mistakes that only cross-table checks
    # find (an arch CUDA 13.0 cannot build, a package path that does not exist): all four are reported.
    text = small_matrix.replace('"7.5 8.0', '"7.0 8.0').replace('module = "saxpy"', 'modul = "saxpy"')
    text = text.replace('"3.10", "3.12"', '3.10, "3.12"').replace('path = "examples/saxpy"', 'path = "saxpy"')
    with pytest.raises(ConfigError) as exc:
        matrix.load_matrix(write_matrix(text))
    where = sorted(p.split(": ")[1] for p in exc.value.problems)
    assert where == ["axes.python[0]", 'cuda."13.0".archs', "framework.none.modul", "package.saxpy.path"]


def test_a_table_that_fails_to_load_is_not_reported_missing(small_matrix, write_matrix):
    # [package.saxpy] has a typo: that is the one problem, not also "framework.none.wheels: no such package".
    with pytest.raises(ConfigError) as exc:
        matrix.load_matrix(write_matrix(small_matrix.replace("smoke = [", "smok = [")))
    assert [p.split(": ")[1] for p in exc.value.problems] == ["package.saxpy.smok"]


def test_a_credential_in_the_matrix_is_not_echoed(small_matrix, write_matrix, capsys):
    path = write_matrix(small_matrix + '[publish]\nindex-url = "https://ci:hunter2@pypi.example.org/"\n')
    assert cli.main(["validate", "--matrix", str(path)]) == 2
    err = capsys.readouterr().err
    assert "publish.index-url" in err and "hunter2" not in err


def test_framework_names_must_be_image_names(small_matrix, write_matrix):
    text = small_matrix.replace('"none", "vllm"]', '"none", "vLLM"]').replace("framework.vllm", "framework.vLLM")
    with pytest.raises(ConfigError, match=r"framework\.vLLM: a framework name becomes an image name"):
        matrix.load_matrix(write_matrix(text.replace('framework = "vllm"', 'framework = "vLLM"')))


def test_missing_file_and_bad_toml(tmp_path, capsys):
    assert cli.main(["--matrix", str(tmp_path / "nope.toml"), "validate"]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[axes\n")
    assert cli.main(["--matrix", str(bad), "validate"]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_framework_support_becomes_exclusions(write_matrix):
    m = matrix.load_matrix(write_matrix())
    reasons = [r.reason for r in matrix.exclusions(m)]
    assert "vllm supports arch x86_64 only" in reasons
    assert not any(c.framework == "vllm" and c.arch == "aarch64" for c in matrix.cells(m))


def test_include_adds_back_an_excluded_cell(small_matrix, write_matrix):
    text = small_matrix + (
        '[[include]]\narch = "x86_64"\npython = "3.12"\ncuda = "12.8"\nframework = "vllm"\nreason = "r"\n')
    m = matrix.load_matrix(write_matrix(text))
    assert matrix.Cell("x86_64", "3.12", "12.8", "vllm") in matrix.cells(m)


def test_schema_command_prints_json(capsys):
    assert cli.main(["schema"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "axes" in out["properties"] and out["additionalProperties"] is False


def test_a_bootstrap_recipe_is_a_suite_or_a_table_and_says_which_archs_it_makes(small_matrix, write_matrix):
    text = small_matrix.replace("[mirror]", '[bootstrap]\n"debian:bookworm-slim" = "bookworm"\n\n'
                                '[bootstrap."nvidia/cuda:12.8.1-devel-ubuntu24.04"]\nsuite = "trixie"\n'
                                'components = ["main", "non-free"]\npackages = ["nvidia-cuda-toolkit"]\n'
                                'links = { "/usr/local/cuda" = "/usr/lib/nvidia-cuda-toolkit" }\n'
                                'arch = ["x86_64"]\n\n[mirror]')
    m = matrix.load_matrix(write_matrix(text))
    plain, cuda = m.bootstrap["debian:bookworm-slim"], m.bootstrap["nvidia/cuda:12.8.1-devel-ubuntu24.04"]
    assert (plain.suite, plain.components, plain.packages, plain.arch) == ("bookworm", ("main",), (), ())
    assert plain.makes(matrix.Arch.AARCH64) and cuda.makes(matrix.Arch.X86_64)
    assert not cuda.makes(matrix.Arch.AARCH64)
    assert cuda.why_not() == ("its [bootstrap] recipe makes it for x86_64 only "
                              "(Debian trixie has nvidia-cuda-toolkit for no other)")
    assert dict(cuda.links) == {"/usr/local/cuda": "/usr/lib/nvidia-cuda-toolkit"}
