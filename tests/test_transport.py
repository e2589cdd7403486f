"""What the transport does with redirects and a session closed under a call."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from sendgrid_ipam import APIError, ClientStateError, SendGridIPAM

KEY = "SG.transport"


@pytest.fixture
async def redirecting() -> AsyncIterator[str]:
    hits: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        hits.append(request.method)
        raise web.HTTPFound("/v3/send_ips/pools/1")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_redirects_are_not_followed(redirecting: str) -> None:
    """A 302 on a POST would become a GET whose 200 would pass for the write's reply."""
    async with SendGridIPAM(KEY, base_url=redirecting) as sg:
        with pytest.raises(APIError) as caught:
            await sg.pools.create("moved-pool")
    assert caught.value.status == 302


async def test_a_session_closed_under_the_client_is_a_client_state_error() -> None:
    session = aiohttp.ClientSession()
    async with SendGridIPAM(KEY, base_url="http://127.0.0.1:9", session=session) as sg:
        await session.close()
        with pytest.raises(ClientStateError, match="closed"):
            await sg.pools.get("1")
