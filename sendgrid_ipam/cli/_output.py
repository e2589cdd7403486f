"""Printing results: JSON (one object per line, for jq) or, on request, a rich table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
import click

from .._convert import converter
from ..client import SendGridIPAM
from ._common import current_secrets, redact, run_api

__all__ = ["confirm", "show_list", "show_one"]


def to_json(item: Any) -> str:
    """A model (or a plain value) as one line of JSON with the spec's field names.

    A server that echoes the API key into a reply does not get it printed.
    """
    return redact(json.dumps(converter.unstructure(item), ensure_ascii=False), current_secrets())


def show_one(table: bool, call: Callable[[SendGridIPAM], Awaitable[Any]]) -> None:
    """Run ``call`` and print the model it returns."""
    item = run_api(call)
    if table:
        data = converter.unstructure(item)
        _print_table(["field", "value"], [[key, _cell(value)] for key, value in data.items()])
    else:
        click.echo(to_json(item))


def show_list(
    table: bool, model: type[Any], call: Callable[[SendGridIPAM], AsyncIterator[Any]]
) -> None:
    """Run ``call`` and print every item it yields: as it comes in, or in one table."""
    columns = [field.name for field in attrs.fields(model)] if attrs.has(model) else ["value"]
    rows: list[list[str]] = []

    async def run(sg: SendGridIPAM) -> None:
        async for item in call(sg):
            if table:
                data = converter.unstructure(item)
                rows.append([_cell(data.get(c)) for c in columns] if isinstance(data, dict)
                            else [_cell(data)])
            else:
                click.echo(to_json(item))

    run_api(run)
    if table:
        _print_table(columns, rows)


def confirm(message: str) -> None:
    """Say on stderr that an operation without a reply body (204) succeeded."""
    click.echo(message, err=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        if value.keys() == {"id", "name"}:
            return f"{value['name']} ({value['id']})"
        if value.keys() == {"region", "count"}:
            return f"{value['region']}: {value['count']}"
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def _print_table(columns: list[str], rows: list[list[str]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")  # wrap long values: never cut data off
    secrets = current_secrets()
    for row in rows:
        table.add_row(*(redact(cell, secrets) for cell in row))
    Console(highlight=False).print(table)
