"""`edgeship fleet report --html`: a self-contained page with the status table and three plots,
rendered by headless Chromium (Debian's `chromium`) with every network request sent to a dead
proxy. The screenshot is kept in build/test-artifacts/."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from edgeship.edge_pusher.fleet.html import write_report
from edgeship.edge_pusher.fleet.reports import FleetReports
from edgeship.edge_pusher.fleet.status import fleet_status
from tests.edge_pusher.fleet.test_status import entry, report
from tests.helpers import REPO
from tests.helpers.tools import debian_program

ARTIFACTS = REPO / "build" / "test-artifacts"


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [debian_program("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--proxy-server=127.0.0.1:9",
         f"--user-data-dir={cwd / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd)


def fleet_history(path: Path) -> list:
    """Three snapshots of a rollout of v2 going from 5 % to 25 % while one device refuses it."""
    snapshots = []
    for minute, (rollout, on_v2) in enumerate([(5, 1), (25, 3), (25, 6)]):
        reports = {f"d{i}": report(f"d{i}", 2 if i < on_v2 else 1) for i in range(20)}
        reports["d19"] = report("d19", 1, refused={"sensor/2/cpu": "self-test-failed"})
        rows = fleet_status(reports, {"stable": {"sensor": [entry(1, 100), entry(2, rollout)]}})
        snapshots.append({"time": f"2026-11-30T10:0{minute}:00Z", "devices": len(reports),
                          "builds": [r.as_dict() for r in rows]})
    path.write_text("".join(json.dumps(s) + "\n" for s in snapshots))
    return rows


def test_the_page_renders_its_table_and_plots_without_network(tmp_path) -> None:
    rows = fleet_history(tmp_path / "history.jsonl")
    page = tmp_path / "fleet.html"
    reports = FleetReports(reports={f"d{i}": {} for i in range(20)}, read_at=0.0)
    write_report(str(page), rows, reports, str(tmp_path / "history.jsonl"))
    text = page.read_text()
    # nothing to fetch: no script, stylesheet, image or url() other than the SVGs' own #ids
    assert not re.search(r"<script|<link|<img|src=|url\((?!#)", text)
    assert set(re.findall(r"https?://[^\"' )]+", text)) <= {  # XML namespaces, never fetched
        "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}

    dom = chromium("--dump-dom", page.as_uri(), cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 3 and "<table>" in dom.stdout
    assert "self-test-failed 1" in dom.stdout and "25% active" in dom.stdout
    for caption in ("Devices per version over time", "Rollout stage and share of the fleet",
                    "Refusal reasons"):
        assert caption in dom.stdout

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "fleet_report.png"
    shot.unlink(missing_ok=True)
    done = chromium(f"--screenshot={shot}", "--window-size=1400,1600", page.as_uri(),
                    cwd=tmp_path)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:  # drawn, not blank: plots bring many colours
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 20


def test_device_chosen_names_are_text_not_markup_or_math(tmp_path) -> None:
    """Found in review: a refusal reason with $...$ crashed matplotlib's math text; names go
    through HTML escaping in the table and are plain text in the plots."""
    reports = {"d1": report("d1", 1, refused={"sensor/2/cpu": "$\\frac{<script>"})}
    rows = fleet_status(reports, {})
    page = tmp_path / "fleet.html"
    write_report(str(page), rows, FleetReports(reports=reports, read_at=0.0), None)
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_one_report_cannot_bloat_the_page_or_the_history(tmp_path) -> None:
    """Issue 18: 1,700 refusal keys in one report added 210 KB to every history line and made
    `report --html` 12-15x slower; long device strings went into the page whole. The reader
    keeps a report's first 50 refusals, shows a reason that is not a refusal code as
    'other', and says so."""
    from edgeship.edge_pusher.fleet.reports import MAX_REFUSALS, parse

    refused = {f"m{i}/1/cpu": "self-test-failed" + "x" * 200 for i in range(10)}
    refused |= {f"m{i}/1/cpu": "x" for i in range(10, 1_700)}
    flood = report("d1", 1, refused=refused) | {"schema_version": 1}
    payload = json.dumps(flood).encode()
    assert len(payload) < 64 * 1024  # a report the broker and the reader take
    device_id, kept, cut = parse("edgeship/devices/d1/state", payload, "edgeship")
    assert len(kept["refused"]) == MAX_REFUSALS
    assert cut == ("1700 refusals, 50 kept (1650 over 50; 10 reasons that are not refusal codes "
                   "shown as 'other')")
    assert list(kept["refused"].values())[9:11] == ["other", "x"]
    reports = {device_id: kept} | {f"d{i}": report(f"d{i}", 1) for i in range(2, 20)}
    rows = fleet_status(reports, {})
    history_line = json.dumps({"builds": [r.as_dict() for r in rows]})
    assert len(history_line) < 40_000, len(history_line)  # was 210 KB from this report alone
    page = tmp_path / "fleet.html"
    got = FleetReports(reports=reports, cut=[f"edgeship/devices/d1/state: {cut}"], read_at=0.0)
    write_report(str(page), rows, got, None, notes=[f"1 report cut (e.g. {got.cut[0]})"])
    text = page.read_text()
    assert "1650 over 50" in text
    assert len(text) < 1_500_000, len(text)


def test_device_text_on_the_page_is_escaped_and_cut(tmp_path) -> None:
    """Control characters and long strings from a report are escaped and cut in the table
    and the plots' labels, saying how much was cut."""
    reason = "\x1b[2J" + "\n" * 300 + "y" * 60
    reports = {"d1": report("d1", 1, refused={"sensor/2/cpu": reason})}
    rows = fleet_status(reports, {})
    page = tmp_path / "fleet.html"
    write_report(str(page), rows, FleetReports(reports=reports, read_at=0.0), None)
    text = page.read_text()
    assert "\x1b" not in text and "\\x1b[2J\\n\\n" in text and "more)" in text
    assert "1 device reporting" in text  # issue 25: not "1 devices"


