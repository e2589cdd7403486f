"""The ``sendgrid-ipam`` group: global options, logging, and every error as one line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, Literal

import click

from .._version import __version__
from ..errors import ConfigurationError, SendGridError, ValidationError
from ._bulk import bulk_add_ips
from ._common import (
    DEFAULT_LEASE_TTL,
    ENV_COORDINATOR,
    ENV_KEY,
    EXIT_INTERRUPTED,
    Settings,
    format_error,
    one_line,
    redact,
    secrets_in,
    url_password,
)
from ._ips import ips
from ._local import demo, fake_server
from ._pools import pools
from ._provisioning import provisioning
from ._report import run_report

__all__ = ["cli"]

EXIT_API_ERROR = 1
EXIT_USAGE = 2
_MAX_ERROR = 500


class _Redacting(logging.Formatter):
    """Formats a record, then removes the API key from the text, wherever it came from.

    An exception logged with the record is one line (its type and message) unless
    ``tracebacks``: a traceback is for -vv, when someone is debugging.
    """

    def __init__(self, secrets: set[str], *, tracebacks: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = secrets
        self.tracebacks = tracebacks

    def formatException(self, ei: Any) -> str:
        if self.tracebacks:
            return super().formatException(ei)
        return one_line(f"({_describe(ei[1])})")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an exception nobody expected, on one line and not too long."""
    text = one_line(f"{type(exc).__name__}: {exc}".rstrip(": "))
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


class IpamGroup(click.Group):
    """A group whose failures are one line on stderr: exit 2 for usage, 1 for the API."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        secrets = secrets_in(argv)

        def fail(message: str, status: int) -> int:
            click.echo(redact(one_line(f"error: {message}"), secrets), err=True)
            return status

        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            status = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message(), err=True)
            status = EXIT_USAGE
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            status = fail(exc.format_message() + hint, EXIT_USAGE)
        except click.ClickException as exc:
            status = fail(exc.format_message(), exc.exit_code)
        except (ValidationError, ConfigurationError) as exc:
            status = fail(format_error(exc), EXIT_USAGE)
        except SendGridError as exc:
            status = fail(format_error(exc), EXIT_API_ERROR)
        except (click.Abort, KeyboardInterrupt, asyncio.CancelledError):
            status = fail("interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:
            # stdout's reader went away (| head): say nothing more, and stop Python's own
            # complaint when it flushes stdout at exit.
            with contextlib.suppress(OSError, ValueError):  # not a real file (CliRunner)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            status = EXIT_API_ERROR
        except OSError as exc:
            status = fail(str(exc), EXIT_API_ERROR)
        except Exception as exc:  # a bug or a case nobody foresaw: still one line, no traceback
            status = fail(f"unexpected {_describe(exc)}", EXIT_API_ERROR)
        if standalone_mode:
            sys.exit(status)
        return status


@click.group(
    "sendgrid-ipam",
    cls=IpamGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--api-key", envvar=ENV_KEY, metavar="KEY",
              help=f"SendGrid API key (default: ${ENV_KEY}). Never printed.")
@click.option("--region", type=click.Choice(["global", "eu"]), default="global",
              show_default=True, help="api.sendgrid.com, or api.eu.sendgrid.com.")
@click.option("--base-url", metavar="URL",
              help="Another API URL (https, or http on 127.0.0.1 for the fake server).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Timeout of each attempt (default 30).")
@click.option("--max-attempts", type=click.IntRange(min=1), metavar="N",
              help="Attempts per call, the first included (default 4; 1: no retries).")
@click.option("--on-behalf-of", metavar="SUBUSER",
              help="Act for this subuser (or 'account-id ID'): the On-Behalf-Of header.")
@click.option("--coordinator", envvar=ENV_COORDINATOR, metavar="URL",
              help="Share rate limits, retry budget and write leases with every process using "
                   f"this Redis (redis://HOST:PORT/DB; default: ${ENV_COORDINATOR}; needs "
                   "the redis extra).")
@click.option("--lease-ttl", type=click.FloatRange(min=0.01, max=86_400), metavar="SECONDS",
              help="With --coordinator: seconds a write lease outlives a holder that stopped "
                   f"renewing it (default {DEFAULT_LEASE_TTL:g}).")
@click.option("-v", "--verbose", count=True,
              help="Log retries and reconciliations to stderr (-vv: every HTTP request too).")
@click.version_option(__version__, "-V", "--version", prog_name="sendgrid-ipam")
@click.pass_context
def cli(
    ctx: click.Context,
    api_key: str | None,
    region: Literal["global", "eu"],
    base_url: str | None,
    timeout: float | None,
    max_attempts: int | None,
    on_behalf_of: str | None,
    coordinator: str | None,
    lease_ttl: float | None,
    verbose: int,
) -> None:
    """Manage SendGrid IPs, IP pools and partner accounts' IPs.

    Results are JSON, one object per line (pipe them into jq); --table prints a table.
    """
    if lease_ttl is not None and not coordinator:
        raise click.UsageError("--lease-ttl needs --coordinator (a process's own leases never "
                               "outlive it)")
    ctx.obj = Settings(api_key, region, base_url, timeout, max_attempts, on_behalf_of,
                       coordinator=coordinator or None, lease_ttl=lease_ttl)
    if verbose:
        secrets = {api_key.strip() if api_key else "", url_password(coordinator or "")} - {""}
        _log_to_stderr(ctx, verbose, secrets)


def _log_to_stderr(ctx: click.Context, verbose: int, secrets: set[str]) -> None:
    """-v: INFO (retries, reconciliations); -vv: DEBUG too (a line per HTTP request)."""
    logger = logging.getLogger("sendgrid_ipam")
    level = logging.DEBUG if verbose > 1 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Redacting(secrets, tracebacks=verbose > 1))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    ctx.call_on_close(restore)


for command in (ips, pools, provisioning, bulk_add_ips, run_report, fake_server, demo):
    cli.add_command(command)
