"""``sendgrid-ipam bulk-add-ips FILE.csv``: provision many accounts, with progress and a report."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import attrs
import click

from ..audit import DEFAULT_AUDIT_DELAY
from ..bulk import AccountResult, BulkProgress, BulkResult
from ..errors import SendGridError
from ..models import ProvisionRequest
from ._common import (
    EXIT_INTERRUPTED,
    current_secrets,
    format_error,
    one_line,
    redact,
    run_api,
)
from ._csv import read_requests
from ._files import journal_target, output_file, write_atomically

__all__ = ["bulk_add_ips", "read_requests"]

_SHOWN_FAILURES = 10


@attrs.define
class _Account:
    """One account as the progress events told it: IPs, requests, and the final result."""

    ips: list[str] = attrs.Factory(list)
    requests: int = 0
    result: AccountResult | None = None


@attrs.define
class _Tracker:
    """What the run obtained so far, from the progress events (kept for an interruption).

    Each event is one finished AddAccountIps request; ``result`` comes with an account's
    last one, when the library could say the account is final.
    """

    requests: list[ProvisionRequest]
    accounts: dict[str, _Account] = attrs.Factory(dict)

    def record(self, event: BulkProgress) -> None:
        account = self.accounts.setdefault(event.account_id, _Account())
        account.ips.extend(ip for ip in event.new_ips if ip not in account.ips)
        if not event.found and (event.new_ips or event.result is None):
            account.requests += 1  # a request's reply (not the journal's, nor a listing's)
        if event.result is not None:
            account.result = event.result

    @property
    def final(self) -> int:
        """Accounts whose result is known."""
        return sum(a.result is not None for a in self.accounts.values())

    def results(self) -> tuple[list[AccountResult], set[str]]:
        """After an interruption: every account's outcome, and those of unknown attempts.

        An account with a result is reported as it is (``interrupted`` only if it came up
        short without an error of its own); one without is built from its events: done if
        it obtained every IP, else interrupted. Its retries are unknown then (the library
        tells attempts only with a result): it is among those returned, whose report says
        ``attempts: null`` and whose summary counts no retries.
        """
        results: list[AccountResult] = []
        unknown: set[str] = set()
        for r in self.requests:
            account = self.accounts.get(r.account_id, _Account())
            result = account.result
            if result is None:
                result = AccountResult(r.account_id, r.region, r.count, tuple(account.ips),
                                       attempts=account.requests, requests=account.requests)
                if account.requests:
                    unknown.add(r.account_id)
            if result.error is None and len(result.ips) < result.requested:
                result = attrs.evolve(result, error=KeyboardInterrupt())
            results.append(result)
        return results, unknown


@attrs.frozen
class _Outcome:
    """A run's outcome as the command reports it; text it prints never holds ``secrets``."""

    results: list[AccountResult]
    interrupted: bool = False
    unknown_attempts: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()
    run_id: str | None = None
    elsewhere: tuple[str, ...] = ()

    def error_text(self, error: BaseException | None) -> str | None:
        if error is None:
            return None
        if isinstance(error, KeyboardInterrupt):
            return "interrupted"
        text = format_error(error) if isinstance(error, SendGridError) else one_line(
            f"{type(error).__name__}: {error}")
        return redact(text, self.secrets)

    def totals(self) -> dict[str, int]:
        results = self.results
        return {
            "accounts": len(results),
            "accounts_ok": sum(r.ok for r in results),
            "accounts_failed": sum(not r.ok for r in results),
            "accounts_interrupted": sum(isinstance(r.error, KeyboardInterrupt) for r in results),
            "ips_requested": sum(r.requested for r in results),
            "ips_added": sum(len(r.ips) for r in results),
            "ips_excess": sum(len(r.excess) for r in results),
            "ips_released": sum(len(r.released) for r in results),
            "retries": sum(max(0, r.attempts - r.requests) for r in results),
            "reconciled": sum(r.reconciled for r in results),
        }

    def report(self) -> str:
        """The JSON report: a summary, then every account (``attempts`` null if unknown)."""
        report: dict[str, Any] = {
            "summary": {**self.totals(), "interrupted": self.interrupted,
                        "run_id": self.run_id, "accounts_elsewhere": len(self.elsewhere)},
            "elsewhere": list(self.elsewhere),
            "accounts": [
                {
                    "account_id": r.account_id,
                    "region": r.region,
                    "requested": r.requested,
                    "ips": list(r.ips),
                    "ok": r.ok,
                    "error": self.error_text(r.error),
                    "attempts": None if r.account_id in self.unknown_attempts else r.attempts,
                    "requests": r.requests,
                    "reconciled": r.reconciled,
                    "excess": list(r.excess),
                    "released": list(r.released),
                    "from_journal": r.from_journal,
                    "resumed": r.resumed,
                }
                for r in self.results
            ],
        }
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"

    def print_summary(self, report: Path | None) -> None:
        t = self.totals()
        interrupted = (f", {t['accounts_interrupted']} of them interrupted"
                       if t["accounts_interrupted"] else "")
        click.echo(f"accounts: {t['accounts']} ({t['accounts_ok']} ok, "
                   f"{t['accounts_failed']} failed{interrupted})")
        click.echo(f"IPs: {t['ips_requested']} asked, {t['ips_added']} obtained")
        click.echo(f"retries: {t['retries']}, reconciled: {t['reconciled']}")
        if t["ips_excess"]:
            click.echo(f"excess: {t['ips_excess']} IPs beyond what was asked, bought by writes "
                       f"that landed late; {t['ips_released']} released"
                       + ("" if t["ips_released"] else " (--release-excess removes them)"))
            for r in [r for r in self.results if r.excess][:_SHOWN_FAILURES]:
                click.echo(f"excess: {r.account_id}: {', '.join(r.excess)}"
                           + (f" (released: {', '.join(r.released)})" if r.released else ""))
        if self.run_id is not None:
            click.echo(f"journal run: {self.run_id}")
        if self.elsewhere:
            click.echo(f"shared run: {len(self.elsewhere)} more account(s) finished by other "
                       "workers (sendgrid-ipam run-report shows the whole run)")
        failed = [r for r in self.results if not r.ok]
        for r in failed[:_SHOWN_FAILURES]:
            why = self.error_text(r.error) or "fewer IPs than asked"
            click.echo(f"failed: {r.account_id}: {len(r.ips)} of {r.requested} IPs: {why}")
        if len(failed) > _SHOWN_FAILURES:
            more = len(failed) - _SHOWN_FAILURES
            click.echo(f"... and {more} more failed account(s)"
                       + (f" (see {report})" if report else " (see --report)"))


