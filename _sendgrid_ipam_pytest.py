"""pytest plugin of sendgrid-ipam: the ``fake_sendgrid`` and ``sendgrid_client`` fixtures.

Registered through the ``pytest11`` entry point, so pytest loads it in every run of every
project that installs sendgrid-ipam. That is why it is a top-level module rather than a part of
the ``sendgrid_ipam`` package (as Hypothesis does with ``_hypothesis_pytestplugin``): importing
any ``sendgrid_ipam.*`` module first runs the package's ``__init__``, which imports the client,
aiohttp, attrs and cattrs. Here only pytest (and pytest-asyncio when it is installed, which
pytest has loaded already) is imported until a test asks for one of the fixtures; the library
is imported inside them. ``sendgrid_ipam.testing.pytest_plugin`` re-exports the fixtures for
``pytest -p sendgrid_ipam.testing.pytest_plugin``.

- ``fake_sendgrid``: a started `FakeSendGrid` (api_key "SG.test", partner account "acct-1"),
  closed after the test.
- ``sendgrid_client``: a `SendGridIPAM` pointed at ``fake_sendgrid``, opened with
  ``async with`` and closed after the test.

Both are async fixtures and need pytest-asyncio (any mode); without it they fail with a
message saying so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sendgrid_ipam import SendGridIPAM
    from sendgrid_ipam.testing import FakeSendGrid

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only where pytest-asyncio is missing
    pytest_asyncio = None  # type: ignore[assignment]

__all__ = ["fake_sendgrid", "sendgrid_client"]

_NEEDS_PYTEST_ASYNCIO = (
    "the {name} fixture of sendgrid-ipam is async: install pytest-asyncio "
    "(pip install pytest-asyncio) to use it"
)


async def _fake_sendgrid() -> AsyncIterator[FakeSendGrid]:
    """A started fake SendGrid on 127.0.0.1 (``sendgrid_ipam.testing.FakeSendGrid``).

    API key ``SG.test`` (``fake_sendgrid.api_key``), one partner account ``acct-1``, base URL
    ``fake_sendgrid.url``; its request log (``fake_sendgrid.count(...)``) and fault scripts
    (``fake_sendgrid.script(...)``) are the test's to use. Stopped after the test.
    """
    from sendgrid_ipam.testing import FakeSendGrid  # the library is imported only when used

    async with FakeSendGrid(api_key="SG.test", accounts=["acct-1"]) as fake:
        yield fake


async def _sendgrid_client(fake_sendgrid: FakeSendGrid) -> AsyncIterator[SendGridIPAM]:
    """A ``sendgrid_ipam.SendGridIPAM`` client pointed at the ``fake_sendgrid`` fixture.

    Uses the fake's key and URL with the default retry policy; opened with ``async with``
    and closed after the test.
    """
    from sendgrid_ipam import SendGridIPAM  # the library is imported only when used

    async with SendGridIPAM(api_key=fake_sendgrid.api_key, base_url=fake_sendgrid.url) as client:
        yield client


def _async_fixture(name: str, function: Callable[..., AsyncIterator[Any]]) -> Any:
    """`function` as a pytest-asyncio fixture called `name`, or one that explains what is
    missing when pytest-asyncio is not installed."""
    if pytest_asyncio is not None:
        return pytest_asyncio.fixture(function, name=name)

    def missing() -> None:
        pytest.fail(_NEEDS_PYTEST_ASYNCIO.format(name=name), pytrace=False)

    missing.__doc__ = function.__doc__
    return pytest.fixture(missing, name=name)


fake_sendgrid = _async_fixture("fake_sendgrid", _fake_sendgrid)
sendgrid_client = _async_fixture("sendgrid_client", _sendgrid_client)
