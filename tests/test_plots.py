"""Charts, checked by their artists: bar sizes, tick labels, colours, titles, legends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer

import patchframe as pf
from patchframe import plots
from patchframe._palette import (
    COMPLIANCE_COLORS,
    SEVERITY_COLORS,
    STATE_COLORS,
    text_color,
    tint,
)
from patchframe._schema import (
    NodeKey,
    PatchColumns,
    build_errors,
    build_nodes,
    build_patches,
    empty_patches,
)
from patchframe.exceptions import ColumnsError, ValidationError

DAY = 86_400.0
JAN1 = pd.Timestamp("2024-01-01", tz="UTC").timestamp()  # a Monday


@pytest.fixture(autouse=True)
def no_show(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("plt.show() called")

    monkeypatch.setattr(plt, "show", refuse)


def node(
    instance_id: str,
    states: dict[str, int],
    *,
    severity: str = "Critical",
    cves: str = "",
    installed: float = JAN1,
) -> tuple[NodeKey, PatchColumns]:
    cols = PatchColumns()
    for state, count in states.items():
        cols.extend(
            {
                "KBId": f"KB-{state}-{i}",
                "Title": "t",
                "Severity": severity,
                "State": state,
                "Classification": "Security",
                "CVEIds": cves if state == "Missing" else "",
                "InstalledTime": installed + i * DAY if state.startswith("Installed") else 0,
            }
            for i in range(count)
        )
    return NodeKey(instance_id), cols


def frame(
    parts: list[tuple[NodeKey, PatchColumns]], platforms: list[str] | None = None
) -> pd.DataFrame:
    extra = None if platforms is None else {"platform_name": platforms}
    return build_patches(parts, node_columns=extra)


@pytest.fixture
def three() -> pd.DataFrame:
    return frame(
        [
            node("i-0000000a", {"Installed": 3, "Missing": 1}, cves="CVE-2024-1"),
            node(
                "i-0000000b",
                {"Installed": 1, "Missing": 2, "Failed": 1, "NotApplicable": 5},
                severity="Low",
                cves="CVE-2024-1,CVE-2024-2",
            ),
            node("i-0000000c", {"Installed": 2, "InstalledOther": 1}, installed=JAN1 + 8 * DAY),
        ],
        platforms=["Ubuntu", "Ubuntu", "Amazon Linux"],
    )


def bars(ax: Axes) -> dict[str, list[float]]:
    """Bar lengths per labelled bar group (width for horizontal bars)."""
    out = {}
    for container in ax.containers:
        assert isinstance(container, BarContainer)
        horizontal = container.orientation == "horizontal"
        out[str(container.get_label())] = [
            r.get_width() if horizontal else r.get_height() for r in container.patches
        ]
    return out


def colours(ax: Axes) -> dict[str, str]:
    return {
        str(c.get_label()): to_hex(c.patches[0].get_facecolor())
        for c in ax.containers
        if isinstance(c, BarContainer) and c.patches
    }


def ticks(labels: list[Any]) -> list[str]:
    return [t.get_text() for t in labels]


def legend(ax: Axes) -> list[str]:
    box = ax.get_legend()
    assert box is not None
    return [t.get_text() for t in box.get_texts()]


# states_by_node


def test_states_by_node_stacks_counts_worst_node_on_top(three: pd.DataFrame) -> None:
    ax = plots.states_by_node(three)
    assert ticks(ax.get_yticklabels()) == ["i-0000000b", "i-0000000a", "i-0000000c"]
    assert bars(ax) == {
        "FAILED": [1, 0, 0],
        "MISSING": [2, 1, 0],
        "INSTALLED_OTHER": [0, 0, 1],
        "INSTALLED": [1, 3, 2],
    }
    assert legend(ax) == ["FAILED", "MISSING", "INSTALLED_OTHER", "INSTALLED"]
    top = ax.get_ylim()
    assert top[0] > top[1]  # the first node is drawn on top
    assert ax.get_title() == "Patch states by node"
    assert ax.get_xlabel() == "patches"
    assert ax.get_ylabel() == "node"


def test_states_by_node_uses_the_fixed_state_colours(three: pd.DataFrame) -> None:
    drawn = colours(plots.states_by_node(three))
    assert drawn == {state: STATE_COLORS[state] for state in drawn}
    assert drawn["MISSING"] != drawn["INSTALLED"]


def test_states_by_node_stacks_segments_end_to_end(three: pd.DataFrame) -> None:
    ax = plots.states_by_node(three)
    missing, installed = ax.containers[1], ax.containers[3]
    assert isinstance(missing, BarContainer) and isinstance(installed, BarContainer)
    assert missing.patches[0].get_x() == 1  # after node b's one FAILED patch
    assert installed.patches[0].get_x() == 3  # after FAILED 1 + MISSING 2


def test_states_by_node_takes_chosen_states(three: pd.DataFrame) -> None:
    ax = plots.states_by_node(three, states=["NotApplicable", "MISSING"])
    assert bars(ax) == {"NOT_APPLICABLE": [5, 0, 0], "MISSING": [2, 1, 0]}
    with pytest.raises(ValidationError, match="'Gone' is not a patch state"):
        plots.states_by_node(three, states=["Gone"])


def test_states_by_node_folds_the_rest_into_a_mean_other_bar() -> None:
    parts = [node(f"i-{n:08x}", {"Missing": n, "Installed": 10}) for n in range(1, 31)]
    ax = plots.states_by_node(frame(parts), top=5)
    labels = ticks(ax.get_yticklabels())
    assert labels[:5] == [f"i-{n:08x}" for n in (30, 29, 28, 27, 26)]
    assert labels[5] == "other 25 nodes (mean)"
    drawn = bars(ax)
    assert drawn["MISSING"] == [30, 29, 28, 27, 26, 13]  # mean of 1..25
    assert drawn["INSTALLED"] == [10] * 6
    assert "top 5 of 30" in ax.get_title()


def test_states_by_node_counts_the_other_nodes_in_words(three: pd.DataFrame) -> None:
    assert ticks(plots.states_by_node(three, top=2).get_yticklabels())[-1] == (
        "other 1 node (mean)"
    )
    assert ticks(plots.states_by_node(three, top=1).get_yticklabels())[-1] == (
        "other 2 nodes (mean)"
    )


def test_states_by_node_stays_legible_with_3000_nodes() -> None:
    parts = [node(f"i-{n:08x}", {"Missing": n % 7, "Installed": 2}) for n in range(3000)]
    ax = plots.states_by_node(frame(parts))
    assert len(ax.get_yticks()) == 21
    assert ticks(ax.get_yticklabels())[-1] == "other 2,980 nodes (mean)"
    _, height = ax.figure.get_size_inches()
    assert height / 21 >= 0.25  # inches per bar: room for a small-font label


def test_states_by_node_draws_on_a_given_axes(three: pd.DataFrame) -> None:
    _, (left, right) = plt.subplots(1, 2)
    assert plots.states_by_node(three, ax=right) is right
    assert not left.containers


# severity_state_heatmap


def test_heatmap_labels_every_cell_with_its_count(three: pd.DataFrame) -> None:
    ax = plots.severity_state_heatmap(three)
    assert ticks(ax.get_xticklabels()) == ["Critical", "High", "Medium", "Low", "Unspecified"]
    assert ticks(ax.get_yticklabels())[:2] == ["INSTALLED", "INSTALLED_OTHER"]
    cells = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }
    # row INSTALLED (0): Critical 5 (a and c), Low 1 (b); MISSING (4): Critical 1, Low 2
    assert cells[(0, 0)] == "5"
    assert cells[(0, 3)] == "1"
    assert cells[(4, 0)] == "1"
    assert cells[(4, 3)] == "2"
    assert sum(int(t) for t in cells.values()) == len(three)
    assert ax.get_title() and ax.get_xlabel() == "severity level" and ax.get_ylabel() == "state"
    assert len(ax.figure.axes) == 2  # the colour bar, the heatmap's legend


def test_heatmap_rows_wear_their_state_colours_with_readable_counts(three: pd.DataFrame) -> None:
    ax = plots.severity_state_heatmap(three)
    image = ax.images[0].get_array()
    states = ticks(ax.get_yticklabels())
    # INSTALLED Critical holds the largest count (5): its cell is INSTALLED's own colour.
    assert to_hex(image[0, 0]) == STATE_COLORS["INSTALLED"]
    # Smaller counts are lighter shades of their row's colour, on a log scale.
    missing = states.index("MISSING")
    low, critical = to_hex(image[missing, 3]), to_hex(image[missing, 0])
    assert low == tint(STATE_COLORS["MISSING"], 0.15 + 0.85 * np.log(2) / np.log(5))
    assert critical == tint(STATE_COLORS["MISSING"], 0.15)
    assert image[missing, 1][3] == 0  # no MISSING High patch: a blank cell
    for label in ax.texts:
        column, row = (round(v) for v in label.get_position())
        assert to_hex(label.get_color()) == text_color(to_hex(image[row, column]))


# install_timeline


def test_install_timeline_bars_are_installs_per_period(three: pd.DataFrame) -> None:
    ax = plots.install_timeline(three, freq="W")
    # a: Jan 1, 2, 3; b: Jan 1; c: Jan 9, 10 and its InstalledOther patch on Jan 9
    assert bars(ax) == {"patches installed": [4, 3]}
    assert colours(ax)["patches installed"] == STATE_COLORS["INSTALLED"]
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == [2, 1]
    assert legend(ax) == ["nodes installing", "patches installed"]
    assert ax.get_title() == "Patch installs per week"
    assert ax.get_xlabel() and ax.get_ylabel()


def test_install_timeline_per_day(three: pd.DataFrame) -> None:
    ax = plots.install_timeline(three, freq="D")
    assert bars(ax)["patches installed"] == [2, 1, 1, 0, 0, 0, 0, 0, 2, 1]  # Jan 1 to 10
    with pytest.raises(ValidationError, match="freq"):
        plots.install_timeline(three, freq="Y")  # type: ignore[arg-type]


# top_cves


def test_top_cves_bars_are_nodes_per_cve_coloured_by_severity(three: pd.DataFrame) -> None:
    ax = plots.top_cves(three)
    assert ticks(ax.get_yticklabels()) == ["CVE-2024-1", "CVE-2024-2"]
    (container,) = ax.containers
    assert isinstance(container, BarContainer)
    assert [r.get_width() for r in container.patches] == [2, 1]
    assert [to_hex(r.get_facecolor()) for r in container.patches] == [
        SEVERITY_COLORS["Critical"],
        SEVERITY_COLORS["Low"],
    ]
    assert legend(ax) == ["Critical", "Low"]
    assert ax.get_xlabel() == "nodes affected"


def test_top_cves_keeps_top(three: pd.DataFrame) -> None:
    ax = plots.top_cves(three, top=1)
    assert ticks(ax.get_yticklabels()) == ["CVE-2024-1"]
    assert ax.get_title() == "Open CVEs by nodes affected: top 1 of 2"


# compliance_by_platform


def test_compliance_by_platform_from_patches(three: pd.DataFrame) -> None:
    ax = plots.compliance_by_platform(three)
    assert ticks(ax.get_yticklabels()) == ["Ubuntu", "Amazon Linux"]
    assert bars(ax) == {"COMPLIANT": [0, 1], "NON_COMPLIANT": [2, 0]}
    assert colours(ax) == {k: COMPLIANCE_COLORS[k] for k in ("COMPLIANT", "NON_COMPLIANT")}
    assert ax.get_ylabel() == "platform name"


def test_compliance_by_platform_from_nodes_counts_unscanned_nodes() -> None:
    nodes = pd.DataFrame(
        {
            "platform_type": ["Linux", "Linux", "Windows", None],
            "compliance": ["COMPLIANT", "NOT_SCANNED", "NON_COMPLIANT", "NOT_SCANNED"],
        }
    )
    ax = plots.compliance_by_platform(nodes, by="platform_type")
    assert ticks(ax.get_yticklabels()) == ["Linux", "Windows", "unknown"]
    assert bars(ax) == {
        "COMPLIANT": [1, 0, 0],
        "NON_COMPLIANT": [0, 1, 0],
        "NOT_SCANNED": [1, 0, 1],
    }


def test_compliance_by_platform_folds_small_platforms() -> None:
    nodes = pd.DataFrame(
        {"platform_name": [f"OS {i % 6}" for i in range(30)], "compliance": "COMPLIANT"}
    )
    ax = plots.compliance_by_platform(nodes, top=4)
    assert ticks(ax.get_yticklabels())[-1] == "other 2 platforms"
    assert bars(ax)["COMPLIANT"] == [5, 5, 5, 5, 10]


def test_compliance_by_platform_needs_a_platform_column(three: pd.DataFrame) -> None:
    with pytest.raises(ColumnsError, match="'platform_name'"):
        plots.compliance_by_platform(three.drop(columns="platform_name"))
    with pytest.raises(ColumnsError, match=r"'state'.*'compliance'"):
        plots.compliance_by_platform(pd.DataFrame({"platform_name": ["Ubuntu"]}))


# Every chart


CHARTS: dict[str, Callable[..., Axes]] = {
    "states_by_node": plots.states_by_node,
    "severity_state_heatmap": plots.severity_state_heatmap,
    "install_timeline": plots.install_timeline,
    "top_cves": plots.top_cves,
    "compliance_by_platform": plots.compliance_by_platform,
}


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_has_title_labels_and_returns_its_axes(three: pd.DataFrame, name: str) -> None:
    fig, given = plt.subplots()
    ax = CHARTS[name](three, ax=given)
    assert ax is given
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert ax.get_legend() is not None or len(fig.axes) == 2  # a legend or a colour bar


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_of_an_empty_frame_says_so(three: pd.DataFrame, name: str) -> None:
    ax = CHARTS[name](three.iloc[:0])
    assert ax.get_title()
    assert ax.texts and ax.texts[0].get_text().startswith("no ")


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_leaves_its_input_alone(three: pd.DataFrame, name: str) -> None:
    before = three.copy(deep=True)
    CHARTS[name](three)
    pd.testing.assert_frame_equal(three, before)


@pytest.mark.parametrize("name", ["states_by_node", "top_cves", "compliance_by_platform"])
def test_bar_counts_are_rejected_unless_positive(three: pd.DataFrame, name: str) -> None:
    with pytest.raises(ValidationError, match="positive whole number"):
        CHARTS[name](three, top=0)


# palette=, legend= and **kwargs, as seaborn's charts take them


PALETTES: dict[str, dict[str, str]] = {
    "states_by_node": {"MISSING": "#123456"},
    "severity_state_heatmap": {"INSTALLED": "#123456"},
    "install_timeline": {"nodes installing": "#123456"},
    "top_cves": {"Critical": "#123456"},
    "compliance_by_platform": {"NON_COMPLIANT": "#123456"},
}


def drawn_colours(ax: Axes) -> set[str]:
    """Every colour the data is drawn in: bars, lines and the heatmap's full-colour cells."""
    found = {to_hex(bar.get_facecolor()) for bar in ax.patches}
    found |= {to_hex(line.get_color()) for line in ax.get_lines()}
    for image in ax.images:
        found |= {to_hex(cell) for cell in image.get_array().reshape(-1, 4) if cell[3]}
    return found


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_takes_a_palette_by_label(three: pd.DataFrame, name: str) -> None:
    default = drawn_colours(CHARTS[name](three))
    chosen = drawn_colours(CHARTS[name](three, palette=PALETTES[name]))
    assert set(PALETTES[name].values()) <= chosen
    assert not set(PALETTES[name].values()) & default
    assert default & chosen  # the labels the palette leaves out keep their colours


