"""The 18 operations the fake serves: operationId, method, path template and handler."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from . import _ipam as ipam
from . import _provisioning as provisioning
from ._replies import Api, Call, Reply
from ._state import State

Handler = Callable[[State, Call], Reply]

_IPS = "/v3/send_ips/ips"
_POOLS = "/v3/send_ips/pools"
_ACCOUNT = "/v3/partners/accounts/{accountID}/ips"


@attrs.frozen
class Operation:
    """One operation of the two APIs, as the spec names it."""

    operation_id: str
    method: str
    path: str
    handler: Handler = attrs.field(repr=False)

    @property
    def api(self) -> Api:
        """The API the operation belongs to."""
        return Api.PROVISIONING if self.path.startswith("/v3/partners/") else Api.IPAM

    @property
    def write(self) -> bool:
        """Whether the operation may change the state (so a fault can be "applied")."""
        return self.method != "GET"


OPERATIONS = (
    Operation("ListAccountIps", "GET", _ACCOUNT, provisioning.list_account_ips),
    Operation("AddAccountIps", "POST", _ACCOUNT, provisioning.add_account_ips),
    Operation("RemoveAccountIps", "DELETE", _ACCOUNT, provisioning.remove_account_ips),
    Operation("ListIp", "GET", _IPS, ipam.list_ip),
    Operation("AddIp", "POST", _IPS, ipam.add_ip),
    Operation("GetIp", "GET", f"{_IPS}/{{ip}}", ipam.get_ip),
    Operation("UpdateIp", "PATCH", f"{_IPS}/{{ip}}", ipam.update_ip),
    Operation("ListSubUserAssignedToIp", "GET", f"{_IPS}/{{ip}}/subusers", ipam.list_subusers),
    Operation("AddSubUsersToIp", "POST", f"{_IPS}/{{ip}}/subusers:batchAdd", ipam.add_subusers),
    Operation(
        "DeleteSubUsersFromIp", "POST", f"{_IPS}/{{ip}}/subusers:batchDelete", ipam.delete_subusers
    ),
    Operation("ListIpPool", "GET", _POOLS, ipam.list_pools),
    Operation("CreateIpPool", "POST", _POOLS, ipam.create_pool),
    Operation("GetIpPool", "GET", f"{_POOLS}/{{poolid}}", ipam.get_pool),
    Operation("UpdateIpPool", "PUT", f"{_POOLS}/{{poolid}}", ipam.rename_pool),
    Operation("DeleteIpPool", "DELETE", f"{_POOLS}/{{poolid}}", ipam.delete_pool),
    Operation("ListIpAssignedToIpPool", "GET", f"{_POOLS}/{{poolid}}/ips", ipam.list_pool_ips),
    Operation("AddIpsToIpPool", "POST", f"{_POOLS}/{{poolid}}/ips:batchAdd", ipam.add_pool_ips),
    Operation(
        "DeleteIpsFromIpPool", "POST", f"{_POOLS}/{{poolid}}/ips:batchDelete", ipam.delete_pool_ips
    ),
)

OPERATION_IDS = frozenset(operation.operation_id for operation in OPERATIONS)
