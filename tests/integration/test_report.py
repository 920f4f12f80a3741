"""The release report, loaded in Debian's headless chromium: no console errors, one grid cell per planned
artifact with its recorded status, one timeline bar per recorded stage."""

from __future__ import annotations

import re

import pytest

from toolkit import engine, report, settings, smoke
from toolkit.manifest import Manifest
from toolkit.plan import Selection, make_plan

pytestmark = pytest.mark.integration


def test_the_report_loads_in_chromium_with_a_cell_per_artifact_and_a_bar_per_stage(built_images, repo_matrix,
                                                                                    tmp_path):
    dist, _ = built_images
    m = repo_matrix
    smoke.smoke(m, make_plan(m, Selection(cuda=("13.0",), framework=("none",))), dist)  # smoke bars too
    records = Manifest(dist / "manifest.json").data["artifacts"]
    page = report.write(m, records, dist / "logs", tmp_path / "report.html")
    engine.login(m, settings.state_dir())
    dom, console = report.browse(m, page, tmp_path / "report.png")

    errors = [line for line in console.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert errors == [], console[-2000:]
    # the page's script ran (it counts what it wired up) ...
    root = re.search(r"<html[^>]*>", dom).group(0)
    plan = make_plan(m)
    stages = sum(len(report.stages(records.get(a.id, {}))) for a in plan.artifacts)
    assert f'data-cells="{len(plan.artifacts)}"' in root and f'data-bars="{stages}"' in root, root
    # ... every planned artifact has one cell, with the status its record gives
    cells = dict(re.findall(r'<td class="cell [^"]*" data-artifact="([^"]+)" data-status="([^"]+)"', dom))
    assert sorted(cells) == sorted(a.id for a in plan.artifacts)
    assert cells == {a.id: report.status(records.get(a.id, {})) for a in plan.artifacts}
    built = [a.id for a in plan.artifacts if a.id in records]
    assert built and all(cells[a] in (report.PASSED, report.PUBLISHED) for a in built)
    # ... and every recorded stage one bar: a build for each built artifact, a smoke run for each tested one
    bars = re.findall(r'<rect class="bar [^"]*" data-artifact="([^"]+)" data-stage="([^"]+)"', dom)
    assert len(bars) == stages and {(a, "build") for a in built} <= set(bars)
    assert {(a, "smoke") for a in built} <= set(bars)
    assert {(a, "audit") for a in built if a.startswith("wheel:")} <= set(bars)
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