def test_palette_colours_the_legend_too(three: pd.DataFrame) -> None:
    ax = plots.top_cves(three, palette={"Critical": "#123456"})
    box = ax.get_legend()
    assert box is not None
    handles = dict(zip(legend(ax), box.legend_handles, strict=True))
    assert to_hex(handles["Critical"].get_facecolor()) == "#123456"
    assert to_hex(handles["Low"].get_facecolor()) == SEVERITY_COLORS["Low"]


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_can_leave_its_legend_out(three: pd.DataFrame, name: str) -> None:
    fig, given = plt.subplots()
    ax = CHARTS[name](three, ax=given, legend=False)
    assert ax.get_legend() is None
    assert fig.axes == [ax]  # and no colour bar
    assert drawn_colours(ax)  # the data is still drawn


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_passes_keyword_arguments_to_matplotlib(
    three: pd.DataFrame, name: str
) -> None:
    ax = CHARTS[name](three, alpha=0.5)
    drawn = [*ax.images] if name == "severity_state_heatmap" else [*ax.patches]
    assert drawn and all(artist.get_alpha() == 0.5 for artist in drawn)


def test_keyword_arguments_win_over_patchframes_own(three: pd.DataFrame) -> None:
    ax = plots.states_by_node(three, edgecolor="#abcdef", height=0.5)
    assert {to_hex(bar.get_edgecolor()) for bar in ax.patches} == {"#abcdef"}
    assert {bar.get_height() for bar in ax.patches} == {0.5}


