"""What the commands share: the global settings, running a call, and errors on one line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Literal, TypeVar

import attrs
import click

from ..client import DEFAULT_TIMEOUT, SendGridIPAM
from ..errors import AmbiguousResultError, APIError, ConfigurationError, SendGridError
from ..retry import RetryPolicy

__all__ = [
    "ENV_KEY",
        "Settings",
    "current_secrets",
    "format_error",
    "one_line",
    "output_file",
    "redact",
    "run_api",
    "secrets_in",
    "table_option",
    "write_atomically",
]

T = TypeVar("T")

ENV_KEY = "SENDGRID_API_KEY"
_DETAIL_LIMIT = 300

table_option = click.option(
    "--table", is_flag=True, help="Print a table instead of JSON (one object per line)."
)


def output_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A click callback that checks a file the command will write, when the line is read.

    Checked before the first request, because a run that buys IPs and then cannot say which
    costs money: the directory must exist and take a new file (tried for real: permission
    bits say nothing for root or on a read-only mount), and the path must not be a directory.

    Raises:
        click.BadParameter: the file could not be written (a usage error, exit 2).
    """
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        raise click.BadParameter(f"{str(path)!r} is a directory", ctx, param)
    directory = path.parent
    if not directory.is_dir():
        why = "is not a directory" if directory.exists() else "does not exist"
        raise click.BadParameter(f"directory {str(directory)!r} {why}", ctx, param)
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write in {str(directory)!r}: {exc.strerror or exc}", ctx, param) from None
    return path  # an existing file is replaced, not written in: the directory is what counts


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half of it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            umask = os.umask(0o022)
            os.umask(umask)
            os.fchmod(file.fileno(), 0o666 & ~umask)  # as open() would, not mkstemp's 0600
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@attrs.define
class Settings:
    """The group's options, for the subcommands that call the API."""

    api_key: str | None = attrs.field(repr=False)
    region: Literal["global", "eu"] = "global"
    base_url: str | None = None
    timeout: float | None = None
    max_attempts: int | None = None
    on_behalf_of: str | None = None

    def client(self) -> SendGridIPAM:
        """A client configured by the global options (not yet entered)."""
        if not self.api_key or not self.api_key.strip():
            raise ConfigurationError(f"no API key: pass --api-key or set {ENV_KEY}")
        return SendGridIPAM(
            self.api_key,
            region=self.region,
            base_url=self.base_url,
            on_behalf_of=self.on_behalf_of,
            retry=None if self.max_attempts is None else RetryPolicy(
                max_attempts=self.max_attempts),
            timeout=DEFAULT_TIMEOUT if self.timeout is None else self.timeout,
        )


def current_secrets() -> frozenset[str]:
    """The API key of the running command, for `redact` (empty outside a command)."""
    ctx = click.get_current_context(silent=True)
    settings = ctx.find_object(Settings) if ctx else None
    key = settings.api_key.strip() if settings and settings.api_key else ""
    return frozenset({key} - {""})


def run_api(action: Callable[[SendGridIPAM], Awaitable[T]]) -> T:
    """Run ``action`` with a client made from the global options, in a new event loop."""
    settings = click.get_current_context().find_object(Settings)
    assert settings is not None, "the sendgrid-ipam group sets Settings"

    async def run() -> T:
        async with settings.client() as sg:
            return await action(sg)

    return asyncio.run(run())


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``<redacted>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def secrets_in(args: Iterable[str]) -> set[str]:
    """The API keys given on a command line (``--api-key K``, ``--api-key=K``) or in the env."""
    found = {os.environ.get(ENV_KEY, "").strip()}
    items = list(args)
    for index, arg in enumerate(items):
        if arg == "--api-key" and index + 1 < len(items):
            found.add(items[index + 1].strip())
        elif arg.startswith("--api-key="):
            found.add(arg.partition("=")[2].strip())
    found.discard("")
    return found


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def format_error(exc: SendGridError) -> str:
    """One line saying what went wrong, e.g. ``404 Not Found: ... (AddAccountIps)``."""
    if isinstance(exc, APIError):
        details = "; ".join(
            f"{e.field}: {e.message}" if e.field else e.message for e in exc.errors
        ) or exc.body[:_DETAIL_LIMIT]
        text = f"{_status_text(exc.status)}: {details}" if details else _status_text(exc.status)
    else:
        text = str(exc) or type(exc).__name__
    if isinstance(exc, AmbiguousResultError) and exc.found:
        text += f"; found {len(exc.found)}: {', '.join(map(str, exc.found))}"
    where = [exc.operation] if exc.operation else []
    if len(exc.attempts) > 1:
        where.append(f"{len(exc.attempts)} attempts")
    if where:
        text += f" ({', '.join(where)})"
    return one_line(text)
