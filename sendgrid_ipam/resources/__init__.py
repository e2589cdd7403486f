"""The API's resources, grouped as ``sg.ips``, ``sg.pools`` and ``sg.provisioning``."""

from .ips import IpsResource
from .pools import PoolsResource
from .provisioning import ProvisioningResource

__all__ = ["IpsResource", "PoolsResource", "ProvisioningResource"]
