"""Instructions per call under callgrind: a cost figure that a noisy machine cannot move.

Each contender's client runs in a child process under ``valgrind --tool=callgrind`` (the
loopback server runs outside it, in its own process), once with a few calls and once with
many; the difference divided by the difference in calls is what one call costs, interpreter
start-up and imports cancelled out. The count is the same from run to run on the same
machine, whatever else the machine is doing, so the ratio to raw aiohttp is exact where the
req/s ratio of ``bench_client`` wobbles. It does not see time spent waiting, only work done.

GET and POST are one call each (``pools.get``, ``pools.create``); LIST is one whole 10-page
``ips.list`` of 100 IPs a page (`benchmarks._list`), with batch sizes of its own since each
call is ten requests and a thousand items.

    .venv/bin/python -m benchmarks.bench_instructions            # ~4 minutes; needs valgrind
    .venv/bin/python -m benchmarks.bench_instructions --methods list
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence

from benchmarks._common import (
    BenchServer,
    loopback_only,
    markdown_table,
    print_header,
    run_calls,
    text_table,
)
from benchmarks._contenders import BASELINE, CONTENDERS, ClientConfig
from benchmarks._list import ITEMS, LIST_CONTENDERS
from benchmarks.bench_client import make_call

COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
CONCURRENCY = 64
METHODS = ("get", "post", "list")


async def _list_child(contender: str, base_url: str, count: int) -> None:
    factory = LIST_CONTENDERS[contender]()
    async with factory(ClientConfig(base_url=base_url)) as list_all:

        async def call(_number: int) -> None:
            read = await list_all()
            if read != ITEMS:
                raise RuntimeError(f"{contender} read {read} items of {ITEMS}")

        await run_calls(call, count, CONCURRENCY)


async def _child(contender: str, method: str, base_url: str, count: int) -> None:
    if method == "list":
        await _list_child(contender, base_url, count)
        return
    factory = CONTENDERS[contender].load()
    async with factory(ClientConfig(base_url=base_url)) as calls:
        await run_calls(make_call(method, calls), count, CONCURRENCY)


def instructions(contender: str, method: str, base_url: str, count: int) -> int:
    """Instructions callgrind counts for a child process that makes ``count`` calls."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "benchmarks.bench_instructions",
        "--child", contender, method, base_url, str(count),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    found = COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total for {contender} {method}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_call(contender: str, method: str, base_url: str, few: int, many: int) -> float:
    """Instructions of one call: the difference between a long and a short run."""
    big = instructions(contender, method, base_url, many)
    small = instructions(contender, method, base_url, few)
    return (big - small) / (many - few)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, metavar=("CONTENDER", "METHOD", "URL", "CALLS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--few", type=int, default=200, help="calls in the short run")
    parser.add_argument("--many", type=int, default=1200, help="calls in the long run")
    parser.add_argument("--list-few", type=int, default=10, help="lists in the short run")
    parser.add_argument("--list-many", type=int, default=60, help="lists in the long run")
    parser.add_argument("--methods", default=",".join(METHODS), help="of get, post, list")
    parser.add_argument("--contenders", default="sendgrid_ipam,aiohttp")
    parser.add_argument("--markdown", action="store_true")
    options = parser.parse_args(argv)
    loopback_only()
    if options.child:
        contender, method, url, count = options.child
        asyncio.run(_child(contender, method, url, int(count)))
        return
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    contenders = options.contenders.split(",")
    methods = options.methods.split(",")
    if unknown := set(methods) - set(METHODS):
        parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    print_header("sendgrid-ipam instructions per call", "benchmarks.bench_instructions",
                 {"calls": [options.few, options.many], "in flight": CONCURRENCY,
                  "lists": [options.list_few, options.list_many]})
    rows = []
    with BenchServer() as server:
        for method in methods:
            few, many = ((options.list_few, options.list_many) if method == "list"
                         else (options.few, options.many))
            counts = {c: per_call(c, method, server.base_url, few, many) for c in contenders}
            base = counts.get(BASELINE)
            for contender, count in counts.items():
                ratio = "" if base is None else f"{base / count:.3f}x"
                rows.append([method.upper(), CONTENDERS[contender].label, f"{count:,.0f}", ratio])
    headers = ["method", "client", "instructions/call", "raw aiohttp / this (higher is better)"]
    table = markdown_table if options.markdown else text_table
    print(table(headers, rows))


if __name__ == "__main__":
    main()
