"""The one frame check every analysis function runs on its first argument."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from patchframe import filters, plots, summary
from patchframe.exceptions import ValidationError

# The further positional arguments a function needs before it reaches its frame check.
_EXTRA: dict[str, tuple[Any, ...]] = {
    "by_state": ("MISSING",),
    "severity_at_least": ("High",),
    "by_classification": ("SecurityUpdates",),
    "by_cve": ("CVE-2024-1234",),
    "installed_before": ("2024-01-01",),
    "installed_after": ("2024-01-01",),
    "installed_between": ("2024-01-01", "2024-02-01"),
    "by_platform": ("Windows",),
    "by_node": ("i-0123456789abcdef0",),
}
_KEYWORDS: dict[str, dict[str, Any]] = {"compliance_by": {"by": "platform_type"}}

_PUBLIC = [
    pytest.param(getattr(module, name), id=f"{module.__name__}.{name}")
    for module in (filters, summary, plots)
    for name in module.__all__
    if inspect.isfunction(getattr(module, name))
]


@pytest.mark.parametrize("function", _PUBLIC)
@pytest.mark.parametrize("bad", [None, [], {"state": ["MISSING"]}], ids=["None", "list", "dict"])
def test_a_non_frame_first_argument_is_a_validation_error(
    function: Callable[..., Any], bad: object
) -> None:
    name = function.__name__
    first = next(iter(inspect.signature(function).parameters))
    wanted = "Fleet" if first == "fleet" else "DataFrame"
    with pytest.raises(ValidationError, match=rf"{name}.*{type(bad).__name__}.*{wanted}"):
        function(bad, *_EXTRA.get(name, ()), **_KEYWORDS.get(name, {}))


def test_every_public_analysis_function_is_covered() -> None:
    assert len(_PUBLIC) == sum(len(m.__all__) for m in (filters, summary, plots))
