"""The ``fake_sendgrid`` and ``sendgrid_client`` fixtures, for ``pytest -p`` by this name.

pytest loads the plugin by itself through the ``pytest11`` entry point, from the top-level
module ``_sendgrid_ipam_pytest``: a module inside this package would make every pytest run of
every project that installs sendgrid-ipam import the whole library first (the package's
``__init__`` imports the client). Loading this module too is harmless: both names are the same
fixtures.
"""

from __future__ import annotations

from _sendgrid_ipam_pytest import fake_sendgrid, sendgrid_client

__all__ = ["fake_sendgrid", "sendgrid_client"]
