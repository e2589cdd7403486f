"""A write's deadline covers its checks: against a silent server and against endless page
cursors, the call ends by its deadline with `AmbiguousResultError`, after a bounded number
of requests, and makes none after it returns. End to end over loopback."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from sendgrid_ipam import (
    AmbiguousResultError,
    RequestTimeoutError,
    RetryPolicy,
    SendGridError,
    SendGridIPAM,
    ValidationError,
)

from .hostile_servers import RawServer, never, serve_app

KEY = "SG.deadline-test-key"
POLICY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.05)
TIMEOUT, DEADLINE = 0.2, 0.6
SLACK = 0.35  # event-loop and scheduling slack on a busy machine
ACCOUNT = "acct-1"

# How the call's deadline is given: the new per-call option, or the policy's own.
DEADLINES: dict[str, dict[str, Any]] = {
    "deadline=": {"deadline": DEADLINE, "retry": POLICY},
    "RetryPolicy(deadline=)": {"retry": RetryPolicy(
        initial_backoff=0.01, max_backoff=0.05, settle=0.05, deadline=DEADLINE)},
}


async def _timed(call: Awaitable[Any]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(SendGridError) as caught:
        # Guard: code that ignores the deadline fails here instead of hanging the suite.
        await asyncio.wait_for(call, timeout=DEADLINE + 5)
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("options", DEADLINES.values(), ids=DEADLINES.keys())
async def test_a_write_to_a_silent_server_ends_by_its_deadline(options: dict[str, Any]) -> None:
    async with RawServer(never) as server, SendGridIPAM(KEY, base_url=server.url) as sg:
        error, elapsed = await _timed(
            sg.pools.create("p1", ips=["192.0.2.1"], timeout=TIMEOUT, **options))
    assert isinstance(error, AmbiguousResultError), repr(error)
    assert elapsed < DEADLINE + SLACK, f"took {elapsed:.2f} s"
    posts = [r for r in server.requests if r.method == "POST"]
    # The first attempt, then checks (which never answer) until the deadline: at most one
    # request per timeout's worth of the deadline, checks included.
    assert 1 <= len(posts) <= math.ceil(DEADLINE / TIMEOUT)
    assert len(server.requests) <= math.ceil(DEADLINE / TIMEOUT) + 2


def _endless_accounts(log: list[str]) -> web.Application:
    """ListAccountIps: a newest IP, then full pages of new IPs, each with a new cursor;
    AddAccountIps: 502 (which may have landed)."""
    counter = itertools.count(1)

    async def list_ips(request: web.Request) -> web.Response:
        log.append(request.method)
        limit = int(request.query["limit"])
        if "offset" not in request.query and limit == 1:  # the marker, noted before the POST
            return web.json_response({"result": [{"ip": "198.51.100.1", "region": "us"}],
                                      "pages": {}})
        page = [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
                for n in itertools.islice(counter, limit)]
        return web.json_response({"result": [{"ip": ip, "region": "us"} for ip in page],
                                  "pages": {"last": page[-1]}})

    async def add_ips(request: web.Request) -> web.Response:
        log.append(request.method)
        return web.json_response({"errors": [{"message": "bad gateway"}]}, status=502)

    app = web.Application()
    app.router.add_get(f"/v3/partners/accounts/{ACCOUNT}/ips", list_ips)
    app.router.add_post(f"/v3/partners/accounts/{ACCOUNT}/ips", add_ips)
    return app


def _endless_pools(log: list[str]) -> web.Application:
    """ListIpPool: pages of other pools, each with a new after_key; CreateIpPool: 502."""
    counter = itertools.count(1)

    async def list_pools(request: web.Request) -> web.Response:
        log.append(request.method)
        n = next(counter)
        return web.json_response({"result": [{"id": str(n), "name": f"other-{n}"}],
                                  "_metadata": {"next_params": {"after_key": str(n)}}})

    async def create(request: web.Request) -> web.Response:
        log.append(request.method)
        return web.json_response({"errors": [{"message": "bad gateway"}]}, status=502)

    app = web.Application()
    app.router.add_get("/v3/send_ips/pools", list_pools)
    app.router.add_post("/v3/send_ips/pools", create)
    return app


WRITES: dict[str, tuple[Callable[[list[str]], web.Application],
                        Callable[..., Awaitable[Any]]]] = {
    "add_ips": (_endless_accounts, lambda sg, **o: sg.provisioning.add_ips(
        ACCOUNT, count=2, region="us", **o)),
    "pools.create": (_endless_pools, lambda sg, **o: sg.pools.create(
        "p1", ips=["192.0.2.1"], **o)),
}


@pytest.mark.parametrize("options", DEADLINES.values(), ids=DEADLINES.keys())
@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
async def test_a_check_fed_endless_cursors_ends_by_the_writes_deadline(
    write: tuple[Callable[[list[str]], web.Application], Callable[..., Awaitable[Any]]],
    options: dict[str, Any],
) -> None:
    make_app, call = write
    log: list[str] = []
    async with serve_app(make_app(log)) as url, SendGridIPAM(KEY, base_url=url) as sg:
        error, elapsed = await _timed(call(sg, timeout=TIMEOUT, **options))
        ended = len(log)
        await asyncio.sleep(0.1)
    assert isinstance(error, AmbiguousResultError), repr(error)
    assert elapsed < DEADLINE + SLACK, f"took {elapsed:.2f} s"
    assert log.count("POST") == 1, "a check that never ends resends nothing"
    assert log.count("GET") > 2, "the check did follow the cursors"
    assert len(log) == ended, "no request left after the call returned"


def _ipam_ips(log: list[str], *, answers: bool) -> web.Application:
    """ListIp: endless pages (each with a new after_key), or no answer at all; AddIp: 201."""
    counter = itertools.count(1)

    async def list_ips(request: web.Request) -> web.Response:
        log.append(request.method)
        if not answers:
            await asyncio.Event().wait()
        n = next(counter)
        return web.json_response({"result": [{"ip": f"10.0.{n >> 8 & 255}.{n & 255}"}],
                                  "_metadata": {"next_params": {"after_key": str(n)}}})

    async def add_ip(request: web.Request) -> web.Response:
        log.append(request.method)
        return web.json_response({"ip": "192.0.2.9"}, status=201)

    app = web.Application()
    app.router.add_get("/v3/send_ips/ips", list_ips)
    app.router.add_post("/v3/send_ips/ips", add_ip)
    return app


@pytest.mark.parametrize("answers", [True, False], ids=["endless cursors", "no answer"])
async def test_a_write_whose_first_look_never_ends_is_not_sent(answers: bool) -> None:
    """AddIp notes the IPs added lately before it writes: if that listing never ends, the
    deadline ends it, the write is never sent, and the error says so (not ambiguous)."""
    log: list[str] = []
    async with serve_app(_ipam_ips(log, answers=answers)) as url, SendGridIPAM(
            KEY, base_url=url) as sg:
        error, elapsed = await _timed(sg.ips.add(
            is_auto_warmup=False, is_parent_assigned=True, timeout=TIMEOUT, deadline=DEADLINE))
    assert isinstance(error, RequestTimeoutError), repr(error)
    assert error.request_sent is False
    assert error.operation == "AddIp"
    assert elapsed < DEADLINE + SLACK, f"took {elapsed:.2f} s"
    assert "POST" not in log
    assert log.count("GET") > (2 if answers else 0)


CALLS: dict[str, Callable[..., Awaitable[Any]]] = {
    "a read": lambda sg, **o: sg.pools.get("2", **o),
    "a checked write": lambda sg, **o: sg.pools.create("p2", **o),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
async def test_waiting_for_a_connection_ends_by_the_deadline(
    call: Callable[..., Awaitable[Any]],
) -> None:
    """Every connection is held by a request that hangs: a call waits for one only until
    its deadline, and then fails as not sent."""
    async with RawServer(never) as server, SendGridIPAM(
            KEY, base_url=server.url, max_connections=1, retry=POLICY) as sg:
        hog = asyncio.create_task(sg.pools.get("1", timeout=5))
        await server.arrived.wait()
        error, elapsed = await _timed(call(sg, deadline=0.2))
        hog.cancel()
    assert isinstance(error, RequestTimeoutError), repr(error)
    assert error.request_sent is False
    assert elapsed < 0.2 + SLACK, f"took {elapsed:.2f} s"
    assert len(server.requests) == 1, "only the request that holds the connection"


@pytest.mark.parametrize(
    "value", [0, -1, math.nan, math.inf, -math.inf, True, "1", 10**5000, None, [1]],
    ids=["0", "-1", "nan", "inf", "-inf", "True", "'1'", "10**5000", "None", "[1]"])
async def test_a_deadline_that_is_not_a_positive_number_is_refused(value: object) -> None:
    async with RawServer(never) as server, SendGridIPAM(KEY, base_url=server.url) as sg:
        with pytest.raises(ValidationError) as caught:
            await sg.pools.create("p1", deadline=value)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            await sg.pools.get("1", deadline=value)  # type: ignore[arg-type]
    assert caught.value.field == "deadline"
    assert "positive number of seconds" in caught.value.rule
    assert server.requests == [], "refused before any request"
