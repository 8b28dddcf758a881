"""Part 9: an organization-wide load, against the throughput its workers can carry.

20 member accounts x 2 regions x 10 nodes of about 330 patch rows (4 pages), 200 ms
latency and no rate limit, ``max_workers=16``: at most 16 requests are in flight,
so at most 16 / 0.2 s = 80 requests a second can be answered. The emulator serves
in a child process; the client reaches it through ``AWS_ENDPOINT_URL``, as any
boto3 session would, and assumes the role in every member account.

The target is judged on the process's second organization load: the first also
pays for what a process pays once (run alone: importing ``patchframe.aws``,
botocore reading its endpoint rules and service models), and is printed too.
Each load starts with the previous one's garbage collected.

For reference, the same emulator is also asked by the simplest client that keeps 16
requests in flight: 16 threads each calling DescribeInstancePatches in a loop. On
a machine of 2 cores, client and emulator share them, and that loop's share of the
80 requests/s is what the machine allows.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

import patchframe as pf

ACCOUNTS, REGIONS, NODES = 20, ("eu-west-1", "us-east-1"), 10
PATCHES = 330  # patch rows a node, on average: synthetic_fleet's default, 4 pages of 100
LATENCY, WORKERS = 0.2, 16
CARRIED = WORKERS / LATENCY


def organization() -> Any:
    from patchframe.sandbox import synthetic_organization

    return synthetic_organization(
        ACCOUNTS,
        nodes_per_account=NODES * len(REGIONS),
        regions=REGIONS,
        patches_per_node=PATCHES,
        seed=7,
    )


def serve() -> None:
    """Child process: serve the organization; each stdin line asks for the request count.

    The first line out says where it listens and what the client should find. The
    organization's data lives in this process only: a client holding 130,000 sample
    rows of its own would pay for them in every garbage collection, as no real
    user's process does.
    """
    org = organization()
    with pf.Emulator(organization=org, latency=LATENCY) as emulator:
        start = {
            "url": emulator.url,
            "management": org.management_account_id,
            "role": org.role_name,
            "rows": sum(f.n_patches for a in org.accounts for f in a.fleets),
            "ids": list(org.accounts[0].fleets[0].patches),
        }
        # A server's data is built once and never freed: out of the collector's sight,
        # as long-running Python servers do, so that it does not stall the answers.
        gc.collect()
        gc.freeze()
        print(json.dumps(start), flush=True)
        for _ in sys.stdin:
            print(json.dumps(emulator.stats.total), flush=True)


def bare_loop(session: Any, ids: list[str], requests: int) -> float:
    """Seconds for 16 threads to send ``requests`` DescribeInstancePatches between them."""
    from botocore.config import Config

    ssm = session.client("ssm", config=Config(max_pool_connections=WORKERS))

    def work(worker: int) -> None:
        for n in range(requests // WORKERS):
            ssm.describe_instance_patches(InstanceId=ids[(worker + n) % len(ids)], MaxResults=100)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def bench_organization() -> str:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None

    def served() -> int:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write("stats\n")
        child.stdin.flush()
        count: int = json.loads(child.stdout.readline())
        return count

    before = dict(os.environ)
    rows = []
    try:
        served_org = json.loads(child.stdout.readline())
        os.environ["AWS_ENDPOINT_URL"] = served_org["url"]
        import boto3

        session = boto3.Session(
            aws_access_key_id=f"AKIAEMUL{served_org['management']}",
            aws_secret_access_key="emulator",
            region_name=REGIONS[0],
        )
        loads = (
            ("load_fleet(organization=...), the process's first", True),
            ("load_fleet(organization=...)", True),
            ("... tags=False", False),
        )
        for label, tags in loads:
            # The previous load's garbage is not this one's to collect, as in any benchmark.
            gc.collect()
            sent = served()
            start = time.perf_counter()
            fleet = pf.load_fleet(
                organization=pf.Organization(served_org["role"], session=session),
                regions=list(REGIONS),
                max_workers=WORKERS,
                progress=False,
                tags=tags,
            )
            seconds = time.perf_counter() - start
            assert fleet.errors.empty and len(fleet.patches) == served_org["rows"], fleet.errors
            rows.append((label, seconds, served() - sent, len(fleet.nodes), len(fleet.patches)))
        sent = served()
        seconds = bare_loop(session, served_org["ids"], 960)
        rows.append(("16 threads, a bare boto3 loop", seconds, served() - sent, None, None))
    finally:
        os.environ.clear()
        os.environ.update(before)
        child.stdin.close()
        child.wait(timeout=30)
    first, share = (row[2] / row[1] / CARRIED for row in rows[:2])
    lines = [
        "",
        "",
        f"### 9. An organization: {ACCOUNTS} accounts x {len(REGIONS)} regions x {NODES} nodes "
        f"of about {PATCHES} patch rows, {LATENCY * 1000:.0f} ms latency, no rate limit, "
        f"max_workers={WORKERS}",
        "",
        "| | wall time (s) | nodes | rows | requests | requests/s | vs 80/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, seconds, requests, nodes, patches in rows:
        lines.append(
            f"| {label} | {seconds:.1f} | {'' if nodes is None else f'{nodes:,}'} | "
            f"{'' if patches is None else f'{patches:,}'} | {requests:,} | "
            f"{requests / seconds:.1f} | {requests / seconds / CARRIED:.0%} |"
        )
    lines += [
        "",
        f"The load kept its {WORKERS} workers busy for {share:.1%} of the {CARRIED:.0f} "
        f"requests/s they can carry (target 90%: {'met' if share >= 0.9 else 'NOT met'}); "
        f"the process's first load {first:.1%} (which, run alone, also imports "
        f"patchframe.aws and has botocore read its endpoint rules and models, about 0.3 s "
        f"here); the bare loop, "
        f"the most this machine gives, {rows[3][2] / rows[3][1] / CARRIED:.1%}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        print(bench_organization())