@pytest.mark.parametrize("name", CHARTS)
def test_a_palette_must_be_a_mapping(three: pd.DataFrame, name: str) -> None:
    with pytest.raises(ValidationError, match="palette: expected a mapping"):
        CHARTS[name](three, palette=["#123456"])


def test_heatmap_palette_takes_any_matplotlib_colour(three: pd.DataFrame) -> None:
    ax = plots.severity_state_heatmap(three, palette={"INSTALLED": "tab:blue"})
    assert to_hex(ax.images[0].get_array()[0, 0]) == to_hex("tab:blue")


# aging and time_to_fix: charts of findings


def findings_frame() -> pd.DataFrame:
    """Five findings as of 2024-07-01: three open, two fixed (one in June, one in July)."""
    utc = pd.to_datetime
    return pd.DataFrame(
        {
            "severity_level": ["Critical", "Critical", "High", "Critical", "High"],
            "first_seen": utc(
                ["2024-06-27", "2024-05-01", "2024-06-10", "2024-06-01", "2024-06-10"], utc=True
            ),
            "last_seen": utc(["2024-07-01"] * 3 + ["2024-06-03", "2024-06-24"], utc=True),
            "resolved_at": utc([None, None, None, "2024-06-10", "2024-07-01"], utc=True),
            "resolution": ["open", "open", "open", "installed", "installed"],
            "open": [True, True, True, False, False],
        }
    )


