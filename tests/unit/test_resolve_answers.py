"""Reading the resolver's answers (the resolver itself runs in tests/integration/test_resolve.py)."""

from __future__ import annotations

from toolkit import resolve
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan

# uv 0.13.8's words when a pinned release has no wheel for the target
NO_SOLUTION = """error: No solution found when resolving dependencies
  cause: Because torch-memory-saver==0.0.9 has no usable wheels and sglang==0.5.6 depends on
  torch-memory-saver==0.0.9, we can conclude that sglang==0.5.6 cannot be used.
  And because you require sglang==0.5.6, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `torch-memory-saver` because building from source is disabled
"""


def test_a_resolved_set_keeps_the_pins_of_the_requirements_and_torch():
    out = "filelock==3.20.0\ntorch==2.13.0\nvllm==0.32.0\n"
    assert resolve.parse(0, out, "", ("vllm[audio]==0.32.0",)) == {
        "status": resolve.RESOLVES, "packages": 3, "pins": {"torch": "2.13.0", "vllm": "0.32.0"}}


def test_no_solution_gives_the_chain_of_uvs_reason():
    found = resolve.parse(1, "", NO_SOLUTION, ("sglang==0.5.6",))
    assert found == {"status": resolve.NO_WHEEL, "reason": "torch-memory-saver==0.0.9 has no usable wheels and "
                     "sglang==0.5.6 depends on torch-memory-saver==0.0.9"}
    assert resolve.NO_USABLE.findall(found["reason"]) == [("torch-memory-saver", "0.0.9")]


def test_any_other_failure_is_unknown_and_never_blocks(write_matrix):
    found = resolve.parse(2, "", "error: Failed to fetch: `https://pypi.org/simple/x/`\n  Connection refused", ())
    assert found["status"] == resolve.UNKNOWN and "Connection refused" in found["reason"]
    result = resolve.Result(framework="vllm", platform="linux/arm64", runtime_image="debian:bookworm-slim",
                            python="3.11", glibc="2.36", **found)
    plan = make_plan(load_matrix(write_matrix()), Selection())
    assert result.why() == "" and resolve.blocked(plan, [result]) == {}


def test_the_python_and_glibc_come_from_the_runtime_images_distribution():
    assert resolve.distro("nvidia/cuda:12.9.1-runtime-ubuntu24.04") == ("3.12", "2.39")
    assert resolve.distro("127.0.0.1:5000/mirror/debian:bookworm-slim") == ("3.11", "2.36")
    assert resolve.distro("registry.example/trixie-tools:1") == ("3.13", "2.41")
    assert resolve.distro("python:3.12-alpine") is None


def test_only_the_images_of_a_framework_on_the_platform_it_cannot_install_on_are_blocked(write_matrix):
    m = load_matrix(write_matrix())
    plan = make_plan(m, Selection())
    (target,) = [t for t in resolve.targets(m, plan) if t.platform == "linux/amd64"]  # vllm: x86_64 only here
    assert (target.framework, target.requirements) == ("vllm", ("vllm==0.32.0",))
    result = resolve.Result(framework="vllm", platform="linux/amd64", runtime_image=target.runtime_image,
                            python="3.11", glibc="2.36", status=resolve.NO_WHEEL, reason="vllm==0.32.0 has no "
                            "usable wheels")
    assert resolve.blocked(plan, [result]) == {"image:vllm:cu130:x86_64": "vllm's requirements have no binary "
                                               "wheel for linux/amd64 at Python 3.11, glibc 2.36: vllm==0.32.0 "
                                               "has no usable wheels"}


def test_a_runtime_image_made_by_a_bootstrap_recipe_is_resolved_at_that_suites_python(small_matrix, write_matrix):
    """A stand-in keeps the public name (ubuntu24.04: 3.12) but is the recipe's Debian (trixie: 3.13)."""
    public = "nvidia/cuda:13.0.0-runtime-ubuntu24.04"
    text = small_matrix.replace('runtime-image = "debian:bookworm-slim"', f'runtime-image = "{public}"')
    m = load_matrix(write_matrix(text))
    (target,) = [t for t in resolve.targets(m, make_plan(m, Selection())) if t.framework == "vllm"]
    assert (target.runtime_image, resolve.distro(target.made_from)) == (public, ("3.12", "2.39"))
    m = load_matrix(write_matrix(text.replace("[mirror]", f'[bootstrap]\n"{public}" = "trixie"\n\n[mirror]')))
    (target,) = [t for t in resolve.targets(m, make_plan(m, Selection())) if t.framework == "vllm"]
    assert (target.runtime_image, resolve.distro(target.made_from)) == (public, ("3.13", "2.41"))
