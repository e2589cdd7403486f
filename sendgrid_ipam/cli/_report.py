"""``sendgrid-ipam run-report --journal FILE|URL``: a whole run as its journal holds it.

A run shared by several workers has one report per worker, each covering the accounts that
worker provisioned; this reads the journal instead, so it covers every account of the run,
whoever provisioned it (and also works on a single worker's SQLite journal). Nothing is sent
to SendGrid: no API key is needed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from .._bulk_journal import opened, run_digest
from ..journal import AccountState, Journal
from ._csv import read_requests
from ._files import journal_target

__all__ = ["run_report"]


def account_entry(state: AccountState) -> dict[str, Any]:
    """One account of the report: its target, every IP bought for it, and where it stands.

    ``state`` is "finished", "in_progress" (writes were recorded: a rerun lists the account
    and buys only the rest) or "not_started". ``ips`` are the IPs the run obtained (the final
    ones once finished, else every recorded outcome), with ``excess`` among them;
    ``unknown_writes`` counts writes of unknown outcome (a rerun lists the account for them).
    """
    ips = state.final_ips if state.finished else state.obtained
    ips = tuple(dict.fromkeys((*ips, *state.excess)))
    if state.finished:
        where = "finished"
    elif state.marker_known or state.chunks:
        where = "in_progress"
    else:
        where = "not_started"
    released = set(state.released)
    return {
        "account_id": state.account_id,
        "region": state.region,
        "requested": state.count,
        "state": where,
        "ips": list(ips),
        "held": [ip for ip in ips if ip not in released],
        "excess": list(state.excess),
        "released": list(state.released),
        "unknown_writes": len(state.open_chunks),
        "ambiguous_failures": len(state.ambiguous_at),
    }


def build_report(run_id: str, states: list[AccountState]) -> dict[str, Any]:
    """The JSON report of a run: a summary, then every account in the order it was begun."""
    accounts = [account_entry(state) for state in states]
    finished = sum(entry["state"] == "finished" for entry in accounts)
    return {
        "summary": {
            "run_id": run_id,
            "accounts": len(accounts),
            "accounts_finished": finished,
            "accounts_unfinished": len(accounts) - finished,
            "complete": finished == len(accounts),
            "ips_requested": sum(entry["requested"] for entry in accounts),
            "ips_obtained": sum(len(entry["ips"]) for entry in accounts),
            "ips_excess": sum(len(entry["excess"]) for entry in accounts),
            "ips_released": sum(len(entry["released"]) for entry in accounts),
        },
        "accounts": accounts,
    }


async def _read(target: str | Path, run_id: str | None) -> dict[str, Any]:
    async with opened(target) as journal:
        run = run_id or await _only_run(journal)
        states = await journal.load(run)
    if not states:
        raise click.ClickException(f"the journal holds no run {run!r}")
    return build_report(run, list(states.values()))


async def _only_run(journal: Journal) -> str:
    runs = await journal.runs()
    if len(runs) == 1:
        return runs[0]
    if not runs:
        raise click.ClickException("the journal holds no run")
    shown = ", ".join(runs[:10]) + (f" and {len(runs) - 10} more" if len(runs) > 10 else "")
    raise click.ClickException(
        f"the journal holds {len(runs)} runs ({shown}): give --run-id or --csv")


@click.command("run-report", short_help="Report a whole bulk run from its journal.")
@click.option("--journal", "target", metavar="FILE|URL", required=True, callback=journal_target,
              help="The run's journal: a file (SQLite) or redis://HOST:PORT/DB.")
@click.option("--run-id", metavar="NAME", help="The run's name in the journal.")
@click.option("--csv", "csv_file", metavar="FILE.csv",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The run's CSV: its run id is the digest of its rows (the default of "
                   "bulk-add-ips).")
def run_report(target: str | Path, run_id: str | None, csv_file: Path | None) -> None:
    """Print a whole bulk run, as its journal holds it, as JSON: every account, its IPs,
    excess and state, whichever worker provisioned it.

    The run is --run-id, or the digest of --csv's rows, or the journal's only run. Nothing
    is sent to SendGrid.
    """
    if run_id is not None and csv_file is not None:
        raise click.UsageError("give --run-id or --csv, not both")
    if csv_file is not None:
        run_id = run_digest(read_requests(csv_file))
    if run_id is not None:
        run_id = Journal.check_run_id(run_id)
    if isinstance(target, Path) and not target.exists():
        raise click.ClickException(f"no journal at {target}")
    report = asyncio.run(_read(target, run_id))
    click.echo(json.dumps(report, indent=2, ensure_ascii=False))
