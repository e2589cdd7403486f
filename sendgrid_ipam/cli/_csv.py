"""Reading the accounts CSV of ``bulk-add-ips``: every row checked before any request."""

from __future__ import annotations

import csv
from pathlib import Path

import click

from ..errors import ValidationError
from ..models import ProvisionRequest

__all__ = ["COLUMNS", "read_requests"]

COLUMNS = ("account_id", "count", "region")
"""The header's columns, in any order (names are trimmed and matched case-insensitively)."""

_NAMED = "account_id, count and region, in any order"


class _Rows:
    """Errors that name the file and the line (the header is line 1)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def bad(self, line: int, why: str, column: str | None = None) -> click.UsageError:
        where = f"line {line}, column {column}" if column else f"line {line}"
        return click.UsageError(f"{self.path}, {where}: {why}")

    def positions(self, header: list[str]) -> dict[str, int]:
        """Each column's index in a row, from the header."""
        names = [name.strip().lower() for name in header]
        positions: dict[str, int] = {}
        unknown: list[str] = []
        for index, name in enumerate(names):
            if name in positions:
                raise self.bad(1, f"column {name!r} appears twice")
            if name in COLUMNS:
                positions[name] = index
            else:
                unknown.append(repr(name))
        missing = [name for name in COLUMNS if name not in positions]
        problems = ([f"missing column {', '.join(missing)}"] if missing else []) + (
            [f"unknown column {', '.join(unknown)}"] if unknown else [])
        if problems:
            raise self.bad(1, f"{'; '.join(problems)} (the header names {_NAMED})")
        return positions

    def request(self, line: int, cells: dict[str, str]) -> ProvisionRequest:
        """The row's request; a bad cell is an error naming its line and column."""
        count_text = cells["count"]
        # int() would also take "1_000", " ١٢ " or "+3": a count of IPs to buy is plain digits.
        if not (count_text.isascii() and count_text.isdigit()):
            raise self.bad(line, f"must be a whole number, not {count_text!r}", "count")
        try:
            return ProvisionRequest(cells["account_id"], int(count_text),
                                    cells["region"])  # type: ignore[arg-type]
        except ValidationError as exc:
            column = exc.field if exc.field in COLUMNS else None
            raise self.bad(line, exc.rule if column else str(exc), column) from None


def read_requests(path: Path) -> list[ProvisionRequest]:
    """The CSV's rows as requests; a bad header or row is a usage error naming where.

    Raises:
        click.UsageError: the file is not UTF-8 CSV, a column is missing, unknown or
            repeated, a row has the wrong number of fields or a bad value, an account
            appears twice, or there are no accounts.
    """
    rows = _Rows(path)
    requests: list[ProvisionRequest] = []
    lines: dict[str, int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            positions = rows.positions(next(reader, []))
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(positions):
                    raise rows.bad(line, f"expected {len(positions)} fields, got {len(row)}")
                request = rows.request(line, {name: row[index].strip()
                                              for name, index in positions.items()})
                if request.account_id in lines:
                    raise rows.bad(line, f"account {request.account_id!r} is already on line "
                                         f"{lines[request.account_id]}; give each account once",
                                   "account_id")
                lines[request.account_id] = line
                requests.append(request)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise click.UsageError(f"{path}: not a readable CSV file: {exc}") from None
    except OSError as exc:
        raise click.UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if not requests:
        raise click.UsageError(f"{path}: no accounts in the file")
    return requests
