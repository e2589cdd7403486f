"""What the commands share: the global settings, running a call, and errors on one line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Literal, TypeVar
from urllib.parse import urlsplit

import attrs
import click

from ..client import DEFAULT_TIMEOUT, SendGridIPAM
from ..coordination import Coordinator
from ..errors import AmbiguousResultError, APIError, ConfigurationError, SendGridError
from ..retry import RetryPolicy

__all__ = [
    "DEFAULT_LEASE_TTL",
    "ENV_COORDINATOR",
    "ENV_KEY",
    "EXIT_INTERRUPTED",
    "Settings",
    "current_secrets",
    "format_error",
    "one_line",
    "redact",
    "run_api",
    "secrets_in",
    "table_option",
    "url_password",
]

T = TypeVar("T")

ENV_KEY = "SENDGRID_API_KEY"
ENV_COORDINATOR = "SENDGRID_IPAM_COORDINATOR"
DEFAULT_LEASE_TTL = 30.0
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
_DETAIL_LIMIT = 300

table_option = click.option(
    "--table", is_flag=True, help="Print a table instead of JSON (one object per line)."
)


@attrs.define
class Settings:
    """The group's options, for the subcommands that call the API."""

    api_key: str | None = attrs.field(repr=False)
    region: Literal["global", "eu"] = "global"
    base_url: str | None = None
    timeout: float | None = None
    max_attempts: int | None = None
    on_behalf_of: str | None = None
    coordinator: str | None = attrs.field(default=None, repr=False)  # may hold a password
    lease_ttl: float | None = None

    def make_coordinator(self) -> Coordinator | None:
        """The shared coordinator ``--coordinator`` names (None: each process its own).

        Raises:
            ConfigurationError: the URL cannot be used, or redis-py is not installed.
        """
        if self.coordinator is None:
            return None
        try:
            from ..redis import RedisCoordinator
        except ImportError:
            raise ConfigurationError(
                '--coordinator needs redis-py: pip install "sendgrid-ipam[redis]"') from None
        return RedisCoordinator.from_url(
            self.coordinator,
            lease_ttl=DEFAULT_LEASE_TTL if self.lease_ttl is None else self.lease_ttl)

    def client(self, coordinator: Coordinator | None = None) -> SendGridIPAM:
        """A client configured by the global options (not yet entered)."""
        if not self.api_key or not self.api_key.strip():
            raise ConfigurationError(f"no API key: pass --api-key or set {ENV_KEY}")
        return SendGridIPAM(
            self.api_key,
            coordinator=coordinator,
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
        coordinator = settings.make_coordinator()
        try:
            async with settings.client(coordinator) as sg:
                return await action(sg)
        finally:
            if coordinator is not None:
                await coordinator.aclose()

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
    """The API keys given on a command line (``--api-key K``, ``--api-key=K``) or in the env,
    and the password in a ``--coordinator`` or ``--journal`` URL."""
    found = {os.environ.get(ENV_KEY, "").strip(),
             url_password(os.environ.get(ENV_COORDINATOR, ""))}
    items = list(args)
    for index, arg in enumerate(items):
        for option, clean in (("--api-key", str.strip), ("--coordinator", url_password),
                              ("--journal", url_password)):
            if arg == option and index + 1 < len(items):
                found.add(clean(items[index + 1]))
            elif arg.startswith(option + "="):
                found.add(clean(arg.partition("=")[2]))
    found.discard("")
    return found


def url_password(url: str) -> str:
    """The password of a URL (``redis://:PASSWORD@host``), or ""."""
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


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
        if len(text) > _DETAIL_LIMIT:  # a reply's raw text can be long; the IPs below never are cut
            text = text[:_DETAIL_LIMIT] + "..."
    if isinstance(exc, AmbiguousResultError) and exc.found:
        text += f"; found {len(exc.found)}: {', '.join(map(str, exc.found))}"
    where = [exc.operation] if exc.operation else []
    if len(exc.attempts) > 1:
        where.append(f"{len(exc.attempts)} attempts")
    if where:
        text += f" ({', '.join(where)})"
    return one_line(text)
