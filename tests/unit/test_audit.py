from __future__ import annotations

import signal
import struct
import zipfile
from pathlib import Path

import pytest

from toolkit import audit, cuda


def _entry(kind: int, arch: int, flags: int = 0x11, payload: bytes = b"\0" * 24) -> bytes:
    header = struct.pack("<HHIQ", kind, 0x101, 64, len(payload))
    header += struct.pack("<IIII", 0, 0, 0x10008, arch) + struct.pack("<II", 0, 0) + struct.pack("<I", flags)
    return header.ljust(64, b"\0") + payload


def _fatbin(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def test_fatbin_entries_decode_kind_arch_and_suffix():
    data = _fatbin(_entry(2, 75), _entry(2, 90, 0x100011), _entry(1, 120, 0x8011), _entry(2, 100, 0x1200011))
    # a second container after padding, as the linker concatenates one per translation unit
    data += b"\0" * 8 + _fatbin(_entry(2, 120, 0x1000011))
    assert audit.fatbin_entries(data) == [
        audit.Entry("ptx", "120"), audit.Entry("sass", "75"), audit.Entry("sass", "90a"),
        audit.Entry("sass", "100f"), audit.Entry("sass", "120")]


def test_a_real_nvcc_fatbin_decodes_as_cuobjdump_lists_it():
    # The .nv_fatbin section of saxpy/_core.abi3.so in the released x86_64 wheel (sha256 68c3a461…), built by
    # nvcc 13.0 for "7.5 8.0 8.6 8.9 9.0a 10.0 12.0+PTX". NVIDIA's cuobjdump listed that very file's cubins as
    # sm_75 sm_80 sm_86 sm_89 sm_90a sm_100 sm_120 and its PTX as compute_120 (docs/verification/gpu-smoke-h100.json).
    # Unlike the fixtures above, nothing here follows the parser's own idea of the layout.
    data = (Path(__file__).parent / "data" / "saxpy-cu130-x86_64.nv_fatbin").read_bytes()
    assert audit.fatbin_entries(data) == [audit.Entry("ptx", "120")] + [
        audit.Entry("sass", sm) for sm in ("75", "80", "86", "89", "90a", "100", "120")]


def test_object_entries_is_none_for_non_elf():
    assert audit.object_entries(b"not an elf file") is None


def test_report_names_missing_sass_and_ptx():
    entries = [audit.Entry("sass", "75"), audit.Entry("sass", "120")]
    report = audit._report("x.so", entries, cuda.parse_arch_list("7.5 9.0a 12.0+PTX"), "not installed")
    assert report.missing == ("sm_90a (SASS)", "compute_120 (PTX)")


def test_wheel_without_device_code_fails(tmp_path):
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("x/__init__.py", "")
    report = audit.audit_wheel(wheel, cuda.parse_arch_list("8.0"))
    assert not report.ok
    assert "no shared object with device code" in audit.describe(report)


@pytest.mark.parametrize("flags, sm", [(0x11, "90"), (0x100011, "90a"), (0x200011, "90f")])
def test_suffix_flags(flags, sm):
    assert audit.fatbin_entries(_fatbin(_entry(2, 90, flags))) == [audit.Entry("sass", sm)]


def test_gpu_verdict_names_the_family_and_what_the_device_loaded():
    from toolkit import smoke

    report = ('{"devices": [{"name": "NVIDIA H100", "major": 9, "minor": 0, "driver_version": 13000,'
              ' "runtime_version": 12080}], "kernel": {"cuda_arch": 900}, "max_abs_error": 0.0, "ok": true}')
    ok, detail = smoke._gpu_verdict("noise\n" + report, False, ["75", "90a"])
    assert ok and detail.startswith("NVIDIA H100 (Hopper, sm_90, CUDA driver API 13.0, runtime 12.8): "
                                    "ran __CUDA_ARCH__=900 from SASS")
    ok, detail = smoke._gpu_verdict(report, True, ["75"])
    assert ok and "PTX (JIT)" in detail


def test_the_import_probe_is_found_after_what_an_import_printed_first(write_matrix):
    from toolkit import matrix, smoke
    from toolkit.plan import Selection, make_plan

    m = matrix.load_matrix(write_matrix())
    (w,) = make_plan(m, Selection(arch=("aarch64",), cuda=("13.0",), framework=("none",))).wheels
    warned = "torch/_subclasses/functional_tensor.py:307: UserWarning: Failed to initialize NumPy\n"
    result, detail = smoke._verdict(w, warned + smoke.MACHINE + "aarch64\n{\"ok\": true}\n")
    assert (result, detail) == (smoke.PASS, '{"ok": true}')
    result, detail = smoke._verdict(w, warned + smoke.MACHINE + "x86_64\n")
    assert result == smoke.FAIL and detail.startswith("ran on x86_64, expected aarch64: torch/_subclasses")
    result, detail = smoke._verdict(w, "Traceback: ImportError: libc10.so\n")
    assert result == smoke.FAIL and detail == "ran on nothing, expected aarch64: Traceback: ImportError: libc10.so"


@pytest.mark.parametrize("jit, sass", [(True, ["90a"]), (False, ["75"])])
def test_gpu_verdict_fails_when_what_loaded_contradicts_the_audit(jit, sass):
    from toolkit import smoke

    report = '{"devices": [{"name": "H100", "major": 9, "minor": 0}], "kernel": {"cuda_arch": 900}, "ok": true}'
    ok, detail = smoke._gpu_verdict(report, jit, sass)
    assert not ok and "the audit" in detail


@pytest.fixture
def deadline():
    """A parser that loops forever fails the test instead of hanging the run."""
    def expire(*_):
        raise TimeoutError("the fatbin parser did not return within 5 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("data", [
    struct.pack("<IHHQ", 0xBA55ED50, 1, 0, 0) + b"\0" * 64,  # container header size 0
    _fatbin(struct.pack("<HHIQ", 2, 0x101, 0, 0) + b"\0" * 40),  # entry header size 0
    _fatbin(_entry(2, 90))[:-8],  # truncated: the body ends before its declared size
], ids=["container-header-0", "entry-header-0", "truncated"])
def test_malformed_fatbin_is_an_error_not_a_hang(data, deadline):
    with pytest.raises(audit.MalformedFatbin):
        audit.fatbin_entries(data)


@pytest.mark.parametrize("argv, code, message", [
    (["audit", "--cuda", "12.7", "saxpy-0.1.0+cu130-cp310-abi3-manylinux_2_34_x86_64.whl"], 2,
     '--cuda 12.7: {matrix} has no [cuda."12.7"] table'),
    (["audit", "saxpy.whl"], 2, "saxpy.whl: Invalid wheel filename"),
    (["audit", "--expect", "9.0b", "saxpy.whl"], 2, "--expect 9.0b:"),
    (["audit", "--cuda", "13.0", "missing-1.0-py3-none-any.whl"], 5, "missing-1.0-py3-none-any.whl: cannot be read"),
])
def test_audit_input_errors_are_messages_with_exit_codes(argv, code, message, write_matrix, capsys, monkeypatch,
                                                         tmp_path):
    from toolkit import cli

    monkeypatch.chdir(tmp_path)
    path = write_matrix()
    assert cli.main(["--matrix", str(path), *argv]) == code
    assert message.format(matrix=path) in capsys.readouterr().err