def test_an_empty_refusal_chart_has_no_negative_ticks() -> None:
    """Issue 25: with no refusal, the chart's axis ran from -0.045 to 0.045."""
    from edgeship.edge_pusher.fleet.html import plots

    reports = {f"d{i}": report(f"d{i}", 1) for i in range(3)}
    history = [{"time": "2026-11-30T10:00:00Z", "devices": 3,
                "builds": [r.as_dict() for r in fleet_status(reports, {})]}]
    svg = plots(history)["Refusal reasons (now)"]
    assert "\u22120" not in svg and "0.04" not in svg  # matplotlib's minus sign, or 0.045


def test_history_lines_that_are_not_snapshots_are_skipped_not_fatal(tmp_path) -> None:
    """Found while typing the page: a history line with ``builds`` but no ``time`` (another
    tool's record, or one cut short) stopped the page with a KeyError, though the reader
    said such lines are skipped. Now a line counts only when every field the plots read has
    its type."""
    from edgeship.edge_pusher.fleet.html import read_history

    rows = fleet_history(tmp_path / "history.jsonl")
    good = (tmp_path / "history.jsonl").read_text().splitlines()
    build = json.loads(good[0])["builds"][0]
    bad = [{"builds": []}, {"time": "not a time", "devices": 3, "builds": []},
           {"time": "2026-11-30T10:05:00Z", "devices": True, "builds": []},
           {"time": "2026-11-30T10:05:00Z", "devices": 3, "builds": [1]},
           {"time": "2026-11-30T10:05:00Z", "devices": 3,
            "builds": [build | {"refused": {"sensor/2/cpu": "many"}}]},
           {"time": "2026-11-30T10:05:00Z", "devices": 3, "builds": [build | {"version": "2"}]}]
    history = tmp_path / "mixed.jsonl"
    history.write_text("\n".join([good[0], *(json.dumps(b) for b in bad), good[1], "[1"]))
    assert [s["time"] for s in read_history(str(history))] == [
        "2026-11-30T10:00:00Z", "2026-11-30T10:01:00Z"]
    page = tmp_path / "fleet.html"
    write_report(str(page), rows, FleetReports(read_at=0.0), str(history))
    assert "2 snapshots" in page.read_text()
