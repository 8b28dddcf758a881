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


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (a free port), for the whole run: its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty bucket on the moto server, as ``s3://<name>``.

    For the test's duration the AWS SDK's standard variables point at the server, so
    boto3, pyarrow and subprocesses reach it as they would reach S3.
    """
    import uuid

    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": moto_s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"patchframe-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}"
