from __future__ import annotations

import json

from toolkit import cli


def test_docs_without_a_release_manifest_says_what_to_do(write_matrix, tmp_path, capsys):
    assert cli.main(["docs", "--matrix", str(write_matrix()), "--dist", str(tmp_path / "nowhere")]) == 2
    assert "nowhere/manifest.json: no release manifest there; build first" in capsys.readouterr().err


def test_an_unwritable_output_is_a_message_not_a_traceback(write_matrix, tmp_path, capsys):
    # render writes under the matrix's folder: a file where a folder must be
    path = write_matrix()
    (path.parent / "container").write_text("not a folder")
    assert cli.main(["render", "--matrix", str(path)]) == 1
    assert "error: [Errno" in capsys.readouterr().err


def test_validate_json_gives_the_verdict_and_every_problem(small_matrix, write_matrix, capsys):
    assert cli.main(["validate", "--json", "--matrix", str(write_matrix())]) == 0
    assert json.loads(capsys.readouterr().out) | {"matrix": ""} == {"matrix": "", "valid": True, "wheels": 4,
                                                                    "images": 5}
    bad = write_matrix(small_matrix.replace('"3.10", "3.12"', '"3.10", "3.21"').replace("smoke = [", "smok = ["))
    assert cli.main(["validate", "--json", "--matrix", str(bad)]) == 2
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["valid"] is False and [p.split(": ")[1] for p in verdict["problems"]] == [
        "axes.python[1]", "package.saxpy.smok"]


def test_a_run_that_stops_early_says_what_it_recorded_and_what_is_left(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": 1, "artifacts": {
        "wheel:a:cu130:x86_64": {"built_at": "2026-12-01T10:00:05+00:00",
                                 "smoke": {"at": "2026-12-01T10:01:00+00:00"}},
        "wheel:a:cu130:aarch64": {"built_at": "2026-12-01T09:00:00+00:00"},  # an earlier run's
        "image:none:cu130:x86_64": {"built_at": "2026-12-01T10:02:00+00:00",
                                    "published": {"at": "2026-12-01T10:03:00+00:00"}}}}))
    assert cli.run_summary(tmp_path, "2026-12-01T10:00:00+00:00").splitlines() == [
        "built in this run: wheel:a:cu130:x86_64, image:none:cu130:x86_64",
        "smoke-tested in this run: wheel:a:cu130:x86_64",
        "published in this run: image:none:cu130:x86_64",
        f"{tmp_path / 'manifest.json'} holds every finished step; a re-run does only the rest"]


def test_the_built_table_says_what_this_run_built_and_what_was_up_to_date(capsys):
    cli._print_built([{"id": "w1", "up_to_date": True}, {"id": "w2"}, {"id": "w3", "not_built": "no base image"}],
                     ("artifact",), lambda r: (r["id"],))
    out = capsys.readouterr().out.splitlines()
    assert [line.split() for line in out] == [["artifact", "this", "run"], ["--------", "----------"],
                                              ["w1", "up", "to", "date"], ["w2", "built"],
                                              ["not", "built", "here:", "w3:", "no", "base", "image"]]


def test_a_failed_command_also_says_what_this_run_recorded(write_matrix, tmp_path, capsys):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "manifest.json").write_text(json.dumps({"schema": 1, "artifacts": {
        "wheel:saxpy:cu130:x86_64": {"built_at": "2999-01-01T00:00:00+00:00"}}}))  # recorded after this run began
    code = cli.main(["smoke", "--matrix", str(write_matrix()), "--dist", str(dist), "--artifact", "wheel:nope"])
    err = capsys.readouterr().err
    assert code == 2 and "--artifact wheel:nope: not an artifact of the selection" in err
    assert "before that: built in this run: wheel:saxpy:cu130:x86_64\n" in err
