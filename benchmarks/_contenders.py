"""The clients under comparison, each as a small adapter with the same two calls.

A contender's ``load()`` imports its library (so a child process can measure RSS before and
after imports) and returns a session factory: ``async with factory(config) as calls:`` gives
``calls.get(pool_id)`` (GET /v3/send_ips/pools/{id}) and ``calls.create(name)`` (POST
/v3/send_ips/pools with ``ips=["127.0.0.1"]``), both returning the parsed reply, and
``calls.name_of(reply)`` to check it. Every adapter sends the API key as a Bearer token, a
User-Agent, JSON Accept/Content-Type, checks the status and parses the JSON body: the work any
real caller has to do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

POOL_ID: Final = "12345"
POOL_IPS: Final = ("127.0.0.1",)
CREATE_PATH: Final = "/v3/send_ips/pools"
EXPECTED_GET_NAME: Final = "marketing_pool"
OFFICIAL_THREADS: Final = 16
USER_AGENT: Final = "sendgrid-ipam-bench/1.0"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    base_url: str
    max_connections: int = 100
    api_key: str = "SG.bench"
    timeout: float = 30.0

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }


@dataclass(frozen=True, slots=True)
class Calls:
    get: Callable[[str], Awaitable[Any]]
    create: Callable[[str], Awaitable[Any]]
    name_of: Callable[[Any], str]


SessionFactory = Callable[[ClientConfig], AbstractAsyncContextManager[Calls]]


@dataclass(frozen=True, slots=True)
class Contender:
    key: str
    label: str
    note: str
    load: Callable[[], SessionFactory]
    marker: str = ""  # footnote mark next to the label in result tables


class UnexpectedStatus(RuntimeError):
    def __init__(self, status: int, body: bytes | str) -> None:
        super().__init__(f"HTTP {status}: {body!r:.200}")


def check_status(status: int, expected: int, body: bytes | str) -> None:
    if status != expected:
        raise UnexpectedStatus(status, body)


def create_body(name: str) -> dict[str, Any]:
    return {"name": name, "ips": list(POOL_IPS)}


def dict_name(reply: dict[str, Any]) -> str:
    return str(reply["name"])


# --------------------------------------------------------------------------------------------
# sendgrid_ipam


def _load_sendgrid_ipam() -> SessionFactory:
    from sendgrid_ipam import SendGridIPAM

    @asynccontextmanager
    async def session(config: ClientConfig) -> AsyncIterator[Calls]:
        async with SendGridIPAM(
            api_key=config.api_key,
            base_url=config.base_url,
            max_connections=config.max_connections,
        ) as sg:

            def get(pool_id: str) -> Awaitable[Any]:
                return sg.pools.get(pool_id)

            def create(name: str) -> Awaitable[Any]:
                return sg.pools.create(name, ips=list(POOL_IPS))

            yield Calls(get=get, create=create, name_of=lambda pool: str(pool.name))

    return session


# --------------------------------------------------------------------------------------------
# raw aiohttp: the floor


def _load_raw_aiohttp() -> SessionFactory:
    import aiohttp

    @asynccontextmanager
    async def session(config: ClientConfig) -> AsyncIterator[Calls]:
        async with aiohttp.ClientSession(
            base_url=config.base_url,
            headers=config.headers(),
            connector=aiohttp.TCPConnector(limit=config.max_connections),
            timeout=aiohttp.ClientTimeout(total=config.timeout),
        ) as client:

            async def get(pool_id: str) -> Any:
                async with client.get(f"/v3/send_ips/pools/{pool_id}") as resp:
                    body = await resp.read()
                    check_status(resp.status, 200, body)
                    return json.loads(body)

            async def create(name: str) -> Any:
                async with client.post(CREATE_PATH, json=create_body(name)) as resp:
                    body = await resp.read()
                    check_status(resp.status, 201, body)
                    return json.loads(body)

            yield Calls(get=get, create=create, name_of=dict_name)

    return session


# --------------------------------------------------------------------------------------------
# httpx


def _load_httpx() -> SessionFactory:
    import httpx

    @asynccontextmanager
    async def session(config: ClientConfig) -> AsyncIterator[Calls]:
        limits = httpx.Limits(
            max_connections=config.max_connections,
            max_keepalive_connections=config.max_connections,
        )
        async with httpx.AsyncClient(
            base_url=config.base_url,
            headers=config.headers(),
            limits=limits,
            timeout=config.timeout,
            trust_env=False,
        ) as client:

            async def get(pool_id: str) -> Any:
                resp = await client.get(f"/v3/send_ips/pools/{pool_id}")
                check_status(resp.status_code, 200, resp.content)
                return resp.json()

            async def create(name: str) -> Any:
                resp = await client.post(CREATE_PATH, json=create_body(name))
                check_status(resp.status_code, 201, resp.content)
                return resp.json()

            yield Calls(get=get, create=create, name_of=dict_name)

    return session


# --------------------------------------------------------------------------------------------
# official sendgrid (synchronous; python_http_client over urllib)


def _load_official() -> SessionFactory:
    import sendgrid  # type: ignore[import-untyped]

    @asynccontextmanager
    async def session(config: ClientConfig) -> AsyncIterator[Calls]:
        api = sendgrid.SendGridAPIClient(api_key=config.api_key, host=config.base_url)
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(OFFICIAL_THREADS, thread_name_prefix="official-sendgrid")

        def get_sync(pool_id: str) -> Any:
            resp = api.client.send_ips.pools._(pool_id).get(timeout=config.timeout)
            check_status(resp.status_code, 200, resp.body)
            return resp.to_dict

        def create_sync(name: str) -> Any:
            resp = api.client.send_ips.pools.post(
                request_body=create_body(name), timeout=config.timeout
            )
            check_status(resp.status_code, 201, resp.body)
            return resp.to_dict

        def get(pool_id: str) -> Awaitable[Any]:
            return loop.run_in_executor(executor, get_sync, pool_id)

        def create(name: str) -> Awaitable[Any]:
            return loop.run_in_executor(executor, create_sync, name)

        try:
            yield Calls(get=get, create=create, name_of=dict_name)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    return session


# --------------------------------------------------------------------------------------------

CONTENDERS: Final = {
    c.key: c
    for c in (
        Contender("sendgrid_ipam", "sendgrid_ipam", "this library", _load_sendgrid_ipam),
        Contender("aiohttp", "raw aiohttp", "one ClientSession, json.loads(read())",
                  _load_raw_aiohttp),
        Contender("httpx", "httpx.AsyncClient", "one AsyncClient, trust_env=False", _load_httpx),
        Contender(
            "official",
            "official sendgrid",
            f"sync urllib in ThreadPoolExecutor({OFFICIAL_THREADS}); new TCP connection per call",
            _load_official,
            marker="¹",
        ),
    )
}
BASELINE: Final = "aiohttp"
