"""Findings: each episode of a patch missing on a node, from the snapshots of a store.

:func:`findings` walks the snapshots oldest first, keeping the episodes open at each
one in a few numpy arrays sorted by one int64 per (node, patch): the node's and the
patch's ids across snapshots, whose categories differ. From each snapshot it reads
only the key, state and text columns of the patches (6 of the frame's 17), and the
key and ``patch_rows`` of the nodes; pyarrow drops the rows that are neither MISSING,
FAILED nor installed (NOT_APPLICABLE ones, mostly) before pandas sees them. Each
snapshot then costs a few sorts of its open and installed rows: 52 weekly snapshots
of a million rows take about 6 s and 400 MB at peak (``benchmarks/findings.py``).
On that fleet, a quarter of whose rows are not applicable, dropping rows early
neither gains nor costs measurably; it bounds what one snapshot holds in memory by
the rows findings need, whatever a fleet's share of NOT_APPLICABLE rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow.compute as pc

from .._frames import require_columns, severity_levels, state_mask
from .._schema import OPEN_STATES, WIRE_STATES
from ._diff import _INSTALLED, NODE_KEY
from ._store import StorePath, _each_snapshot

__all__ = ["FINDING_COLUMNS", "RESOLUTIONS", "findings"]

#: How an episode ended, or that it has not.
RESOLUTIONS = pd.CategoricalDtype(["installed", "node gone", "patch gone", "open"])
FINDING_COLUMNS: tuple[str, ...] = (
    *NODE_KEY,
    "kb_id",
    "title",
    "severity_level",
    "cve_ids",
    "first_seen",
    "last_seen",
    "resolved_at",
    "resolution",
    "open",
)
_TEXTS = ("title", "severity_level", "cve_ids")
_INSTALLED_AT, _NODE_GONE, _PATCH_GONE, _OPEN = range(4)
_KB_BITS = 32  # a key is node id << 32 | patch id: 4 billion patches, 2 billion nodes
Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


class _Ids:
    """Ids of labels that stay the same across snapshots whose categories differ."""

    def __init__(self) -> None:
        self.labels: pd.Index = pd.Index([], dtype=object)

    def of(self, column: pd.Series[Any]) -> Ints:
        """Each row's id, -1 for NA; new labels get the next ids."""
        values = (
            column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
        )
        categories = values.cat.categories.astype(object)
        ids = self.labels.get_indexer(categories)
        new = ids < 0
        if new.any():
            self.labels = self.labels.append(categories[new])
            ids = self.labels.get_indexer(categories)
        return np.append(ids, -1).astype(np.int64)[values.cat.codes.to_numpy()]


class _NodeIds:
    """Ids of nodes, (account_id, region, instance_id), across snapshots."""

    def __init__(self) -> None:
        self.keys: list[tuple[Any, Any, Any]] = []
        self.index: dict[tuple[Any, Any, Any], int] = {}

    def of(self, frame: pd.DataFrame) -> Ints:
        """Each row's node id, -1 where the instance id is NA."""
        columns = [frame[c].astype("category") for c in NODE_KEY]
        labels = [
            np.concatenate([[None], c.cat.categories.to_numpy(dtype=object)]) for c in columns
        ]
        codes = tuple(c.cat.codes.to_numpy().astype(np.int64) + 1 for c in columns)
        shape = tuple(map(len, labels))
        # The few distinct nodes are looked up, not the rows.
        distinct, rows = np.unique(np.ravel_multi_index(codes, shape), return_inverse=True)
        parts = np.unravel_index(distinct, shape)
        ids = np.full(len(distinct), -1, dtype=np.int64)
        named = zip(*(names[p] for names, p in zip(labels, parts, strict=True)), strict=True)
        for i, node in enumerate(named):
            if node[2] is not None:
                ids[i] = self.index.setdefault(node, len(self.keys))
                if ids[i] == len(self.keys):
                    self.keys.append(node)
        return ids[rows.reshape(-1)]


