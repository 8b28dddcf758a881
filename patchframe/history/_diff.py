"""What changed between two fleets: :class:`FleetDiff` and :func:`diff`.

Both fleets' rows are matched on (account_id, region, instance_id, kb_id): each row is
numbered from its key columns' codes, on categories shared by both sides, the numbers
of each side sorted, and the two sorted columns joined in one pass. Only the rows that
changed, and the open rows listing CVEs, are then looked up for their text. Nodes are
numbered the same way, few enough numbers to keep a flag per node in a table.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .._fleet import Fleet
from .._frames import (
    LEVEL_DTYPE,
    Mask,
    cve_lists,
    model_states,
    require_columns,
    severity_levels,
    state_mask,
    utc_times,
)
from .._frames import Codes as Positions
from .._schema import OPEN_STATES, STATES
from .._text import counted
from ..exceptions import ValidationError

__all__ = ["FleetDiff", "diff"]

#: Where a node is: a node's identity in every frame of a fleet.
NODE_KEY = ["account_id", "region", "instance_id"]
_ROW_KEY = [*NODE_KEY, "kb_id"]
#: The model's installed states: the fix is on the node, whatever else it waits for.
_INSTALLED = frozenset(s for s in STATES if s.startswith("INSTALLED"))
_TEXTS = ["title", "cve_ids", "severity_level"]
_INT64_MAX = int(np.iinfo(np.int64).max)
#: Numbers of nodes or rows, one per row; positions of rows, -1 for none.
Numbers = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class FleetDiff:
    """What changed between two fleets, as tidy frames.

    Node frames (``added_nodes``, ``removed_nodes``) have one row per node:
    ``account_id``, ``region``, ``instance_id``, ``platform_name`` (str),
    ``patches`` (its patch rows) and ``missing`` (of those, MISSING or FAILED),
    counts ``int64``, sorted by account, region and node.

    Patch frames (``newly_missing``, ``fixed``, ``changed``) have one row per node
    and patch, on nodes in both fleets: ``account_id``, ``region``,
    ``instance_id``, ``kb_id``, ``title``, ``cve_ids`` (str), ``severity_level``,
    ``old_state`` and ``new_state`` (the contract's ordered state category, NA
    where the patch was not listed on that side) and ``installed_time`` (the new
    side's, UTC), sorted worst severity first, then by account, region, node, patch.

    CVE frames (``cves_opened``, ``cves_closed``) have one row per node and CVE id
    listed by its MISSING or FAILED patches, on nodes in both fleets:
    ``account_id``, ``region``, ``instance_id``, ``cve_id``, ``kb_ids`` (the open
    patches listing it, comma-separated; str), ``severity_level`` (the highest of
    theirs), sorted worst first, then by CVE, account, region, node.

    Attributes
    ----------
    added_nodes, removed_nodes
        Nodes only in the new fleet, only in the old one.
    newly_missing
        Patches MISSING or FAILED now that were not before: released since, or
        broken by a failed install.
    fixed
        Patches MISSING or FAILED before and installed now (INSTALLED,
        INSTALLED_OTHER, INSTALLED_PENDING_REBOOT or INSTALLED_REJECTED).
    changed
        Any other change of state, a patch newly listed or no longer listed included.
    cves_opened, cves_closed
        CVEs open on a node now and not before, and the other way round.
    """

    added_nodes: pd.DataFrame
    removed_nodes: pd.DataFrame
    newly_missing: pd.DataFrame
    fixed: pd.DataFrame
    changed: pd.DataFrame
    cves_opened: pd.DataFrame
    cves_closed: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Rows of each frame; for CVEs, distinct CVE ids.

        Examples
        --------
        See :func:`diff`.
        """
        return {
            "added_nodes": len(self.added_nodes),
            "removed_nodes": len(self.removed_nodes),
            "newly_missing": len(self.newly_missing),
            "fixed": len(self.fixed),
            "changed": len(self.changed),
            "cves_opened": int(self.cves_opened["cve_id"].nunique()),
            "cves_closed": int(self.cves_closed["cve_id"].nunique()),
        }

    def headline(self) -> str:
        """What changed, in one line.

        Examples
        --------
        See :func:`diff`.
        """
        c = self.counts()
        return (
            f"{counted(c['added_nodes'], 'node')} added, {c['removed_nodes']:,} removed; "
            f"{counted(c['newly_missing'], 'patch', 'patches')} newly missing, "
            f"{c['fixed']:,} fixed, {c['changed']:,} other changes; "
            f"{counted(c['cves_opened'], 'CVE')} opened, {c['cves_closed']:,} closed"
        )

    def __str__(self) -> str:
        return self.headline()

    def __repr__(self) -> str:
        return f"<FleetDiff: {self.headline()}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(name.replace('_', ' '))}</th>"
            f"<td style='text-align:right'>{count:,}</td></tr>"
            for name, count in self.counts().items()
        )
        return f"<div><p>{html.escape(self.headline())}</p><table>{rows}</table></div>"


