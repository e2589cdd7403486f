"""``sendgrid-ipam`` with short retry waits, for tests that run the command in a process.

    python tests/cli/_fast_cli.py ARGS...

The command itself, unchanged, except that the policy ``--max-attempts`` builds (and the
default one) waits 10-50 ms between attempts and 20 ms after an ambiguous failure, instead
of SendGrid-sized waits, so that a test of several runs stays within seconds.
"""

from __future__ import annotations

import functools
import sys

from sendgrid_ipam import RetryPolicy
from sendgrid_ipam.cli import _common, main

FAST = functools.partial(RetryPolicy, initial_backoff=0.01, max_backoff=0.05, settle=0.02)

if __name__ == "__main__":
    _common.RetryPolicy = FAST  # type: ignore[misc]
    sys.exit(main())
