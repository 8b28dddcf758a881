"""Patchframe with no AWS account: the sample fleet, synthetic fleets, and a local SSM emulator.

:mod:`~patchframe.sandbox.sample` builds fleets as the wire carries them (the bundled
sample, and synthetic fleets and histories of any size);
:mod:`~patchframe.sandbox.emulator` serves them to real boto3 clients over HTTP on
127.0.0.1. Nothing here is imported by ``import patchframe`` until it is first used.
"""

from __future__ import annotations

from .emulator import Emulator, sample_client
from .sample import sample_fleet, synthetic_fleet, synthetic_history

__all__ = ["Emulator", "sample_client", "sample_fleet", "synthetic_fleet", "synthetic_history"]