@dataclass
class _Episodes:
    """Episodes as parallel arrays; ``texts`` are ids of title, severity, cve_ids and extras."""

    key: Ints
    first: Ints
    last: Ints
    texts: list[Ints]

    def take(self, rows: Flags | Ints) -> _Episodes:
        return _Episodes(
            self.key[rows], self.first[rows], self.last[rows], [t[rows] for t in self.texts]
        )

    @staticmethod
    def joined(parts: Sequence[_Episodes]) -> _Episodes:
        return _Episodes(
            np.concatenate([p.key for p in parts]),
            np.concatenate([p.first for p in parts]),
            np.concatenate([p.last for p in parts]),
            [np.concatenate(t) for t in zip(*(p.texts for p in parts), strict=True)],
        )


@dataclass
class _Closed:
    episodes: _Episodes
    end: Ints  # the snapshot that ended it
    resolution: Ints


def _distinct(keys: Ints) -> tuple[Ints, Ints]:
    """The distinct keys, ascending, and the position of each one's first row.

    A stable sort, then a comparison of neighbours: numpy 2.4's ``unique`` hashes, and
    took 300 ms where this takes 30 ms, on 600,000 keys of a million-row snapshot.
    """
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    first = np.ones(len(ranked), dtype=np.bool_)
    first[1:] = ranked[1:] != ranked[:-1]
    return ranked[first], order[first]


def _within(sorted_keys: Ints, keys: Ints) -> tuple[Flags, Ints]:
    """Which ``keys`` are in ``sorted_keys`` (unique, ascending), and where."""
    where = np.searchsorted(sorted_keys, keys)
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=np.bool_), where.astype(np.int64)
    clipped = np.minimum(where, len(sorted_keys) - 1)
    return sorted_keys[clipped] == keys, clipped.astype(np.int64)


def _state_filter() -> Any:
    """The rows a finding needs: open ones, and installed ones to see the fix, any spelling."""
    states = OPEN_STATES | _INSTALLED
    return pc.field("state").isin(sorted({*states, *(WIRE_STATES[s] for s in states)}))


def _seen_nodes(nodes: pd.DataFrame, patch_nodes: Ints, node_ids: _NodeIds) -> Flags:
    """Which nodes this snapshot knows the patches of: those with patch rows, and those its
    nodes frame lists with their patches loaded (``patch_rows`` not NA)."""
    listed = node_ids.of(nodes)
    if "patch_rows" in nodes.columns:
        listed = listed[nodes["patch_rows"].notna().to_numpy()]
    seen = np.zeros(len(node_ids.keys), dtype=np.bool_)
    seen[patch_nodes[patch_nodes >= 0]] = True
    seen[listed[listed >= 0]] = True
    return seen


