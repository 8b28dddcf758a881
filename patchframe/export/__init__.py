"""Patch data out: an Excel workbook, CSV as the AWS console exports it, and Parquet.

:func:`to_excel` writes a workbook that a manager or an auditor can open as it
is; :func:`to_compliance_csv` writes the columns of the Systems Manager
console's patch compliance reports, so scripts built on those keep working;
:func:`to_parquet` and :func:`read_parquet` keep every dtype of a frame.

This is the public module; each concern lives in its own private one:
``_excel`` (the workbook's sheets, and how its cells are written), ``_csv``,
``_parquet``, and ``_report_data`` (one row per node, shared by the workbook and
the CSV).
"""

from __future__ import annotations

from ._csv import CSV_DETAIL_COLUMNS, CSV_SUMMARY_COLUMNS, to_compliance_csv
from ._excel import EXCEL_CELL_LIMIT, EXCEL_ROW_LIMIT, EXCEL_SHEETS, to_excel
from ._parquet import read_parquet, to_parquet

__all__ = [
    "CSV_DETAIL_COLUMNS",
    "CSV_SUMMARY_COLUMNS",
    "EXCEL_CELL_LIMIT",
    "EXCEL_ROW_LIMIT",
    "EXCEL_SHEETS",
    "read_parquet",
    "to_compliance_csv",
    "to_excel",
    "to_parquet",
]
