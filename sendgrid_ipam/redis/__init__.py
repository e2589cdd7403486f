"""Several processes, one client: the coordination seam on Redis (``pip install
"sendgrid-ipam[redis]"``).

`RedisCoordinator` shares, through one Redis server, what `MemoryCoordinator` shares between
the calls of one process: the rate-limit gate (a 429 seen by one process holds that endpoint
for all), the retry budget, and write leases (one writer per account, pool name or IPAM
account across every process, renewed while held, fenced before every write)::

    coordinator = RedisCoordinator.from_url("redis://127.0.0.1:6379/0", namespace="acme")
    try:
        async with SendGridIPAM(key, coordinator=coordinator) as sg:
            ...
    finally:
        await coordinator.aclose()

When Redis cannot be reached, writes are not sent: they raise `CoordinatorUnavailableError`.

`RedisJournal` is the journal on Redis: bulk-run workers started with the same requests and
``journal="redis://..."`` share the run (see `sendgrid_ipam.bulk`).
"""

from ..coordination.base import CoordinatorUnavailableError
from ._budget import SharedRetryBudget
from .coordinator import RedisCoordinator
from .journal import RedisJournal

__all__ = ["CoordinatorUnavailableError", "RedisCoordinator", "RedisJournal", "SharedRetryBudget"]
