from __future__ import annotations

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