def test_aging_stacks_buckets_by_severity_worst_at_the_bottom() -> None:
    ax = plots.aging(findings_frame())
    assert ticks(ax.get_xticklabels()) == ["0-7", "8-15", "16-30", "31-90", "91-180", ">180"]
    assert bars(ax) == {"Critical": [1, 0, 0, 1, 0, 0], "High": [0, 0, 1, 0, 0, 0]}
    assert colours(ax) == {
        "Critical": SEVERITY_COLORS["Critical"],
        "High": SEVERITY_COLORS["High"],
    }
    critical, high = ax.containers
    assert [r.get_y() for r in critical.patches] == [0] * 6
    assert [r.get_y() for r in high.patches] == [1, 0, 0, 1, 0, 0]  # on top of Critical
    assert legend(ax) == ["Critical", "High"]
    assert ax.get_title() == "Open findings by age: 3 findings"
    assert ax.get_xlabel() == "days since first seen"


def test_aging_counts_to_now_and_by_the_release_clock() -> None:
    found = findings_frame().assign(
        release_date=pd.to_datetime(["2024-01-01", None, None, None, None], utc=True)
    )
    ax = plots.aging(found, clock="release", now="2024-07-08")
    assert bars(ax) == {"Critical": [0, 0, 0, 1, 0, 1], "High": [0, 0, 1, 0, 0, 0]}
    assert ax.get_xlabel() == "days since release"


