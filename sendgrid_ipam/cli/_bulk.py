"""``sendgrid-ipam bulk-add-ips FILE.csv``: provision many accounts, with progress and a report."""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path
from typing import Any

import attrs
import click

from ..bulk import AccountResult, BulkProgress, BulkResult
from ..errors import SendGridError, ValidationError
from ..models import ProvisionRequest
from ._common import format_error, run_api

__all__ = ["bulk_add_ips", "read_requests"]

HEADER = ["account_id", "count", "region"]
_SHOWN_FAILURES = 10


def read_requests(path: Path) -> list[ProvisionRequest]:
    """The CSV's rows as requests; a bad row is a usage error naming its line."""

    def bad(line: int, why: str) -> click.UsageError:
        return click.UsageError(f"{path}, line {line}: {why}")

    requests: list[ProvisionRequest] = []
    lines: dict[str, int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            header = [name.strip().lower() for name in next(reader, [])]
            if header != HEADER:
                raise bad(1, f"the header must be {','.join(HEADER)}, not {','.join(header)!r}")
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(HEADER):
                    raise bad(line, f"expected 3 fields ({','.join(HEADER)}), got {len(row)}")
                account_id, count_text, region = (cell.strip() for cell in row)
                try:
                    count = int(count_text)
                except ValueError:
                    raise bad(line, f"count must be an integer, not {count_text!r}") from None
                try:
                    request = ProvisionRequest(account_id, count, region)  # type: ignore[arg-type]
                except ValidationError as exc:
                    raise bad(line, str(exc)) from None
                if account_id in lines:
                    raise bad(line, f"account {account_id!r} is already on line "
                                    f"{lines[account_id]}; give each account once")
                lines[account_id] = line
                requests.append(request)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise click.UsageError(f"{path}: not a readable CSV file: {exc}") from None
    if not requests:
        raise click.UsageError(f"{path}: no accounts in the file")
    return requests


@attrs.define
class _Tracker:
    """What the run obtained so far, from the progress events (kept for an interruption)."""

    requests: list[ProvisionRequest]
    ips: dict[str, list[str]] = attrs.Factory(dict)
    final: dict[str, AccountResult] = attrs.Factory(dict)

    def record(self, event: BulkProgress) -> None:
        self.ips.setdefault(event.account_id, []).extend(event.new_ips)
        if event.result is not None:
            self.final[event.account_id] = event.result

    def results(self) -> list[AccountResult]:
        """Every account: its final result, or what it obtained before the interruption."""
        return [
            self.final.get(r.account_id) or AccountResult(
                r.account_id, r.region, r.count, tuple(self.ips.get(r.account_id, ())),
                error=KeyboardInterrupt(),
            )
            for r in self.requests
        ]


def _error_text(error: BaseException | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, SendGridError):
        return format_error(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return f"{type(error).__name__}: {error}"


def _totals(results: list[AccountResult]) -> dict[str, int]:
    return {
        "accounts": len(results),
        "accounts_ok": sum(r.ok for r in results),
        "accounts_failed": sum(not r.ok for r in results),
        "ips_requested": sum(r.requested for r in results),
        "ips_added": sum(len(r.ips) for r in results),
        "retries": sum(max(0, r.attempts - r.requests) for r in results),
        "reconciled": sum(r.reconciled for r in results),
    }


def _write_report(path: Path, results: list[AccountResult], interrupted: bool) -> None:
    report: dict[str, Any] = {
        "summary": {**_totals(results), "interrupted": interrupted},
        "accounts": [
            {
                "account_id": r.account_id,
                "region": r.region,
                "requested": r.requested,
                "ips": list(r.ips),
                "ok": r.ok,
                "error": _error_text(r.error),
                "attempts": r.attempts,
                "requests": r.requests,
                "reconciled": r.reconciled,
            }
            for r in results
        ],
    }
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _print_summary(results: list[AccountResult], report: Path | None) -> None:
    t = _totals(results)
    click.echo(f"accounts: {t['accounts']} ({t['accounts_ok']} ok, "
               f"{t['accounts_failed']} failed)")
    click.echo(f"IPs: {t['ips_requested']} asked, {t['ips_added']} obtained")
    click.echo(f"retries: {t['retries']}, reconciled: {t['reconciled']}")
    failed = [r for r in results if not r.ok]
    for r in failed[:_SHOWN_FAILURES]:
        why = _error_text(r.error) or "fewer IPs than asked"
        click.echo(f"failed: {r.account_id}: {len(r.ips)} of {r.requested} IPs: {why}")
    if len(failed) > _SHOWN_FAILURES:
        more = len(failed) - _SHOWN_FAILURES
        click.echo(f"... and {more} more failed account(s)"
                   + (f" (see {report})" if report else " (see --report)"))
    if report is not None:
        click.echo(f"report: {report}")


@click.command("bulk-add-ips", short_help="Provision IPs for the accounts of a CSV file.")
@click.argument("csv_file", metavar="FILE.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--concurrency", type=click.IntRange(min=1), default=32, show_default=True,
              help="Accounts provisioned at the same time.")
@click.option("--report", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              metavar="FILE.json", help="Write every account's outcome to this JSON file.")
@click.pass_context
def bulk_add_ips(
    ctx: click.Context, csv_file: Path, concurrency: int, report: Path | None
) -> None:
    """Provision IPs for every account of a CSV file (header: account_id,count,region).

    A count above 10 is split into requests of 10, one at a time per account. Prints a
    summary; exits 1 if any account did not get every IP it asked for.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    requests = read_requests(csv_file)
    tracker = _Tracker(requests)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("IPs"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(
            f"0/{len(requests)} accounts", total=sum(r.count for r in requests))

        def on_progress(event: BulkProgress) -> None:
            tracker.record(event)
            progress.update(task, advance=len(event.new_ips),
                            description=f"{len(tracker.final)}/{len(requests)} accounts")

        result: BulkResult | None = None
        # On Ctrl-C, bulk_add_ips lets the writes in flight finish and reports every IP they
        # obtained through on_progress before asyncio.run raises: the tracker keeps them.
        with contextlib.suppress(KeyboardInterrupt):
            result = run_api(lambda sg: sg.provisioning.bulk_add_ips(
                requests, concurrency=concurrency, on_progress=on_progress))
    if result is None:
        results = tracker.results()
        if report is not None:
            _write_report(report, results, interrupted=True)
        _print_summary(results, report)
        click.echo("error: interrupted; the writes in flight were allowed to finish and "
                   "every IP obtained is counted above", err=True)
        ctx.exit(130)
    results = list(result.results)
    if report is not None:
        _write_report(report, results, interrupted=False)
    _print_summary(results, report)
    if result.failed:
        ctx.exit(1)
