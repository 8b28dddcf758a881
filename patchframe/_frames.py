"""Building blocks shared by the analysis modules: column checks, category codes, times.

The analysis layer (filters, summaries, plots, history, export) decides on the
categories of the contract's categorical columns, a few dozen strings even in a
large fleet, and then works on their integer codes, so no string is touched per row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._schema import SEVERITY_LEVELS, normalise_state
from .exceptions import ColumnsError, ValidationError

Mask = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.intp]
#: What the functions taking a point in time accept.
TimeLike = str | dt.date | np.datetime64
#: NaT as an int64, as ``datetime64[ns]`` values viewed as integers show it.
NAT = int(np.iinfo(np.int64).min)
_CVE_ID = re.compile(r"CVE-\d{4}-\d+", re.IGNORECASE)


def require_columns(df: pd.DataFrame, columns: Iterable[str], *, needed_by: str) -> None:
    """Raise ColumnsError naming the columns ``needed_by`` wants that ``df`` lacks."""
    lacking = [c for c in columns if c not in df.columns]
    if lacking:
        raise ColumnsError(
            f"{needed_by} needs column(s) {', '.join(map(repr, lacking))}, which the frame "
            f"lacks; it has: {', '.join(map(str, df.columns)) or 'no columns'}"
        )


def category_codes(
    series: pd.Series[Any], rows: npt.NDArray[np.intp] | None = None
) -> tuple[npt.NDArray[np.intp], pd.Index]:
    """Category codes (-1 for NA), of ``rows`` only if given, and the categories of a
    column, categorical or not."""
    if not isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("category")
    codes = series.cat.codes.to_numpy()
    return (codes if rows is None else codes[rows]).astype(np.intp), series.cat.categories


def pick_rows(series: pd.Series[Any], keep: Callable[[Any], bool]) -> Mask:
    """Rows whose category satisfies ``keep``, deciding once per category, never per row."""
    codes, categories = category_codes(series)
    table = np.fromiter((keep(c) for c in categories), np.bool_, len(categories))
    return np.append(table, False)[codes]  # code -1 (NA) picks the appended False


def state_codes(
    series: pd.Series[Any], rows: npt.NDArray[np.intp] | None = None
) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Codes of the state column and the model's spelling of each of its categories."""
    codes, categories = category_codes(series, rows)
    return codes, [normalise_state(str(c)) for c in categories]


def level_codes(
    series: pd.Series[Any], rows: npt.NDArray[np.intp] | None = None
) -> npt.NDArray[np.intp]:
    """Each row's position on SEVERITY_LEVELS (0 Unspecified ... 4 Critical), -1 for NA."""
    codes, categories = category_codes(series, rows)
    position = [level_index(str(c)) for c in categories]
    return np.array([*position, -1], dtype=np.intp)[codes]


def level_index(level: str) -> int:
    by_lower = {name.lower(): i for i, name in enumerate(SEVERITY_LEVELS)}
    return by_lower.get(level.lower(), 0)  # the contract's dtype holds only these five


def state_mask(df: pd.DataFrame, states: Collection[str]) -> Mask:
    codes, names = state_codes(df["state"])
    table = np.array([*(n in states for n in names), False], dtype=np.bool_)
    return table[codes]


def utc_nanoseconds(series: pd.Series[Any]) -> npt.NDArray[np.int64]:
    """Nanoseconds since the epoch, UTC, NaT as numpy's NaT integer; naive counts as UTC."""
    times = pd.DatetimeIndex(series)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    return times.as_unit("ns").to_numpy().view(np.int64)


def utc_timestamp(value: object, *, name: str) -> pd.Timestamp:
    """A point in time as an aware UTC Timestamp; naive values count as UTC."""
    if not isinstance(value, str | dt.date | np.datetime64):
        raise ValidationError(
            f"{name} {value!r} is not a point in time: expected a datetime, a date, "
            "a pandas Timestamp, a numpy datetime64 or ISO text such as '2024-05-01'"
        )
    try:
        stamp = pd.Timestamp(value)
    except ValueError as err:
        raise ValidationError(
            f"{name} {value!r} is not a date or time: expected ISO text such as "
            "'2024-05-01' or '2024-05-01T12:00:00Z'"
        ) from err
    if pd.isna(stamp):
        raise ValidationError(f"{name} {value!r} is not a point in time: NaT is not allowed")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def nanoseconds(stamp: pd.Timestamp) -> int:
    return int(stamp.as_unit("ns").value)


