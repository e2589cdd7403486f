"""Running a FakeSendGrid as a standalone server until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterable

from ._fake import FakeSendGrid
from ._faults import FaultRates


def _print_url(url: str) -> None:
    print(url, flush=True)


def serve(
    *,
    port: int = 4010,
    api_key: str = "SG.test",
    accounts: Iterable[str] = ("acct-1",),
    host: str = "127.0.0.1",
    rate_limit: int | None = None,
    rate_window: float = 1.0,
    faults: FaultRates | None = None,
    seed: int = 0,
    ipam_ips: int = 0,
    on_ready: Callable[[str], None] = _print_url,
) -> None:
    """Serve a FakeSendGrid on a loopback port until SIGINT (Ctrl-C) or SIGTERM, then return.

    Blocks, running its own event loop.

    Args:
        port: the port (0 picks a free one).
        api_key: the only key accepted in ``Authorization: Bearer <key>``.
        accounts: ids of the partner accounts that exist.
        host: a loopback address to listen on; anything else is refused.
        rate_limit: requests per window per key; None enforces none.
        rate_window: the window's length in seconds.
        faults: probabilities of random faults.
        seed: the seed of the random faults.
        ipam_ips: how many IPAM IPs exist from the start.
        on_ready: called with the URL once the server listens (by default it prints the URL
            to stdout and flushes).

    Raises:
        OSError: the port is taken.
        ValueError: a bad argument (a host that is not loopback, say).
    """
    fake = FakeSendGrid(
        api_key=api_key,
        accounts=accounts,
        host=host,
        port=port,
        rate_limit=rate_limit,
        rate_window=rate_window,
        faults=faults,
        seed=seed,
        ipam_ips=ipam_ips,
    )
    # Where the loop cannot take signal handlers (Windows), Ctrl-C ends asyncio.run instead.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_stopped(fake, on_ready))


async def _serve_until_stopped(fake: FakeSendGrid, on_ready: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        async with fake:
            on_ready(fake.url)
            await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
