"""Configuration, the session's lifecycle, per-call options, headers and keeping the key secret."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import traceback
import warnings
from collections.abc import Iterator

import aiohttp
import pytest

from sendgrid_ipam import (
    AmbiguousResultError,
    ClientStateError,
    ConfigurationError,
    RequestTimeoutError,
    RetryPolicy,
    SendGridError,
    SendGridIPAM,
    TransportError,
    __version__,
)
from tests.conftest import API_KEY, BASE, FakeTime, RecordingResponses, make_client

IP = "192.0.2.1"
GET_IP = f"{BASE}/v3/send_ips/ips/{IP}"
IP_REPLY = {"ip": IP}


@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)


@pytest.fixture
def resource_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Every ResourceWarning (an unclosed session, connector, ...) raised during the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], [str(w.message) for w in leaks]


# ---------------------------------------------------------------- the API key


async def test_key_from_the_argument(
    mocked: RecordingResponses, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.from-env")
    mocked.get(GET_IP, payload=IP_REPLY)
    async with make_client(fake_time, api_key="SG.from-arg") as sg:
        await sg.ips.get(IP)
    assert mocked.last.headers["Authorization"] == "Bearer SG.from-arg"


async def test_key_from_the_environment(
    mocked: RecordingResponses, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.from-env")
    mocked.get(GET_IP, payload=IP_REPLY)
    async with SendGridIPAM(sleep=fake_time.sleep, clock=fake_time.clock) as sg:
        await sg.ips.get(IP)
    assert mocked.last.headers["Authorization"] == "Bearer SG.from-env"


@pytest.mark.usefixtures("no_env_key")
@pytest.mark.parametrize("key", [None, "", "   "])
def test_no_key_is_a_configuration_error(key: str | None) -> None:
    with pytest.raises(ConfigurationError, match="SENDGRID_API_KEY"):
        SendGridIPAM(api_key=key)


@pytest.mark.usefixtures("no_env_key")
def test_empty_environment_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "")
    with pytest.raises(ConfigurationError):
        SendGridIPAM()


# ---------------------------------------------------------------- where requests go


async def test_default_region_is_global(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)
    async with make_client(fake_time) as sg:
        await sg.ips.get(IP)
    assert mocked.last.url == GET_IP


async def test_eu_region_reaches_the_eu_host(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    mocked.get("https://api.eu.sendgrid.com/v3/send_ips/pools/7", payload={"id": "7"})
    async with make_client(fake_time, region="eu") as sg:
        await sg.pools.get("7")
    assert mocked.last.url == "https://api.eu.sendgrid.com/v3/send_ips/pools/7"


def test_unknown_region_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="region"):
        SendGridIPAM(api_key=API_KEY, region="us")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "base_url",
    [
        "http://example.com",
        "http://api.sendgrid.com",
        "http://10.0.0.1:8080",
        "http://127.0.0.1.example.com",
        "http://localhost.example.com",
        "ftp://localhost",
        "api.sendgrid.com",
        "https://",
        "https://example.com/?x=1",
    ],
)
def test_unsafe_or_malformed_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError):
        SendGridIPAM(api_key=API_KEY, base_url=base_url)


def test_refused_base_url_message_does_not_carry_the_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        SendGridIPAM(api_key=API_KEY, base_url="http://example.com")
    assert "https" in str(info.value)
    assert API_KEY not in str(info.value)


@pytest.mark.parametrize(
    ("base_url", "sent_to"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.2", "http://127.0.0.2"),
        ("http://localhost", "http://localhost"),
        ("http://LOCALHOST:9", "http://localhost:9"),
        ("http://[::1]:1", "http://[::1]:1"),
        ("https://example.com", "https://example.com"),
        ("https://proxy.internal:8443/sendgrid/", "https://proxy.internal:8443/sendgrid"),
        ("https://10.1.2.3", "https://10.1.2.3"),
    ],
)
async def test_loopback_http_and_any_https_base_url_are_used(
    mocked: RecordingResponses, fake_time: FakeTime, base_url: str, sent_to: str
) -> None:
    mocked.get(re.compile(r".*"), payload=IP_REPLY)
    async with make_client(fake_time, base_url=base_url) as sg:
        await sg.ips.get(IP)
    assert mocked.last.url == f"{sent_to}/v3/send_ips/ips/{IP}"


# ---------------------------------------------------------------- lifecycle


async def test_call_outside_async_with_is_a_state_error(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    sg = make_client(fake_time)
    with pytest.raises(ClientStateError, match="async with"):
        await sg.ips.get(IP)
    with pytest.raises(ClientStateError):
        await anext(aiter(sg.pools.list()))
    assert mocked.sent == []


async def test_call_after_close_is_a_state_error(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)
    async with make_client(fake_time) as sg:
        await sg.ips.get(IP)
    with pytest.raises(ClientStateError, match="closed"):
        await sg.ips.get(IP)
    with pytest.raises(ClientStateError):
        await anext(aiter(sg.provisioning.list_ips("acct")))
    with pytest.raises(ClientStateError):
        await sg.__aenter__()
    assert len(mocked.sent) == 1


async def test_close_without_enter_and_twice_is_harmless(fake_time: FakeTime) -> None:
    sg = make_client(fake_time)
    await sg.close()
    await sg.close()
    with pytest.raises(ClientStateError):
        await sg.ips.get(IP)


async def test_a_session_passed_in_is_used_and_left_open(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY, repeat=True)
    async with aiohttp.ClientSession() as session:
        async with make_client(fake_time, session=session) as sg:
            await sg.ips.get(IP)
        assert not session.closed
        async with make_client(fake_time, session=session) as sg:
            await sg.ips.get(IP)
        assert not session.closed
        assert [s.session for s in mocked.sent] == [session, session]


async def test_own_session_is_closed_on_exit(
    mocked: RecordingResponses, fake_time: FakeTime, resource_warnings: list[object]
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)
    async with make_client(fake_time) as sg:
        await sg.ips.get(IP)
    assert mocked.last.session.closed


async def test_session_closed_when_the_block_raises(
    mocked: RecordingResponses, fake_time: FakeTime, resource_warnings: list[object]
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)

    async def use() -> None:
        async with make_client(fake_time) as sg:
            await sg.ips.get(IP)
            raise KeyError("user code failed")

    with pytest.raises(KeyError):
        await use()
    assert mocked.last.session.closed


async def test_session_closed_when_a_call_fails(
    mocked: RecordingResponses, fake_time: FakeTime, resource_warnings: list[object]
) -> None:
    mocked.get(GET_IP, status=404, payload={"errors": [{"field": "ip", "message": "not found"}]})
    with pytest.raises(SendGridError):
        async with make_client(fake_time) as sg:
            await sg.ips.get(IP)
    assert mocked.last.session.closed


def hang_on_get(mocked: RecordingResponses) -> asyncio.Event:
    """Make GetIp hang forever; the event is set once the request is in flight."""
    in_flight = asyncio.Event()

    async def hang(url: object, **kwargs: object) -> None:
        in_flight.set()
        await asyncio.Event().wait()

    mocked.get(GET_IP, callback=hang)
    return in_flight


async def test_session_closed_when_a_call_is_cancelled(
    mocked: RecordingResponses, fake_time: FakeTime, resource_warnings: list[object]
) -> None:
    in_flight = hang_on_get(mocked)
    async with make_client(fake_time) as sg:
        task = asyncio.ensure_future(sg.ips.get(IP))
        await in_flight.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert mocked.last.session.closed


async def test_session_closed_when_the_whole_block_is_cancelled(
    mocked: RecordingResponses, fake_time: FakeTime, resource_warnings: list[object]
) -> None:
    in_flight = hang_on_get(mocked)

    async def work() -> None:
        async with make_client(fake_time) as sg:
            await sg.ips.get(IP)

    task = asyncio.ensure_future(work())
    await in_flight.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert mocked.last.session.closed


async def test_client_never_entered_leaves_nothing_open(
    fake_time: FakeTime, resource_warnings: list[object]
) -> None:
    sg = make_client(fake_time)
    del sg


# ---------------------------------------------------------------- timeouts


async def test_default_timeout_reaches_aiohttp(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)
    await client.ips.get(IP)
    timeout = mocked.last.timeout
    assert timeout.total == 30.0
    assert min(t for t in (timeout.connect, timeout.sock_connect) if t is not None) <= 10.0


async def test_client_timeout_reaches_aiohttp(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)
    async with make_client(fake_time, timeout=4.5) as sg:
        await sg.ips.get(IP)
    assert mocked.last.timeout.total == 4.5


async def test_per_call_timeout_reaches_aiohttp_for_that_call_only(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY, repeat=True)
    await client.ips.get(IP, timeout=2.5)
    await client.ips.get(IP, timeout=aiohttp.ClientTimeout(total=7, sock_read=3))
    await client.ips.get(IP)
    first, second, third = (s.timeout for s in mocked.sent)
    assert first.total == 2.5
    assert (second.total, second.sock_read) == (7, 3)
    assert third.total == 30.0


async def test_timeout_never_runs_past_the_calls_deadline(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)
    await client.ips.get(IP, retry=RetryPolicy(deadline=5))
    assert mocked.last.timeout.total == 5


@pytest.mark.parametrize("bad", [0, -1, True, "5"])
async def test_bad_per_call_timeout_is_refused_before_sending(
    client: SendGridIPAM, mocked: RecordingResponses, bad: object
) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await client.ips.get(IP, timeout=bad)  # type: ignore[arg-type]
    assert mocked.sent == []


async def test_a_timeout_is_a_request_timeout_error(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    mocked.get(GET_IP, exception=TimeoutError(), repeat=True)
    async with make_client(fake_time) as sg:
        with pytest.raises(RequestTimeoutError) as info:
            await sg.ips.get(IP)
    assert len(info.value.attempts) == 3
    assert len(mocked.sent) == 3


# ---------------------------------------------------------------- headers


async def test_standard_headers(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)
    mocked.put(f"{BASE}/v3/send_ips/pools/1", payload={"id": "1", "name": "new"})
    await client.ips.get(IP)
    await client.pools.rename("1", "new")
    get, put = mocked.sent
    assert get.headers["Authorization"] == f"Bearer {API_KEY}"
    assert get.headers["User-Agent"] == f"sendgrid-ipam/{__version__}"
    assert "Content-Type" not in get.headers
    assert put.headers["Content-Type"] == "application/json"
    assert put.headers["User-Agent"] == f"sendgrid-ipam/{__version__}"
    assert "On-Behalf-Of" not in get.headers
    assert "On-Behalf-Of" not in put.headers


async def test_custom_user_agent(mocked: RecordingResponses, fake_time: FakeTime) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)
    async with make_client(fake_time, user_agent="acme-provisioner/3") as sg:
        await sg.ips.get(IP)
    assert mocked.last.headers["User-Agent"] == "acme-provisioner/3"


async def test_on_behalf_of_per_client_is_on_every_call(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY)
    mocked.put(f"{BASE}/v3/send_ips/pools/1", payload={"id": "1", "name": "new"})
    async with make_client(fake_time, on_behalf_of="subuser-a") as sg:
        await sg.ips.get(IP)
        await sg.pools.rename("1", "new")
    assert [s.headers.get("On-Behalf-Of") for s in mocked.sent] == ["subuser-a", "subuser-a"]


async def test_on_behalf_of_per_call_is_not_sent_on_the_next_call(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY, repeat=True)
    mocked.put(f"{BASE}/v3/send_ips/pools/1", payload={"id": "1", "name": "new"}, repeat=True)
    await client.ips.get(IP, on_behalf_of="account-id 42")
    await client.ips.get(IP)
    await client.pools.rename("1", "new", on_behalf_of="subuser-b")
    await client.pools.rename("1", "new")
    assert [s.headers.get("On-Behalf-Of") for s in mocked.sent] == [
        "account-id 42", None, "subuser-b", None,
    ]


async def test_on_behalf_of_per_call_overrides_the_clients_for_that_call(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    mocked.get(GET_IP, payload=IP_REPLY, repeat=True)
    async with make_client(fake_time, on_behalf_of="subuser-a") as sg:
        await sg.ips.get(IP, on_behalf_of="subuser-b")
        await sg.ips.get(IP)
    assert [s.headers.get("On-Behalf-Of") for s in mocked.sent] == ["subuser-b", "subuser-a"]


async def test_on_behalf_of_per_call_reaches_every_page(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{BASE}/v3/send_ips/pools?limit=1", payload={
        "result": [{"id": "1"}], "_metadata": {"next_params": {"after_key": "1"}}})
    mocked.get(f"{BASE}/v3/send_ips/pools?after_key=1&limit=1", payload={"result": []})
    mocked.get(GET_IP, payload=IP_REPLY)
    [pool async for pool in client.pools.list(limit=1, on_behalf_of="subuser-c")]
    await client.ips.get(IP)
    assert [s.headers.get("On-Behalf-Of") for s in mocked.sent] == ["subuser-c", "subuser-c",
                                                                     None]


# ---------------------------------------------------------------- the key stays secret


def test_key_not_in_repr(fake_time: FakeTime) -> None:
    sg = make_client(fake_time)
    assert API_KEY not in repr(sg)
    assert API_KEY not in str(sg)
    assert "redacted" in repr(sg)


async def _every_kind_of_failure(sg: SendGridIPAM, mocked: RecordingResponses) -> list[
    BaseException
]:
    """Run calls that fail in every way the client reports, and return the errors."""
    pools = f"{BASE}/v3/send_ips/pools"
    errors: list[BaseException] = []
    replies = [
        (400, {"errors": [{"field": "name", "message": "already exists"}]}),
        (401, {"errors": [{"field": "", "message": "missing required scope: ips.read"}]}),
        (403, {"errors": [{"message": "forbidden", "field": "", "error_id": "10-40300"}]}),
        (404, {"errors": [{"message": "Account not found", "field": "", "error_id": "x"}]}),
        (429, {"errors": [{"field": None, "message": "too many requests"}]}),
        (500, {"errors": [{"field": "", "message": "internal server error"}]}),
        (418, {"error": "teapot"}),
    ]
    for status, payload in replies:
        mocked.get(f"{pools}/1", status=status, payload=payload, repeat=True,
                   headers={"X-RateLimit-Reset": "1"})
        try:
            await sg.pools.get("1", retry=RetryPolicy(max_attempts=2, initial_backoff=0.01))
        except SendGridError as exc:
            errors.append(exc)
        mocked.clear()
    failures: list[tuple[str, dict[str, object]]] = [
        ("bad gateway", {"status": 502, "body": "<html>502 Bad Gateway</html>",
                         "content_type": "text/html"}),
        ("bad json", {"body": "{not json"}),
        ("wrong shape", {"payload": {"name": "no id"}}),
        ("reset", {"exception": aiohttp.ClientOSError(104, "Connection reset by peer")}),
        ("disconnect", {"exception": aiohttp.ServerDisconnectedError()}),
        ("timeout", {"exception": TimeoutError()}),
    ]
    for _, kwargs in failures:
        mocked.get(f"{pools}/1", repeat=True, **kwargs)  # type: ignore[arg-type]
        try:
            await sg.pools.get("1")
        except SendGridError as exc:
            errors.append(exc)
        mocked.clear()
    # A write that fails ambiguously and cannot be checked.
    mocked.post(pools, status=503, payload={"errors": [{"field": "", "message": "down"}]})
    mocked.get(re.compile(re.escape(pools) + r"(\?.*)?$"), status=500, repeat=True)
    try:
        await sg.pools.create("tx", ips=[IP])
    except SendGridError as exc:
        errors.append(exc)
    mocked.clear()
    for bad in (lambda: sg.pools.create("x"), lambda: sg.ips.get("nope")):
        try:
            await bad()
        except SendGridError as exc:
            errors.append(exc)
    return errors


async def test_key_not_in_any_error_or_traceback(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    async with make_client(fake_time) as sg:
        errors = await _every_kind_of_failure(sg, mocked)
    with pytest.raises(ClientStateError) as closed:
        await sg.ips.get(IP)
    errors.append(closed.value)
    with pytest.raises(ConfigurationError) as config:
        SendGridIPAM(api_key=API_KEY, base_url="http://example.com")
    errors.append(config.value)

    kinds = {type(e).__name__ for e in errors}
    assert {"BadRequestError", "AuthenticationError", "PermissionDeniedError",
            "NotFoundError", "RateLimitError", "ServerError", "APIError", "DecodeError",
            "TransportError", "RequestTimeoutError", "AmbiguousResultError",
            "ValidationError", "ClientStateError", "ConfigurationError"} <= kinds
    assert any(isinstance(e, AmbiguousResultError) for e in errors)
    assert any(type(e) is TransportError for e in errors)
    for exc in errors:
        assert API_KEY not in str(exc), exc
        assert API_KEY not in repr(exc), exc
        text = "".join(traceback.format_exception(exc))
        assert API_KEY not in text, text
        for value in vars(exc).values():
            assert API_KEY not in repr(value), (exc, value)


async def test_key_not_in_debug_logs(
    mocked: RecordingResponses, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sendgrid_ipam")
    async with make_client(fake_time) as sg:
        await _every_kind_of_failure(sg, mocked)
        # a rate-limit window that holds the next call at the gate
        mocked.get(GET_IP, status=429, headers={"Retry-After": "2"},
                   payload={"errors": [{"field": None, "message": "too many requests"}]})
        mocked.get(GET_IP, payload=IP_REPLY)
        await sg.ips.get(IP)
    records = [r for r in caplog.records if r.name.startswith("sendgrid_ipam")]
    assert records, "the failures above should have been logged"
    for record in records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in repr(vars(record))
    assert API_KEY not in caplog.text
