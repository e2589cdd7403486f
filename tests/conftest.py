"""Shared fixtures: aioresponses on aiohttp 3.14, a mocked HTTP layer and a ready client.

Unit tests never sleep and never reach the network: the client gets a fake clock whose
``sleep`` only records the delay and moves the clock on, and every request is answered by
aioresponses (an unmatched request fails with a connection error instead of going out).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import attrs
import pytest
from aioresponses import aioresponses
from aioresponses import core as aioresponses_core
from multidict import CIMultiDict

from sendgrid_ipam import RetryPolicy, SendGridIPAM

API_KEY = "SG.unit-test-key"
BASE = "https://api.sendgrid.com"

# ---------------------------------------------------------------- aioresponses on aiohttp 3.14

# aiohttp 3.14 added a required ``stream_writer`` argument to ClientResponse.__init__, which
# aioresponses 0.7.9 does not pass: every mocked call raises TypeError. This supplies the
# argument in tests only (users keep any aiohttp).
# Remove this once aioresponses releases the fix for pnuckowski/aioresponses#289.
_NEEDS_STREAM_WRITER = tuple(map(int, aiohttp.__version__.split(".")[:2])) >= (3, 14)


class _NoStreamWriter:
    """Stands in for the writer of a request that aioresponses never really sent."""

    output_size = 0


class _CompatClientResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _NoStreamWriter())
        super().__init__(method, url, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _aioresponses_aiohttp_314_compat() -> Iterator[None]:
    """Let aioresponses 0.7.9 build responses on aiohttp >= 3.14 (pnuckowski/aioresponses#289)."""
    if not _NEEDS_STREAM_WRITER:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aioresponses_core, "ClientResponse", _CompatClientResponse)
        yield


# ---------------------------------------------------------------- time that never waits


class FakeTime:
    """A monotonic clock, a Unix clock and an async sleep that records and never waits.

    ``sleep`` moves both clocks on by the delay, so code that waits "until" a moment
    (the rate-limit gate, deadlines) sees that moment arrive at once.
    """

    def __init__(self, start: float = 1_000.0, epoch: float = 1_800_000_000.0) -> None:
        self.now = start
        self.epoch = epoch - start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall_clock(self) -> float:
        return self.epoch + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


# ---------------------------------------------------------------- the mocked HTTP layer


_SESSION_DEFAULT = object()


@attrs.frozen
class Sent:
    """One request as the client handed it to aiohttp, with the session's defaults applied.

    ``headers`` are what aiohttp would send: the session's default headers updated with the
    request's own (case-insensitive); ``timeout`` the request's, or else the session's.
    """

    method: str
    url: str
    headers: CIMultiDict[str]
    data: bytes | None
    timeout: aiohttp.ClientTimeout | None
    session: aiohttp.ClientSession = attrs.field(eq=False, repr=False)

    @property
    def json(self) -> Any:
        return None if self.data is None else json.loads(self.data)


class RecordingResponses(aioresponses):
    """aioresponses that also lists the requests exactly as the client sent them.

    aioresponses normalises the URLs it keys ``requests`` by (sorted, re-encoded query);
    ``sent`` reads the arguments of the patched ``ClientSession._request`` instead, so a
    test sees the very URL string the client built.
    """

    @property
    def sent(self) -> list[Sent]:
        patched = aiohttp.client.ClientSession._request
        calls = getattr(patched, "call_args_list", None)
        assert calls is not None, "aioresponses is not active"
        out = []
        for call in calls:
            session, method, url = call.args[:3]
            kwargs = call.kwargs
            headers = CIMultiDict(session.headers)
            headers.update(CIMultiDict(kwargs.get("headers") or {}))
            timeout = kwargs.get("timeout", _SESSION_DEFAULT)
            if timeout is _SESSION_DEFAULT:
                timeout = session.timeout
            data = kwargs.get("data")
            out.append(Sent(
                method=method,
                url=str(url),
                headers=headers,
                data=data if data is None else bytes(data),
                timeout=timeout,
                session=session,
            ))
        return out

    @property
    def last(self) -> Sent:
        sent = self.sent
        assert sent, "no request was sent"
        return sent[-1]


@pytest.fixture
def mocked() -> Iterator[RecordingResponses]:
    with RecordingResponses() as mock:
        yield mock


def retry_policy(**overrides: Any) -> RetryPolicy:
    """Three attempts with tiny backoffs (which the fake sleep only records)."""
    settings: dict[str, Any] = {"max_attempts": 3, "initial_backoff": 0.01, "max_backoff": 0.05}
    return RetryPolicy(**(settings | overrides))


def make_client(fake_time: FakeTime, **kwargs: Any) -> SendGridIPAM:
    settings: dict[str, Any] = {
        "api_key": API_KEY,
        "retry": retry_policy(),
        "sleep": fake_time.sleep,
        "clock": fake_time.clock,
        "wall_clock": fake_time.wall_clock,
        "seed": 1,
    }
    return SendGridIPAM(**(settings | kwargs))


@pytest.fixture
async def client(
    mocked: RecordingResponses, fake_time: FakeTime
) -> AsyncIterator[SendGridIPAM]:
    """A client with a test key, quick retries and fake time, inside ``async with``."""
    async with make_client(fake_time) as sg:
        yield sg


# ---------------------------------------------------------------- one call of each operation

IP = "192.0.2.1"
POOL_ID = "12345"
ACCOUNT_ID = "sg1a2bcd3ef4ab5c67d8efab91c01de2fa"


