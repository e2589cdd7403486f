"""Commands that need no SendGrid account: ``fake-server`` and ``demo``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["demo", "fake_server"]

F = TypeVar("F", bound=Callable[..., Any])

_FAULTS = ("error", "applied_error", "applied_drop", "slow", "html", "malformed")


def _fault_options(command: F) -> F:
    for name in reversed(_FAULTS):
        command = click.option(
            f"--fault-{name.replace('_', '-')}", name, type=click.FloatRange(0, 1), default=0.0,
            metavar="RATE", help=f"Per-request probability of {name.replace('_', ' ')} faults.",
        )(command)
    return command


@click.command("fake-server", short_help="Serve a fake SendGrid on 127.0.0.1.")
@click.option("--port", type=click.IntRange(0, 65535), default=4010, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--api-key", "fake_key", default="SG.test", show_default=True, metavar="KEY",
              help="The only API key the fake accepts.")
@click.option("--account", "accounts", multiple=True, metavar="ID",
              help="A partner account that exists (repeatable; default acct-1).")
@click.option("--ipam-ips", type=click.IntRange(min=0), default=0, help="IPAM IPs to start with.")
@click.option("--rate-limit", type=click.IntRange(min=1), metavar="N",
              help="Requests per window per key (default: no limit).")
@click.option("--rate-window", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, metavar="SECONDS", help="The rate-limit window.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of random faults.")
@click.option("--fault-status", "fault_statuses", type=click.IntRange(400, 599), multiple=True,
              metavar="STATUS", help="Status of error faults (repeatable; default 500-504).")
@click.option("--slow-delay", type=click.FloatRange(min=0), default=0.05, metavar="SECONDS",
              help="How long slow faults wait.")
@click.option("--fault-operation", "fault_operations", multiple=True, metavar="OPERATION_ID",
              help="Limit random faults to this operationId (repeatable; default all).")
@_fault_options
def fake_server(
    port: int, fake_key: str, accounts: tuple[str, ...], ipam_ips: int,
    rate_limit: int | None, rate_window: float, seed: int, fault_statuses: tuple[int, ...],
    slow_delay: float, fault_operations: tuple[str, ...], **rates: float,
) -> None:
    """Serve a fake SendGrid on 127.0.0.1 until Ctrl-C (prints its URL on stdout).

    All 18 operations, with state, SendGrid's error bodies, rate limits and optional
    random faults. Point the other commands at it with --base-url and its --api-key.
    """
    from ..testing import FaultRates, serve

    try:
        faults = FaultRates(
            **rates, statuses=fault_statuses or (500, 502, 503, 504), slow_delay=slow_delay,
            operations=fault_operations or None,
        ) if any(rates.values()) else None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    def ready(url: str) -> None:
        click.echo(url)
        click.echo(f"fake SendGrid listening on {url} (Ctrl-C to stop)", err=True)

    try:
        serve(port=port, api_key=fake_key, accounts=accounts or ("acct-1",),
              rate_limit=rate_limit, rate_window=rate_window, faults=faults, seed=seed,
              ipam_ips=ipam_ips, on_ready=ready)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on port {port}: {exc}") from None
    click.echo("fake SendGrid stopped", err=True)


@click.command(short_help="Bulk provisioning through faults, against a local fake.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the summary as one JSON object on the last line of stdout.")
@click.option("--accounts", type=click.IntRange(min=1), default=300, show_default=True,
              help="Customer accounts to provision.")
@click.option("--ips-per-account", type=click.IntRange(min=1), default=12, show_default=True,
              help="IPs for each account (above 10: several requests).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the faults.")
@click.pass_context
def demo(ctx: click.Context, as_json: bool, accounts: int, ips_per_account: int,
         seed: int) -> None:
    """Provision IPs for many accounts against a local fake that fails on purpose.

    Needs no API key and sends nothing beyond 127.0.0.1. Some faults land late (the IPs are
    bought 0.5-3 s after a 504): the run, journaled in a temporary file, ends with an audit
    that finds and releases them. Exits 1 unless every IP asked for was obtained once:
    nothing lost, nothing doubled silently.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..demo import run_demo

    columns = (TextColumn("accounts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("demo", total=accounts)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = asyncio.run(run_demo(accounts=accounts, ips_per_account=ips_per_account,
                                      seed=seed, progress=on_progress))
    summary = report.as_dict()
    if as_json:
        click.echo(json.dumps(summary))
    else:
        _print_demo(summary, report.ok)
    if not report.ok:
        ctx.exit(1)


def _print_demo(summary: dict[str, object], ok: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("", "", show_header=False, box=None, title="sendgrid-ipam demo")
    labels = {
        "accounts": "accounts", "ips_requested": "IPs asked for", "ips_added": "IPs obtained",
        "duplicates": "IPs doubled, unreported", "failures": "failed accounts",
        "retries": "retries", "reconciled": "settled by reconciliation",
        "excess": "IPs late writes doubled (reported)", "released": "of them released",
        "elapsed_s": "seconds",
    }
    for key, value in summary.items():
        table.add_row(labels.get(key, key), str(value))
    console = Console(highlight=False)
    console.print(table)
    console.print("[green]OK: nothing lost, nothing doubled silently[/green]" if ok
                  else "[red]FAILED: IPs were lost or doubled, or accounts failed[/red]")
