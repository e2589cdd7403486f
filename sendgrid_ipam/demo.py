"""The demo: the library's main job, end to end, through faults, on any machine.

It starts the fake SendGrid on 127.0.0.1 with faults on (about 10% of replies fail: 5xx with
nothing applied, 5xx after the change was applied, connections dropped after applying, and
writes that land late: a 504 or a dropped connection at once, the IPs bought 0.5-3 s later),
opens one 429 window part-way, and provisions IPs for many accounts with ``bulk_add_ips``,
recording the run in a journal (a temporary SQLite file). The run ends with its audit: the
accounts that met an ambiguous failure are listed again once late writes have had time to
land, and what they bought beyond the request is reported as excess and released. The demo
then puts the IPs obtained into pools and checks the fake's state against what the client
reported: every IP bought was reported, and no account holds more than it asked.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .bulk import BulkProgress, BulkResult
from .client import SendGridIPAM
from .models import ProvisionRequest
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .testing import FakeSendGrid

__all__ = ["DemoReport", "run_demo"]

POOL_SIZE = 100
"""The most IPs a pool may hold (and so the size of the demo's pools)."""


@attrs.frozen
class DemoReport:
    """What the demo did, checked against the fake server's own state.

    ``duplicates``: IPs on the accounts beyond what was asked at the end (bought twice and
    neither reported nor released); ``lost``: IPs on the accounts that the client did not
    report; ``excess``: IPs late writes bought beyond what was asked, found by the audit (and
    reported); ``released``: those of them removed again; ``ips_added``: the IPs the run
    obtained and kept.
    """

    accounts: int
    ips_requested: int
    ips_added: int
    duplicates: int
    lost: int
    failures: int
    retries: int
    reconciled: int
    pools: int
    pool_ips: int
    requests: int
    elapsed_s: float
    excess: int = 0
    released: int = 0

    @property
    def ok(self) -> bool:
        """True when every IP asked for was obtained, reported once, and none was lost."""
        return (
            self.duplicates == 0 and self.lost == 0 and self.failures == 0
            and self.ips_added == self.ips_requested
            and self.pool_ips == self.ips_added
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary keys, as printed by ``sendgrid-ipam demo --json``."""
        return {
            "accounts": self.accounts,
            "ips_requested": self.ips_requested,
            "ips_added": self.ips_added,
            "duplicates": self.duplicates,
            "failures": self.failures,
            "retries": self.retries,
            "reconciled": self.reconciled,
            "excess": self.excess,
            "released": self.released,
            "elapsed_s": round(self.elapsed_s, 2),
        }


async def run_demo(
    *,
    accounts: int = 300,
    ips_per_account: int = 12,
    seed: int = 0,
    fault_rate: float = 0.10,
    rate_limit_window: float = 1.0,
    late_delay: tuple[float, float] = (0.5, 3.0),
    audit_delay: float = 5.0,
    progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Run the demo against a fake SendGrid on 127.0.0.1 and report what happened.

    Args:
        accounts: customer accounts to provision.
        ips_per_account: IPs for each (above 10, split into several requests).
        seed: makes the faults repeatable.
        fault_rate: the share of replies that fail (split between the fault kinds).
        rate_limit_window: seconds of the one 429 window opened a third of the way in
            (0: none).
        late_delay: (least, most) seconds after which a late write lands.
        audit_delay: seconds the audit waits after an account's last ambiguous failure.
        progress: called with (accounts done, accounts in all) as the run goes.
    """
    from .testing import FakeSendGrid, FaultRates

    names = [f"acct-{n:04d}" for n in range(1, accounts + 1)]
    faults = FaultRates(
        error=fault_rate * 0.3, applied_error=fault_rate * 0.25, applied_drop=fault_rate * 0.25,
        late=fault_rate * 0.2, late_delay_min=late_delay[0], late_delay_max=late_delay[1],
    )
    api_key = "SG.demo-" + secrets.token_hex(12)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sendgrid-ipam-demo-") as directory:
        journal = Path(directory) / "demo.journal"
        async with FakeSendGrid(api_key=api_key, accounts=names, faults=faults,
                                seed=seed) as fake:
            return await _run(fake, api_key, journal, ips_per_account, rate_limit_window,
                              audit_delay, progress, started)


async def _run(
    fake: FakeSendGrid,
    api_key: str,
    journal: Path,
    ips_per_account: int,
    rate_limit_window: float,
    audit_delay: float,
    progress: Callable[[int, int], None] | None,
    started: float,
) -> DemoReport:
    names = list(fake.accounts)
    accounts = len(names)
    async with (
        SendGridIPAM(api_key, base_url=fake.url, retry=RetryPolicy(max_attempts=6)) as sg,
    ):
        done = 0
        window_opened = rate_limit_window <= 0

        def on_progress(event: BulkProgress) -> None:
            nonlocal done, window_opened
            if event.result is None:
                return
            done += 1
            if progress is not None:
                progress(done, accounts)
            if not window_opened and done >= accounts // 3:
                window_opened = True
                fake.rate_limit_window(rate_limit_window)

        requests = [ProvisionRequest(name, ips_per_account, "us") for name in names]
        result = await sg.provisioning.bulk_add_ips(
            requests, on_progress=on_progress, journal=journal, audit_delay=audit_delay,
            release_excess=True)
        pools, pool_ips = await _pool_everything(sg, result)
        on_accounts = {name: fake.account_ips(name) for name in names}
        requests_sent = len(fake.log)

    reported = [ip for r in result.results for ip in r.ips]
    held = [ip for ips in on_accounts.values() for ip in ips]
    asked = {r.account_id: r.requested for r in result.results}
    return DemoReport(
        accounts=accounts,
        ips_requested=result.ips_requested,
        ips_added=len({ip for r in result.results for ip in r.held}),
        duplicates=sum(max(0, len(ips) - asked[name]) for name, ips in on_accounts.items())
        + (len(reported) - len(set(reported))),
        lost=len(set(held) - set(reported)),
        failures=len(result.failed),
        retries=result.retries,
        reconciled=result.reconciled,
        pools=pools,
        pool_ips=pool_ips,
        requests=requests_sent,
        elapsed_s=time.perf_counter() - started,
        excess=result.ips_excess,
        released=result.ips_released,
    )


async def _pool_everything(sg: SendGridIPAM, result: BulkResult) -> tuple[int, int]:
    """Put the IPs obtained (and kept) into pools of up to 100; returns (pools, IPs pooled)."""
    ips = [ip for r in result.results for ip in r.held]
    chunks = [ips[i:i + POOL_SIZE] for i in range(0, len(ips), POOL_SIZE)]
    created = await asyncio.gather(*(
        sg.pools.create(f"demo-pool-{n:03d}", ips=chunk) for n, chunk in enumerate(chunks, 1)
    ))
    return len(created), sum(len(pool.ips) for pool in created)
