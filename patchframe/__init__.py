"""patchframe: AWS Systems Manager patch compliance as typed pandas DataFrames.

Load one node with :func:`load_instance_patches` or a whole fleet with
:func:`load_fleet`; try it with no AWS account on the bundled sample fleet with
:func:`sample_client`.
"""

from __future__ import annotations

from ._load import load_instance_patches
from ._schema import (
    COMPLIANT_STATES,
    NON_COMPLIANT_STATES,
    PATCH_COLUMNS,
    SEVERITY_LEVELS,
    STATES,
    UnknownStateWarning,
    empty_patches,
)

# from .emulator import Emulator, sample_client  (restored when the emulator lands)
from .exceptions import (
    AWSRequestError,
    ColumnsError,
    NodeNotFoundError,
    PatchframeError,
    StoreError,
    ValidationError,
)
# from .sample import sample_fleet, synthetic_fleet

__version__ = "0.1.0"

__all__ = [
    "COMPLIANT_STATES",
    "NON_COMPLIANT_STATES",
    "PATCH_COLUMNS",
    "SEVERITY_LEVELS",
    "STATES",
    "AWSRequestError",
    "ColumnsError",
    "NodeNotFoundError",
    "PatchframeError",
    "StoreError",
    "UnknownStateWarning",
    "ValidationError",
    "__version__",
    "empty_patches",
    "load_instance_patches",
]
