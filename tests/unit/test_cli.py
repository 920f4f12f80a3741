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
