"""The public API: one curated, sorted ``__all__``, every name importable."""

from __future__ import annotations

import patchframe as pf


def test_all_is_sorted_and_complete() -> None:
    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert pf.__all__ == sorted(pf.__all__, key=kind)
    assert len(set(pf.__all__)) == len(pf.__all__)
    for name in pf.__all__:
        assert hasattr(pf, name), name


def test_every_exception_is_a_patchframe_error() -> None:
    for name in (
        "AWSRequestError",
        "ColumnsError",
        "NodeNotFoundError",
        "StoreError",
        "ValidationError",
    ):
        assert issubclass(getattr(pf, name), pf.PatchframeError)
    assert issubclass(pf.ValidationError, ValueError)


def test_public_functions_have_examples() -> None:
    for name in pf.__all__:
        obj = getattr(pf, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__ and ">>>" in obj.__doc__, name
