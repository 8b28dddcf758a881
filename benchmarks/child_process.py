"""Measurements in a child process, so a peak of memory belongs to one run alone."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path


def peak_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def run_child(script: str, kind: str, folder: Path) -> dict[str, float]:
    """Run ``script --child kind folder`` and return the JSON its last line prints."""
    done = subprocess.run(
        [sys.executable, script, "--child", kind, str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result
