"""Thin sessions: each parses its arguments and calls ``toolkit``.

Arguments after ``--`` go straight to the toolkit command, so
``nox -s matrix -- --arch aarch64 --cuda 13.0`` filters the plan like the CLI does.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests"]

# PyTorch (CPU build) is installed for one test: our -gencode renderer is compared
# with torch.utils.cpp_extension's for the same TORCH_CUDA_ARCH_LIST.
TEST_EXTRAS = ("-e", ".[test]", "torch==2.13.0")


def _toolkit(session: nox.Session, *args: str) -> None:
    session.install("-e", ".")
    session.run("toolkit", *args, *session.posargs)


@nox.session
def matrix(session: nox.Session) -> None:
    """Validate matrix.toml and print the plan as a table."""
    _toolkit(session, "plan")


@nox.session
def engine(session: nox.Session) -> None:
    """Bring up the local engine (`-- status`, `-- down` and selection flags pass through)."""
    args = session.posargs if session.posargs[:1] in (["up"], ["status"], ["down"]) else ["up", *session.posargs]
    session.install("-e", ".")
    session.run("toolkit", "engine", *args)


@nox.session
def doctor(session: nox.Session) -> None:
    """Write the compatibility verification report to build/doctor/."""
    _toolkit(session, "doctor")


@nox.session
def resolve(session: nox.Session) -> None:
    """Resolve each framework's requirements per image platform, binary wheels only (`-- --write` records them)."""
    _toolkit(session, "resolve")


@nox.session
def render(session: nox.Session) -> None:
    """Re-render generated files (`-- --check` fails with a diff on drift instead)."""
    _toolkit(session, "render")


@nox.session
def wheels(session: nox.Session) -> None:
    """Build, repair, audit and record the planned wheels (`-- --arch aarch64 --dry-run` …)."""
    _toolkit(session, "wheels")


@nox.session
def images(session: nox.Session) -> None:
    """Build the planned images (`-- --framework vllm --push --dry-run` …)."""
    _toolkit(session, "images")


@nox.session
def audit(session: nox.Session) -> None:
    """Audit the GPU code of wheels (default: every wheel in dist/)."""
    session.install("-e", ".")
    session.run("toolkit", "audit", *(session.posargs or [str(p) for p in Path("dist").glob("*.whl")]))


@nox.session
def smoke(session: nox.Session) -> None:
    """Install and run every built artifact per platform and Python."""
    _toolkit(session, "smoke")


@nox.session
def publish(session: nox.Session) -> None:
    """Publish smoke-tested artifacts (a dry run unless `-- --yes`)."""
    _toolkit(session, "publish")


@nox.session(name="verify-release")
def verify_release(session: nox.Session) -> None:
    """Check a published release as a client would: signatures, attestations, checksums (`-- VERSION`)."""
    _toolkit(session, "verify-release")


@nox.session
def rehearse(session: nox.Session) -> None:
    """Run the committed release workflow here, job by job, as GitHub would (`-- --input cuda=13.0` …)."""
    _toolkit(session, "rehearse")


@nox.session
def docs(session: nox.Session) -> None:
    """Record the release manifest beside the docs, regenerate the support matrix, write the release report."""
    _toolkit(session, "docs")


@nox.session
def report(session: nox.Session) -> None:
    """Write the release report page (`-- --screenshot report.png` also loads it in headless chromium)."""
    _toolkit(session, "report")


@nox.session
def demo(session: nox.Session) -> None:
    """The whole release on the local defaults, end to end (the README's main command)."""
    _toolkit(session, "demo")


@nox.session
def bench(session: nox.Session) -> None:
    """Measure the toolkit against raw cibuildwheel and docker buildx; write BENCHMARKS.md."""
    _toolkit(session, "bench")


@nox.session
def dist(session: nox.Session) -> None:
    """The toolkit's own sdist and wheel, built with python -m build and checked with twine."""
    session.install("build", "twine")
    session.run("python", "-m", "build", "--outdir", "dist/toolkit", ".")
    session.run("twine", "check", "--strict", *[str(p) for p in Path("dist/toolkit").glob("*")])


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests (not the slow ones); pytest args after --."""
    session.install(*TEST_EXTRAS)
    session.run("pytest", "-m", "not slow", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, tests and noxfile."""
    session.install("ruff==0.17.6")  # pinned: a new release may add findings
    session.run("ruff", "check", "toolkit", "tests", "noxfile.py")
