"""Compliance over time: trends of the synthetic history against its wire data, an empty
store, and their charts; ``patchframe.history`` loads matplotlib only for a chart."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import history_data as history
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from history_data import OPEN
from matplotlib.collections import PolyCollection

import patchframe as pf
from patchframe._palette import severity_color
from patchframe._schema import NON_COMPLIANT_STATES, normalise_state, severity_level_of
from patchframe.exceptions import ColumnsError, StoreError, StoreWarning, ValidationError
from patchframe.history import list_snapshots, plot_trend, save_snapshot, trend
from patchframe.sandbox.sample import WireFleet
from patchframe.summary import cve_exposure


@pytest.fixture(scope="module")
def history_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the whole synthetic history; tests only read it."""
    return history.save_history(tmp_path_factory.mktemp("history") / "store")


def wire_cves(fleet: WireFleet) -> set[str]:
    return {
        cve
        for rows in fleet.patches.values()
        for row in rows
        if normalise_state(row["State"]) in OPEN
        for cve in row.get("CVEIds", "").split(",")
        if cve
    }


LAZY = textwrap.dedent(
    """
    import sys
    import patchframe.history as history
    assert "matplotlib" not in sys.modules, "imported by patchframe.history"
    assert "plot_trend" in dir(history) and "plot_trend" in history.__all__
    assert callable(history.plot_trend)
    assert "matplotlib.pyplot" in sys.modules
    """
)


def test_history_loads_matplotlib_only_for_plot_trend() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


# --- trend -----------------------------------------------------------------------------


def wire_figures(fleet: WireFleet) -> dict[str, int]:
    """The fleet row of a trend, counted from the wire data by other means."""
    graded = Counter(
        severity_level_of(row["Severity"]).lower()
        for rows in fleet.patches.values()
        for row in rows
        if normalise_state(row["State"]) in OPEN
    )
    counts = ["MissingCount", "FailedCount", "InstalledPendingRebootCount"]
    counts += ["InstalledRejectedCount", "AvailableSecurityUpdateCount"]
    assert len(counts) == len(NON_COMPLIANT_STATES)
    return {
        "nodes": len(fleet.instances),
        "non_compliant_nodes": sum(any(s[c] for c in counts) for s in fleet.patch_states),
        "missing": sum(graded.values()),
        **{f"missing_{level}": graded[level] for level in ("critical", "high", "medium")},
        **{f"missing_{level}": graded[level] for level in ("low", "unspecified")},
        "open_cves": len(wire_cves(fleet)),
    }


def test_trend_of_the_synthetic_history(history_store: Path) -> None:
    wire_history, fleets = history.wire_history(), history.history_fleets()
    figures = trend(history_store)
    fleet_rows = figures[figures["scope"] == "fleet"].reset_index(drop=True)
    assert fleet_rows["time"].tolist() == [pd.Timestamp(when) for when, _ in wire_history]
    for i, (_, wire) in enumerate(wire_history):
        row = fleet_rows.iloc[i]
        assert {k: int(row[k]) for k in wire_figures(wire)} == wire_figures(wire)
        assert row["open_cves"] == len(cve_exposure(fleets[i].patches))
        one = figures[figures["snapshot"] == row["snapshot"]]
        for scope in ("platform", "node"):
            part = one[one["scope"] == scope]
            totals = part.drop(columns=["snapshot", "time", "scope", "group"]).sum()
            for column in ("nodes", "non_compliant_nodes", "missing", "missing_critical"):
                assert totals[column] == row[column], (scope, column)
        nodes = one[one["scope"] == "node"]
        assert sorted(nodes["group"]) == sorted(wire.instance_ids)
    # Pinned, so that a change in the drift or the counting shows.
    assert fleet_rows["missing"].tolist() == [463, 297, 225, 174, 183, 164]
    assert fleet_rows["non_compliant_nodes"].tolist() == [25, 30, 32, 32, 34, 34]
    assert fleet_rows["open_cves"].tolist() == [56, 47, 39, 35, 23, 30]
    assert fleet_rows["nodes"].tolist() == list_snapshots(history_store)["nodes"].tolist()


def test_trend_of_an_empty_store_has_every_column(tmp_path: Path) -> None:
    empty = trend(tmp_path)
    assert empty.empty
    assert list(empty.columns[:4]) == ["snapshot", "time", "scope", "group"]
    assert str(empty["time"].dtype) == "datetime64[ns, UTC]"


