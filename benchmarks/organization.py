"""Part 9: an organization-wide load, against the throughput its workers can carry.

20 member accounts x 2 regions x 10 nodes, 200 ms latency and no rate limit,
``max_workers=16``: at most 16 requests are in flight, so at most 16 / 0.2 s =
80 requests a second can be answered. The emulator serves in a child process
(its CPU is not the client's); the client reaches it through ``AWS_ENDPOINT_URL``,
as any boto3 session would, and assumes the role in every member account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import patchframe as pf

ACCOUNTS, REGIONS, NODES = 20, ("eu-west-1", "us-east-1"), 10
LATENCY, WORKERS = 0.2, 16


def organization() -> Any:
    from patchframe.sandbox import synthetic_organization

    return synthetic_organization(
        ACCOUNTS, nodes_per_account=NODES * len(REGIONS), regions=REGIONS, seed=7
    )


def serve() -> None:
    """Child process: serve the organization; each stdin line asks for the request count."""
    with pf.Emulator(organization=organization(), latency=LATENCY) as emulator:
        print(emulator.url, flush=True)
        for _ in sys.stdin:
            print(json.dumps(emulator.stats.requests), flush=True)


def bench_organization() -> str:
    org = organization()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    before = dict(os.environ)
    try:
        url = child.stdout.readline().strip()
        os.environ["AWS_ENDPOINT_URL"] = url
        import boto3

        session = boto3.Session(
            aws_access_key_id=f"AKIAEMUL{org.management_account_id}",
            aws_secret_access_key="emulator",
            region_name=REGIONS[0],
        )
        start = time.perf_counter()
        fleet = pf.load_fleet(
            organization=pf.Organization(org.role_name, session=session),
            regions=list(REGIONS),
            max_workers=WORKERS,
            progress=False,
        )
        seconds = time.perf_counter() - start
        child.stdin.write("stats\n")
        child.stdin.flush()
        requests: dict[str, int] = json.loads(child.stdout.readline())
    finally:
        os.environ.clear()
        os.environ.update(before)
        child.stdin.close()
        child.wait(timeout=30)
    expected = sum(f.n_patches for a in org.accounts for f in a.fleets)
    assert fleet.errors.empty and len(fleet.patches) == expected, fleet.errors
    total = sum(requests.values())
    carried = WORKERS / LATENCY
    share = total / seconds / carried
    lines = [
        "",
        "",
        f"### 9. An organization: {ACCOUNTS} accounts x {len(REGIONS)} regions x {NODES} nodes, "
        f"{LATENCY * 1000:.0f} ms latency, no rate limit, max_workers={WORKERS}",
        "",
        "| wall time (s) | nodes | rows | requests (AssumeRole) | requests/s | vs 80/s |",
        "|---|---|---|---|---|---|",
        f"| {seconds:.1f} | {len(fleet.nodes):,} | {len(fleet.patches):,} | "
        f"{total:,} ({requests.get('AssumeRole', 0)}) | {total / seconds:.1f} | {share:.0%} |",
        "",
        f"The load kept its {WORKERS} workers busy for {share:.0%} of the {carried:.0f} "
        f"requests/s they can carry (target 90%: {'met' if share >= 0.9 else 'NOT met'}).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        print(bench_organization())
