"""``python -m sendgrid_ipam.cli``: the same as the ``sendgrid-ipam`` command."""

from . import main

raise SystemExit(main())