def test_trend_counts_a_node_the_nodes_frame_lacks_by_its_rows(
    tmp_path: Path, sample_fleet_frames: pf.Fleet
) -> None:
    patches, nodes = sample_fleet_frames.patches.copy(), sample_fleet_frames.nodes
    node = str(patches.loc[patches["state"].isin(sorted(OPEN)), "instance_id"].iloc[0])
    mine = (patches["instance_id"] == node).to_numpy()
    # Its platform is that of its last row.
    patches["platform_name"] = patches["platform_name"].cat.add_categories("Elsewhere")
    patches.loc[patches.index[mine][-1], "platform_name"] = "Elsewhere"
    # Another one is non-compliant by a pending reboot alone.
    pending = str(nodes.loc[nodes["instance_id"] != node, "instance_id"].iloc[0])
    its = (patches["instance_id"] == pending).to_numpy()
    patches.loc[its, "state"] = "INSTALLED"
    patches.loc[patches.index[its][0], "state"] = "INSTALLED_PENDING_REBOOT"
    unlisted = nodes[~nodes["instance_id"].isin([node, pending])]
    save_snapshot(pf.Fleet(patches, unlisted, sample_fleet_frames.errors), tmp_path)
    figures = trend(tmp_path)
    row = figures[(figures["scope"] == "node") & (figures["group"] == node)].iloc[0]
    theirs = patches[mine]
    non_compliant = theirs["state"].isin(sorted(NON_COMPLIANT_STATES)).any()
    assert row["non_compliant_nodes"] == int(non_compliant) == 1
    assert row["missing"] == theirs["state"].isin(sorted(OPEN)).sum() > 0
    assert row["open_cves"] == len(cve_exposure(theirs))
    other = figures[(figures["scope"] == "node") & (figures["group"] == pending)].iloc[0]
    assert (other["non_compliant_nodes"], other["missing"]) == (1, 0)
    platforms = figures[figures["scope"] == "platform"].set_index("group")
    assert platforms.loc["Elsewhere", "nodes"] == 1
    assert figures.loc[figures["scope"] == "fleet", "nodes"].item() == len(nodes)


def test_plot_trend_stacks_the_fleet_by_severity(history_store: Path) -> None:
    figures = trend(history_store)
    ax = plot_trend(figures)
    areas = [c for c in ax.collections if isinstance(c, PolyCollection)]
    levels = ["Critical", "High", "Medium", "Low", "Unspecified"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == levels
    assert [tuple(a.get_facecolor()[0][:3]) for a in areas] == [
        tuple(int(severity_color(v)[i : i + 2], 16) / 255 for i in (1, 3, 5)) for v in levels
    ]
    assert ax.get_title() == "Missing and failed patches by severity"
    plt.close(ax.figure)


def test_plot_trend_draws_a_line_per_group(history_store: Path) -> None:
    figures = trend(history_store)
    ax = plot_trend(figures, metric="non_compliant_nodes", scope="platform", top=3)
    assert len(ax.lines) == 3
    assert ax.get_title() == "Non-compliant nodes by platform: top 3 of 6"
    latest = figures[(figures["scope"] == "platform") & (figures["time"] == figures["time"].max())]
    assert (
        ax.lines[0].get_label()
        == (
            latest.sort_values(["non_compliant_nodes", "group"], ascending=[False, True])[
                "group"
            ].iloc[0]
        )
    )
    plt.close(ax.figure)
    _, ax = plt.subplots()
    assert plot_trend(figures, metric="open_cves", ax=ax) is ax
    assert [line.get_label() for line in ax.lines] == ["fleet"]
    plt.close(ax.figure)


def test_plot_trend_says_when_there_is_nothing(tmp_path: Path, history_store: Path) -> None:
    ax = plot_trend(trend(tmp_path))
    assert [t.get_text() for t in ax.texts] == ["no snapshots"]
    plt.close(ax.figure)
    with pytest.raises(ValidationError, match="metric 'patches'"):
        plot_trend(trend(history_store), metric="patches")
    with pytest.raises(ValidationError, match="scope 'team'"):
        plot_trend(trend(history_store), scope="team")
    with pytest.raises(ColumnsError, match="'scope'"):
        plot_trend(pd.DataFrame({"time": [], "group": [], "missing": []}))


@pytest.fixture
def damaged_store(sample_fleet_frames: pf.Fleet, tmp_path: Path) -> tuple[Path, str]:
    """Three snapshots, the middle one's patches file cut in half."""
    store = tmp_path / "store"
    ids = [
        save_snapshot(sample_fleet_frames, store, when=when).id
        for when in ("2024-06-01", "2024-06-08", "2024-06-15")
    ]
    part = next((store / "patches" / f"snapshot={ids[1]}").rglob("*.parquet"))
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    return store, ids[1]


def test_trend_names_a_damaged_snapshot(damaged_store: tuple[Path, str]) -> None:
    store, damaged = damaged_store
    with pytest.raises(StoreError, match=f"snapshot={damaged}.*damaged"):
        trend(store)


def test_trend_skips_a_damaged_snapshot_when_asked(damaged_store: tuple[Path, str]) -> None:
    store, damaged = damaged_store
    with pytest.warns(StoreWarning, match=f"snapshot {damaged}") as caught:
        figures = trend(store, on_error="skip")
    assert len(caught) == 1
    fleet_rows = figures[figures["scope"] == "fleet"]
    kept = [s for s in list_snapshots(store)["snapshot"] if s != damaged]
    assert fleet_rows["snapshot"].tolist() == kept
    assert len(kept) == 2
    assert fleet_rows["nodes"].tolist() == [13, 13]  # the sample fleet's, whole


def test_trend_on_a_folder_that_is_not_a_snapshot(damaged_store: tuple[Path, str]) -> None:
    store, damaged = damaged_store
    (store / "patches" / "notes").mkdir()
    with pytest.raises(StoreError, match="notes: not a patchframe snapshot"):
        trend(store)
    with pytest.warns(StoreWarning) as caught:
        figures = trend(store, on_error="skip")
    assert sorted("notes" in str(w.message) for w in caught) == [False, True]
    assert damaged not in set(figures["snapshot"])
    assert figures["snapshot"].nunique() == 2


def test_trend_refuses_an_unknown_on_error(damaged_store: tuple[Path, str]) -> None:
    with pytest.raises(ValidationError, match="on_error 'ignore'"):
        trend(damaged_store[0], on_error="ignore")  # type: ignore[arg-type]
