from __future__ import annotations

import json
import stat

import pytest

from toolkit import console, matrix, plan, sccache, wheels
from toolkit.matrix import Arch, BuildMode


@pytest.fixture
def line(write_matrix):
    return matrix.load_matrix(write_matrix()).cuda["13.0"]


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_STATE_DIR", str(tmp_path / "state"))


def test_one_cache_per_line_arch_and_toolchain(line):
    native = sccache.cache_dir(line, "13.0", Arch.X86_64, BuildMode.NATIVE)
    assert native.name.startswith("cu130-x86_64-")
    # Emulated aarch64 runs the same aarch64 compilers as a native aarch64 runner; cross runs x86_64 ones.
    assert sccache.cache_dir(line, "13.0", Arch.AARCH64, BuildMode.EMULATED) == \
        sccache.cache_dir(line, "13.0", Arch.AARCH64, BuildMode.NATIVE)
    assert sccache.cache_dir(line, "13.0", Arch.AARCH64, BuildMode.CROSS).name.startswith("cu130-aarch64-cross-")
    other = type(line)(**{**line.__dict__, "toolchain_requirements": ("nvidia-cuda-nvcc==13.0.2",)})
    assert sccache.cache_dir(other, "13.0", Arch.X86_64, BuildMode.NATIVE) != native
    # Not the builder's Dockerfile or image tag: a new builder of the same toolchain keeps its cache.
    relabelled = type(line)(**{**line.__dict__, "local_version": "other", "archs": line.archs[:1]})
    assert sccache.cache_dir(relabelled, "13.0", Arch.X86_64, BuildMode.NATIVE) == native


def test_remote_settings_travel_in_a_private_file_and_are_masked(monkeypatch):
    monkeypatch.setenv("SCCACHE_REDIS_ENDPOINT", "redis://cache:6379")
    monkeypatch.setenv("SCCACHE_REDIS_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value")
    monkeypatch.setenv("SCCACHE_DIR", "/elsewhere")  # the toolkit's own setting wins
    monkeypatch.setenv("HOME_SECRET", "not-forwarded")
    with sccache.settings_file() as conf:
        text = conf.read_text()
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600
        assert stat.S_IMODE(conf.parent.stat().st_mode) == 0o700
    assert not conf.exists()
    assert "SCCACHE_REDIS_PASSWORD=hunter2-secret\n" in text and "AWS_SECRET_ACCESS_KEY=aws-secret-value" in text
    assert f"SCCACHE_DIR={sccache.CACHE}\n" in text and "/elsewhere" not in text and "not-forwarded" not in text
    assert console.mask("auth hunter2-secret aws-secret-value redis://cache:6379") == "auth *** *** ***"


def test_settings_are_quoted_for_the_shell(monkeypatch):
    monkeypatch.setenv("SCCACHE_WEBDAV_PASSWORD", "a b'$(touch /tmp/x)")
    with sccache.settings_file() as conf:
        assert "SCCACHE_WEBDAV_PASSWORD='a b'\"'\"'$(touch /tmp/x)'" in conf.read_text()


STATS = {"stats": {
    "compile_requests": 4, "requests_not_cacheable": 0, "non_cacheable_compilations": 1,
    "cache_hits": {"counts": {"C/C++": 1, "CUDA": 2}}, "cache_misses": {"counts": {"PTX": 1}},
    "cache_read_errors": 0, "cache_write_errors": 0, "compile_fails": 0,
    "compiler_write_duration": {"secs": 3, "nanos": 500_000_000},
    "cache_read_hit_duration": {"secs": 0, "nanos": 120_000_000}},
    "cache_location": 'Local disk: "/var/cache/sccache"'}


