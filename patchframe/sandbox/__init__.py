"""Patchframe with no AWS account: the sample fleet, synthetic fleets, and a local SSM emulator.

:mod:`~patchframe.sandbox.sample` builds fleets as the wire carries them (the bundled
sample, and synthetic fleets and histories of any size) from the catalogue tables in
``sandbox/catalog/``; :mod:`~patchframe.sandbox.organization` builds AWS Organizations
of such fleets; :mod:`~patchframe.sandbox.emulator` serves them to real boto3 clients
over HTTP on 127.0.0.1. Names load on first use (PEP 562), so running
``python -m patchframe.sandbox.sample`` or ``python -m patchframe.sandbox.emulator``
imports each module once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:
    from .data_sync import write_resource_data_sync
    from .emulator import Emulator, sample_client
    from .organization import WireAccount, WireOrganization, WireUnit, synthetic_organization
    from .sample import sample_fleet, synthetic_fleet, synthetic_history

_LAZY = {
    "Emulator": ".emulator",
    "sample_client": ".emulator",
    "sample_fleet": ".sample",
    "synthetic_fleet": ".sample",
    "synthetic_history": ".sample",
    "write_resource_data_sync": ".data_sync",
    "WireAccount": ".organization",
    "WireOrganization": ".organization",
    "WireUnit": ".organization",
    "synthetic_organization": ".organization",
}

__all__ = [
    "Emulator",
    "WireAccount",
    "WireOrganization",
    "WireUnit",
    "sample_client",
    "sample_fleet",
    "synthetic_fleet",
    "synthetic_history",
    "synthetic_organization",
    "write_resource_data_sync",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__)
