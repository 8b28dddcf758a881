"""Reading a Resource Data Sync: rows per second of ``read_resource_data_sync``.

Run it with ``python benchmarks/data_sync.py`` (``--nodes`` and ``--patches-per-node``
for a smaller sync, ``--sync DIR`` to keep the files and reuse them on the next run).

The sync is synthetic: ``synthetic_fleet`` organizations (the sandbox's per-OS
catalogues) in four accounts and regions, written by the sandbox in the layout a
Systems Manager resource data sync writes to S3, one JSON-lines file per node and
inventory type, into a local folder. 3,200 nodes of about 330 patches each make a
little over a million patch rows by default. The read runs three times; the table
gives the median, the rows per second and the nodes per second, so that the time a
100,000-node sync takes can be estimated. A local folder measures the parsing and
the frames; on S3 each file is one GET, run ``max_workers`` at once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import patchframe as pf
from patchframe.sandbox.data_sync import write_resource_data_sync
from patchframe.sandbox.sample import synthetic_fleet

NODES = 3_200
PATCHES_PER_NODE = 330
PLACES = [
    ("111111111111", "eu-west-1"),
    ("111111111111", "us-east-1"),
    ("222222222222", "eu-west-1"),
    ("222222222222", "us-east-1"),
]
RUNS = 3


def build_sync(folder: Path, *, nodes: int, patches_per_node: int) -> float:
    """Write the synthetic sync into ``folder``; the seconds it took."""
    started = time.perf_counter()
    fleets = [
        synthetic_fleet(
            nodes // len(PLACES),
            patches_per_node=patches_per_node,
            account_id=account,
            region=region,
            seed=i,
        )
        for i, (account, region) in enumerate(PLACES)
    ]
    write_resource_data_sync(folder, fleets)
    return time.perf_counter() - started


def bench_data_sync(
    nodes: int = NODES, patches_per_node: int = PATCHES_PER_NODE, *, sync: Path | None = None
) -> str:
    """Build (or reuse) the sync, read it ``RUNS`` times; return the table."""
    with tempfile.TemporaryDirectory(prefix="patchframe-bench-") as name:
        folder = sync or Path(name) / "sync"
        built = None
        if not folder.exists() or not any(folder.iterdir()):
            built = build_sync(folder, nodes=nodes, patches_per_node=patches_per_node)
        files = sum(1 for _ in folder.rglob("*.json"))
        size = sum(p.stat().st_size for p in folder.rglob("*.json")) / 1e6
        seconds = []
        for _ in range(RUNS):
            started = time.perf_counter()
            fleet = pf.read_resource_data_sync(folder)
            seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    rows, read_nodes = len(fleet.patches), len(fleet.nodes)
    return "\n".join(
        [
            f"read_resource_data_sync of a synthetic sync: {rows:,} patch rows, {read_nodes:,} "
            f"nodes in {len(PLACES)} accounts and regions, {files:,} files, {size:,.0f} MB "
            + (f"(written in {built:.0f} s)" if built is not None else "(reused)"),
            "",
            f"{'median of ' + str(RUNS):<14} {'rows/s':>12} {'nodes/s':>10}",
            f"{median:>12.1f}s {rows / median:>12,.0f} {read_nodes / median:>10,.0f}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--patches-per-node", type=int, default=PATCHES_PER_NODE)
    parser.add_argument("--sync", type=Path, help="a folder to keep the sync in and reuse")
    args = parser.parse_args(argv)
    print(bench_data_sync(args.nodes, args.patches_per_node, sync=args.sync))
    return 0


if __name__ == "__main__":
    sys.exit(main())
