"""The rehearsal's reading of a workflow: expressions, job order, matrices, artifacts and step files, as GitHub."""

from __future__ import annotations

import pytest

from toolkit import ghexpr, images, rehearse
from toolkit.errors import BuildError, ConfigError
from toolkit.manifest import Manifest
from toolkit.matrix import load_matrix
from toolkit.plan import Selection, make_plan

CONTEXTS = {"needs": {"plan": {"outputs": {"wheels": "[]", "images": '[{"id": "a"}]'}, "result": "success"}},
            "secrets": {"REGISTRY_USERNAME": "", "TOKEN": "t"}, "github": {"actor": "me", "ref": "refs/tags/v1"},
            "matrix": {"arch": "x86_64", "key": "wheel-x"}, "inputs": {}}
ALL_GOOD = {"success": True, "failure": False, "always": True, "cancelled": False}


@pytest.mark.parametrize(("expr", "value"), [
    ("needs.plan.outputs.wheels != '[]'", False),
    ("needs.plan.outputs.images != '[]'", True),
    ("secrets.REGISTRY_USERNAME || github.actor", "me"),  # || returns an operand, as in JavaScript
    ("secrets.TOKEN && github.actor", "me"),
    ("fromJSON(needs.plan.outputs.images)[0].id", "a"),
    ("needs['plan'].result == 'SUCCESS'", True),  # strings compare case-insensitively
    ("matrix.missing", None),  # an absent property is null, not an error
    ("'1' == 1", True),  # mismatched types compare as numbers
    ("null == 0 && '' == 0 && !''", True),
    ("format('{0}-{1}', matrix.arch, 'x')", "x86_64-x"),
    ("contains(fromJSON('[\"a\", \"b\"]'), 'B')", True),
    ("startsWith(github.ref, 'refs/tags/')", True),
    ("needs.*.result", ["success"]),
    ("(1 < 2) && 'it''s'", "it's"),
])
def test_expressions_evaluate_as_github_documents(expr, value):
    assert ghexpr.evaluate(expr, CONTEXTS) == value


@pytest.mark.parametrize("expr", ["github.actor ==", "unknown.context", "nosuch(1)", "success()", "a b"])
def test_an_expression_github_would_reject_is_an_error(expr):
    with pytest.raises(ghexpr.ExpressionError):
        ghexpr.evaluate(expr, CONTEXTS)


def test_if_implies_success_unless_it_checks_a_status_itself():
    after_failure = {**ALL_GOOD, "success": False, "failure": True}
    assert ghexpr.condition("needs.plan.outputs.images != '[]'", CONTEXTS, ALL_GOOD)
    assert not ghexpr.condition("needs.plan.outputs.images != '[]'", CONTEXTS, after_failure)
    assert ghexpr.condition("${{ always() }}", CONTEXTS, after_failure)
    skipped_need = {**ALL_GOOD, "success": False}  # a need skipped by its own if:, none failed
    assert ghexpr.condition("${{ !cancelled() && !failure() }}", CONTEXTS, skipped_need)
    assert not ghexpr.condition("${{ !cancelled() && !failure() }}", CONTEXTS, after_failure)


def test_render_keeps_a_whole_expression_s_value_and_prints_embedded_ones():
    assert ghexpr.render("${{ fromJSON('[1, 2]') }}", CONTEXTS) == [1, 2]
    assert ghexpr.render("manifest-${{ matrix.key }}", CONTEXTS) == "manifest-wheel-x"
    assert ghexpr.render({"a": ["${{ secrets.REGISTRY_USERNAME }}x"]}, CONTEXTS) == {"a": ["x"]}


def _workflow(jobs: str) -> str:
    return f"on:\n  push:\n    tags: ['v*']\njobs:\n{jobs}"


