"""Names a package loads on first use (PEP 562), so importing it stays cheap."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(
    package: str, where: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` for names loaded on first use.

    ``where`` maps each lazy name to the module holding it, relative to ``package``;
    an empty string means the name is itself a submodule. A loaded name is cached in
    the package's namespace, so later lookups never reach ``__getattr__`` again.

    Examples
    --------
    >>> getattr_, dir_ = lazy_names("patchframe", {"filters": ""}, ["filters"])
    >>> getattr_("filters").__name__
    'patchframe.filters'
    >>> getattr_("nothing")
    Traceback (most recent call last):
    ...
    AttributeError: module 'patchframe' has no attribute 'nothing'
    """
    listed = sorted(public)

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = import_module(where[name] or f".{name}", package)
        value = module if not where[name] else getattr(module, name)
        vars(import_module(package))[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(import_module(package)), *listed})

    return __getattr__, __dir__
