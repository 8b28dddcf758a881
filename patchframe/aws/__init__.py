"""The only code that talks to AWS: clients, argument checks, node and fleet loading.

:func:`make_client` is the one client factory and :func:`client_config` its
configuration (patchframe's defaults under the user's own); :func:`profile_session`
the session of a named profile; :func:`load_instance_patches` pages one node,
:func:`load_fleet` every node of every account and region, paced to the
service's limit by one :class:`~patchframe.aws._pacer.AdaptiveRateLimiter` per
account and region, with optional Parquet checkpoints; :func:`load_patch_catalog`
the release and approval dates the service publishes for a fleet's patches;
:func:`read_resource_data_sync` reads what a Systems Manager resource data sync
exported to S3 into the same frames.
Everything else in patchframe sees only the typed frames these return.
"""

from __future__ import annotations

from ._catalog import load_patch_catalog
from ._client import client_config, make_client, profile_session
from ._data_sync import read_resource_data_sync
from ._fleet import load_fleet
from ._node import load_instance_patches
from ._organization import Organization

__all__ = [
    "Organization",
    "client_config",
    "load_fleet",
    "load_instance_patches",
    "load_patch_catalog",
    "make_client",
    "profile_session",
    "read_resource_data_sync",
]