def test_stats_as_recorded_and_summarised(tmp_path):
    session = sccache.Session(tmp_path, tmp_path, tmp_path / "settings", tmp_path)
    assert session.read() == {"enabled": True, "error": "sccache wrote no statistics"}
    assert sccache.describe(session.read()) == "cache: sccache wrote no statistics"
    (tmp_path / "stats.json").write_text(json.dumps(STATS))
    started = 1_765_000_000_000_000_000
    (tmp_path / sccache.COMPILES).write_text("".join(f"{started} {started + ns} /project/src/{n}.cu\n" for n, ns in
                                                     enumerate([1_500_000_000, 250_000_000, 3_000_000, 9_000_000,
                                                                40_000_000, 2_000_000_000]))
                                             + f"{started} {started + 7_000_000} \n"  # no source file named
                                             + "%s%N %s%N \n")  # a date without nanoseconds: not counted
    record = session.read()
    assert record == {"enabled": True, "location": "local", "hits": 3, "misses": 1,
                      "hits_by_language": {"C/C++": 1, "CUDA": 2}, "misses_by_language": {"PTX": 1},
                      "not_cacheable": 1, "errors": 0, "compile_seconds": 3.809,
                      "slowest_compiles": [{"seconds": 2.0, "source": "/project/src/5.cu"},
                                           {"seconds": 1.5, "source": "/project/src/0.cu"},
                                           {"seconds": 0.25, "source": "/project/src/1.cu"},
                                           {"seconds": 0.04, "source": "/project/src/4.cu"},
                                           {"seconds": 0.009, "source": "/project/src/3.cu"}]}
    assert sccache.describe(record) == ("cache 3 hits / 1 misses (C/C++ 1/0, CUDA 2/0, PTX 0/1), "
                                        "3.809 s in the compilers")
    off = sccache.Session(tmp_path, None, tmp_path / "settings", tmp_path).read()
    assert off["enabled"] is False and sccache.describe(off) == "cache off (1 compiles)"


def test_with_the_cache_off_nothing_outlives_the_build(line, monkeypatch):
    monkeypatch.setenv("SCCACHE_REDIS_PASSWORD", "hunter2-secret")
    with sccache.session(line, "13.0", Arch.X86_64, BuildMode.NATIVE, Arch.X86_64, enabled=False,
                         fetch=False) as off:
        settings = off.settings.read_text()
    assert off.cache is None and not any(v.endswith(f":{sccache.CACHE}") for v in off.volumes())
    assert f"SCCACHE_DIR={sccache.THROWAWAY}\n" in settings and "hunter2" not in settings


def test_cibuildwheel_gets_the_cache_only_when_on(write_matrix, tmp_path, monkeypatch):
    monkeypatch.setattr(wheels, "source_date_epoch", lambda path: wheels.DEFAULT_EPOCH)
    m = matrix.load_matrix(write_matrix())
    w = plan.make_plan(m, plan.Selection(cuda=("13.0",), arch=("x86_64",))).wheels[0]
    _, off, _ = wheels.cibuildwheel_command(m, w, tmp_path, tmp_path / "out")
    assert not any(k.startswith("CMAKE_") or k.startswith("CIBW_BEFORE") for k in off)
    assert "sccache" not in off["CIBW_CONTAINER_ENGINE"]
    session = sccache.Session(tmp_path / "bin", tmp_path / "cache", tmp_path / "settings", tmp_path / "stats")
    _, on, _ = wheels.cibuildwheel_command(m, w, tmp_path, tmp_path / "out", session)
    assert on["CMAKE_CUDA_COMPILER_LAUNCHER"] == sccache.LAUNCHER
    assert f"--volume {tmp_path / 'settings'}:{sccache.SETTINGS}:ro" in on["CIBW_CONTAINER_ENGINE"]
    assert on["CIBW_BEFORE_BUILD_LINUX"] == session.start()
    assert on["CIBW_REPAIR_WHEEL_COMMAND_LINUX"].startswith(session.report() + " && auditwheel repair ")


def test_an_image_build_log_gives_the_stages_counters_or_none_when_the_stage_was_cached(tmp_path):
    (tmp_path / "stats.json").write_text(json.dumps(STATS))
    expected = sccache.counters(STATS, True)  # the image's stage has no timed launcher
    run_line = f'#12 [wheel-build 2/2] RUN if [ -f x ]; then echo "{sccache.IMAGE_STATS}$(sccache --show-stats)"; fi'
    ran = (f"{run_line}\n#12 4.210 Successfully built\n#12 4.371 {sccache.IMAGE_STATS}{json.dumps(STATS)}\n"
           "#12 DONE 4.4s\n")
    assert sccache.from_build_log(ran, True) == expected
    assert sccache.from_build_log(f"{run_line}\n#12 CACHED\n", True) is None
