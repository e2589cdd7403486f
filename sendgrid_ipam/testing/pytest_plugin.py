"""pytest plugin of sendgrid-ipam: the ``fake_sendgrid`` and ``sendgrid_client`` fixtures.

Registered through the ``pytest11`` entry point, so pytest loads it in every run of every
project that installs sendgrid-ipam: it imports only pytest (and pytest-asyncio if present)
until a test asks for one of its fixtures.

- ``fake_sendgrid``: a started `FakeSendGrid` (api_key "SG.test", partner account "acct-1"),
  closed after the test.
- ``sendgrid_client``: a `SendGridIPAM` pointed at ``fake_sendgrid``, opened with
  ``async with`` and closed after the test.

Both are async fixtures and need pytest-asyncio (any mode); without it they fail with a
message saying so.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sendgrid_ipam.testing import FakeSendGrid

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only where pytest-asyncio is missing
    pytest_asyncio = None  # type: ignore[assignment]

_NEEDS_PYTEST_ASYNCIO = (
    "the {name} fixture of sendgrid-ipam is async: install pytest-asyncio "
    "(pip install pytest-asyncio) to use it"
)


async def _fake_sendgrid() -> AsyncIterator[FakeSendGrid]:
    from sendgrid_ipam.testing import FakeSendGrid  # imported only when a test asks

    async with FakeSendGrid(api_key="SG.test", accounts=["acct-1"]) as fake:
        yield fake


async def _sendgrid_client(fake_sendgrid: FakeSendGrid) -> AsyncIterator[Any]:
    client_class = importlib.import_module("sendgrid_ipam").SendGridIPAM
    async with client_class(api_key=fake_sendgrid.api_key, base_url=fake_sendgrid.url) as client:
        yield client


def _async_fixture(name: str, function: Callable[..., AsyncIterator[Any]]) -> Any:
    """`function` as a pytest-asyncio fixture called `name`, or one that explains what is
    missing when pytest-asyncio is not installed."""
    if pytest_asyncio is not None:
        return pytest_asyncio.fixture(function, name=name)

    def missing() -> None:
        pytest.fail(_NEEDS_PYTEST_ASYNCIO.format(name=name), pytrace=False)

    return pytest.fixture(missing, name=name)


fake_sendgrid = _async_fixture("fake_sendgrid", _fake_sendgrid)
sendgrid_client = _async_fixture("sendgrid_client", _sendgrid_client)
