"""What the Redis coordinator and the Redis journal share: the client made from a
URL, a text naming the server without its password, and Redis failures as typed errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..coordination.base import CoordinatorUnavailableError
from ..errors import ConfigurationError

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
except ImportError as missing:  # pragma: no cover (the extra is installed wherever tests run)
    raise ImportError(
        'sendgrid_ipam.redis needs redis-py: pip install "sendgrid-ipam[redis]"'
    ) from missing

__all__ = ["FAILURES", "RedisError", "close", "connect", "server_name", "unavailable"]

SCHEMES = ("redis", "rediss", "unix")

FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError)
"""What a Redis command can raise when the server is down, unreachable, slow or failing
over (a refused or dropped connection, a timeout, LOADING, READONLY)."""

_MAX_DETAIL = 200


def server_name(url: str) -> str:
    """``host:port/db`` (or the socket path) of a Redis URL: never its user or password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    db = parts.path.strip("/") or "0"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.hostname or 'localhost'}:{port}/{db}"


def connect(
    url: str, *, timeout: float, what: str = "coordinator", max_connections: int | None = None,
) -> aioredis.Redis:
    """A redis-py asyncio client for ``url`` that fails fast.

    One command is retried once, at once, on a broken connection (a pooled connection from
    before a Redis restart fails on first use), and never on a timeout: a write must learn
    quickly that it cannot take its lease, within its own deadline.

    With ``max_connections``, at most that many connections are open at once, and one more
    fails at once. (Not redis-py's blocking pool, which would wait for one to come free: in
    some versions, 5.0 among them, it loses a connection each time one cannot connect, so a
    Redis that is down for a while left every later command waiting out ``timeout``.)

    Raises:
        ConfigurationError: ``url`` is not a ``redis://``, ``rediss://`` or ``unix://`` URL.
    """
    if not isinstance(url, str) or urlsplit(url).scheme not in SCHEMES:
        raise ConfigurationError(
            f"the {what} URL must start with redis://, rediss:// or unix:// "
            "(e.g. redis://127.0.0.1:6379/0)")
    try:
        options: dict[str, Any] = {
            "socket_timeout": timeout, "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 1), "retry_on_error": [RedisConnectionError]}
        if max_connections is None:
            return aioredis.Redis.from_url(url, **options)
        pool = aioredis.ConnectionPool.from_url(url, max_connections=max_connections, **options)
        return aioredis.Redis(connection_pool=pool)  # its owner disconnects the pool
    except ValueError as exc:  # redis-py's own complaint about the URL (a bad db, port...)
        raise ConfigurationError(f"the {what} URL cannot be used: {exc}") from None


async def close(client: aioredis.Redis) -> None:
    """Close a client made by `connect`, and its connection pool."""
    closing = getattr(client, "aclose", None) or client.close  # aclose: redis-py >= 5.0.1
    await closing()
    await client.connection_pool.disconnect()


def unavailable(server: str, exc: BaseException, doing: str) -> CoordinatorUnavailableError:
    """The typed error for a Redis failure while ``doing`` something (chains nothing)."""
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "..."
    return CoordinatorUnavailableError(
        f"Redis at {server} is unavailable while {doing} ({detail}); the request was not sent")
