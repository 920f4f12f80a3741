from __future__ import annotations

import json

import pytest

from toolkit import cli
from toolkit.errors import ConfigError
from toolkit.manifest import Manifest, merge


def _run(where, python, result="pass"):
    return {"artifact": "x", "platform": "linux/amd64", "python": python, "where": where, "result": result,
            "gpu": "-", "seconds": 1.0, "detail": ""}


def _wheel(sha, *runs, at="2026-11-25T10:00:00+00:00"):
    record = {"kind": "wheel", "file": f"saxpy-{sha}.whl", "sha256": sha}
    if runs:
        record["smoke"] = {"sha256": sha, "at": at, "runs": list(runs)}
    return record


def _fragment(tmp_path, name, **records):
    path = tmp_path / f"manifest-{name}.json"
    path.write_text(json.dumps({"schema": 1, "artifacts": records}))
    return path


def test_slices_combine_and_smoke_runs_of_one_build_stand_side_by_side(tmp_path):
    x86, arm = "wheel:saxpy:cu130:x86_64", "wheel:saxpy:cu130:aarch64"
    fragments = [
        _fragment(tmp_path, "wheels-x86_64", **{x86: _wheel("aaa", _run("container", "3.11"))}),
        _fragment(tmp_path, "wheels-aarch64", **{arm: _wheel("bbb", _run("container", "3.11"))}),
        _fragment(tmp_path, "gpu-smoke", **{x86: _wheel("aaa", _run("host", "3.12"), at="2026-11-25T11:00:00+00:00")}),
    ]
    merged = merge(fragments)
    assert sorted(merged) == [arm, x86]
    assert [(r["where"], r["python"]) for r in merged[x86]["smoke"]["runs"]] == [("container", "3.11"),
                                                                                ("host", "3.12")]
    assert merged[x86]["smoke"]["at"] == "2026-11-25T11:00:00+00:00"
    assert [(r["where"], r["python"]) for r in merged[arm]["smoke"]["runs"]] == [("container", "3.11")]


def test_the_same_artifact_built_twice_is_a_conflict_naming_both_fragments(tmp_path):
    a = _fragment(tmp_path, "wheels-1", **{"wheel:saxpy:cu130:x86_64": _wheel("aaa")})
    b = _fragment(tmp_path, "wheels-2", **{"wheel:saxpy:cu130:x86_64": _wheel("ccc")})
    with pytest.raises(ConfigError) as exc:
        merge([a, b])
    assert exc.value.problems == (f"wheel:saxpy:cu130:x86_64: {a} records sha256 aaa, {b} records sha256 ccc: "
                                  "two different builds of one artifact",)


def test_a_smoke_run_of_another_build_is_not_merged_in(tmp_path):
    x86 = "wheel:saxpy:cu130:x86_64"
    stale = _wheel("aaa")
    stale["smoke"] = {"sha256": "old", "at": "2026-11-24T00:00:00+00:00", "runs": [_run("host", "3.12", "FAIL")]}
    merged = merge([_fragment(tmp_path, "a", **{x86: _wheel("aaa", _run("container", "3.11"))}),
                    _fragment(tmp_path, "b", **{x86: stale})])
    assert [r["where"] for r in merged[x86]["smoke"]["runs"]] == ["container"]


def test_merge_command_writes_the_release_manifest(tmp_path, capsys):
    a = _fragment(tmp_path, "a", **{"wheel:saxpy:cu130:x86_64": _wheel("aaa")})
    out = tmp_path / "dist" / "manifest.json"
    assert cli.main(["manifest", "merge", str(a), str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    assert "missing.json: not a release manifest" in capsys.readouterr().err and not out.exists()
    assert cli.main(["manifest", "merge", str(a), "--out", str(out)]) == 0
    assert Manifest(out).get("wheel:saxpy:cu130:x86_64")["sha256"] == "aaa"


def test_a_wheel_with_a_glibc_floor_needs_passes_on_that_floor_too(small_matrix, write_matrix):
    from toolkit import matrix, smoke
    from toolkit.manifest import merged_runs
    from toolkit.plan import Selection, make_plan

    floor = 'local-version = "cu130"\nglibc = "2.28"\nsysroot-image = "debian:bullseye-slim"'
    text = small_matrix.replace('local-version = "cu130"', floor).replace('["3.10", "3.12"]', '["3.10", "3.11"]')
    images = '[python-image]\n"3.11" = "debian:bookworm-slim"\n[mirror]'
    m = matrix.load_matrix(write_matrix(text.replace("[mirror]", images)))
    (w,) = make_plan(m, Selection(arch=("x86_64",), cuda=("13.0",), framework=("none",))).wheels
    assert smoke.floor_pythons(w) == ["3.11"]  # 3.10: no CPython source for an interpreter of the floor
    runs = [_run("container", "3.11")]
    record = {"kind": "wheel", "sha256": "abc", "smoke": {"sha256": "abc", "runs": runs}}
    assert smoke.coverage_problems(m, w, record) == [
        f"{w.id}: no passing smoke record on its glibc floor (debian:bullseye-slim, Python 3.11) for abc"]
    runs = merged_runs(runs, [_run("floor", "3.11")])  # a floor run stands beside the container run
    assert [r["where"] for r in runs] == ["container", "floor"]
    record["smoke"]["runs"] = runs
    assert smoke.coverage_problems(m, w, record) == []