def findings(
    store: StorePath, *, columns: Iterable[str] = (), filesystem: object = None
) -> pd.DataFrame:
    """Every episode of a patch being MISSING or FAILED on a node, across a store's snapshots.

    An episode opens at the first snapshot that lists the patch MISSING or FAILED on
    the node and lasts while later snapshots do. It ends at the first snapshot where
    the node's patches were loaded and the patch is:

    - installed (INSTALLED, INSTALLED_OTHER, INSTALLED_PENDING_REBOOT or
      INSTALLED_REJECTED: the fix is on the node): ``"installed"``;
    - neither open nor installed (no longer listed, or NOT_APPLICABLE after a
      baseline change): ``"patch gone"``.

    A node counts as *seen* in a snapshot when its patches frame has rows of it, or
    its nodes frame lists it with its patches loaded (``patch_rows`` not NA, if only
    0: a node listing no patch); a node that failed to load is not seen. A snapshot
    that does not see a node says nothing about it: a node absent from one snapshot
    (stopped, unreachable, failed to load) and seen again later keeps its episodes
    open across the gap, and they end, or go on, by what the later snapshot shows.
    Only a node seen in no later snapshot at all is gone: its open episodes end
    ``"node gone"`` at the first snapshot after its last sighting. So a node missing
    from the latest snapshot counts as gone only until a later snapshot sees it
    again: findings are worked out afresh from the whole store on every call.

    A patch that goes missing again after its episode ended starts a new episode.

    Parameters
    ----------
    store
        A folder or a URI such as ``s3://bucket/prefix``.
    columns
        Further columns of the snapshots' patches frames to carry, as of the last
        snapshot that saw the episode open, e.g. ``["platform_name"]`` to break
        breaches down by platform; every snapshot must have them.
    filesystem
        As for :func:`save_snapshot`.

    Returns
    -------
    pandas.DataFrame
        One row per episode, sorted by account, region, node, patch and
        ``first_seen``. Columns:

        - ``account_id``, ``region``, ``instance_id``, ``kb_id`` (categories);
        - ``title``, ``severity_level``, ``cve_ids`` (and ``columns``): as the last
          snapshot that saw the episode open had them; ``severity_level`` is the
          contract's ordered category, the others categories;
        - ``first_seen``, ``last_seen``: the first and last snapshot times that saw
          it open (UTC);
        - ``resolved_at``: the snapshot time that ended it (the fix seen installed,
          the patch or node seen gone), NaT while open;
        - ``resolution``: ``"installed"``, ``"node gone"``, ``"patch gone"`` or
          ``"open"`` (a category);
        - ``open`` (bool).

        Times are snapshot times: a fix is dated by the first snapshot that sees it,
        so weekly snapshots date fixes up to a week late; an episode open in the
        first snapshot may have begun before it.

    Raises
    ------
    ColumnsError
        A snapshot lacks a column the findings need, or one of ``columns``.

    Examples
    --------
    >>> import tempfile, patchframe as pf
    >>> from patchframe.history import findings, save_snapshot
    >>> with tempfile.TemporaryDirectory() as store:
    ...     for when, wire in pf.synthetic_history(4, nodes=8, patches_per_node=40):
    ...         with pf.Emulator(wire) as emulator:
    ...             fleet = pf.load_fleet(client=emulator.client(), progress=False)
    ...         _ = save_snapshot(fleet, store, when=when)
    ...     episodes = findings(store)
    >>> episodes["resolution"].value_counts().to_dict()
    {'open': 51, 'installed': 44, 'node gone': 1, 'patch gone': 0}
    >>> gone = episodes[episodes["resolution"] == "node gone"].iloc[0]
    >>> gone["kb_id"], str(gone["last_seen"]), str(gone["resolved_at"])
    ('runc-1.1.12-1.el8.4.x86_64', '2024-06-28 08:00:00+00:00', '2024-07-05 08:00:00+00:00')
    """
    extras = list(dict.fromkeys(columns))
    texts = [*_TEXTS, *(c for c in extras if c not in _TEXTS)]
    wanted = list(dict.fromkeys([*NODE_KEY, "kb_id", "state", *texts]))
    node_ids, kb_ids = _NodeIds(), _Ids()
    text_ids = [_Ids() for _ in texts]
    times: list[pd.Timestamp] = []
    empty = np.empty(0, dtype=np.int64)
    live = _Episodes(empty, empty, empty, [empty for _ in texts])
    closed: list[_Closed] = []
    node_last = np.empty(0, dtype=np.int64)  # the last snapshot that saw each node
    snapshots = _each_snapshot(
        store,
        filesystem,
        {"patches": wanted, "nodes": [*NODE_KEY, "patch_rows"]},
        {"patches": _state_filter()},
    )
    for t, (snapshot, frames) in enumerate(snapshots):
        times.append(snapshot.time)
        patches, nodes = frames["patches"], frames["nodes"]
        require_columns(patches, wanted, needed_by=f"findings (snapshot {snapshot.id})")
        require_columns(nodes, NODE_KEY, needed_by=f"findings (snapshot {snapshot.id} nodes)")
        node = node_ids.of(patches)
        key = (node << _KB_BITS) | kb_ids.of(patches["kb_id"])
        seen = _seen_nodes(nodes, node, node_ids)
        known = (node >= 0) & patches["kb_id"].notna().to_numpy()
        open_rows = np.flatnonzero(state_mask(patches, OPEN_STATES) & known)
        now_keys, first_rows = _distinct(key[open_rows])
        now_texts = [
            ids.of(patches[c])[open_rows[first_rows]]
            for ids, c in zip(text_ids, texts, strict=True)
        ]
        installed_keys = _distinct(key[state_mask(patches, _INSTALLED) & known])[0]
        node_last = np.concatenate([node_last, np.full(len(seen) - len(node_last), -1)])
        node_last[seen] = t

        node_seen = seen[live.key >> _KB_BITS]
        still, where = _within(now_keys, live.key)
        installed, _ = _within(installed_keys, live.key)
        going_on = node_seen & still
        live.last[going_on] = t
        for mine, now in zip(live.texts, now_texts, strict=True):
            mine[going_on] = now[where[going_on]]
        for ended, how in (
            (node_seen & ~still & installed, _INSTALLED_AT),
            (node_seen & ~still & ~installed, _PATCH_GONE),
        ):
            if ended.any():
                count = int(ended.sum())
                closed.append(_Closed(live.take(ended), np.full(count, t), np.full(count, how)))
        kept = live.take(~node_seen | still)
        new = ~_within(kept.key, now_keys)[0]
        count = int(new.sum())
        born = _Episodes(
            now_keys[new], np.full(count, t), np.full(count, t), [n[new] for n in now_texts]
        )
        live = _Episodes.joined([kept, born])
        live = live.take(np.argsort(live.key, kind="stable"))

    if not times:
        return _empty(extras)
    last = len(times) - 1
    still_seen = node_last[live.key >> _KB_BITS] == last
    gone = ~still_seen
    closed.append(
        _Closed(
            live.take(gone),
            node_last[live.key[gone] >> _KB_BITS] + 1,
            np.full(int(gone.sum()), _NODE_GONE),
        )
    )
    count = int(still_seen.sum())
    closed.append(_Closed(live.take(still_seen), np.full(count, -1), np.full(count, _OPEN)))
    return _frame(closed, times, node_ids, kb_ids, texts, text_ids)


