"""sendgrid-ipam: an asyncio client for Twilio SendGrid's IP Address Management API
(/v3/send_ips: IPs, IP pools, subuser assignment) and its partner IP Provisioning API
(/v3/partners/accounts/{accountID}/ips).

    async with SendGridIPAM() as sg:          # the key from SENDGRID_API_KEY
        pool = await sg.pools.create("transactional", ips=["192.0.2.10"])
        async for ip in sg.provisioning.list_ips("acct-1"):
            print(ip.ip, ip.region)
"""

from ._version import __version__
from .audit import AccountAudit
from .bulk import AccountResult, BulkProgress, BulkResult, ProgressCallback
from .client import RequestOptions, SendGridIPAM
from .coordination import Coordinator, Lease, LeaseLostError, MemoryCoordinator
from .errors import (
    AmbiguousResultError,
    APIError,
    AttemptRecord,
    AuthenticationError,
    BadRequestError,
    BulkProvisioningError,
    ClientStateError,
    ConfigurationError,
    DecodeError,
    ErrorDetail,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    SendGridError,
    ServerError,
    TransportError,
    ValidationError,
)
from .hooks import RequestEvent, RequestHook, ResponseEvent, ResponseHook
from .journal import (
    Journal,
    JournalError,
    JournalMismatchError,
    SQLiteJournal,
    open_journal,
)
from .models import (
    AccountIp,
    AccountIps,
    AddedIp,
    IpAddress,
    IpPool,
    IpPoolIps,
    PoolIp,
    PoolRef,
    ProvisionRequest,
    Region,
    RegionCount,
    RegionFilter,
    SubuserAssignment,
    UpdatedIp,
)
from .ratelimit import RateLimit
from .retry import RetryBudget, RetryPolicy

__all__ = [
    "APIError",
    "AccountAudit",
    "AccountIp",
    "AccountIps",
    "AccountResult",
    "AddedIp",
    "AmbiguousResultError",
    "AttemptRecord",
    "AuthenticationError",
    "BadRequestError",
    "BulkProgress",
    "BulkProvisioningError",
    "BulkResult",
    "ClientStateError",
    "ConfigurationError",
    "Coordinator",
    "DecodeError",
    "ErrorDetail",
    "IpAddress",
    "IpPool",
    "IpPoolIps",
    "Journal",
    "JournalError",
    "JournalMismatchError",
    "Lease",
    "LeaseLostError",
    "MemoryCoordinator",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "PoolIp",
    "PoolRef",
    "ProgressCallback",
    "ProvisionRequest",
    "RateLimit",
    "RateLimitError",
    "Region",
    "RegionCount",
    "RegionFilter",
    "RequestEvent",
    "RequestHook",
    "RequestOptions",
    "RequestTimeoutError",
    "ResponseEvent",
    "ResponseHook",
    "RetryBudget",
    "RetryPolicy",
    "SQLiteJournal",
    "SendGridError",
    "SendGridIPAM",
    "ServerError",
    "SubuserAssignment",
    "TransportError",
    "UpdatedIp",
    "ValidationError",
    "__version__",
    "open_journal",
]
