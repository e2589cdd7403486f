"""Bulk provisioning under faults: ``sg.provisioning.bulk_add_ips`` over the fake SendGrid,
fault-free against ~10% injected faults.

Reports the time ratio faulty / fault-free, requests sent per IP obtained, and the
correctness counts that must all be 0: IPs an account got beyond what was asked (a retried
write applied twice), IPs the fake gave an account that the client did not report (lost), IPs
the client reported that the account does not have (phantom), IPs reported twice.

The fake (sendgrid_ipam.testing.FakeSendGrid) runs on loopback in a process of its own, a
fresh one per run, so that the figure is the client's time, as ``bench_client``'s is (see
``_fake_process.py``); ``--in-process`` runs it in this process instead, sharing the client's
core, for comparison. Exits 1 if any correctness count is not 0.

``--journal`` measures the journal's overhead instead: a fault-free run without a journal
against the same run recording to a fresh SQLite journal (``bulk_add_ips(journal=PATH)``,
opening and closing it included in the time). ``--latency 0.02`` makes the fake wait 20 ms
before it handles each request (every scenario), as a real API's round trip does: then the
client waits far more than it works, and the figure says what the journal costs a run as
users see it.

Run from the project root:  .venv/bin/python -m benchmarks.bench_bulk [--journal]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from benchmarks._common import (
    Ratio,
    loopback_only,
    markdown_table,
    median,
    print_header,
    stop_on_sigterm,
    text_table,
    write_json,
)
from benchmarks._fake_process import (
    FakeProcess,
    FakeSettings,
    FakeSnapshot,
    make_fake,
    rate_limit_windows,
    snapshot_of,
)
from sendgrid_ipam import BulkResult, ProvisionRequest, RetryPolicy, SendGridIPAM
from sendgrid_ipam.testing import FakeSendGrid

MODULE: Final = "benchmarks.bench_bulk"
API_KEY: Final = "SG.bench"
CHUNK: Final = 10  # IPs per AddAccountIps request, at most (the spec's limit)
RUN_TIMEOUT: Final = 300.0
INITIAL_BACKOFF: Final = 0.01
MAX_BACKOFF: Final = 0.1
# The audit of accounts that met an ambiguous failure waits this long after the last one
# (default 5 s), scaled down as settle is (1 s -> 0.01 s): the fake's faults land at once,
# never late, and a 5 s floor under every faulty run would measure only that wait.
AUDIT_DELAY: Final = 0.05
# How many addresses the fake can hand out in all (its non-routable networks).
FAKE_ADDRESSES: Final = FakeSendGrid(api_key="SG.count", accounts=()).addresses_left


@dataclass(frozen=True, slots=True)
class Workload:
    accounts: int
    ips_per_account: int
    region: Literal["eu", "us"]
    concurrency: int

    @property
    def ips_requested(self) -> int:
        return self.accounts * self.ips_per_account

    @property
    def writes_needed(self) -> int:
        return self.accounts * math.ceil(self.ips_per_account / CHUNK)

    def account_ids(self) -> list[str]:
        return [f"acct-{n:04d}" for n in range(self.accounts)]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    error: float = 0.0
    applied_error: float = 0.0
    applied_drop: float = 0.0
    window_every: float = 0.0
    window_length: float = 0.0
    journal: bool = False  # record the run in a fresh SQLite journal
    latency: float = 0.0  # seconds the fake waits before handling each request

    def settings(self, accounts: tuple[str, ...], seed: int) -> FakeSettings:
        return FakeSettings(API_KEY, accounts, seed, self.error, self.applied_error,
                            self.applied_drop, self.window_every, self.window_length,
                            self.latency)


@dataclass(frozen=True, slots=True)
class Check:
    """Correctness counts over all accounts of one run; every one must be 0."""

    beyond_asked: int = 0  # IPs an account got beyond its count
    lost: int = 0  # on the account at the fake, not reported by the client
    phantom: int = 0  # reported by the client, not on the account
    reported_twice: int = 0

    @property
    def ok(self) -> bool:
        return not (self.beyond_asked or self.lost or self.phantom or self.reported_twice)

    def __add__(self, other: Check) -> Check:
        return Check(self.beyond_asked + other.beyond_asked, self.lost + other.lost,
                     self.phantom + other.phantom, self.reported_twice + other.reported_twice)


@dataclass(frozen=True, slots=True)
class Run:
    scenario: str
    seed: int
    seconds: float
    requests: int
    requests_by_operation: dict[str, int]
    faults: dict[str, int]
    writes_applied: int
    ips_requested: int
    ips_obtained: int
    accounts_failed: int
    attempts: int
    retries: int
    reconciled: int
    limited: int = 0
    check: Check = field(default_factory=Check)
    cpu_seconds: float = 0.0  # the client process's CPU time over the run (all threads)

    @property
    def requests_per_ip(self) -> float:
        return self.requests / self.ips_obtained if self.ips_obtained else math.inf


def check_account(actual_ips: Sequence[str], asked: int, reported: Sequence[str]) -> Check:
    actual = set(actual_ips)  # the fake's accounts start with no IPs
    reported_set = set(reported)
    return Check(
        beyond_asked=max(0, len(actual) - asked),
        lost=len(actual - reported_set),
        phantom=len(reported_set - actual),
        reported_twice=len(reported) - len(reported_set),
    )


def tally(scenario: Scenario, seed: int, timed: tuple[float, float], fake: FakeSnapshot,
          result: BulkResult) -> Run:
    seconds, cpu_seconds = timed
    check = Check()
    for account in result.results:
        check += check_account(fake.account_ips[account.account_id], account.requested,
                               account.ips)
    return Run(
        scenario=scenario.name, seed=seed, seconds=seconds, requests=fake.requests,
        requests_by_operation=fake.by_operation, faults=fake.faults,
        writes_applied=fake.writes_applied,
        ips_requested=result.ips_requested, ips_obtained=result.ips_added,
        accounts_failed=len(result.failed), attempts=sum(a.attempts for a in result.results),
        retries=result.retries, reconciled=result.reconciled, limited=fake.limited,
        check=check, cpu_seconds=cpu_seconds,
    )


async def provision(url: str, seed: int, workload: Workload,
                    journal: Path | None = None) -> tuple[tuple[float, float], BulkResult]:
    """The timed part: one bulk run against the fake at ``url`` (with a journal file).
    Returns its wall time and the CPU time of this process (every thread) over it."""
    requests = [ProvisionRequest(a, workload.ips_per_account, workload.region)
                for a in workload.account_ids()]
    retry = RetryPolicy(initial_backoff=INITIAL_BACKOFF, max_backoff=MAX_BACKOFF,
                        settle=INITIAL_BACKOFF)
    async with SendGridIPAM(api_key=API_KEY, base_url=url, retry=retry, seed=seed) as sg:
        started, cpu = time.perf_counter(), time.process_time()
        async with asyncio.timeout(RUN_TIMEOUT):
            result = await sg.provisioning.bulk_add_ips(
                requests, concurrency=workload.concurrency, journal=journal,
                audit_delay=AUDIT_DELAY)
        return (time.perf_counter() - started, time.process_time() - cpu), result


async def run_once(scenario: Scenario, seed: int, workload: Workload, in_process: bool) -> Run:
    """One run on a fresh fake: in a process of its own (the default), or in this one."""
    settings = scenario.settings(tuple(workload.account_ids()), seed)
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as directory:
        journal = Path(directory) / "run.journal" if scenario.journal else None
        if in_process:
            async with make_fake(settings) as fake, rate_limit_windows(fake, settings):
                timed, result = await provision(fake.url, seed, workload, journal)
                return tally(scenario, seed, timed, snapshot_of(fake, settings.accounts),
                             result)
        with FakeProcess(settings) as served:
            timed, result = await provision(served.url, seed, workload, journal)
            return tally(scenario, seed, timed, served.snapshot(), result)


async def run_all(scenarios: Sequence[Scenario], runs: int, workload: Workload,
                  in_process: bool) -> list[Run]:
    """``runs`` runs of each scenario, alternating (and alternating which goes first), after
    one untimed warm-up run of each."""
    for scenario in scenarios:
        await run_once(scenario, -1, workload, in_process)
    results = []
    for seed in range(runs):
        order = scenarios if seed % 2 == 0 else list(reversed(scenarios))
        for scenario in order:
            run = await run_once(scenario, seed, workload, in_process)
            print(f"  seed {seed} {scenario.name}: {run.seconds:.3f} s, "
                  f"CPU {run.cpu_seconds:.3f} s, {run.requests} "
                  f"requests, {run.ips_obtained}/{run.ips_requested} IPs, "
                  f"{'ok' if run.check.ok else run.check}", file=sys.stderr, flush=True)
            results.append(run)
    return results


# --------------------------------------------------------------------------------------------
# Reporting


@dataclass(frozen=True, slots=True)
class BulkSummary:
    scenario: str
    runs: int
    seconds: float
    ratio: Ratio
    requests_per_ip: float
    requests: float
    retries: float
    reconciled: float
    limited: float
    writes_applied: float
    accounts_failed: int
    ips_short: int
    faults: dict[str, int]
    operations: dict[str, int]
    check: Check
    cpu_seconds: float = 0.0
    cpu_ratio: Ratio = field(default_factory=lambda: Ratio(None))
    # the median over seeds of this run's time / the first scenario's
    paired: Ratio = field(default_factory=lambda: Ratio(None))
    paired_cpu: Ratio = field(default_factory=lambda: Ratio(None))


def _paired(results: Sequence[Run], name: str, base: str, cpu: bool) -> Ratio:
    """The median over seeds of (run of `name` / run of `base` with the same seed): the two
    ran next to each other, under much the same load."""
    def value(run: Run) -> float:
        return run.cpu_seconds if cpu else run.seconds

    bases = {r.seed: value(r) for r in results if r.scenario == base}
    ratios = [value(r) / bases[r.seed] for r in results
              if r.scenario == name and bases.get(r.seed)]
    return Ratio(median(ratios) if ratios else None)


def summarise(results: Sequence[Run], scenarios: Sequence[Scenario]) -> list[BulkSummary]:
    base_seconds = median([r.seconds for r in results if r.scenario == scenarios[0].name])
    base_cpu = median([r.cpu_seconds for r in results if r.scenario == scenarios[0].name])
    summaries = []
    for scenario in scenarios:
        mine = [r for r in results if r.scenario == scenario.name]
        check = Check()
        faults: Counter[str] = Counter()
        operations: Counter[str] = Counter()
        for run in mine:
            check += run.check
            faults.update(run.faults)
            operations.update(run.requests_by_operation)
        seconds = median([r.seconds for r in mine])
        summaries.append(BulkSummary(
            scenario=scenario.name, runs=len(mine), seconds=seconds,
            ratio=Ratio.of(seconds, base_seconds),
            requests_per_ip=sum(r.requests for r in mine) / max(1, sum(r.ips_obtained
                                                                     for r in mine)),
            requests=median([r.requests for r in mine]),
            retries=median([r.retries for r in mine]),
            reconciled=median([r.reconciled for r in mine]),
            limited=median([r.limited for r in mine]),
            writes_applied=median([r.writes_applied for r in mine]),
            accounts_failed=sum(r.accounts_failed for r in mine),
            ips_short=sum(r.ips_requested - r.ips_obtained for r in mine),
            faults=dict(faults), operations=dict(operations), check=check,
            cpu_seconds=(cpu := median([r.cpu_seconds for r in mine])),
            cpu_ratio=Ratio.of(cpu, base_cpu),
            paired=_paired(results, scenario.name, scenarios[0].name, cpu=False),
            paired_cpu=_paired(results, scenario.name, scenarios[0].name, cpu=True),
        ))
    return summaries


HEADERS: Final = ("scenario", "time (median)", "vs fault-free", "requests/IP", "requests",
                  "AddAccountIps applied", "retries", "reconciled", "429s", "failed accounts",
                  "IPs short", "beyond asked", "lost", "phantom", "reported twice")


def rows(summaries: Sequence[BulkSummary]) -> list[list[str]]:
    return [
        [s.scenario, f"{s.seconds * 1000:,.0f} ms", str(s.ratio), f"{s.requests_per_ip:.3f}",
         f"{s.requests:,.0f}", f"{s.writes_applied:,.0f}", f"{s.retries:,.0f}",
         f"{s.reconciled:,.0f}", f"{s.limited:,.0f}", str(s.accounts_failed), str(s.ips_short),
         str(s.check.beyond_asked), str(s.check.lost), str(s.check.phantom),
         str(s.check.reported_twice)]
        for s in summaries
    ]


OVERHEAD_HEADERS: Final = ("scenario", "time (median)", "vs without", "paired", "CPU (median)",
                           "CPU vs without", "paired CPU", "CPU µs/account")


def overhead_rows(summaries: Sequence[BulkSummary], accounts: int) -> list[list[str]]:
    """--journal: wall and CPU time, each against the run without a journal."""
    return [
        [s.scenario, f"{s.seconds * 1000:,.0f} ms", str(s.ratio), str(s.paired),
         f"{s.cpu_seconds * 1000:,.0f} ms", str(s.cpu_ratio), str(s.paired_cpu),
         f"{s.cpu_seconds / accounts * 1e6:,.0f}"]
        for s in summaries
    ]


def explain(workload: Workload, runs: int, in_process: bool,
            summaries: Sequence[BulkSummary], latency: float = 0.0) -> list[str]:
    notes = [
        "The fake SendGrid ran " + ("in the benchmark's process, sharing the client's core."
                                    if in_process else "in a process of its own on loopback; "
                                    "the time is the client's.")
        + (f" Each request waited {latency * 1000:g} ms at the fake before it was handled "
           "(--latency)." if latency else ""),
        f"Workload: {workload.accounts} accounts x {workload.ips_per_account} IPs "
        f"({workload.ips_requested} IPs, at least {workload.writes_needed} AddAccountIps "
        f"requests of <= {CHUNK}), region {workload.region}, concurrency "
        f"{workload.concurrency}; {runs} runs per scenario after an untimed warm-up run, "
        "alternating, fresh fake and client each run (seed = run number, for the fake's "
        "faults and the client's jitter).",
        f"Retry policy for the benchmark: RetryPolicy(initial_backoff={INITIAL_BACKOFF}, "
        f"max_backoff={MAX_BACKOFF}, settle={INITIAL_BACKOFF}), other settings default, and "
        f"audit_delay={AUDIT_DELAY} (real use backs off 0.5 s to 8 s, settles 1 s before "
        "checking an ambiguous write and audits 5 s after the last one, so faulty runs "
        "take far longer there).",
        "time, requests, retries, reconciled, AddAccountIps applied: median per run. "
        "requests/IP: all requests the fake received (every operation, reconciliation reads "
        "included) / IPs obtained, over all runs. failed accounts, IPs short and the last "
        "four columns: totals over all runs; the last four must be 0.",
    ]
    for s in summaries:
        if s.scenario.endswith("429 windows"):
            notes.append(f"429 windows ({s.scenario}): the fake refuses every request (429, "
                         "Remaining 0, Reset the window's end) during each window; 429s: "
                         "median per run of the requests answered 429.")
        notes.append(f"requests by operation ({s.scenario}, all runs): "
                     + ", ".join(f"{k} {v}" for k, v in sorted(s.operations.items())))
        if s.faults:
            notes.append(f"faults injected ({s.scenario}, all runs): "
                         + ", ".join(f"{k} {v}" for k, v in sorted(s.faults.items())))
    return notes


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs instead of 15")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 15)")
    parser.add_argument("--accounts", type=int, default=1000,
                        help="accounts in the bulk run (a few dozen measure mostly the last "
                             "account's waits)")
    parser.add_argument("--ips-per-account", type=int, default=12,
                        help="more than 10 exercises the split into several requests")
    parser.add_argument("--region", choices=("us", "eu"), default="us")
    parser.add_argument("--concurrency", type=int, default=32, help="bulk_add_ips concurrency")
    parser.add_argument("--error", type=float, default=0.04,
                        help="faulty scenario: rate of errors not applied")
    parser.add_argument("--applied-error", type=float, default=0.03,
                        help="faulty scenario: rate of errors after the write was applied")
    parser.add_argument("--applied-drop", type=float, default=0.03,
                        help="faulty scenario: rate of dropped connections after applying")
    parser.add_argument("--journal", action="store_true",
                        help="compare fault-free runs without and with a journal (SQLite)")
    parser.add_argument("--window-every", type=float, default=0.0, metavar="SECONDS",
                        help="also run the faulty scenario with a 429 window (every request "
                             "refused) this often (0: not)")
    parser.add_argument("--window-length", type=float, default=0.1, metavar="SECONDS",
                        help="how long each 429 window lasts")
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS",
                        help="the fake waits this long before handling each request (a "
                             "network's delay; 0: loopback speed)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the fake in this process, on the client's core")
    parser.add_argument("--json", dest="json_path", metavar="PATH")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    args.runs = args.runs or (5 if args.quick else 15)
    if args.window_every < 0 or args.window_length <= 0 or not 0 <= args.latency <= 10:
        parser.error("--window-every must be >= 0, --window-length > 0 and --latency from 0 "
                     "to 10")
    if min(args.runs, args.accounts, args.ips_per_account, args.concurrency) < 1:
        parser.error("--runs, --accounts, --ips-per-account and --concurrency must be >= 1")
    if args.accounts * args.ips_per_account > FAKE_ADDRESSES * 0.9:
        parser.error(f"the fake has {FAKE_ADDRESSES} addresses in all; ask for at most 90% of "
                     "them so that an IP handed out twice shows as 'beyond asked', not as an "
                     "exhausted fake")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    loopback_only()
    stop_on_sigterm()
    started = time.perf_counter()
    workload = Workload(args.accounts, args.ips_per_account, args.region, args.concurrency)
    latency = args.latency
    faulty = Scenario("10% faults" if math.isclose(
        args.error + args.applied_error + args.applied_drop, 0.10) else "faulty",
        args.error, args.applied_error, args.applied_drop, latency=latency)
    scenarios = [Scenario("fault-free", latency=latency), faulty]
    if args.window_every:
        scenarios.append(Scenario(
            f"{faulty.name} + 429 windows", faulty.error, faulty.applied_error,
            faulty.applied_drop, args.window_every, args.window_length, latency=latency))
    if args.journal:
        late = f", {latency * 1000:g} ms latency" if latency else ""
        scenarios = [Scenario("fault-free" + late, latency=latency),
                     Scenario("fault-free, journal" + late, journal=True, latency=latency)]
    settings: dict[str, Any] = {"workload": asdict(workload), "runs": args.runs,
                                "fake": "in process" if args.in_process else "own process",
                                "scenarios": [asdict(s) for s in scenarios]}
    header = print_header("sendgrid-ipam bulk provisioning benchmark", MODULE,
                          {"settings": settings})
    results = asyncio.run(run_all(scenarios, args.runs, workload, args.in_process))
    summaries = summarise(results, scenarios)
    table = markdown_table if args.markdown else text_table
    print(table(HEADERS, rows(summaries)))
    print()
    if args.journal:
        print(table(OVERHEAD_HEADERS, overhead_rows(summaries, workload.accounts)))
        print()
        print(("- " if args.markdown else "") + "CPU: time.process_time() of the client's "
              "process (every thread: the event loop's and the journal's) over the timed run. "
              "paired: the median over seeds of each run / the run without a journal right "
              "next to it (they alternate).")
        print()
    print("\n".join(("- " if args.markdown else "") + n
                    for n in explain(workload, args.runs, args.in_process, summaries,
                                     args.latency)))
    ok = all(s.check.ok for s in summaries)
    print("\nduplicates/lost/phantom: " + ("all 0" if ok else "NOT 0: FAIL"))
    elapsed = time.perf_counter() - started
    print(f"total time {elapsed:.1f}s")
    write_json(args.json_path, {
        **header, "elapsed_s": round(elapsed, 2),
        "runs": [asdict(r) | {"requests_per_ip": r.requests_per_ip} for r in results],
        "summary": [asdict(s) | {"ratio": s.ratio.value} for s in summaries],
    })
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