@dataclass(frozen=True)
class _Side:
    """One fleet: its patches, its nodes frame if any, the node of each row of these
    frames (``node``, numbers shared with the other side, one array per frame) and the
    patches' states (on the dtype shared with the other side)."""

    patches: pd.DataFrame
    nodes: pd.DataFrame | None
    node: list[Numbers]
    states: pd.Series[Any]

    def frames(self) -> list[pd.DataFrame]:
        return [self.patches] if self.nodes is None else [self.patches, self.nodes]

    def named(self, span: int) -> Mask:
        """A flag per node number: whether a frame of this side names that node."""
        return node_flags(span, *self.node)


def node_flags(span: int, *numbers: Numbers) -> Mask:
    """A flag per node number, of ``span``: whether any of ``numbers`` is that node."""
    flags = np.zeros(span, dtype=np.bool_)
    for node in numbers:
        flags[node] = True
    return flags


def _frames(data: Fleet | pd.DataFrame, name: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    if isinstance(data, Fleet):
        require_columns(data.nodes, NODE_KEY, needed_by=f"diff ({name} nodes)")
        patches, nodes = data.patches, data.nodes
    elif isinstance(data, pd.DataFrame):
        patches, nodes = data, None
    else:
        raise ValidationError(
            f"{name}: expected a Fleet or a patches DataFrame, got {type(data).__name__}"
        )
    require_columns(
        patches, [*_ROW_KEY, *_TEXTS, "state", "installed_time"], needed_by=f"diff ({name})"
    )
    return patches, nodes


def _shared_codes(frames: Sequence[pd.DataFrame], column: str) -> tuple[list[Numbers], int]:
    """Each frame's codes of ``column`` on one set of categories for all, NA as 0, and
    how many values they take.

    Two frames' categories are rarely in the same order: their codes compare once
    each is recoded onto the union of them.
    """
    columns = [f[column].astype("category") for f in frames]
    union = pd.Index(pd.concat([c.cat.categories.to_series() for c in columns])).unique()
    # NA's code, -1, becomes 0.
    codes = [
        np.add(c.cat.set_categories(union).cat.codes.to_numpy(), 1, dtype=np.int64)
        for c in columns
    ]
    return codes, len(union) + 1


def _numbered(columns: Iterable[tuple[list[Numbers], int]]) -> tuple[list[Numbers], int]:
    """One int64 per row of each frame, equal for two rows (of any of the frames) exactly
    when their codes in every column are, and how many values it can take.

    ``columns`` gives, column by column, each frame's codes (0 to size - 1) and the size.
    """
    parts = iter(columns)
    first, span = next(parts)
    keys = [k.copy() for k in first]  # then changed in place: 1M-row copies cost here
    for codes, size in parts:
        if span > _INT64_MAX // size:
            # More combinations than an int64 holds: number those that occur instead.
            keys, span = _compact(keys)
        for k, c in zip(keys, codes, strict=True):
            k *= size
            k += c
        span *= size
    return keys, span


def _compact(keys: list[Numbers]) -> tuple[list[Numbers], int]:
    """``keys`` numbered again from 0, in order of first use, and how many values that is."""
    found, distinct = pd.factorize(np.concatenate(keys))
    ends = np.cumsum([len(k) for k in keys[:-1]])
    return np.split(found.astype(np.int64), ends), max(len(distinct), 1)


def _node_numbers(frames: Sequence[pd.DataFrame]) -> tuple[list[Numbers], int]:
    """The node of each row of each frame, as a number the same in all (equal exactly
    when account, region and instance are), and how many values these numbers take."""
    numbers, span = _numbered(_shared_codes(frames, c) for c in NODE_KEY)
    if span > 8 * sum(map(len, frames)):
        # Numbers index tables of a byte per number: kept no bigger than the numbers.
        numbers, span = _compact(numbers)
    return numbers, span


def _aligned(old: Fleet | pd.DataFrame, new: Fleet | pd.DataFrame) -> tuple[_Side, _Side, int]:
    """Both sides as :class:`_Side` says, and how many values their node numbers take."""
    given = [_frames(old, "old"), _frames(new, "new")]
    frames = [f for pair in given for f in pair if f is not None]
    numbers, span = _node_numbers(frames)
    states = model_states(*(patches["state"] for patches, _ in given))
    sides = []
    for (patches, nodes), state in zip(given, states, strict=True):
        node = [numbers.pop(0) for f in (patches, nodes) if f is not None]
        sides.append(_Side(patches, nodes, node, state))
    return sides[0], sides[1], span


def _take(values: npt.NDArray[Any], at: Positions) -> npt.NDArray[Any]:
    """``values`` at positions ``at``, -1 where ``at`` is -1."""
    return np.asarray(pd.api.extensions.take(values, at, allow_fill=True, fill_value=-1))


def _matched(old: _Side, new: _Side, node_span: int) -> tuple[Positions, Positions]:
    """Every (node, patch) either side lists: the position of its row in the old patches
    and in the new (-1 where that side does not list it); a (node, patch) listed twice
    is a ValidationError.

    Each side's rows are numbered, the numbers sorted, and the two sorted columns
    joined in one pass (``Index.join``): 60 ms on two fleets of 1M rows, where hashing
    them (``Index.get_indexer``) takes 120 to 210 ms and ``pandas.merge`` on two
    integer key columns 400 to 700 ms. Each number carries its row's position in its
    low bits, so that one ``numpy.sort`` (3 to 4 times faster than ``argsort``) orders
    both.
    """
    both = [old.patches, new.patches]
    node = ([old.node[0], new.node[0]], node_span)
    bits = max(*map(len, both), 1).bit_length()
    positions = ([np.arange(len(f)) for f in both], 1 << bits)
    packed, _ = _numbered([node, _shared_codes(both, "kb_id"), positions])
    # In place: 1M-row copies cost a quarter of the time here.
    split = [_split(p, bits) for p in packed]
    for patches, (keys, at), name in zip(both, split, ("old", "new"), strict=True):
        _refuse_duplicates(patches, at[1:][keys[1:] == keys[:-1]], name)
    (old_rows, old_at), (new_rows, new_at) = split
    _, left, right = pd.Index(old_rows).join(pd.Index(new_rows), how="outer", return_indexers=True)
    # No indexer: the join is that side's rows, in order.
    return (
        old_at if left is None else _take(old_at, left),
        new_at if right is None else _take(new_at, right),
    )


def _split(packed: Numbers, bits: int) -> tuple[Numbers, Positions]:
    """``packed`` sorted, in place, then split into its high bits (the same array) and its
    low ``bits``."""
    packed.sort()
    low = packed & ((1 << bits) - 1)
    packed >>= bits
    return packed, low


def _refuse_duplicates(patches: pd.DataFrame, again: Positions, name: str) -> None:
    """Raise if any (node, patch) has a second row (``again``: their positions): which of
    two states holds is unknown."""
    if not len(again):
        return
    pairs = patches.iloc[np.sort(again)][_ROW_KEY].astype("str").drop_duplicates()
    shown = "; ".join(
        f"{node} {kb} ({account}, {region})" for account, region, node, kb in pairs.head(3).values
    )
    more = f" and {len(pairs) - 3:,} more" if len(pairs) > 3 else ""
    raise ValidationError(
        f"diff ({name}): {counted(len(pairs), '(node, patch) pair')} listed more than once, "
        f"e.g. {shown}{more}; a patches frame has one row per node and patch: keep one, "
        f"e.g. with frame.drop_duplicates({_ROW_KEY}, keep='last')"
    )


def _changed_rows(
    old: _Side, new: _Side, node_span: int, common: Mask
) -> tuple[Positions, Positions]:
    """The (node, patch) listed differently by the two sides (in another state, or by one
    side only) on ``common`` nodes: their rows' positions, as :func:`_matched` gives."""
    at_old, at_new = _matched(old, new, node_span)
    states = [_take(s.states.cat.codes.to_numpy(), at) for s, at in ((old, at_old), (new, at_new))]
    differ = np.flatnonzero((at_old < 0) | (at_new < 0) | (states[0] != states[1]))
    at_old, at_new = at_old[differ], at_new[differ]
    node = np.where(at_new >= 0, _take(new.node[0], at_new), _take(old.node[0], at_old))
    on_common = common[node]
    return at_old[on_common], at_new[on_common]


def _texts(values: pd.Series[Any]) -> pd.Series[Any]:
    """``values`` as str; of a categorical, its categories are converted (as
    ``astype(object).astype("str")`` converts them, unless str already), not its rows:
    5 times faster."""
    if not isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype("str")
    texts = values.cat.categories
    if texts.dtype != "str":
        texts = texts.astype(object).astype("str")
    codes = values.cat.codes.to_numpy()
    return pd.Series(texts.array.take(codes, allow_fill=True), index=values.index)


def _pick(values: pd.Series[Any], at: Positions) -> pd.Series[Any]:
    """``values`` at positions ``at``, NA where ``at`` is -1."""
    return pd.Series(values.array.take(at, allow_fill=True))


def _patch_rows(old: _Side, new: _Side, at_old: Positions, at_new: Positions) -> pd.DataFrame:
    """The changes of the rows at ``at_old`` and ``at_new`` (of :func:`_changed_rows`)
    as the tidy frame FleetDiff documents."""
    from_new = at_new >= 0

    def either(column: str, convert: Callable[[pd.Series[Any]], pd.Series[Any]]) -> pd.Series[Any]:
        """The new side's value where the row is listed there, else the old side's."""
        newer, older = (convert(_pick(s.patches[column], at)) for s, at in sides)
        return newer.where(from_new, older)

    sides = ((new, at_new), (old, at_old))
    frame = pd.DataFrame(
        {
            **{c: either(c, _texts) for c in [*_ROW_KEY, "title", "cve_ids"]},
            "severity_level": either("severity_level", severity_levels),
            "old_state": _pick(old.states, at_old),
            "new_state": _pick(new.states, at_new),
            "installed_time": utc_times(_pick(new.patches["installed_time"], at_new)),
        }
    )
    return _worst_first(frame, _ROW_KEY)


def _first_platforms(frame: pd.DataFrame) -> pd.Series[Any]:
    """Each node's platform_name on its first row in ``frame`` (NA there stays NA)."""
    return frame.groupby("_node")["platform_name"].first(skipna=False).astype(object)


#: The node frame of no node, as :func:`_node_rows` types it.
_NO_NODES = pd.DataFrame(
    {
        **{c: pd.Series([], dtype="str") for c in [*NODE_KEY, "platform_name"]},
        "patches": pd.Series([], dtype="int64"),
        "missing": pd.Series([], dtype="int64"),
    }
)


def _node_rows(side: _Side, wanted: Mask) -> pd.DataFrame:
    """The tidy frame of the nodes ``wanted`` (a flag per node number) as this side knows
    them."""
    if not wanted.any():  # most diffs add or remove no node: 35 ms of frames saved
        return _NO_NODES.copy()
    # Their rows only: a few nodes' rows group much faster than the fleet's.
    frames = []
    for frame, node in zip(side.frames(), side.node, strict=True):
        rows = np.flatnonzero(wanted[node])
        used = [c for c in (*NODE_KEY, "state", "platform_name") if c in frame.columns]
        frames.append(frame[used].iloc[rows].assign(_node=node[rows]))
    patches = frames[0]
    keys = pd.concat([f.drop_duplicates("_node")[[*NODE_KEY, "_node"]] for f in frames])
    counts = (
        patches[["_node"]]
        .assign(patches=1, missing=state_mask(patches, OPEN_STATES))
        .groupby("_node")
        .sum()
    )
    frame = keys.drop_duplicates("_node").merge(counts.reset_index(), on="_node", how="left")
    platform = pd.Series(None, index=frame.index, dtype=object)
    # Each frame naming a node may know its platform; the nodes frame, last, wins.
    for named in (f for f in frames if "platform_name" in f.columns):
        known = frame[["_node"]].merge(
            _first_platforms(named).reset_index(), on="_node", how="left"
        )["platform_name"]
        platform = known.where(known.notna(), platform)
    return pd.DataFrame(
        {
            **{c: frame[c].astype("str") for c in NODE_KEY},
            "platform_name": platform.astype("str"),
            "patches": frame["patches"].fillna(0).astype("int64"),
            "missing": frame["missing"].fillna(0).astype("int64"),
        }
    ).sort_values(NODE_KEY, kind="stable", ignore_index=True)


def _open_cves(sides: Sequence[_Side], common: Mask, node_span: int) -> list[pd.DataFrame]:
    """Each side's open patch rows on ``common`` nodes, one per CVE id each lists: the
    row's key columns and ``severity_level``, ``cve_id``, and ``_pair``, a number per
    (node, CVE id), the same on both sides."""
    frames = []
    for side in sides:
        patches, node = side.patches, side.node[0]
        listing = state_mask(patches, OPEN_STATES) & patches["cve_ids"].notna().to_numpy()
        at = np.flatnonzero(listing)
        at = at[common[node[at]]]
        rows = patches[[*_ROW_KEY, "severity_level", "cve_ids"]].iloc[at].assign(_node=node[at])
        frames.append(rows.merge(cve_lists(rows["cve_ids"]), on="cve_ids"))
    nodes = ([f["_node"].to_numpy() for f in frames], node_span)
    pairs, _ = _numbered([nodes, _shared_codes(frames, "cve_id")])
    return [f.assign(_pair=p) for f, p in zip(frames, pairs, strict=True)]


def _cve_rows(now: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """The (node, CVE) pairs open in ``now`` and not in ``before`` (of :func:`_open_cves`)."""
    opened = now[~np.isin(now["_pair"], before["_pair"])]
    table = opened.drop_duplicates("_pair").set_index("_pair")
    levels = severity_levels(opened["severity_level"])
    table["severity_level"] = levels.groupby(opened["_pair"]).max()
    kbs = (
        opened[["_pair", "kb_id"]]
        .dropna(subset=["kb_id"])
        .astype({"kb_id": "str"})
        .drop_duplicates()
        .sort_values("kb_id")
    )
    # One sum of strings per pair: 10 times faster than ",".join per group.
    kb_ids = (kbs["kb_id"] + ",").groupby(kbs["_pair"]).sum().str[:-1]
    table["kb_ids"] = kb_ids.reindex(table.index).fillna("")
    frame = pd.DataFrame(
        {
            **{c: _texts(table[c]) for c in [*NODE_KEY, "cve_id", "kb_ids"]},
            "severity_level": table["severity_level"].astype(LEVEL_DTYPE),
        }
    )
    return _worst_first(frame, ["cve_id", *NODE_KEY])


def _worst_first(frame: pd.DataFrame, then: list[str]) -> pd.DataFrame:
    return frame.sort_values(
        ["severity_level", *then],
        ascending=[False, *([True] * len(then))],
        kind="stable",
        na_position="last",
        ignore_index=True,
    )


def diff(old: Fleet | pd.DataFrame, new: Fleet | pd.DataFrame) -> FleetDiff:
    """What changed between two fleets: nodes, patch states and open CVEs.

    Rows are matched on (account_id, region, instance_id, kb_id): two fleets of a
    million rows each compare in about a third of a second.
    Nodes are those with patch rows, and with a Fleet also those in its nodes frame
    (nodes never scanned, or whose patches failed to load). Patch and CVE changes
    are reported for nodes in both fleets only; a node that came or went is in
    ``added_nodes`` or ``removed_nodes`` instead. A (node, patch) pair listed twice
    in one frame is an error, not a guess at which of its rows holds.

    Parameters
    ----------
    old, new
        Two fleets (e.g. from :func:`load_snapshot`) or two patches frames.

    Returns
    -------
    FleetDiff
        Tidy frames ``added_nodes``, ``removed_nodes``, ``newly_missing``,
        ``fixed``, ``changed``, ``cves_opened``, ``cves_closed``, and a one-line
        :meth:`~FleetDiff.headline`.

    Raises
    ------
    ValidationError
        ``old`` or ``new`` is neither a Fleet nor a DataFrame, or lists a (node, patch)
        pair more than once (the message names some of them).
    ColumnsError
        A patches frame lacks a column of the contract that ``diff`` uses.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.history import diff
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> patches = fleet.patches
    >>> later = patches[patches["instance_id"] != "i-0e8c6a4f2d0b13579"].copy()
    >>> first = (later["state"] == "MISSING").idxmax()
    >>> later.loc[first, "state"] = "INSTALLED"
    >>> changes = diff(patches, later)
    >>> print(changes)  # doctest: +NORMALIZE_WHITESPACE
    0 nodes added, 1 removed; 0 patches newly missing, 1 fixed, 0 other changes;
    0 CVEs opened, 0 closed
    >>> changes.fixed[["instance_id", "kb_id", "old_state", "new_state"]]
               instance_id      kb_id old_state  new_state
    0  i-0e1f2a3b4c5d6e7f8  KB5035530   MISSING  INSTALLED
    """
    old_side, new_side, node_span = _aligned(old, new)
    old_nodes, new_nodes = old_side.named(node_span), new_side.named(node_span)
    common = old_nodes & new_nodes
    at = _changed_rows(old_side, new_side, node_span, common)
    changes = _patch_rows(old_side, new_side, *at)
    was_open = changes["old_state"].isin(OPEN_STATES)
    newly_missing = changes["new_state"].isin(OPEN_STATES) & ~was_open
    fixed = was_open & changes["new_state"].isin(_INSTALLED)
    kinds = {"newly_missing": newly_missing, "fixed": fixed, "changed": ~newly_missing & ~fixed}
    before, after = _open_cves([old_side, new_side], common, node_span)
    return FleetDiff(
        added_nodes=_node_rows(new_side, new_nodes & ~old_nodes),
        removed_nodes=_node_rows(old_side, old_nodes & ~new_nodes),
        **{kind: changes[mask].reset_index(drop=True) for kind, mask in kinds.items()},
        cves_opened=_cve_rows(after, before),
        cves_closed=_cve_rows(before, after),
    )
