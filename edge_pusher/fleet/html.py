"""``edgeship fleet report --html``: one self-contained page (no script, no network) with the
status table and three plots drawn by matplotlib as inline SVG: devices per version over time,
each rollout's stage against the share of the fleet running it, and refusal reasons.

Time series come from the fleet history (``--history``, one JSON line per status, report or
watch cycle); without one, the plots show the present alone.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, Protocol, TypedDict, cast

from edgeship.contract import is_array, is_object, shown
from edgeship.edge_pusher.fleet.status import COLUMNS, BuildRow, table_cells

if TYPE_CHECKING:
    from edgeship.edge_pusher.fleet.reports import FleetReports

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #bbb; padding: 4px 10px; text-align: right; }
th { background: #eee; } td.text { text-align: left; }
figure { display: inline-block; margin: 0 2em 2em 0; } figcaption { font-weight: bold; }
"""


class _BuildCore(TypedDict):
    name: str
    version: int
    hardware: str
    rollout: int | None
    running: int
    refused: dict[str, int]


class BuildSnapshot(_BuildCore, total=False):
    """What the page plots of one build in a snapshot (``BuildRow.as_dict`` writes more)."""

    reverted: int


class Snapshot(TypedDict):
    """One line of the fleet history: when, how many devices reported, and every build."""

    time: str
    devices: int
    builds: list[BuildSnapshot]


def read_history(path: str | None) -> list[Snapshot]:
    """The fleet history's snapshots, oldest first; lines that are not snapshots (a line cut
    by a full disk, another tool's record) are skipped, so that one cannot stop the page."""
    if not path or not os.path.isfile(path):
        return []
    found: list[Snapshot] = []
    with open(path) as f:
        for line in f:
            try:
                snapshot: object = json.loads(line)
            except ValueError:
                continue
            if _is_snapshot(snapshot):
                found.append(cast(Snapshot, snapshot))  # just checked, field by field
    return found


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_snapshot(snapshot: object) -> bool:
    """Whether a history line has every field the plots read, each of its type."""
    if not (is_object(snapshot) and _time(snapshot.get("time")) is not None
            and _is_int(snapshot.get("devices"))):
        return False
    builds = snapshot.get("builds")
    return is_array(builds) and all(_is_build(b) for b in builds)


def _is_build(build: object) -> bool:
    if not is_object(build):
        return False
    refused = build.get("refused")
    rollout = build.get("rollout", False)
    return (isinstance(build.get("name"), str) and isinstance(build.get("hardware"), str)
            and _is_int(build.get("version")) and _is_int(build.get("running"))
            and (rollout is None or _is_int(rollout)) and _is_int(build.get("reverted", 0))
            and is_object(refused) and all(_is_int(n) for n in refused.values()))


def _time(text: object) -> datetime | None:
    """A snapshot's time (ISO 8601, ``Z`` for UTC), or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class _Line(Protocol):
    def get_color(self) -> str: ...


class _Axis(Protocol):
    def set_major_locator(self, locator: object, /) -> None: ...


class _Axes(Protocol):
    """The part of matplotlib's ``Axes`` the page draws with (its stubs leave ``**kwargs``
    untyped, which would make every call partly unknown)."""

    xaxis: _Axis

    def plot(self, x: object, y: Sequence[float], /, **style: object) -> list[_Line]: ...
    def step(self, x: object, y: Sequence[float], /, **style: object) -> list[_Line]: ...
    def barh(self, y: Sequence[str], width: Sequence[int], /, *, color: str) -> object: ...
    def set_xlabel(self, label: str, /) -> object: ...
    def set_ylabel(self, label: str, /) -> object: ...
    def set_xlim(self, left: float, right: float, /) -> object: ...
    def set_ylim(self, bottom: float, top: float, /) -> object: ...
    def legend(self, *, fontsize: int) -> object: ...
    def get_legend_handles_labels(self) -> tuple[list[object], list[str]]: ...


class _Figure(Protocol):
    def savefig(self, fname: IO[str], /, *, format: str, bbox_inches: str) -> None: ...
    def autofmt_xdate(self) -> None: ...


def _subplots() -> tuple[_Figure, _Axes]:
    """A figure of the page's size and its one plot."""
    import matplotlib.pyplot as plt

    made: Any = plt.subplots(figsize=(6, 3.2))  # pyright: ignore[reportUnknownMemberType]
    return cast("tuple[_Figure, _Axes]", made)  # matplotlib's Figure and Axes, as used here