def test_jobs_run_after_their_needs_and_bare_on_is_read_as_on():
    doc = rehearse.load(_workflow(
        "  publish: {needs: [a, b], runs-on: ubuntu-24.04, steps: [{run: 'true'}]}\n"
        "  b: {needs: a, runs-on: ubuntu-24.04, steps: [{run: 'true'}]}\n"
        "  a: {runs-on: ubuntu-24.04, steps: [{run: 'true'}]}\n"), "w.yml")
    assert rehearse._order(doc["jobs"], "w.yml") == ["a", "b", "publish"]
    assert doc["on"] == {"push": {"tags": ["v*"]}}
    assert rehearse.load("on: [push, workflow_dispatch]\njobs: {}\n", "w.yml")["on"] == {
        "push": None, "workflow_dispatch": None}


@pytest.mark.parametrize(("jobs", "says"), [
    ("  a: {runs-on: x, services: {}, steps: []}\n", "jobs.a.services: the rehearsal cannot run this key"),
    ("  a: {runs-on: x, steps: [{uses: 'docker/login-action@v3'}]}\n", "docker/login-action has no stand-in"),
    ("  a: {runs-on: x, steps: [{uses: 'actions/upload-artifact@v4', with: {compression-level: 9}}]}\n",
     "with.compression-level: actions/upload-artifact's stand-in does not implement it"),
    ("  a: {runs-on: x, steps: [{run: 'true', shell: pwsh}]}\n", "steps[0].shell: 'pwsh' is not supported"),
    ("  a: {needs: b, runs-on: x, steps: []}\n  b: {needs: a, runs-on: x, steps: []}\n", "form a cycle"),
    ("  a: {needs: c, runs-on: x, steps: []}\n", "jobs.a.needs: no job 'c'"),
])
def test_what_the_rehearsal_cannot_stand_in_for_is_an_error_naming_it(jobs, says):
    with pytest.raises(ConfigError) as err:
        rehearse.load(_workflow(jobs), "w.yml")
    assert says in str(err.value) and "w.yml" in str(err.value)


def test_matrix_include_entries_are_jobs_of_their_own_without_axes():
    # Two include entries and no axes: two jobs (the rehearsal once merged the second into the first).
    include = [{"arch": "x86_64", "cuda": "13.0"}, {"arch": "aarch64", "cuda": "13.0"}]
    assert rehearse._combos({"include": include}, "w") == include


def test_matrix_axes_cross_exclude_drops_and_include_extends_or_adds():
    combos = rehearse._combos({"arch": ["x86_64", "aarch64"], "py": ["3.11", "3.12"],
                               "exclude": [{"arch": "aarch64", "py": "3.11"}],
                               "include": [{"arch": "x86_64", "gpu": True}, {"arch": "riscv64"}]}, "w")
    assert combos == [{"arch": "x86_64", "py": "3.11", "gpu": True}, {"arch": "x86_64", "py": "3.12", "gpu": True},
                      {"arch": "aarch64", "py": "3.12"}, {"arch": "riscv64"}]
    with pytest.raises(rehearse.StepFailed, match="no entries"):
        rehearse._combos({"include": []}, "w")


def _files(tmp_path, **files):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {name: tmp_path / name for name in files}


def test_merge_multiple_overwrites_same_named_files_the_bug_that_bit_us(tmp_path):
    store = rehearse.Artifacts(tmp_path / "store")
    runners = _files(tmp_path / "src", **{"x/manifest.json": "x86_64", "a/manifest.json": "aarch64"})
    store.upload("wheel-x86_64", {"manifest.json": runners["x/manifest.json"]}, overwrite=False)
    store.upload("wheel-aarch64", {"manifest.json": runners["a/manifest.json"]}, overwrite=False)
    assert store.download("", "wheel-*", tmp_path / "merged", merge=True) == ["wheel-x86_64", "wheel-aarch64"]
    assert (tmp_path / "merged" / "manifest.json").read_text() == "aarch64"  # one survives, silently
    store.download("", "wheel-*", tmp_path / "apart", merge=False)
    assert (tmp_path / "apart" / "wheel-x86_64" / "manifest.json").read_text() == "x86_64"
    store.download("wheel-x86_64", "", tmp_path / "named", merge=False)  # by name: straight into path
    assert (tmp_path / "named" / "manifest.json").read_text() == "x86_64"
    assert store.download("", "nothing-*", tmp_path / "none", merge=True) == []  # a pattern may match nothing


