"""The progress of tasks: plain lines per state change; a failure shows its log's last lines and path."""

from __future__ import annotations

import io

import pytest

from toolkit import console


def test_plain_progress_is_one_line_per_state_change(tmp_path, capsys):
    assert console.configure(plain=False, stream=io.StringIO()) == console.PLAIN  # no terminal: plain
    with console.task("wheel:saxpy:cu130:x86_64", "cibuildwheel", tmp_path / "w.log"):
        assert console.task_log() == tmp_path / "w.log"
    assert console.task_log() is None
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "==> wheel:saxpy:cu130:x86_64: cibuildwheel"
    assert err[1].startswith("==> wheel:saxpy:cu130:x86_64: cibuildwheel done in ") and err[1].endswith(
        f"(log: {tmp_path / 'w.log'})")


def test_a_failed_task_shows_the_last_lines_of_its_log_and_where_it_is(tmp_path, capsys):
    console.configure(stream=io.StringIO())
    log = tmp_path / "i.log"
    log.write_text("an earlier run's line\n")
    with pytest.raises(RuntimeError), console.task("image:none:cu130:x86_64", "docker buildx build", log):
        log.write_text("".join(f"line {i}\n" for i in range(40)))
        raise RuntimeError("the build failed")
    err = capsys.readouterr().err
    assert f"image:none:cu130:x86_64: docker buildx build FAILED after 0 s; the last lines of {log}:" in err
    assert "    line 39" in err and "    line 15" in err and "line 14\n" not in err  # the last 25
    assert "an earlier run's line" not in err


def test_a_failed_tasks_log_lines_are_shown_with_secrets_masked(tmp_path, capsys):
    console.configure(stream=io.StringIO())
    console.register_secret("s3cret-pw")
    log = tmp_path / "login.log"
    with pytest.raises(RuntimeError), console.task("image:none:cu130:x86_64", "docker login", log):
        log.write_text("Error: login with s3cret-pw refused\n")
        raise RuntimeError("refused")
    err = capsys.readouterr().err
    assert "    Error: login with *** refused" in err and "s3cret-pw" not in err


def test_verbose_streams_so_no_task_log_takes_the_output(tmp_path):
    assert console.configure(verbose=True, stream=io.StringIO()) == console.VERBOSE
    try:
        with console.task("k", "what", tmp_path / "k.log"):
            assert console.task_log() is None
    finally:
        console.configure(stream=io.StringIO())