def test_time_to_fix_draws_the_monthly_median_per_severity() -> None:
    ax = plots.time_to_fix(findings_frame())
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["Critical", "High"]
    assert lines["Critical"].get_ydata().tolist() == [9.0]
    assert lines["High"].get_ydata().tolist() == [21.0]
    assert [pd.Timestamp(x).strftime("%Y-%m") for x in lines["High"].get_xdata()] == ["2024-07"]
    assert to_hex(lines["Critical"].get_color()) == SEVERITY_COLORS["Critical"]
    assert ax.get_title() == "Median time to fix per month"
    assert legend(ax) == ["Critical", "High"]
    weekly = plots.time_to_fix(findings_frame(), freq="W")
    assert weekly.get_title() == "Median time to fix per week"


FINDINGS_CHARTS: dict[str, Callable[..., Axes]] = {
    "aging": plots.aging,
    "time_to_fix": plots.time_to_fix,
}


@pytest.mark.parametrize("name", FINDINGS_CHARTS)
def test_findings_charts_follow_the_house_style(name: str) -> None:
    found = findings_frame()
    before = found.copy(deep=True)
    chart = FINDINGS_CHARTS[name]
    fig, given = plt.subplots()
    ax = chart(found, ax=given)
    assert ax is given and ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    pd.testing.assert_frame_equal(found, before)
    default = drawn_colours(ax)
    chosen = drawn_colours(chart(found, palette={"High": "#123456"}))
    assert "#123456" in chosen and "#123456" not in default
    assert SEVERITY_COLORS["Critical"] in chosen
    fig, given = plt.subplots()
    assert chart(found, ax=given, legend=False).get_legend() is None
    assert fig.axes == [given]
    faint = chart(found, alpha=0.5)
    drawn = [*faint.patches, *faint.get_lines()]
    assert drawn and all(artist.get_alpha() == 0.5 for artist in drawn)
    with pytest.raises(ValidationError, match="palette: expected a mapping"):
        chart(found, palette=["#123456"])


