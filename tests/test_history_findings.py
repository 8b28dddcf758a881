"""Findings from a store: exact episodes of hand-built histories (open, close, reopen, a node
that disappears, a patch that disappears, a node absent from a snapshot that comes back, a
node that failed to load), and the synthetic history against a brute-force walk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import history_data as history
import pandas as pd
import pytest
from frames import patches_from_rows
from history_data import INSTALLED, OPEN

from patchframe import Fleet
from patchframe._schema import WIRE_STATES, build_errors
from patchframe.exceptions import ColumnsError
from patchframe.history import findings, save_snapshot
from patchframe.history._findings import FINDING_COLUMNS

ACCOUNT, REGION = "123456789012", "eu-west-1"
WEEKS = pd.date_range("2024-06-03T06:00Z", periods=6, freq="7D")
NODE = {name: f"i-0{name * 16}" for name in "abcdef"}

# One snapshot: node -> its rows (KB, state[, severity]); None: the node failed to load.
Snapshot = Mapping[str, Sequence[tuple[str, ...]] | None]


def fleet_of(snapshot: Snapshot) -> Fleet:
    """A fleet of the nodes named, each with these patch rows (or failed to load)."""
    loaded = {n: rows for n, rows in snapshot.items() if rows is not None}
    patches = patches_from_rows(
        {
            NODE[n]: [
                (kb, state, *(more or ("Critical",)), "Security", None, "")
                for kb, state, *more in rows
            ]
            for n, rows in loaded.items()
        },
        account_id=ACCOUNT,
        region=REGION,
    )
    nodes = pd.DataFrame(
        {
            "account_id": pd.Categorical([ACCOUNT] * len(snapshot)),
            "region": pd.Categorical([REGION] * len(snapshot)),
            "instance_id": pd.Categorical([NODE[n] for n in snapshot]),
            "compliance": pd.Categorical(["NON_COMPLIANT"] * len(snapshot)),
            "patch_rows": pd.array(
                [None if rows is None else len(rows) for rows in snapshot.values()],
                dtype="Int64",
            ),
        }
    )
    return Fleet(patches, nodes, build_errors([]).assign(account_id=None, region=None))


#: Six weekly snapshots; each comment says what the week shows.
HISTORY: list[Snapshot] = [
    {
        "a": [("KB1", "Missing"), ("KB2", "Missing")],
        "b": [("KB4", "Missing"), ("KB5", "Missing")],
        "c": [("KB6", "Missing")],
        "d": [("KB7", "Missing", "Low")],
        "e": [("KB8", "Missing")],
        "f": [("KB9", "Missing")],
    },
    {  # KB2 no longer applies, KB3 released; d fails to load; f lists no patch at all
        "a": [("KB1", "Missing"), ("KB2", "NotApplicable"), ("KB3", "Missing")],
        "b": [("KB4", "Failed"), ("KB5", "Missing")],
        "c": [("KB6", "Missing")],
        "d": None,
        "e": [("KB8", "Missing")],
        "f": [],
    },
    {  # KB1 installed, KB3 withdrawn; b is absent this week
        "a": [("KB1", "Installed")],
        "c": [("KB6", "Missing")],
        "d": [("KB7", "Missing", "Low")],
        "e": [("KB8", "Missing")],
    },
    {  # KB1 missing again; b is back, KB4 still missing, KB5 installed meanwhile; c is gone
        "a": [("KB1", "Missing")],
        "b": [("KB4", "Missing"), ("KB5", "InstalledOther")],
        "d": [("KB7", "Missing", "Critical")],
        "e": [("KB8", "Missing")],
    },
    {
        "a": [("KB1", "Failed")],
        "b": [("KB4", "InstalledPendingReboot")],
        "d": [("KB7", "Missing", "Critical")],
        "e": [("KB8", "Missing")],
    },
    {  # KB4 missing again after its install; e is absent from the latest snapshot
        "a": [("KB1", "Missing")],
        "b": [("KB4", "Missing")],
        "d": [("KB7", "Missing", "Critical")],
    },
]

# (node, KB, first seen, last seen, resolved at (week or None), resolution, severity)
EXPECTED = [
    ("a", "KB1", 0, 1, 2, "installed", "Critical"),
    ("a", "KB1", 3, 5, None, "open", "Critical"),
    ("a", "KB2", 0, 0, 1, "patch gone", "Critical"),
    ("a", "KB3", 1, 1, 2, "patch gone", "Critical"),
    ("b", "KB4", 0, 3, 4, "installed", "Critical"),
    ("b", "KB4", 5, 5, None, "open", "Critical"),
    ("b", "KB5", 0, 1, 3, "installed", "Critical"),
    ("c", "KB6", 0, 2, 3, "node gone", "Critical"),
    ("d", "KB7", 0, 5, None, "open", "Critical"),
    ("e", "KB8", 0, 4, 5, "node gone", "Critical"),
    ("f", "KB9", 0, 0, 1, "patch gone", "Critical"),
]


def save(store: Path, snapshots: Sequence[Snapshot], **changes: Any) -> Path:
    for when, snapshot in zip(WEEKS, snapshots, strict=False):
        fleet = fleet_of(snapshot)
        if changes:
            fleet = Fleet(fleet.patches.assign(**changes), fleet.nodes, fleet.errors)
        save_snapshot(fleet, store, when=when)
    return store


def episodes(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    week = {t: i for i, t in enumerate(WEEKS)}
    names = {v: k for k, v in NODE.items()}
    return [
        (
            names[row.instance_id],
            row.kb_id,
            week[row.first_seen],
            week[row.last_seen],
            None if pd.isna(row.resolved_at) else week[row.resolved_at],
            row.resolution,
            row.severity_level,
        )
        for row in frame.itertuples()
    ]


def test_hand_built_history_gives_exactly_these_episodes(tmp_path: Path) -> None:
    found = findings(save(tmp_path / "store", HISTORY))
    assert episodes(found) == EXPECTED
    assert list(found.columns) == list(FINDING_COLUMNS)
    assert found["open"].tolist() == [e[5] == "open" for e in EXPECTED]
    assert found["account_id"].astype("str").unique().tolist() == [ACCOUNT]
    assert found["title"].astype("str").tolist()[:3] == ["Title of KB1"] * 2 + ["Title of KB2"]


def test_findings_dtypes_follow_the_contract(tmp_path: Path) -> None:
    found = findings(save(tmp_path / "store", HISTORY))
    empty = findings(tmp_path / "no store yet")
    for frame in (found, empty):
        assert list(frame.columns) == list(FINDING_COLUMNS)
        assert frame["severity_level"].dtype == found["severity_level"].dtype
        assert frame["severity_level"].cat.ordered
        for column in ("account_id", "region", "instance_id", "kb_id", "title", "cve_ids"):
            assert isinstance(frame[column].dtype, pd.CategoricalDtype), column
        for column in ("first_seen", "last_seen", "resolved_at"):
            assert str(frame[column].dtype) == "datetime64[ns, UTC]", column
        assert frame["resolution"].cat.categories.tolist() == [
            "installed",
            "node gone",
            "patch gone",
            "open",
        ]
        assert frame["open"].dtype == bool
    assert empty.empty


def test_states_stored_in_the_wire_spelling_give_the_same_episodes(tmp_path: Path) -> None:
    model = findings(save(tmp_path / "model", HISTORY))
    wire = save(tmp_path / "wire", HISTORY)
    # Saved again with states spelled as the wire has them, CamelCase.
    camel = tmp_path / "camel"
    for when, snapshot in zip(WEEKS, HISTORY, strict=True):
        fleet = fleet_of(snapshot)
        state = fleet.patches["state"].astype("str").map(WIRE_STATES).astype("category")
        save_snapshot(
            Fleet(fleet.patches.assign(state=state), fleet.nodes, fleet.errors), camel, when=when
        )
    assert wire.exists()
    pd.testing.assert_frame_equal(findings(camel), model)


def test_the_history_up_to_each_week(tmp_path: Path) -> None:
    """A node absent from the latest snapshot is gone until a later snapshot sees it."""
    found = findings(save(tmp_path / "store", HISTORY[:3]))
    assert episodes(found) == [
        ("a", "KB1", 0, 1, 2, "installed", "Critical"),
        ("a", "KB2", 0, 0, 1, "patch gone", "Critical"),
        ("a", "KB3", 1, 1, 2, "patch gone", "Critical"),
        ("b", "KB4", 0, 1, 2, "node gone", "Critical"),
        ("b", "KB5", 0, 1, 2, "node gone", "Critical"),
        ("c", "KB6", 0, 2, None, "open", "Critical"),
        ("d", "KB7", 0, 2, None, "open", "Low"),
        ("e", "KB8", 0, 2, None, "open", "Critical"),
        ("f", "KB9", 0, 0, 1, "patch gone", "Critical"),
    ]


def test_further_columns_are_carried_as_last_seen_open(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for week, (when, snapshot) in enumerate(zip(WEEKS, HISTORY, strict=True)):
        fleet = fleet_of(snapshot)
        team = pd.Categorical([f"team-{week}"] * len(fleet.patches))
        save_snapshot(
            Fleet(fleet.patches.assign(team=team), fleet.nodes, fleet.errors), store, when=when
        )
    found = findings(store, columns=["team"])
    assert list(found.columns) == [*FINDING_COLUMNS[:7], "team", *FINDING_COLUMNS[7:]]
    last_seen = [f"team-{e[3]}" for e in EXPECTED]
    assert found["team"].astype("str").tolist() == last_seen
    with pytest.raises(ColumnsError, match="'owner'"):
        findings(store, columns=["owner"])


# The synthetic history against an independent brute-force walk over its fleets.


def brute_force(fleets: Sequence[Fleet]) -> set[tuple[Any, ...]]:
    """Episodes by walking every (node, patch) of every snapshot in plain Python."""
    texts = ("title", "severity_level", "cve_ids")
    current: dict[tuple[str, str], dict[str, Any]] = {}
    done: list[tuple[tuple[str, str], dict[str, Any]]] = []
    node_last: dict[str, int] = {}
    for t, fleet in enumerate(fleets):
        nodes = fleet.nodes
        loaded = set(nodes.loc[nodes["patch_rows"].notna(), "instance_id"].astype("str"))
        states: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
        for row in fleet.patches.astype("str").astype(object).itertuples():
            key = (row.instance_id, row.kb_id)
            if key not in states or (row.state in OPEN and states[key][0] not in OPEN):
                states[key] = (row.state, tuple(str(getattr(row, c)) for c in texts))
        for node in loaded:
            node_last[node] = t
        for key, episode in list(current.items()):
            if key[0] not in loaded:
                continue
            state, text = states.get(key, ("", ()))
            if state in OPEN:
                episode.update(last=t, text=text)
            else:
                how = "installed" if state in INSTALLED else "patch gone"
                done.append((key, {**episode, "end": t, "how": how}))
                del current[key]
        for key, (state, text) in states.items():
            if state in OPEN and key not in current and key[0] in loaded:
                current[key] = {"first": t, "last": t, "text": text}
    for key, episode in current.items():
        if node_last[key[0]] == len(fleets) - 1:
            done.append((key, {**episode, "end": None, "how": "open"}))
        else:
            done.append((key, {**episode, "end": node_last[key[0]] + 1, "how": "node gone"}))
    return {(*key, e["first"], e["last"], e["end"], e["how"], *e["text"]) for key, e in done}


def test_synthetic_history_matches_a_brute_force_walk(tmp_path: Path) -> None:
    store = history.save_history(tmp_path / "store")
    found = findings(store)
    times = {when: i for i, (when, _) in enumerate(history.wire_history())}
    got = {
        (
            row.instance_id,
            row.kb_id,
            times[row.first_seen],
            times[row.last_seen],
            None if pd.isna(row.resolved_at) else times[row.resolved_at],
            row.resolution,
            str(row.title),
            str(row.severity_level),
            str(row.cve_ids),
        )
        for row in found.itertuples()
    }
    expected = brute_force(history.history_fleets())
    assert len(found) == len(got)  # no episode twice
    assert got == expected
    counts = found["resolution"].value_counts().to_dict()
    assert all(counts[r] > 0 for r in ("installed", "node gone", "open")), counts
    keys = found[["instance_id", "kb_id", "first_seen"]].astype("str")
    assert keys.equals(keys.sort_values(list(keys.columns), ignore_index=True))
