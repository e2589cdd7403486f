"""The ``sendgrid-ipam`` command: every API operation, bulk provisioning, the fake, the demo.

click and rich come with the ``cli`` extra and are imported only here, so that
``import sendgrid_ipam`` never needs them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_MISSING = 'error: the sendgrid-ipam command needs click and rich: pip install "sendgrid-ipam[cli]"'


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name not in ("click", "rich"):
            raise
        print(_MISSING, file=sys.stderr)
        return 1
    from ._app import cli

    status: int = cli.main(args=argv, prog_name="sendgrid-ipam", standalone_mode=False)
    return status
