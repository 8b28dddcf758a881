"""Words for people: counts with their nouns, for reprs, HTML, the CLI and chart labels."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with thousands separators and the noun in the right number.

    Examples
    --------
    >>> counted(1, "node"), counted(2_020, "patch", "patches"), counted(0, "error")
    ('1 node', '2,020 patches', '0 errors')
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
