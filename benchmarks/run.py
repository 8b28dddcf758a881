"""patchframe against the naive approach: medians and ratios, printed as tables.

Run it with ``make bench`` (or ``python benchmarks/run.py``). Every scenario's
emulator runs in a separate process, so the CPU time measured here is the
client's alone. Compared runs alternate and repeat; the tables show medians.

The naive approach is what people write by hand: a boto3 paginator, every
record into a list, then ``pandas.DataFrame(records)``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import boto3
import pandas as pd
from botocore.config import Config
from botocore.utils import parse_timestamp

import patchframe as pf
from patchframe.aws._client import fast_patch_pages
from patchframe.sandbox.sample import WireFleet, synthetic_fleet

ACCOUNT, REGION = "123456789012", "us-east-1"
KEYS = {"aws_access_key_id": f"AKIAEMUL{ACCOUNT}", "aws_secret_access_key": "benchmark"}
BIG_NODE_PATCHES = 4000
THROUGHPUT = {
    "nodes": 128,
    "patches_per_node": 250,
    "latency": 0.2,
    "rate_limit": 40.0,
    "burst": 5,
}
SCALES = (100, 1000, 3000)


# --- fleets and servers ---------------------------------------------------------


def big_node_fleet() -> WireFleet:
    """One node with a few thousand patches (several synthetic nodes' rows, one id)."""
    fleet = synthetic_fleet(8, seed=5, patches_per_node=1000, region=REGION)
    node = fleet.instances[0]["InstanceId"]
    rows = [p for patches in fleet.patches.values() for p in patches][:BIG_NODE_PATCHES]
    return replace(
        fleet,
        instances=fleet.instances[:1],
        patch_states=[],
        patches={node: rows},
        tags={},
    )


def scenario_fleet(name: str) -> tuple[WireFleet, dict[str, Any]]:
    if name == "big-node":
        return big_node_fleet(), {}
    if name == "throughput":
        fleet = synthetic_fleet(
            THROUGHPUT["nodes"], seed=3, patches_per_node=THROUGHPUT["patches_per_node"]
        )
        faults = {k: THROUGHPUT[k] for k in ("latency", "rate_limit", "burst")}
        return fleet, faults
    return synthetic_fleet(int(name), seed=1), {}


def serve(name: str) -> None:
    """Child process: serve one scenario until stdin closes."""
    fleet, faults = scenario_fleet(name)
    with pf.Emulator(fleet, **faults) as emulator:
        print(emulator.url, flush=True)
        sys.stdin.read()


@contextmanager
def server(name: str) -> Iterator[str]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        yield child.stdout.readline().strip()
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def client(url: str, *, pool: int = 10) -> Any:
    config = Config(
        retries={"mode": "standard", "max_attempts": 10},
        max_pool_connections=pool,
        proxies={},
    )
    return boto3.Session().client(
        "ssm", endpoint_url=url, region_name=REGION, config=config, **KEYS
    )


def naive_node(ssm: Any, instance_id: str, page_size: int = 100) -> pd.DataFrame:
    records: list[dict[str, Any]] = []
    pages = ssm.get_paginator("describe_instance_patches").paginate(
        InstanceId=instance_id, PaginationConfig={"PageSize": page_size}
    )
    for page in pages:
        records.extend(page["Patches"])
    return pd.DataFrame(records)


# --- measuring ------------------------------------------------------------------


def cpu(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def wall(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def alternate(runs: dict[str, Callable[[], float]], reps: int) -> dict[str, float]:
    """Median of each measurement, the runs interleaved so drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    lines = [f"\n\n### {title}\n", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.1f}x (target {target:g}x: {'met' if ratio >= target else 'NOT met'})"


# --- 1. client CPU per row --------------------------------------------------------


def bench_cpu(reps: int) -> str:
    with server("big-node") as url:
        ssm = client(url)
        node = ssm.describe_instance_information()["InstanceInformationList"][0]["InstanceId"]
        rows = len(pf.load_instance_patches(node, client=ssm))
        assert len(naive_node(ssm, node)) == rows

        bodies: list[bytes] = []

        def keep(response_dict: dict[str, Any], **_: Any) -> None:
            bodies.append(response_dict["body"])

        spy = client(url)
        spy.meta.events.register("before-parse.ssm.DescribeInstancePatches", keep)
        naive_node(spy, node)

        def empty_page() -> None:
            ssm.describe_instance_patches(
                InstanceId=node, Filters=[{"Key": "KBId", "Values": ["none"]}], MaxResults=10
            )

        def lean_empty_pages() -> float:
            with fast_patch_pages(ssm):
                return cpu(lambda: [empty_page() for _ in range(20)]) / 20

        medians = alternate(
            {
                "naive": lambda: cpu(lambda: naive_node(ssm, node)),
                "patchframe": lambda: cpu(lambda: pf.load_instance_patches(node, client=ssm)),
                "json": lambda: cpu(lambda: [json.loads(b) for b in bodies]),
                "request": lambda: cpu(lambda: [empty_page() for _ in range(20)]) / 20,
                "lean request": lean_empty_pages,
            },
            reps,
        )
    pages = len(bodies)
    per_row = {k: medians[k] / rows * 1e6 for k in ("naive", "patchframe", "json")}
    ratio = per_row["naive"] / per_row["patchframe"]
    per_page = {k: medians[k] * 1e3 for k in ("request", "lean request")}
    above_floor = (per_row["patchframe"] - per_row["json"]) * rows / pages / 1e3
    out = table(
        f"1. Client CPU per row: one node, {rows:,} patches, {pages} pages of 100",
        ["", "CPU per row (µs)", "vs patchframe"],
        [
            ["naive (paginator + DataFrame(records))", f"{per_row['naive']:.1f}", f"{ratio:.1f}x"],
            ["patchframe.load_instance_patches", f"{per_row['patchframe']:.1f}", "1.0x"],
            ["floor: json.loads of the same bodies", f"{per_row['json']:.1f}", ""],
        ],
    )
    out += table(
        "1b. Bare cost of one request (an empty page), client CPU",
        ["", "ms per request", "µs per row at 100 rows a page"],
        [
            [
                "botocore, stock HTTP stack",
                f"{per_page['request']:.2f}",
                f"{per_page['request'] * 10:.1f}",
            ],
            [
                "botocore, patchframe's lean sender",
                f"{per_page['lean request']:.2f}",
                f"{per_page['lean request'] * 10:.1f}",
            ],
        ],
    )
    return out + (
        f"\n\npatchframe is {verdict(ratio, 3)} cheaper than naive. Above the json.loads "
        f"floor it spends {above_floor:.2f} ms per page of 100 rows, against botocore's "
        f"bare {per_page['request']:.2f} ms per request: signing, retries and parsing stay "
        f"botocore's, the HTTP exchange and the row parsing are patchframe's."
    )


# --- 2. memory per row --------------------------------------------------------------


def naive_frame(fleet: WireFleet) -> pd.DataFrame:
    """The frame a paginator loop builds: botocore's records, local-zone datetimes."""
    records = []
    for node, patches in fleet.patches.items():
        for p in patches:
            record = {**p, "InstanceId": node}
            record["InstalledTime"] = parse_timestamp(p["InstalledTime"])
            records.append(record)
    return pd.DataFrame(records)


def bench_memory(patches: pd.DataFrame, fleet: WireFleet) -> str:
    naive = naive_frame(fleet)
    assert len(naive) == len(patches)
    rows = len(patches)
    contract = patches[list(pf.PATCH_COLUMNS)]
    ours = contract.memory_usage(deep=True).sum() / rows
    with_nodes = patches.memory_usage(deep=True).sum() / rows
    theirs = naive.memory_usage(deep=True).sum() / rows
    ratio = theirs / ours
    assert str(contract["installed_time"].dtype) == "datetime64[ns, UTC]"
    assert contract["state"].dtype.ordered and contract["severity_level"].dtype.ordered
    return (
        table(
            f"2. Memory per row: {rows:,} rows, {len(fleet.instances):,} nodes",
            ["frame", "bytes per row", "vs patchframe"],
            [
                ["naive DataFrame(records)", f"{theirs:.0f}", f"{ratio:.1f}x"],
                ["patchframe, contract columns", f"{ours:.0f}", "1.0x"],
                ["patchframe, with the 6 node columns", f"{with_nodes:.0f}", ""],
            ],
        )
        + f"\n\npatchframe's frame is {verdict(ratio, 4)} smaller."
    )


# --- 3. fleet throughput ----------------------------------------------------------------


def bench_throughput() -> str:
    t = THROUGHPUT
    expected_rows = scenario_fleet("throughput")[0].n_patches
    with server("throughput") as url:
        accepted: list[float] = []

        def count(response: Any = None, **_: Any) -> None:
            if response is not None and "Error" not in response[1]:
                accepted.append(time.perf_counter())

        fast_client = client(url, pool=32)
        fast_client.meta.events.register("needs-retry.ssm.DescribeInstancePatches", count)
        fast_s, fleet = wall(
            lambda: pf.load_fleet(client=fast_client, max_workers=32, progress=False)
        )
        rows = len(fleet.patches)
        unique = len(fleet.patches.drop_duplicates(["instance_id", "kb_id"]))
        sustained = (len(accepted) - 1) / (accepted[-1] - accepted[0])
        requests = len(accepted)

        slow = client(url)

        def sequential() -> int:
            ids = [
                n["InstanceId"]
                for page in slow.get_paginator("describe_instance_information").paginate()
                for n in page["InstanceInformationList"]
            ]
            return sum(len(naive_node(slow, i)) for i in ids)

        naive_s, naive_rows = wall(sequential)
    assert naive_rows == expected_rows
    limit = t["rate_limit"]
    speedup = naive_s / fast_s
    share = sustained / limit
    return table(
        f"3. Fleet throughput: {t['nodes']} nodes x {t['patches_per_node']} patches, "
        f"{t['latency'] * 1000:.0f} ms latency, {limit:.0f} requests/s limit, burst {t['burst']}",
        ["", "wall time (s)", "rows", "DescribeInstancePatches/s", "vs limit"],
        [
            ["sequential paginator loop", f"{naive_s:.1f}", f"{naive_rows:,}", "", ""],
            [
                "patchframe.load_fleet",
                f"{fast_s:.1f}",
                f"{rows:,}",
                f"{sustained:.1f} ({requests} pages)",
                f"{share:.0%}",
            ],
        ],
    ) + (
        f"\n\nload_fleet is {verdict(speedup, 7)} faster and sustains {share:.0%} of the "
        f"limit (target 90%: {'met' if share >= 0.9 else 'NOT met'}); rows expected "
        f"{expected_rows:,}, loaded {rows:,}, unique {unique:,}, errors {len(fleet.errors)}."
    )


# --- 4. interactive analysis ------------------------------------------------------------


def bench_analysis(patches: pd.DataFrame, reps: int) -> str:
    now = pd.Timestamp("2026-01-01", tz="UTC")
    cve = patches["cve_ids"].dropna().iloc[0].split(",")[0]
    calls: dict[str, Callable[[], Any]] = {
        "filters.by_state": lambda: pf.filters.by_state(patches, "MISSING", "FAILED"),
        "filters.non_compliant": lambda: pf.filters.non_compliant(patches),
        "filters.severity_at_least": lambda: pf.filters.severity_at_least(patches, "High"),
        "filters.by_classification": lambda: pf.filters.by_classification(
            patches, "SecurityUpdates"
        ),
        "filters.by_cve": lambda: pf.filters.by_cve(patches, cve),
        "filters.installed_between": lambda: pf.filters.installed_between(
            patches, "2024-01-01", "2024-07-01"
        ),
        "filters.by_platform": lambda: pf.filters.by_platform(patches, "Ubuntu"),
        "filters.by_node": lambda: pf.filters.by_node(patches, patches["instance_id"].iloc[0]),
        "summary.node_compliance": lambda: pf.summary.node_compliance(patches, now=now),
        "summary.state_by_severity": lambda: pf.summary.state_by_severity(patches),
        "summary.top_missing": lambda: pf.summary.top_missing(patches),
        "summary.cve_exposure": lambda: pf.summary.cve_exposure(patches),
        "summary.install_activity": lambda: pf.summary.install_activity(patches, freq="W"),
        "summary.pending_reboot": lambda: pf.summary.pending_reboot(patches, now=now),
    }

    def baseline() -> Any:
        return patches.groupby(["instance_id", "state"], observed=True).size()

    runs = {"baseline": lambda: wall(baseline)[0]}
    runs |= {name: (lambda f=f: wall(f)[0]) for name, f in calls.items()}  # type: ignore[misc]
    medians = alternate(runs, reps)
    base = medians.pop("baseline")
    rows = [[name, f"{t * 1e3:.0f}", f"{t / base:.2f}x"] for name, t in medians.items()]
    worst = max(t / base for t in medians.values())
    return (
        table(
            f"4. Analysis on {len(patches):,} rows: each call against "
            f'groupby(["instance_id", "state"]).size() = {base * 1e3:.0f} ms',
            ["call", "median (ms)", "vs groupby"],
            rows,
        )
        + f"\n\nWorst ratio {worst:.2f}x (target at most 5x: "
        + ("met)." if worst <= 5 else "NOT met).")
    )


# --- 5. scaling ---------------------------------------------------------------------------


def bench_scaling() -> tuple[str, pd.DataFrame, WireFleet]:
    rows_out = []
    biggest: tuple[pd.DataFrame, WireFleet] | None = None
    for nodes in SCALES:
        with server(str(nodes)) as url:
            ssm = client(url, pool=16)
            start_cpu = time.process_time()
            load_s, fleet = wall(lambda: pf.load_fleet(client=ssm, progress=False))  # noqa: B023
            load_cpu = time.process_time() - start_cpu
        now = pd.Timestamp("2026-01-01", tz="UTC")
        summary_s, _ = wall(
            lambda: (
                pf.summary.node_compliance(fleet.patches, now=now),  # noqa: B023
                pf.summary.top_missing(fleet.patches),  # noqa: B023
                pf.summary.cve_exposure(fleet.patches),  # noqa: B023
            )
        )
        rows = len(fleet.patches)
        assert fleet.errors.empty
        rows_out.append(
            [
                f"{nodes:,}",
                f"{rows:,}",
                f"{load_s:.1f}",
                f"{load_cpu / rows * 1e6:.1f}",
                f"{load_s / rows * 1e6:.1f}",
                f"{summary_s * 1e3:.0f}",
                f"{summary_s / rows * 1e9:.0f}",
            ]
        )
        if nodes == SCALES[-1]:
            biggest = (fleet.patches, synthetic_fleet(nodes, seed=1))
    assert biggest is not None
    text = table(
        "5. Scaling: load_fleet through the emulator (no faults), then three summaries",
        [
            "nodes",
            "rows",
            "load (s)",
            "client CPU/row (µs)",
            "wall/row (µs)",
            "summaries (ms)",
            "summaries/row (ns)",
        ],
        rows_out,
    )
    return text, biggest[0], biggest[1]


def progress(what: str) -> None:
    print(f"running {what} ...", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=7, help="repetitions of each CPU run")
    parser.add_argument("--only", choices=["cpu", "throughput", "scale"], help="run one part only")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    parts: dict[str, str] = {}
    if args.only in (None, "cpu"):
        progress("1. client CPU per row")
        parts["1"] = bench_cpu(args.reps)
    if args.only in (None, "scale"):
        progress("5. scaling, 2. memory, 4. analysis")
        parts["5"], patches, fleet = bench_scaling()
        parts["2"] = bench_memory(patches, fleet)
        parts["4"] = bench_analysis(patches, max(3, math.ceil(args.reps / 2)))
    if args.only in (None, "throughput"):
        progress("3. fleet throughput")
        parts["3"] = bench_throughput()
    print(f"# patchframe benchmark ({time.strftime('%Y-%m-%d')}, pandas {pd.__version__})")
    for key in sorted(parts):
        print(parts[key])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
