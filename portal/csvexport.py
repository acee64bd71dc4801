"""The one CSV writer for everything the portal exports (audit trail, Data Use Register, any other).

Spreadsheet programs run a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as
a formula (CSV injection), so such a cell is written with a leading apostrophe, which spreadsheets show
as text and do not print. Every CSV download goes through :func:`writer` or :func:`safe_cell`.
"""

import csv
import re

__all__ = ["safe_cell", "writer"]

_FORMULA_START = re.compile(r"^[=+\-@\t\r]")


def safe_cell(value):
    """The cell as text that no spreadsheet will run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA_START.match(text) else text


class _SafeWriter:
    """A csv.writer whose rows are neutralised cell by cell."""

    def __init__(self, out, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row):
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def writer(out, **options):
    """Like csv.writer(out, **options), with every cell made safe for spreadsheets."""
    return _SafeWriter(out, **options)
