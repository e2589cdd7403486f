"""The 18 operations of the two APIs: the one map from the official specs to this code.

Each row gives the spec's operationId, the method and path template, whether the request
may be sent again after an ambiguous failure without risk of doing the work twice, the
response model (of each item, for lists), how a list pages, and whether the spec serves the
operation from the global host only (AddIp, UpdateIp and the three subuser operations: an
``region="eu"`` client sends those to https://api.sendgrid.com).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

import attrs

from . import models
from ._convert import converter, structurer
from ._fast import READERS
from ._wire import encode_segment

__all__ = ["OPERATIONS", "Operation"]

Paging = Literal["after_key", "offset"]


@attrs.frozen
class Operation:
    """One API operation."""

    operation_id: str
    method: str
    path: str
    resend_safe: bool
    model: type[Any] | None = None
    paging: Paging | None = None
    global_only: bool = False
    deletes: bool = False
    """A delete: resent after an ambiguous failure, the API's "not found" means it is done."""
    read: Callable[[Any], Any] = attrs.field(init=False, eq=False, repr=False)
    segment: str | None = attrs.field(init=False, eq=False)
    """The name of the path's one parameter (None when it has none)."""
    before: str = attrs.field(init=False, eq=False, repr=False)
    after: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "read", _reader(self.model))
        names = re.findall(r"{(\w+)}", self.path)
        if len(names) > 1:
            raise ValueError(f"{self.operation_id}: one path parameter at most")
        before, _, after = self.path.partition(f"{{{names[0]}}}") if names else (self.path, "", "")
        object.__setattr__(self, "segment", names[0] if names else None)
        object.__setattr__(self, "before", before)
        object.__setattr__(self, "after", after)

    def render(self, value: object = None) -> str:
        """The path, with its parameter (if any) percent-encoded as one segment."""
        if self.segment is None:
            return self.path
        return self.before + encode_segment(self.segment, value) + self.after


def _passthrough(data: Any) -> Any:
    return data


def _reader(model: type[Any] | None) -> Callable[[Any], Any]:
    # Resolved once per operation: the hand-written reader where there is one (the models of
    # list items, read a thousand at a time), else the converter's generated function.
    if model is None:
        return _passthrough
    if model in READERS:
        return READERS[model]
    if attrs.has(model):
        return structurer(model)
    hook = converter.get_structure_hook(model)
    return lambda data: hook(data, model)


_IPAM = "/v3/send_ips"
_ACCOUNT = "/v3/partners/accounts/{account_id}/ips"

_TABLE = [
    # IP Provisioning (partners)
    Operation("ListAccountIps", "GET", _ACCOUNT, True, models.AccountIp, "offset"),
    Operation("AddAccountIps", "POST", _ACCOUNT, False, models.AccountIps),
    Operation("RemoveAccountIps", "DELETE", _ACCOUNT, True, deletes=True),
    # IP Address Management: IPs
    Operation("ListIp", "GET", f"{_IPAM}/ips", True, models.IpAddress, "after_key"),
    Operation("AddIp", "POST", f"{_IPAM}/ips", False, models.AddedIp, global_only=True),
    Operation("GetIp", "GET", f"{_IPAM}/ips/{{ip}}", True, models.IpAddress),
    Operation("UpdateIp", "PATCH", f"{_IPAM}/ips/{{ip}}", True, models.UpdatedIp,
              global_only=True),
    Operation(
        "ListSubUserAssignedToIp", "GET", f"{_IPAM}/ips/{{ip}}/subusers", True, str, "after_key",
        global_only=True,
    ),
    Operation(
        "AddSubUsersToIp", "POST", f"{_IPAM}/ips/{{ip}}/subusers:batchAdd", True,
        models.SubuserAssignment, global_only=True,
    ),
    Operation("DeleteSubUsersFromIp", "POST", f"{_IPAM}/ips/{{ip}}/subusers:batchDelete", True,
              global_only=True, deletes=True),
    # IP Address Management: pools
    Operation("ListIpPool", "GET", f"{_IPAM}/pools", True, models.IpPool, "after_key"),
    Operation("CreateIpPool", "POST", f"{_IPAM}/pools", False, models.IpPoolIps),
    Operation("GetIpPool", "GET", f"{_IPAM}/pools/{{poolid}}", True, models.IpPool),
    Operation("UpdateIpPool", "PUT", f"{_IPAM}/pools/{{poolid}}", True, models.PoolRef),
    Operation("DeleteIpPool", "DELETE", f"{_IPAM}/pools/{{poolid}}", True, deletes=True),
    Operation(
        "ListIpAssignedToIpPool", "GET", f"{_IPAM}/pools/{{poolid}}/ips", True, models.PoolIp,
        "after_key",
    ),
    Operation(
        "AddIpsToIpPool", "POST", f"{_IPAM}/pools/{{poolid}}/ips:batchAdd", True,
        models.IpPoolIps,
    ),
    Operation("DeleteIpsFromIpPool", "POST", f"{_IPAM}/pools/{{poolid}}/ips:batchDelete", True,
              deletes=True),
]

OPERATIONS: dict[str, Operation] = {op.operation_id: op for op in _TABLE}
"""Every operation by its spec operationId."""
