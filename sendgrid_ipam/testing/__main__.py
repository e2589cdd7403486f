"""``python -m sendgrid_ipam.testing``: serve a FakeSendGrid on 127.0.0.1 until Ctrl-C.

Prints the base URL on one line once listening, e.g. ``http://127.0.0.1:4010``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._faults import FaultRates
from ._serve import serve

_RATES = ("error", "applied_error", "applied_drop", "slow", "html", "malformed", "late")


def build_parser() -> argparse.ArgumentParser:
    """The command line of the standalone fake server."""
    parser = argparse.ArgumentParser(
        prog="python -m sendgrid_ipam.testing",
        description="Serve a fake SendGrid IPAM / IP Provisioning API on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=4010, help="port (0 picks a free one)")
    parser.add_argument("--api-key", default="SG.test", help="the API key to accept")
    parser.add_argument(
        "--account",
        dest="accounts",
        action="append",
        metavar="ID",
        help="a partner account that exists (repeatable; default acct-1)",
    )
    parser.add_argument("--ipam-ips", type=int, default=0, help="IPAM IPs to start with")
    parser.add_argument("--rate-limit", type=int, help="requests per window (default: none)")
    parser.add_argument("--rate-window", type=float, default=1.0, help="window in seconds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    for name in _RATES:
        parser.add_argument(
            f"--fault-{name.replace('_', '-')}",
            type=float,
            default=0.0,
            metavar="RATE",
            help=f"per-request probability of {name.replace('_', ' ')} faults",
        )
    parser.add_argument(
        "--fault-status",
        dest="fault_statuses",
        type=int,
        action="append",
        metavar="STATUS",
        help="status of error faults (repeatable; default 500 502 503 504)",
    )
    parser.add_argument("--slow-delay", type=float, default=0.05, help="seconds of slow faults")
    parser.add_argument(
        "--late-delay",
        type=float,
        nargs=2,
        default=(0.5, 3.0),
        metavar=("MIN", "MAX"),
        help="late writes land after MIN..MAX seconds (default 0.5 3)",
    )
    parser.add_argument(
        "--fault-operation",
        dest="fault_operations",
        action="append",
        metavar="OPERATION_ID",
        help="limit random faults to this operationId (repeatable; default all)",
    )
    return parser


def _fault_rates(args: argparse.Namespace) -> FaultRates | None:
    rates = {name: getattr(args, f"fault_{name}") for name in _RATES}
    if not any(rates.values()):
        return None
    return FaultRates(
        **rates,
        statuses=args.fault_statuses or (500, 502, 503, 504),
        slow_delay=args.slow_delay,
        late_delay_min=args.late_delay[0],
        late_delay_max=args.late_delay[1],
        operations=args.fault_operations,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        serve(
            port=args.port,
            api_key=args.api_key,
            accounts=args.accounts or ["acct-1"],
            rate_limit=args.rate_limit,
            rate_window=args.rate_window,
            faults=_fault_rates(args),
            seed=args.seed,
            ipam_ips=args.ipam_ips,
        )
    except ValueError as exc:
        parser.error(str(exc))
    except OSError as exc:
        print(f"{parser.prog}: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
