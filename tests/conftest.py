"""Shared test setup: no test may reach beyond 127.0.0.1."""

from __future__ import annotations

import os

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