@pytest.mark.parametrize(
    ("name", "message"), [("aging", "no open findings"), ("time_to_fix", "no fixes")]
)
def test_findings_charts_of_nothing_say_so(name: str, message: str) -> None:
    nothing = findings_frame()[lambda f: ~f["open"]].iloc[:0]
    ax = FINDINGS_CHARTS[name](nothing)
    assert ax.get_title()
    assert [t.get_text() for t in ax.texts] == [message]


# compliance_by (a Fleet: whole nodes grouped)

SAMPLE_CLOCK = "2024-06-14T08:00Z"


def test_compliance_by_bars_are_the_tables_counts_in_compliance_colours(
    sample_fleet_frames: pf.Fleet,
) -> None:
    fleet = sample_fleet_frames.as_of(SAMPLE_CLOCK)
    table = pf.summary.compliance_by(fleet, by="tag:Team")
    ax = plots.compliance_by(fleet, by="tag:Team")
    assert bars(ax) == {
        "NON_COMPLIANT": table["non_compliant"].tolist(),
        "NOT_SCANNED": table["not_scanned"].tolist(),
        "COMPLIANT": table["compliant"].tolist(),
    }
    assert colours(ax) == {s: COMPLIANCE_COLORS[s] for s in colours(ax)}
    assert ticks(ax.get_yticklabels()) == table["tag:Team"].tolist()
    assert ax.get_title() == "Node compliance by Team" and ax.get_ylabel() == "Team"
    assert legend(ax) == ["NON_COMPLIANT", "NOT_SCANNED", "COMPLIANT"]
    # Staleness beside the bars, never in them.
    notes = {round(t.xy[1]): t.get_text() for t in ax.texts}
    assert notes == {1: "1 stale, 1 unreachable", 2: "1 stale"}


def test_compliance_by_reads_the_same_at_300_groups() -> None:
    keys = [NodeKey(f"i-{n:08x}", "123456789012", "eu-west-1") for n in range(300)]
    states = {k: {"MissingCount": i % 3, "OperationEndTime": 1.7e9} for i, k in enumerate(keys)}
    nodes = build_nodes(keys, {}, states, {}, loaded_at=pd.Timestamp("2023-11-20", tz="UTC"))
    fleet = pf.Fleet(empty_patches(), nodes, build_errors([]))
    ax = plots.compliance_by(fleet, by="instance_id", top=20)
    labels = ticks(ax.get_yticklabels())
    assert len(labels) == 21 and labels[-1] == "other 280 groups"
    assert [sum(w) for w in zip(*bars(ax).values(), strict=True)] == [1.0] * 20 + [0.0]
    assert ax.texts[-1].get_text() == "180 non-compliant, 100 compliant"  # none stale
    assert ax.get_xlim()[1] < 2  # scaled to the groups drawn, not to the 280 summed up
    assert ax.figure.get_size_inches()[1] < 8


def test_compliance_by_takes_palette_legend_kwargs_and_an_axes(
    sample_fleet_frames: pf.Fleet,
) -> None:
    _, given = plt.subplots()
    ax = plots.compliance_by(
        sample_fleet_frames,
        by=["tag:Environment", "platform_type"],
        ax=given,
        palette={"COMPLIANT": "#123456"},
        legend=False,
        edgecolor="white",
    )
    assert ax is given and ax.get_legend() is None
    assert colours(ax)["COMPLIANT"] == "#123456"
    assert to_hex(ax.containers[0].patches[0].get_edgecolor()) == "#ffffff"
    assert "prod / Linux" in ticks(ax.get_yticklabels())
    with pytest.raises(ValidationError, match="positive whole number"):
        plots.compliance_by(sample_fleet_frames, by="tag:Team", top=0)


def test_compliance_by_of_no_nodes_says_so() -> None:
    fleet = pf.Fleet(empty_patches(), build_nodes([], {}, {}, {}), build_errors([]))
    ax = plots.compliance_by(fleet, by="platform_name")
    assert ax.texts[0].get_text() == "no nodes"
