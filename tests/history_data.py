"""The synthetic patch history that the history tests share: built once per test run.

Tests only read what these return.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import patchframe as pf
from patchframe.history import save_snapshot
from patchframe.sandbox.emulator import Emulator
from patchframe.sandbox.sample import WireFleet, synthetic_history

#: The states of a patch still to be installed, and of one whose fix is on the node.
OPEN = {"MISSING", "FAILED"}
INSTALLED = {"INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED"}


@functools.cache
def wire_history() -> list[tuple[dt.datetime, WireFleet]]:
    """``synthetic_history()``: six weekly snapshots of a drifting fleet, as the wire has them."""
    return synthetic_history()


@functools.cache
def history_fleets() -> list[pf.Fleet]:
    """The synthetic history as load_fleet returns it, one emulator per snapshot."""
    loaded = []
    for _, wire in wire_history():
        with Emulator(wire) as emulator:
            loaded.append(pf.load_fleet(client=emulator.client(), progress=False))
    return loaded


def save_history(folder: Path) -> Path:
    """A store holding the whole synthetic history, one snapshot per week."""
    for (when, _), fleet in zip(wire_history(), history_fleets(), strict=True):
        save_snapshot(fleet, folder, when=when)
    return folder


def wire_states(fleet: WireFleet) -> dict[tuple[str, str], dict[str, object]]:
    """Each (node, KBId)'s patch row."""
    return {(node, row["KBId"]): row for node, rows in fleet.patches.items() for row in rows}
