from __future__ import annotations

import json
import multiprocessing
import os
import time

import pytest

from toolkit.engine import host
from toolkit.errors import EngineError


@pytest.fixture
def sleeper():
    """A real process to stand for a service (forked: unit tests start no programs)."""
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
    child.start()
    yield child.pid
    child.kill()
    child.join()


def test_the_pid_file_names_the_process_that_was_started(sleeper, tmp_path):
    host.write_pid(tmp_path / "svc.pid", sleeper)
    assert host.read_pid(tmp_path / "svc.pid") == sleeper


def test_a_reused_pid_is_not_taken_for_the_service_nor_signalled(sleeper, tmp_path):
    # As after a reboot: the pid file's pid now belongs to a process started at another time.
    (tmp_path / "svc.pid").write_text(json.dumps({"pid": sleeper, "start": "1"}))
    assert host.read_pid(tmp_path / "svc.pid") is None
    assert host.stop_service("svc", tmp_path) is False
    os.kill(sleeper, 0)  # still alive: it was never signalled
    assert not (tmp_path / "svc.pid").exists()


def test_a_plain_pid_file_is_not_trusted(sleeper, tmp_path):
    (tmp_path / "svc.pid").write_text(f"{sleeper}\n")
    assert host.read_pid(tmp_path / "svc.pid") is None


def test_stopping_another_users_service_says_how(sleeper, tmp_path, monkeypatch):
    host.write_pid(tmp_path / "svc.pid", sleeper)

    def refuse(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    with monkeypatch.context() as patch, pytest.raises(
            EngineError, match=r"svc \(pid \d+\) was started by another user.*sudo toolkit engine down"):
        patch.setattr(host.os, "kill", refuse)  # what a non-root user gets for root's dockerd
        host.stop_service("svc", tmp_path)


def test_a_non_root_user_without_a_running_dockerd_is_told_at_once(tmp_path, monkeypatch):
    from toolkit.engine import daemon

    monkeypatch.setattr(daemon, "DOCKER_SOCKET", tmp_path / "docker.sock")  # no engine answers there
    monkeypatch.setattr(daemon.docker, "ping", lambda: False)
    monkeypatch.setattr(daemon.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(daemon.tools, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(EngineError, match=r"dockerd is installed but not running.*sudo systemctl start docker"):
        daemon.ensure_dockerd(tmp_path)  # and it started nothing: unit tests refuse to start processes


def test_gpus_are_found_through_the_driver_where_nvidia_smi_is_missing(tmp_path):
    from toolkit import hostinfo

    (tmp_path / "gpus" / "0000:1a:00.0").mkdir(parents=True)
    (tmp_path / "gpus" / "0000:1a:00.0" / "information").write_text(
        "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 123\n")
    (tmp_path / "version").write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release\n")
    assert hostinfo._driver_gpus(tmp_path) == [
        hostinfo.Gpu(name="NVIDIA H100 80GB HBM3", compute_capability="?", driver="580.159.04")]
    assert hostinfo._driver_gpus(tmp_path / "absent") == []


def test_a_run_logs_in_to_a_docker_config_of_its_own(tmp_path, monkeypatch):
    from toolkit.engine import docker

    users = tmp_path / "user-docker"
    (users / "cli-plugins").mkdir(parents=True)
    (users / "config.json").write_text('{"credsStore": "pass"}')
    monkeypatch.setenv("DOCKER_CONFIG", str(users))
    monkeypatch.setenv("TOOLKIT_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state" / "docker-config" / "999999999").mkdir(parents=True)  # left by a run that was killed
    mine = docker.private_config.__wrapped__()
    assert os.environ["DOCKER_CONFIG"] == str(mine) and mine.parent == tmp_path / "state" / "docker-config"
    assert mine.stat().st_mode & 0o777 == 0o700 and (mine / "config.json").stat().st_mode & 0o777 == 0o600
    assert (mine / "config.json").read_text() == '{"credsStore": "pass"}'  # the user's helpers still apply
    assert (mine / "cli-plugins").resolve() == users / "cli-plugins"  # and their buildx plugin
    assert [p.name for p in mine.parent.iterdir()] == [mine.name]


def test_a_binfmt_entry_counts_only_when_enabled_with_the_fix_binary_flag(tmp_path, monkeypatch):
    from toolkit.engine import daemon

    monkeypatch.setattr(daemon, "BINFMT", tmp_path)
    entry = ("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\noffset 0\n"
             "magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n")
    (tmp_path / "qemu-aarch64").write_text(entry.format(flags="PF"))
    assert daemon._binfmt_entry("qemu-aarch64")["interpreter"] == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert daemon._binfmt_enabled("qemu-aarch64")
    (tmp_path / "qemu-aarch64").write_text(entry.format(flags="P"))  # the interpreter must exist in each container
    assert not daemon._binfmt_enabled("qemu-aarch64")
    (tmp_path / "qemu-aarch64").write_text(entry.format(flags="PF").replace("enabled", "disabled"))
    assert not daemon._binfmt_enabled("qemu-aarch64") and not daemon._binfmt_enabled("qemu-x86_64")
    assert daemon._escaped("7f454c46") == "\\x7f\\x45\\x4c\\x46"
