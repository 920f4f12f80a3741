from __future__ import annotations

import multiprocessing
import threading

from toolkit import cli, locks
from toolkit.manifest import Manifest


def _hold(path, ready, release):
    with locks.hold(path, "dist/"):
        ready.set()
        release.wait(30)


def test_a_second_run_on_the_same_dist_is_refused_naming_the_first(write_matrix, tmp_path, capsys):
    dist = tmp_path / "dist"
    fork = multiprocessing.get_context("fork")
    ready, release = fork.Event(), fork.Event()
    holder = fork.Process(target=_hold, args=(dist / "manifest.json", ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        assert cli.main(["wheels", "--matrix", str(write_matrix()), "--dist", str(dist), "--dry-run"]) == 9
        assert f"in use by pid {holder.pid} (`toolkit " in capsys.readouterr().err
    finally:
        release.set()
        holder.join(30)
    with locks.hold(dist / "manifest.json", "dist/"):  # released with its holder
        pass


def test_concurrent_saves_never_share_a_temporary_file(tmp_path):
    errors = []

    def save_many(n):
        manifest = Manifest(tmp_path / "manifest.json")
        try:
            for i in range(200):
                manifest.data["artifacts"][f"a{n}"] = {"i": i}
                manifest.save()
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save_many, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Manifest(tmp_path / "manifest.json").data["artifacts"]
