"""Findings of a year of weekly snapshots: time and peak memory of ``history.findings``.

Run it with ``python benchmarks/findings.py`` (``--rows`` and ``--snapshots`` for a
smaller store, ``--store DIR`` to keep the store and reuse it on the next run).

The store holds ``--snapshots`` weekly snapshots (52 by default) of a fleet of
``--rows`` patch rows (a million by default): the bundled sample fleet tiled until
it has the rows asked for, each copy with its own instance ids, which then drifts
week by week, as fleets do: a share of the open patches is installed (30%) or fails
(2%), installed patches go missing again (0.4%), not-applicable ones become missing
(1.5%, new releases), one node in 500 is terminated and one in 100 is missing from
that week's snapshot only. Each measurement runs in a fresh child process, so that
its peak resident memory (``ru_maxrss``) is its own:

- **findings**: ``patchframe.history.findings(store)``, every episode of the year;
- **read every snapshot whole**: ``load_snapshot`` of each snapshot in turn, nothing
  else, and nothing kept: what any approach that reads the snapshots as saved pays
  before it has compared a single row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from child_process import peak_mb, run_child

import patchframe as pf
from patchframe.history import findings, list_snapshots, load_snapshot, save_snapshot

ROWS = 1_000_000
SNAPSHOTS = 52
START = dt.datetime(2024, 1, 5, 8, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)
#: Weekly drift: (from states, to state, share of those rows).
DRIFT = (
    (("MISSING", "FAILED"), "INSTALLED", 0.30),
    (("MISSING",), "FAILED", 0.02),
    (("INSTALLED",), "MISSING", 0.004),
    (("NOT_APPLICABLE",), "MISSING", 0.015),
)
TERMINATED, ABSENT = 0.002, 0.01  # of the nodes, each week


def tiled_fleet(rows: int) -> pf.Fleet:
    """The sample fleet tiled to exactly ``rows`` patch rows, instance ids unique per copy."""
    sample = pf.load_fleet(client=pf.sample_client(), progress=False)
    copies = -(-rows // len(sample.patches))
    ids = sample.nodes["instance_id"].astype("str")
    names = pd.Index(
        [
            f"{prefix}{copy:06x}{rest}"
            for copy in range(copies)
            for prefix, rest in zip(
                ids.str.extract(r"^(m?i-)", expand=False), ids.str[-11:], strict=True
            )
        ]
    )

    def tiled(frame: pd.DataFrame) -> pd.DataFrame:
        codes = pd.Categorical(frame["instance_id"], categories=ids).codes.astype(np.int64)
        every = np.concatenate([codes + copy * len(ids) for copy in range(copies)])
        whole = frame.iloc[np.tile(np.arange(len(frame)), copies)].reset_index(drop=True)
        return whole.assign(instance_id=pd.Categorical.from_codes(every, categories=names))

    return pf.Fleet(tiled(sample.patches).iloc[:rows], tiled(sample.nodes), sample.errors)


def build_store(store: Path, *, rows: int, snapshots: int, seed: int = 0) -> float:
    """Save ``snapshots`` weekly snapshots of a drifting ``rows``-row fleet; return seconds."""
    begun = time.perf_counter()
    rng = np.random.default_rng(seed)
    fleet = tiled_fleet(rows)
    patches, nodes = fleet.patches, fleet.nodes
    dtype = patches["state"].dtype
    state = patches["state"].cat.codes.to_numpy().copy()
    code = {name: i for i, name in enumerate(dtype.categories)}
    row_node = patches["instance_id"].cat.codes.to_numpy()
    node_codes = pd.Categorical(
        nodes["instance_id"], categories=patches["instance_id"].cat.categories
    ).codes
    alive = np.ones(len(patches["instance_id"].cat.categories), dtype=bool)
    for week in range(snapshots):
        if week:
            for sources, target, share in DRIFT:
                rows_from = np.flatnonzero(np.isin(state, [code[s] for s in sources]))
                moved = rows_from[rng.random(len(rows_from)) < share]
                state[moved] = code[target]
            alive &= rng.random(len(alive)) >= TERMINATED
        present = alive & (rng.random(len(alive)) >= ABSENT)
        kept = present[row_node]
        snapshot = pf.Fleet(
            patches[kept].assign(state=pd.Categorical.from_codes(state[kept], dtype=dtype)),
            nodes[present[node_codes]],
            fleet.errors,
        )
        save_snapshot(snapshot, store, when=START + week * WEEK)
    return time.perf_counter() - begun


def child(kind: str, store: Path) -> dict[str, float]:
    """One measurement, in this process: seconds, peak memory (MB) and what it found."""
    ready = peak_mb()  # pandas, pyarrow and patchframe imported, nothing read yet
    start = time.perf_counter()
    if kind == "findings":
        found = findings(store)
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "peak_mb": peak_mb(),
            "ready_mb": ready,
            "episodes": len(found),
            "open": int(found["open"].sum()),
            "result_mb": found.memory_usage(deep=True).sum() / 2**20,
        }
    rows = 0
    for snapshot in list_snapshots(store)["snapshot"]:
        rows += len(load_snapshot(store, when=snapshot).patches)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak_mb(), "ready_mb": ready, "rows": rows}


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def bench_findings(
    rows: int = ROWS, snapshots: int = SNAPSHOTS, *, store: Path | None = None
) -> str:
    """Build (or reuse) the store, measure findings and a plain read; return the table."""
    with tempfile.TemporaryDirectory(prefix="patchframe-bench-") as name:
        folder = store or Path(name) / "store"
        saved = list_snapshots(folder)
        built = None
        if saved.empty:
            built = build_store(folder, rows=rows, snapshots=snapshots)
            saved = list_snapshots(folder)
        ours = run_child(__file__, "findings", folder)
        whole = run_child(__file__, "read", folder)
        size = _size_mb(folder)
    lines = [
        f"findings of {len(saved)} weekly snapshots of {saved['patches'].max():,} patch rows "
        f"({saved['nodes'].max():,} nodes; {whole['rows']:,.0f} rows in all; store "
        f"{size:,.0f} MB on disk"
        + (f", built in {built:.0f} s)" if built is not None else ", reused)"),
        "",
        f"{'measurement':<30} {'time':>8} {'peak RSS':>10} {'imports':>9}",
    ]
    for label, r in (("findings(store)", ours), ("read every snapshot whole", whole)):
        lines.append(
            f"{label:<30} {r['seconds']:>7.1f}s {r['peak_mb']:>7.0f} MB {r['ready_mb']:>6.0f} MB"
        )
    lines += [
        "",
        f"{ours['episodes']:,.0f} episodes ({ours['open']:,.0f} open), a frame of "
        f"{ours['result_mb']:,.0f} MB; findings / plain read: "
        f"{ours['seconds'] / whole['seconds']:.2f}x time, "
        f"{ours['peak_mb'] / whole['peak_mb']:.2f}x peak memory",
        "(imports: the resident memory before the measurement starts, part of its peak)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="patch rows (default 1,000,000)")
    parser.add_argument(
        "--snapshots", type=int, default=SNAPSHOTS, help="weekly snapshots (default 52)"
    )
    parser.add_argument(
        "--store", type=Path, help="keep the store here; an existing store is reused as it is"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, folder = args.child
        print(json.dumps(child(kind, Path(folder))))
        return 0
    print(bench_findings(args.rows, args.snapshots, store=args.store))
    return 0


if __name__ == "__main__":
    sys.exit(main())