def _sorted_categorical(labels: Sequence[Any], ids: Ints) -> pd.Categorical:
    """``labels[ids]`` as a categorical with sorted categories; NA where a label is None."""
    index = pd.Index(labels, dtype=object)
    categories = pd.Index(index.dropna().unique()).sort_values()
    codes = categories.get_indexer(index)
    return pd.Categorical.from_codes(codes[ids], categories=categories)


def _frame(
    parts: list[_Closed],
    times: list[pd.Timestamp],
    node_ids: _NodeIds,
    kb_ids: _Ids,
    texts: list[str],
    text_ids: list[_Ids],
) -> pd.DataFrame:
    episodes = _Episodes.joined([p.episodes for p in parts])
    end = np.concatenate([p.end for p in parts])
    resolution = np.concatenate([p.resolution for p in parts])
    node = episodes.key >> _KB_BITS
    kb = episodes.key & ((1 << _KB_BITS) - 1)
    stamps = pd.DatetimeIndex(times, dtype="datetime64[ns, UTC]").append(
        pd.DatetimeIndex([pd.NaT], dtype="datetime64[ns, UTC]")
    )
    data: dict[str, Any] = {
        column: _sorted_categorical([k[i] for k in node_ids.keys], node)
        for i, column in enumerate(NODE_KEY)
    }
    data["kb_id"] = _sorted_categorical(kb_ids.labels.tolist(), kb)
    for column, ids, values in zip(texts, text_ids, episodes.texts, strict=True):
        labels = pd.Index([*ids.labels.tolist(), None], dtype=object)
        data[column] = pd.Categorical(labels[values])  # -1, NA, takes the None
    data["severity_level"] = severity_levels(pd.Series(data["severity_level"])).array
    data["first_seen"] = stamps[episodes.first]
    data["last_seen"] = stamps[episodes.last]
    data["resolved_at"] = stamps[end]
    data["resolution"] = pd.Categorical.from_codes(resolution, dtype=RESOLUTIONS)
    data["open"] = resolution == _OPEN
    frame = pd.DataFrame(data)
    frame = frame[[*FINDING_COLUMNS[:7], *texts[3:], *FINDING_COLUMNS[7:]]]
    return frame.sort_values([*NODE_KEY, "kb_id", "first_seen"], kind="stable", ignore_index=True)


def _empty(extras: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            **{c: pd.Categorical([]) for c in (*NODE_KEY, "kb_id", "title")},
            "severity_level": severity_levels(pd.Series([], dtype="category")),
            "cve_ids": pd.Categorical([]),
            **{c: pd.Categorical([]) for c in extras if c not in _TEXTS},
            **{
                c: pd.DatetimeIndex([], dtype="datetime64[ns, UTC]")
                for c in ("first_seen", "last_seen", "resolved_at")
            },
            "resolution": pd.Categorical([], dtype=RESOLUTIONS),
            "open": np.array([], dtype=np.bool_),
        }
    )
    return frame