def string_arguments(values: tuple[object, ...], *, what: str, example: str) -> list[str]:
    if not values:
        raise ValidationError(f"no {what} given: pass at least one, e.g. {example}")
    for value in values:
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f"{what} {value!r} is not a non-empty string: pass each as its own "
                f"argument, e.g. {example}"
            )
    return list(map(str, values))


def patch_state(value: str, known: Collection[str]) -> str:
    state = normalise_state(value)
    if state not in known:
        raise ValidationError(
            f"state {value!r} is not a patch state: expected one of {', '.join(known)} "
            "(CamelCase such as 'InstalledOther' works too)"
        )
    return state


def split_cves(text: str) -> set[str]:
    return {part.strip().upper() for part in text.split(",")}


def distinct(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The distinct keys, sorted."""
    # Sorting and comparing neighbours beats hashing (pandas.unique) and numpy.unique
    # several times over on a million mostly distinct keys.
    ordered = np.sort(keys)
    return ordered[run_starts(ordered)]


def run_starts(ordered: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Where a run of equal values starts in a sorted array."""
    return np.concatenate([[True], ordered[1:] != ordered[:-1]]) if len(ordered) else ordered > 0


def distinct_pairs(a: Codes, b: Codes, b_size: int) -> tuple[Codes, Codes]:
    """The distinct (a, b) pairs among rows (0 <= b < b_size), sorted by a, then b."""
    keys = distinct(a.astype(np.int64) * b_size + b)
    return (keys // b_size).astype(np.intp), (keys % b_size).astype(np.intp)


def first_rows(group: Codes, n_groups: int) -> Codes:
    """The first row of each group, len(group) where a group has no row."""
    first = np.full(n_groups, len(group), dtype=np.intp)
    np.minimum.at(first, group, np.arange(len(group)))
    return first


def levels_by(group: Codes, levels: Codes, n_groups: int) -> Codes:
    """The highest severity level (0-4) per group, -1 where a group has no row."""
    counts = np.bincount(
        group * len(SEVERITY_LEVELS) + levels, minlength=n_groups * len(SEVERITY_LEVELS)
    ).reshape(n_groups, len(SEVERITY_LEVELS))
    present = np.where(counts > 0, np.arange(len(SEVERITY_LEVELS)), -1)
    return np.asarray(present.max(axis=1, initial=-1), dtype=np.intp)


def texts_at(categories: pd.Index, codes: Codes) -> pd.Index:
    """Strings of ``categories`` picked by ``codes``, NA for -1."""
    picked: pd.Index = pd.Index(pd.Categorical.from_codes(codes, categories=categories))
    return picked.astype("str")


class CveLists(NamedTuple):
    """The CVE ids in each ``cve_ids`` category, as indexes into ``ids``."""

    ids: list[str]  # sorted
    starts: Codes  # category i's ids are flat[starts[i] : starts[i] + lengths[i]]
    lengths: Codes
    flat: Codes

    @classmethod
    def of(cls, categories: pd.Index, codes: Codes) -> CveLists:
        """Split the categories that ``codes`` use; a few thousand strings, not a row each."""
        used = np.bincount(codes, minlength=len(categories)) > 0
        lists = [
            sorted(split_cves(str(c)) - {""}) if u else []
            for c, u in zip(categories, used, strict=True)
        ]
        ids = sorted({cve for cves in lists for cve in cves})
        index_of = {cve: i for i, cve in enumerate(ids)}
        lengths = np.array([len(cves) for cves in lists], dtype=np.intp)
        flat = np.array([index_of[c] for cves in lists for c in cves], dtype=np.intp)
        starts = np.cumsum(lengths) - lengths
        return cls(ids, starts, lengths, flat)

    def explode(self, codes: Codes) -> tuple[Codes, Codes]:
        """One (position in ``codes``, CVE index) pair per CVE listed by each code."""
        counts = self.lengths[codes]
        position = np.repeat(np.arange(len(codes)), counts)
        within = np.arange(len(position)) - np.repeat(np.cumsum(counts) - counts, counts)
        return position, self.flat[self.starts[codes][position] + within]
