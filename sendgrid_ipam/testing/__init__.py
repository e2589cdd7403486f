"""A fake SendGrid for tests, demos and benchmarks: IPAM and IP Provisioning over loopback.

    from sendgrid_ipam.testing import FakeSendGrid, Fault

    async with FakeSendGrid(api_key="SG.test", accounts=["acct-1"]) as fake:
        fake.script("AddAccountIps", Fault.applied_error(502))
        ...  # point a client at fake.url with fake.api_key
        assert fake.count("AddAccountIps", applied=True) == 1

Late-landing writes, as behind a gateway that times out while the backend still finishes: the
failure is answered at once and the write lands `delay` seconds later (at random rates too,
with ``FaultRates(late=0.1, late_delay_max=3.0)``)::

        fake.script("AddAccountIps", Fault.late(504, delay=0.2))  # or Fault.late_drop(0.2)
        ...  # the client meets a 504; the account holds nothing new yet
        await fake.settle()  # every late write has landed (fake.pending_late == 0)

Also: ``python -m sendgrid_ipam.testing --port 4010`` serves one from the command line, and the
pytest plugin (installed with the package) gives the ``fake_sendgrid`` and ``sendgrid_client``
fixtures.

The names are imported on first use, so that the pytest plugin, which every pytest run of
every project that installs this package loads, does not import aiohttp for nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fake import FakeSendGrid, PoolView
    from ._faults import Fault, FaultKind, FaultRates
    from ._log import RequestRecord
    from ._serve import serve

__all__ = [
    "FakeSendGrid",
    "Fault",
    "FaultKind",
    "FaultRates",
    "PoolView",
    "RequestRecord",
    "serve",
]

_MODULES = {
    "FakeSendGrid": "._fake",
    "Fault": "._faults",
    "FaultKind": "._faults",
    "FaultRates": "._faults",
    "PoolView": "._fake",
    "RequestRecord": "._log",
    "serve": "._serve",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
