"""Tests of sendgrid_ipam.testing (the fake SendGrid), and the helper they share.

`spec_client(fake)` opens a plain aiohttp session to a fake and checks every exchange against
the official specs with tests/openapi_support.py, so these tests need nothing from the client.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import aiohttp
import attrs
from multidict import CIMultiDict

from sendgrid_ipam.testing import FakeSendGrid
from tests.openapi_support import validate_request, validate_response

_DEFAULT_KEY = object()


@attrs.frozen
class Exchange:
    """A reply as the test saw it."""

    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)

    @property
    def ok(self) -> bool:
        """Whether the status is a success (2xx)."""
        return 200 <= self.status < 300

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The ``errors`` list of an error body."""
        errors: list[dict[str, Any]] = self.json()["errors"]
        return errors


class SpecClient:
    """Sends requests to a fake and validates each request and reply against the specs."""

    def __init__(self, session: aiohttp.ClientSession, fake: FakeSendGrid) -> None:
        self.session = session
        self.fake = fake

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        json: Any = None,
        data: bytes | None = None,
        key: object = _DEFAULT_KEY,
        headers: Mapping[str, str] | None = None,
        check_request: bool = True,
        check_response: bool = True,
    ) -> Exchange:
        """Send one request; `key` None sends no Authorization header.

        `check_request=False` for requests that are wrong on purpose; `check_response=False`
        for replies the spec does not document (429, 404 on IPAM, fault statuses, HTML).
        """
        url = self.fake.url + path + (f"?{urlencode(query)}" if query else "")
        sent = dict(headers or {})
        api_key = self.fake.api_key if key is _DEFAULT_KEY else key
        if api_key is not None:
            sent["Authorization"] = f"Bearer {api_key}"
        if json is not None:
            data = jsonlib.dumps(json).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        if check_request:
            validate_request(method, url, headers=sent, body=data)
        async with self.session.request(method, url, data=data, headers=sent) as response:
            exchange = Exchange(response.status, response.headers.copy(), await response.read())
        if check_response:
            validate_response(
                method, url, status=exchange.status, headers=exchange.headers, body=exchange.body
            )
        return exchange


@asynccontextmanager
async def spec_client(
    fake: FakeSendGrid, *, force_close: bool = False
) -> AsyncIterator[SpecClient]:
    """A `SpecClient` for `fake`, with its own aiohttp session.

    `force_close` opens a new connection per request. Keep-alive matters for dropped
    connections: aiohttp resends an idempotent request (GET, PUT, DELETE) once by itself when
    a reused connection closes before the reply.
    """
    connector = aiohttp.TCPConnector(force_close=force_close)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield SpecClient(session, fake)
