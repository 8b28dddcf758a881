"""Shared test setup and fixtures. No test may reach beyond 127.0.0.1.

Fixtures here are shared by several test modules; each name says what it holds:
``wire_fleet`` is the bundled sample as the wire carries it (a ``WireFleet``),
``sample_fleet_frames`` the same sample loaded through the emulator (a ``Fleet``
of typed frames), and ``sample_patches`` its patches frame.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pandas as pd
import pytest

# Charts draw off-screen: no display is needed, and no window ever opens.
os.environ["MPLBACKEND"] = "Agg"

# Never use the developer's own AWS configuration, and never let botocore's
# credential chain ask the instance-metadata address: tests get their dummy
# credentials from the emulator.
for name in [n for n in os.environ if n.startswith("AWS_") and n != "AWS_CA_BUNDLE"]:
    del os.environ[name]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

import patchframe as pf  # noqa: E402  (after the environment above is set)
from patchframe.sandbox.sample import WireFleet  # noqa: E402


@pytest.fixture(scope="session")
def wire_fleet() -> WireFleet:
    """The bundled sample fleet as the wire carries it: 13 nodes, 2,020 patch rows."""
    return pf.sample_fleet()


@pytest.fixture(scope="session")
def sample_fleet_frames() -> pf.Fleet:
    """The bundled sample fleet loaded through the emulator; tests must not modify it."""
    return pf.load_fleet(client=pf.sample_client(), progress=False)


@pytest.fixture(scope="session")
def sample_patches(sample_fleet_frames: pf.Fleet) -> pd.DataFrame:
    """The sample fleet's patches frame; tests must not modify it."""
    return sample_fleet_frames.patches


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Close every figure a test drew, so none leaks into the next test."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