async def collect(iterator: AsyncIterator[Any]) -> list[Any]:
    """Every item of a list operation, across pages."""
    return [item async for item in iterator]


@attrs.frozen
class OpCall:
    """How a user calls one of the 18 operations, and where that request goes."""

    operation_id: str
    method: str
    path: str
    invoke: Callable[..., Awaitable[Any]]

    @property
    def url(self) -> str:
        return BASE + self.path

    @property
    def url_pattern(self) -> re.Pattern[str]:
        """The operation's URL with any query string."""
        return re.compile(re.escape(self.url) + r"(\?.*)?$")

    def sent(self, mock: RecordingResponses) -> list[Sent]:
        """The requests of this operation among everything sent."""
        return [s for s in mock.sent
                if s.method == self.method and self.url_pattern.match(s.url)]


_ACCOUNT_PATH = f"/v3/partners/accounts/{ACCOUNT_ID}/ips"
_POOL_PATH = f"/v3/send_ips/pools/{POOL_ID}"
_IP_PATH = f"/v3/send_ips/ips/{IP}"

OPS: dict[str, OpCall] = {op.operation_id: op for op in [
    OpCall("ListAccountIps", "GET", _ACCOUNT_PATH,
           lambda sg, **o: collect(sg.provisioning.list_ips(ACCOUNT_ID, **o))),
    OpCall("AddAccountIps", "POST", _ACCOUNT_PATH,
           lambda sg, **o: sg.provisioning.add_ips(ACCOUNT_ID, count=2, region="us", **o)),
    OpCall("RemoveAccountIps", "DELETE", _ACCOUNT_PATH,
           lambda sg, **o: sg.provisioning.remove_ips(ACCOUNT_ID, ips=["192.0.2.10"], **o)),
    OpCall("ListIp", "GET", "/v3/send_ips/ips",
           lambda sg, **o: collect(sg.ips.list(**o))),
    OpCall("AddIp", "POST", "/v3/send_ips/ips",
           lambda sg, **o: sg.ips.add(is_auto_warmup=True, is_parent_assigned=True,
                                      subusers=["12345"], **o)),
    OpCall("GetIp", "GET", _IP_PATH, lambda sg, **o: sg.ips.get(IP, **o)),
    OpCall("UpdateIp", "PATCH", _IP_PATH,
           lambda sg, **o: sg.ips.update(IP, is_enabled=False, **o)),
    OpCall("ListSubUserAssignedToIp", "GET", f"{_IP_PATH}/subusers",
           lambda sg, **o: collect(sg.ips.list_subusers(IP, **o))),
    OpCall("AddSubUsersToIp", "POST", f"{_IP_PATH}/subusers:batchAdd",
           lambda sg, **o: sg.ips.add_subusers(IP, ["12345", "67890"], **o)),
    OpCall("DeleteSubUsersFromIp", "POST", f"{_IP_PATH}/subusers:batchDelete",
           lambda sg, **o: sg.ips.remove_subusers(IP, ["12345"], **o)),
    OpCall("ListIpPool", "GET", "/v3/send_ips/pools",
           lambda sg, **o: collect(sg.pools.list(**o))),
    OpCall("CreateIpPool", "POST", "/v3/send_ips/pools",
           lambda sg, **o: sg.pools.create("transactional_pool", ips=[IP, "127.0.0.2"], **o)),
    OpCall("GetIpPool", "GET", _POOL_PATH, lambda sg, **o: sg.pools.get(POOL_ID, **o)),
    OpCall("UpdateIpPool", "PUT", _POOL_PATH,
           lambda sg, **o: sg.pools.rename(POOL_ID, "marketing_pool", **o)),
    OpCall("DeleteIpPool", "DELETE", _POOL_PATH, lambda sg, **o: sg.pools.delete(POOL_ID, **o)),
    OpCall("ListIpAssignedToIpPool", "GET", f"{_POOL_PATH}/ips",
           lambda sg, **o: collect(sg.pools.list_ips(POOL_ID, **o))),
    OpCall("AddIpsToIpPool", "POST", f"{_POOL_PATH}/ips:batchAdd",
           lambda sg, **o: sg.pools.add_ips(POOL_ID, [IP], **o)),
    OpCall("DeleteIpsFromIpPool", "POST", f"{_POOL_PATH}/ips:batchDelete",
           lambda sg, **o: sg.pools.remove_ips(POOL_ID, [IP], **o)),
]}
"""The 18 operations by operationId, each with a typical call."""

EMPTY_ACCOUNT_PAGE = {"result": [], "pages": {}}
EMPTY_IPAM_PAGE = {"result": [], "_metadata": {"next_params": {"after_key": None}}}


def serve_checks(mock: RecordingResponses, operation_id: str) -> None:
    """Answer the lookups a write that is not safe to resend makes around its attempts.

    AddAccountIps notes the account's newest IP and AddIp the IPs added lately before they
    send (and list again after an ambiguous failure); CreateIpPool lists the pools after
    one. Each lookup finds nothing.
    """
    if operation_id == "AddAccountIps":
        mock.get(OPS["ListAccountIps"].url_pattern, payload=EMPTY_ACCOUNT_PAGE, repeat=True)
    elif operation_id == "AddIp":
        mock.get(OPS["ListIp"].url_pattern, payload=EMPTY_IPAM_PAGE, repeat=True)
    elif operation_id == "CreateIpPool":
        mock.get(OPS["ListIpPool"].url_pattern, payload=EMPTY_IPAM_PAGE, repeat=True)