def test_an_artifact_name_is_uploaded_once_per_run_unless_overwrite(tmp_path):
    store = rehearse.Artifacts(tmp_path / "store")
    one = _files(tmp_path, f="1")["f"]
    store.upload("manifest-x", {"f": one}, overwrite=False)
    with pytest.raises(rehearse.StepFailed, match="409"):
        store.upload("manifest-x", {"f": one}, overwrite=False)
    store.upload("manifest-x", {"g": one}, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "store" / "manifest-x").iterdir()) == ["g"]
    with pytest.raises(rehearse.StepFailed, match="not found"):
        store.download("manifest-y", "", tmp_path / "d", merge=False)
    with pytest.raises(rehearse.StepFailed, match="not valid"):
        store.upload("a/b", {"f": one}, overwrite=False)


def test_upload_paths_are_named_from_the_patterns_common_root(tmp_path):
    run = rehearse._Instance(workspace=tmp_path, temp=tmp_path, log=tmp_path / "log", env={}, contexts={})
    _files(tmp_path, **{"dist/a.whl": "", "dist/b.whl": "", "dist/manifest.json": "", "fragments/m-1.json": "",
                        "fragments/.hidden": "", "one/file.txt": ""})
    assert sorted(rehearse._upload_files(run, ["dist/*.whl"], hidden=False)) == ["a.whl", "b.whl"]
    assert sorted(rehearse._upload_files(run, ["fragments/"], hidden=False)) == ["m-1.json"]
    assert sorted(rehearse._upload_files(run, ["one/file.txt"], hidden=False)) == ["file.txt"]
    assert sorted(rehearse._upload_files(run, ["dist/a.whl", "fragments/m-1.json"], hidden=False)) == [
        "dist/a.whl", "fragments/m-1.json"]


def test_step_outputs_read_both_github_output_forms(tmp_path):
    path = tmp_path / "out"
    path.write_text('wheels=[{"id":"a"}]\nnotes<<EOF\nline 1\nline=2\nEOF\nempty=\n')
    assert rehearse._read_commands_file(path) == {"wheels": '[{"id":"a"}]', "notes": "line 1\nline=2", "empty": ""}
    path.write_text("x<<EOF\nno end\n")
    with pytest.raises(rehearse.StepFailed, match="no closing EOF"):
        rehearse._read_commands_file(path)


def test_runners_stood_in_for_and_those_that_are_not(monkeypatch):
    monkeypatch.setattr(rehearse.hostinfo, "gpus", list)
    assert rehearse._runner("ubuntu-24.04") == (True, "")
    can, note = rehearse._runner("ubuntu-24.04-arm")
    assert can and "aarch64 builds use the matrix's [build-mode]" in note
    assert rehearse._runner(["self-hosted", "linux", "x64", "gpu"])[0] is False
    with pytest.raises(rehearse.StepFailed, match="ubuntu-"):
        rehearse._runner("macos-15")


def test_a_join_waits_for_every_planned_platform_and_with_strict_names_the_missing_one(tmp_path, request):
    m = load_matrix(request.config.rootpath / "matrix.toml")
    whole = make_plan(m, Selection())
    plan = make_plan(m, Selection(cuda=("13.0",), framework=("none",)))
    manifest = Manifest(tmp_path / "manifest.json")
    manifest.record("image:none:cu130:x86_64", kind="image", tag=plan.images[0].tag, platform="linux/amd64",
                    digest="sha256:" + "1" * 64, pushed=True)
    assert images.join(plan, whole, manifest, strict=False) == []  # waits: no registry is asked
    with pytest.raises(BuildError, match="linux/arm64 never pushed"):
        images.join(plan, whole, manifest, strict=True)


def test_a_state_directory_the_jobs_would_not_see_is_refused_before_anything_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("TOOLKIT_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(ConfigError, match="TOOLKIT_STATE_DIR is set"):
        rehearse.rehearse(tmp_path)
    assert not (tmp_path / "build").exists()