def _finish(ctx: click.Context, outcome: _Outcome, report: Path | None) -> None:
    """Write the report, print the summary, and exit with the run's status.

    A report that cannot be written after all (the disk filled up, the directory went away)
    is printed on stdout instead: the IPs are bought, so what was bought must not be lost.
    """
    text = outcome.report()
    failure: str | None = None
    if report is not None:
        try:
            write_atomically(report, text)
        except OSError as exc:
            failure = f"cannot write the report to {report}: {exc.strerror or exc}"
    outcome.print_summary(None if failure else report)
    if report is not None and failure is None:
        click.echo(f"report: {report}")
    if failure is not None:
        click.echo(text, nl=False)
        click.echo(f"error: {failure}; it is printed on stdout instead", err=True)
    if outcome.interrupted:
        click.echo("error: interrupted; the writes in flight were allowed to finish and "
                   "every IP obtained is counted above", err=True)
        ctx.exit(EXIT_INTERRUPTED)
    if failure is not None or outcome.totals()["accounts_failed"]:
        ctx.exit(1)


@click.command("bulk-add-ips", short_help="Provision IPs for the accounts of a CSV file.")
@click.argument("csv_file", metavar="FILE.csv",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--concurrency", type=click.IntRange(min=1), default=32, show_default=True,
              help="Accounts provisioned at the same time.")
@click.option("--report", type=click.Path(path_type=Path), callback=output_file,
              metavar="FILE.json",
              help="Write every account's outcome to this JSON file (its directory is checked "
                   "before anything is sent).")
@click.option("--journal", metavar="FILE|URL", callback=journal_target,
              help="Record the run in this SQLite journal (created if missing), or on Redis "
                   "(redis://HOST:PORT/DB): run the same command again after a crash and it "
                   "resumes, buying only what is missing. Workers started with the same CSV, "
                   "Redis journal and --coordinator share the run.")
@click.option("--run-id", metavar="NAME",
              help="The run's name in the journal (default: a digest of the CSV's rows).")
@click.option("--release-excess", is_flag=True,
              help="Remove again the IPs that writes landing late bought beyond the CSV.")
@click.option("--audit-delay", type=click.FloatRange(min=0), default=DEFAULT_AUDIT_DELAY,
              show_default=True, metavar="SECONDS",
              help="After an ambiguous failure, wait this long before listing the account "
                   "for writes that landed late.")
@click.pass_context
def bulk_add_ips(
    ctx: click.Context, csv_file: Path, concurrency: int, report: Path | None,
    journal: str | Path | None, run_id: str | None, release_excess: bool, audit_delay: float,
) -> None:
    """Provision IPs for every account of a CSV file.

    The header names the columns account_id, count and region, in any order. A count above
    10 is split into requests of 10, one at a time per account. Prints a summary; exits 1
    if any account did not get every IP it asked for, 130 after Ctrl-C (the writes in
    flight finish first, and are reported).

    With --journal, every write is recorded before it is sent: after a crash (or kill -9),
    run the same command again; finished accounts are not touched, the others are listed
    and only what is missing is bought. Accounts whose writes failed ambiguously are listed
    again after --audit-delay, and IPs beyond the CSV are reported as excess.

    Shared runs: start several workers with the same CSV, the same --journal redis://... and
    the same --coordinator. Each account is provisioned by one worker at a time; each worker
    goes on until every account is finished, taking over those of a worker that died once
    its --lease-ttl ran out. Each report covers the accounts its worker provisioned;
    'sendgrid-ipam run-report' gives the whole run.
    """
    if run_id is not None and journal is None:
        raise click.UsageError("--run-id names a run in a journal: give --journal as well")
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
                            description=f"{tracker.final}/{len(requests)} accounts")

        result: BulkResult | None = None
        # On Ctrl-C, bulk_add_ips lets the writes in flight finish and reports every IP they
        # obtained through on_progress before asyncio.run raises: the tracker keeps them.
        with contextlib.suppress(KeyboardInterrupt):
            result = run_api(lambda sg: sg.provisioning.bulk_add_ips(
                requests, concurrency=concurrency, on_progress=on_progress, journal=journal,
                run_id=run_id, audit_delay=audit_delay, release_excess=release_excess))
    if result is None:
        results, unknown = tracker.results()
        outcome = _Outcome(results, True, frozenset(unknown), current_secrets())
    else:
        outcome = _Outcome(list(result.results), secrets=current_secrets(),
                           run_id=result.run_id, elsewhere=result.elsewhere)
    _finish(ctx, outcome, report)