def _close(fig: _Figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(cast(Any, fig))


def _svg(fig: _Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    # matplotlib's RDF metadata names web addresses; nothing on the page should
    return re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)


def _plotted(row: BuildRow) -> BuildSnapshot:
    """What the plots read of a build of the present (the history holds ``row.as_dict()``)."""
    return {"name": row.name, "version": row.version, "hardware": row.hardware,
            "rollout": row.rollout, "running": row.running, "refused": dict(row.refused),
            "reverted": row.reverted}


def _times(history: list[Snapshot]) -> list[datetime]:
    return [datetime.fromisoformat(s["time"].replace("Z", "+00:00")) for s in history]


def plots(history: list[Snapshot]) -> dict[str, str]:
    """The three figures as SVG text, keyed by caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.ticker

    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    matplotlib.rcParams["text.parse_math"] = False  # labels are devices' words, not TeX
    times: Any = _times(history)  # datetimes: matplotlib plots them; its stubs say ArrayLike
    figures: dict[str, str] = {}

    fig, ax = _subplots()
    running: dict[str, list[int]] = defaultdict(lambda: [0] * len(history))
    for i, snapshot in enumerate(history):
        for b in snapshot["builds"]:
            running[f"{shown(b['name'], 40)} v{b['version']}"][i] += b["running"]
    for label, counts in sorted(running.items()):
        ax.plot(times, counts, marker="o", markersize=3, label=label)
    ax.set_ylabel("devices running it")
    if running:
        ax.legend(fontsize=8)
    fig.autofmt_xdate()
    figures["Devices per version over time"] = _svg(fig)
    _close(fig)

    fig, ax = _subplots()
    for label in sorted({(b["name"], b["version"], b["hardware"]) for s in history
                         for b in s["builds"] if b.get("rollout") is not None}):
        stage: list[float] = []
        share: list[float] = []
        for snapshot in history:
            found = [b for b in snapshot["builds"]
                     if (b["name"], b["version"], b["hardware"]) == label]
            devices = snapshot["devices"] or 1
            stage.append(found[0]["rollout"] if found and found[0]["rollout"] is not None
                         else float("nan"))
            share.append(100.0 * found[0]["running"] / devices if found else float("nan"))
        name = f"{shown(label[0], 40)} v{label[1]} ({shown(label[2], 40)})"
        line = ax.step(times, stage, where="post", label=f"{name} stage")[0]
        ax.plot(times, share, linestyle="--", color=line.get_color(),
                label=f"{name} share running")
    ax.set_ylabel("% of devices")
    ax.set_ylim(0, 105)
    if ax.get_legend_handles_labels()[0]:  # no build in an index: nothing to name
        ax.legend(fontsize=7)
    fig.autofmt_xdate()
    figures["Rollout stage and share of the fleet running it"] = _svg(fig)
    _close(fig)

    fig, ax = _subplots()
    reasons: dict[str, int] = defaultdict(int)
    for b in history[-1]["builds"] if history else []:
        for reason, count in b["refused"].items():
            reasons[f"{shown(b['name'], 40)} v{b['version']} {shown(reason, 40)}"] += count
        reverted = b.get("reverted", 0)
        if reverted:
            reasons[f"{shown(b['name'], 40)} v{b['version']} reverted"] += reverted
    labels = sorted(reasons) or ["none"]
    ax.barh(labels, [reasons.get(label, 0) for label in labels], color="#c0504d")
    ax.set_xlabel("devices")
    ax.set_xlim(0, max([1, *reasons.values()]))  # no refusal: 0 to 1, not -0.045 to 0.045
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    figures["Refusal reasons (now)"] = _svg(fig)
    _close(fig)
    return figures


def table(rows: list[BuildRow]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{name}</th>" for name, _ in COLUMNS) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(
            ('<td class="text">' if text else "<td>") + f"{html.escape(cell)}</td>"
            for cell, (_, text) in zip(table_cells(r), COLUMNS, strict=True)) + "</tr>")
    return "\n".join([*out, "</table>"])


def write_report(path: str, rows: list[BuildRow], reports: FleetReports, history_path: str | None,
                 notes: list[str] | None = None, devices: int | None = None) -> None:
    """Write the page to ``path`` (atomically: a half-written page is never left). ``notes``
    are what the operator should know about reports not counted or cut (one paragraph each);
    ``devices`` the reports counted (default: all read). Every device-supplied string is
    escaped for HTML and cut to a bounded length (``contract.shown``)."""
    devices = len(reports.reports) if devices is None else devices
    history = read_history(history_path)
    if not history:
        history = [Snapshot(time=datetime.fromtimestamp(reports.read_at).astimezone()
                            .isoformat(timespec="seconds"), devices=devices,
                            builds=[_plotted(r) for r in rows])]
    figures = "\n".join(f"<figure><figcaption>{html.escape(caption)}</figcaption>{svg}"
                        "</figure>" for caption, svg in plots(history).items())
    if notes is None:
        notes = [f"{len(reports.skipped)} reports skipped, e.g. {shown(reports.skipped[0], 200)}"
                 ] if reports.skipped else []
    said = "".join(f"<p>{html.escape(note)}</p>" for note in notes)
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>edgeship fleet</title>"
        f"<style>{STYLE}</style></head><body>\n<h1>Fleet</h1>\n"
        f"<p>{devices} {'device' if devices == 1 else 'devices'} reporting; {len(history)} "
        f"snapshots.</p>{said}\n{table(rows)}\n{figures}\n</body></html>\n")
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(page)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
