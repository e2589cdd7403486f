"""Request and response models.

Request models validate every limit the official specs state and raise `ValidationError`
naming the field and the rule, before anything is sent. Response models are lenient: the IP
Address Management API is in beta, so unknown fields are ignored and absent ones get a
neutral default. Field names are the JSON names of the spec.

``Region`` is ``"eu"`` or ``"us"``, where IPs are provisioned; ``RegionFilter`` adds ``"all"``,
for the list filters.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any, Literal

import attrs

from ._text import shown
from .errors import ValidationError

try:
    from socket import AF_INET as _AF_INET
    from socket import inet_pton as _inet_pton
except ImportError:  # (a platform without it: the regular expression below is used)
    _inet_pton = None  # type: ignore[assignment]

__all__ = [
    "AccountIp",
    "AccountIps",
    "AddedIp",
    "IpAddress",
    "IpPool",
    "IpPoolIps",
    "PoolIp",
    "PoolRef",
    "ProvisionRequest",
    "Region",
    "RegionCount",
    "RegionFilter",
    "SubuserAssignment",
    "UpdatedIp",
]

Region = Literal["eu", "us"]
RegionFilter = Literal["all", "eu", "us"]

# ---------------------------------------------------------------- validators (request side)

_Validator = Any


def _fail(attribute: attrs.Attribute[Any], rule: str) -> ValidationError:
    return ValidationError(attribute.name, rule)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text_problem(value: object, *, rule: str = "must be a non-empty string") -> str | None:
    """Why ``value`` cannot be sent as text (None when it can): every text field's rule.

    Text must be a non-empty str with a UTF-8 form: a lone surrogate ("\\ud800") has none,
    and would otherwise fail as UnicodeEncodeError while the request is being built.
    """
    if not isinstance(value, str) or not value:
        return f"{rule}, not {shown(value)}"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return f"must be valid Unicode text, not {shown(value)} (it holds a lone surrogate)"
    return None


def id_problem(value: object) -> str | None:
    """Why ``value`` cannot be sent as an id (a str, or an int written out in decimal)."""
    if _is_int(value):
        try:
            str(value)
        except ValueError:  # beyond sys.get_int_max_str_digits()
            return f"must be an id, not {shown(value)}"
        return None
    return text_problem(value, rule="must be an id (a string or an int)")


def int_between(low: int, high: int, *, optional: bool = False) -> _Validator:
    """An integer from ``low`` to ``high`` inclusive (None allowed when optional)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if not _is_int(value):
            raise _fail(attribute, f"must be an integer from {low} to {high}, not {shown(value)}")
        assert isinstance(value, int)
        if not low <= value <= high:
            raise _fail(attribute, f"must be from {low} to {high}, got {shown(value)}")

    return check


def _rule(test: Callable[[Any], bool], rule: str, optional: bool) -> _Validator:
    """A validator raising ``ValidationError(field, f"{rule}, not {value!r}")``."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if not test(value):
            raise _fail(attribute, f"{rule}, not {shown(value)}")

    return check


def one_of(*choices: str, optional: bool = False) -> _Validator:
    """One of the given strings (None allowed when optional)."""
    allowed = " or ".join(repr(c) for c in choices)
    return _rule(lambda v: isinstance(v, str) and v in choices, f"must be {allowed}", optional)


def boolean(*, optional: bool = False) -> _Validator:
    """True or False (None allowed when optional)."""
    return _rule(lambda v: isinstance(v, bool), "must be True or False", optional)


def non_negative_int(*, optional: bool = False) -> _Validator:
    """An integer of at least 0, such as a Unix timestamp."""
    return _rule(lambda v: _is_int(v) and v >= 0, "must be an integer of at least 0", optional)


def _as_tuple(value: object) -> object:
    # Strings are iterable: turning "10.0.0.1" into ten characters would hide the mistake.
    if isinstance(value, str | bytes):
        return value
    try:
        return tuple(value)  # type: ignore[arg-type]
    except TypeError:
        return value  # not iterable: the validator names the field


def string_list(
    *, min_items: int = 0, max_items: int, item: str = "string", ip_version: int | None = 0
) -> _Validator:
    """A list of ``min_items`` to ``max_items`` strings, no repeats.

    With ``ip_version`` 4 each must be an IPv4 address, with 0 any IP address, with None
    any non-empty string.
    """

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise _fail(attribute, f"must be a list of {item}s, not {type(value).__name__}")
        if not min_items <= len(value) <= max_items:
            raise _fail(
                attribute, f"must hold from {min_items} to {max_items} {item}s, got {len(value)}"
            )
        for entry in value:
            # (An ASCII string needs no more than that said of it: the common case, no call.)
            if not (type(entry) is str and entry.isascii() and entry) and (
                    problem := text_problem(entry, rule="must hold non-empty strings")
            ) is not None:
                raise _fail(attribute, problem)
            if ip_version is not None and not _is_ip(entry, ip_version):
                kind = "an IPv4 address" if ip_version == 4 else "an IP address"
                raise _fail(attribute, f"{shown(entry)} is not {kind}")
        if len(value) > 1 and len(set(value)) != len(value):  # (one IP: no set to build)
            raise _fail(attribute, f"must not repeat a {item}")

    return check


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _regex_ipv4(text: str) -> bool:
    return _IPV4.fullmatch(text) is not None


def _pton_ipv4(text: str) -> bool:
    try:
        _inet_pton(_AF_INET, text)
    except (OSError, ValueError):  # (ValueError: a NUL, or text with no UTF-8 form)
        return False
    return True


# Where the C library's inet_pton is strict (glibc, musl, the BSDs: four decimal octets of
# at most 255, no leading zero, nothing else), it accepts exactly what the regex accepts at
# about half the cost. Checked here on the cases a lenient one would get wrong; elsewhere
# the regex is kept. (tests/test_fast_paths.py compares the two on any text.)
_PTON_CASES = (
    "0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.0.10", "01.2.3.4", "1.2.3.00", "00.1.2.3",
    "256.1.2.3", "1.2.3.1000", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3",
    " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "0x1.2.3.4", "+1.2.3.4", "1.2.3.-4", "1.2.3.4\x00",
    "\u0661.2.3.4", "\uff11.2.3.4", "", "::1", "1.2.3.4/32", "1.2.3.4%0",
)
_STRICT_PTON = _inet_pton is not None and all(
    _pton_ipv4(case) is _regex_ipv4(case) for case in _PTON_CASES)
is_ipv4: Callable[[str], bool] = _pton_ipv4 if _STRICT_PTON else _regex_ipv4
"""Whether ``text`` is an IPv4 address in dotted decimal, with no leading zero."""


def _is_ip(text: str, version: int) -> bool:
    if is_ipv4(text):  # the common case, without the ipaddress module's cost
        return version in (0, 4)
    if "%" in text:
        return False  # ipaddress takes IPv6 zone ids ("fe80::1%eth0"): no API IP has one
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version in (0, address.version)


def check_ip(field: str, value: object) -> str:
    """Validate an IP address given as a path parameter; returns it.

    Raises:
        ValidationError: naming ``field``, for anything but an IPv4 or IPv6 address without
            a zone id.
    """
    if not isinstance(value, str) or not _is_ip(value, 0):
        raise ValidationError(field, f"must be an IP address, not {shown(value)}")
    return value


def _pool_name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise _fail(attribute, f"must be a string, not {type(value).__name__}")
    if not 2 <= len(value) <= 64:
        raise _fail(attribute, f"must be from 2 to 64 characters long, got {len(value)}")
    if not value.isascii() and (problem := text_problem(value)) is not None:  # (see above)
        raise _fail(attribute, problem)
    if value[0] in " .":
        raise _fail(attribute, "must not begin with a space or a period")


def _account_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if (problem := text_problem(value)) is not None:
        raise _fail(attribute, problem)


# ---------------------------------------------------------------- request models

Ips = tuple[str, ...]


@attrs.frozen
class AddAccountIpsBody:
    """AddAccountIps: how many IPs (1 to 10) and in which region."""

    count: int = attrs.field(validator=int_between(1, 10))
    region: Region = attrs.field(validator=one_of("eu", "us"))


@attrs.frozen
class RemoveAccountIpsBody:
    """RemoveAccountIps: 1 to 10 IPv4 addresses."""

    ips: Ips = attrs.field(converter=_as_tuple, validator=string_list(
        min_items=1, max_items=10, item="IP address", ip_version=4))


@attrs.frozen
class AddIpBody:
    """AddIp: a new IP with its warm-up and parent settings and up to 100 subusers."""

    is_auto_warmup: bool = attrs.field(validator=boolean())
    is_parent_assigned: bool = attrs.field(validator=boolean())
    subusers: Ips | None = attrs.field(
        default=None, converter=attrs.converters.optional(_as_tuple),
        validator=attrs.validators.optional(string_list(
            max_items=100, item="subuser id", ip_version=None)))
    region: Region | None = attrs.field(default=None, validator=one_of("eu", "us", optional=True))
    include_region: bool | None = attrs.field(default=None, validator=boolean(optional=True))


@attrs.frozen
class UpdateIpBody:
    """UpdateIp: at least one of the three settings."""

    is_auto_warmup: bool | None = attrs.field(default=None, validator=boolean(optional=True))
    is_parent_assigned: bool | None = attrs.field(default=None, validator=boolean(optional=True))
    is_enabled: bool | None = attrs.field(default=None, validator=boolean(optional=True))

    def __attrs_post_init__(self) -> None:
        if self.is_auto_warmup is None and self.is_parent_assigned is None and (
            self.is_enabled is None
        ):
            raise ValidationError(
                "is_auto_warmup", "at least one of is_auto_warmup, is_parent_assigned, "
                "is_enabled is required")


@attrs.frozen
class SubusersBody:
    """AddSubUsersToIp / DeleteSubUsersFromIp: a non-empty batch of subuser ids."""

    subusers: Ips = attrs.field(converter=_as_tuple, validator=string_list(
        min_items=1, max_items=1000, item="subuser id", ip_version=None))


@attrs.frozen
class CreatePoolBody:
    """CreateIpPool: a valid name and up to 100 IPs."""

    name: str = attrs.field(validator=_pool_name)
    ips: Ips = attrs.field(default=(), converter=_as_tuple, validator=string_list(
        max_items=100, item="IP address"))


def plain_create_pool(name: object, ips: object) -> Ips | None:
    """``CreatePoolBody(name, ips).ips`` when the arguments are of the common kind, which
    surely passes the model's checks: an ASCII ``name`` of 2 to 64 characters not beginning
    with a space or a period, and a list or tuple of at most 100 distinct IPv4 addresses.

    None for anything else: then build the `CreatePoolBody`, which checks it all and says
    what is wrong, if anything. (Skipping attrs' converter and validators here saves about
    two thirds of what validating a call's body costs; tests/test_fast_paths.py checks
    that whatever this accepts, the model accepts with the same fields.)
    """
    if (type(name) is not str or not 2 <= len(name) <= 64 or not name.isascii()
            or name[0] in " ."):
        return None
    if type(ips) is list:
        ips = tuple(ips)  # (now, before anything else can change the caller's list)
    elif type(ips) is not tuple:
        return None
    if len(ips) > 100:
        return None
    for ip in ips:
        if type(ip) is not str:
            return None
        if _STRICT_PTON:  # is_ipv4(ip), inlined: one call less per IP
            try:
                _inet_pton(_AF_INET, ip)
            except (OSError, ValueError):
                return None
        elif not _regex_ipv4(ip):
            return None
    if len(ips) > 1 and len(set(ips)) != len(ips):
        return None
    return ips


@attrs.frozen
class RenamePoolBody:
    """UpdateIpPool: the new name."""

    name: str = attrs.field(validator=_pool_name)


@attrs.frozen
class PoolIpsBody:
    """AddIpsToIpPool / DeleteIpsFromIpPool: 1 to 100 IPs."""

    ips: Ips = attrs.field(converter=_as_tuple, validator=string_list(
        min_items=1, max_items=100, item="IP address"))


@attrs.frozen
class ListIpQuery:
    """ListIp's filters; ``pool`` and ``is_parent_assigned`` exclude each other."""

    ip: str | None = attrs.field(default=None)
    limit: int | None = attrs.field(default=None, validator=int_between(1, 5000, optional=True))
    is_leased: bool | None = attrs.field(default=None, validator=boolean(optional=True))
    is_enabled: bool | None = attrs.field(default=None, validator=boolean(optional=True))
    is_parent_assigned: bool | None = attrs.field(default=None, validator=boolean(optional=True))
    pool: str | None = attrs.field(default=None)
    start_added_at: int | None = attrs.field(
        default=None, validator=non_negative_int(optional=True))
    end_added_at: int | None = attrs.field(default=None, validator=non_negative_int(optional=True))
    region: RegionFilter | None = attrs.field(
        default=None, validator=one_of("all", "eu", "us", optional=True))
    include_region: bool | None = attrs.field(default=None, validator=boolean(optional=True))

    def __attrs_post_init__(self) -> None:
        if self.ip is not None:
            check_ip("ip", self.ip)
        if self.pool is not None and self.is_parent_assigned is not None:
            raise ValidationError("pool", "cannot be used together with is_parent_assigned")
        if self.pool is not None and (problem := id_problem(self.pool)) is not None:
            raise ValidationError("pool", problem)


@attrs.frozen
class ListPoolsQuery:
    """ListIpPool's filters."""

    ip: str | None = attrs.field(default=None)
    limit: int | None = attrs.field(default=None, validator=int_between(1, 100, optional=True))
    region: RegionFilter | None = attrs.field(
        default=None, validator=one_of("all", "eu", "us", optional=True))
    include_region: bool | None = attrs.field(default=None, validator=boolean(optional=True))

    def __attrs_post_init__(self) -> None:
        if self.ip is not None:
            check_ip("ip", self.ip)


def _limit_within_max(instance: PageQuery, attribute: attrs.Attribute[Any], value: object) -> None:
    int_between(1, instance.max_limit, optional=True)(instance, attribute, value)


@attrs.frozen
class PageQuery:
    """A page size within the operation's bounds, and the region flag where it applies."""

    limit: int | None = attrs.field(default=None, validator=_limit_within_max)
    include_region: bool | None = attrs.field(default=None, validator=boolean(optional=True))
    max_limit: int = attrs.field(default=100, kw_only=True)


@attrs.frozen
class ProvisionRequest:
    """One account's share of a bulk provisioning run: ``count`` IPs in ``region``.

    Unlike a single AddAccountIps call, ``count`` may exceed 10: the bulk run splits it
    into requests of at most 10, sent one after another for the account.
    """

    account_id: str = attrs.field(validator=_account_id)
    count: int = attrs.field(validator=int_between(1, 100_000))
    region: Region = attrs.field(validator=one_of("eu", "us"))


# ---------------------------------------------------------------- response models


@attrs.frozen
class AccountIp:
    """An IP on a partner's customer account (ListAccountIps)."""

    ip: str
    region: str | None = None


@attrs.frozen
class AccountIps:
    """The IPs AddAccountIps added to an account.

    ``reconciled`` is True when the call failed ambiguously and the client found, by
    listing the account, that the attempt had in fact added these IPs.
    """

    ips: Ips = ()
    region: str | None = None
    reconciled: bool = False


@attrs.frozen
class PoolRef:
    """A pool an IP belongs to."""

    id: str = ""
    name: str = ""


@attrs.frozen
class RegionCount:
    """How many of a pool's IPs are in a region."""

    region: str | None = None
    count: int = 0


@attrs.frozen
class IpAddress:
    """An IP on the account, with its settings (ListIp, GetIp)."""

    ip: str = ""
    pools: tuple[PoolRef, ...] = ()
    is_auto_warmup: bool | None = None
    is_parent_assigned: bool | None = None
    is_enabled: bool | None = None
    is_leased: bool | None = None
    added_at: int | None = None
    updated_at: int | None = None
    region: str | None = None


@attrs.frozen
class AddedIp:
    """The IP AddIp added (``reconciled`` as for `AccountIps`)."""

    ip: str = ""
    is_auto_warmup: bool | None = None
    is_parent_assigned: bool | None = None
    subusers: Ips = ()
    region: str | None = None
    reconciled: bool = False


@attrs.frozen
class UpdatedIp:
    """An IP's settings after UpdateIp."""

    ip: str = ""
    is_auto_warmup: bool | None = None
    is_parent_assigned: bool | None = None
    is_enabled: bool | None = None


@attrs.frozen
class SubuserAssignment:
    """The subusers assigned to an IP after AddSubUsersToIp."""

    ip: str = ""
    subusers: Ips = ()


@attrs.frozen
class IpPool:
    """An IP pool with a preview of its IPs (ListIpPool, GetIpPool)."""

    id: str = ""
    name: str = ""
    ips_preview: Ips = ()
    total_ip_count: int | None = None
    regions: tuple[str, ...] = ()
    ip_count_by_region: tuple[RegionCount, ...] = ()


@attrs.frozen
class IpPoolIps:
    """A pool with the IPs it holds (CreateIpPool, AddIpsToIpPool).

    ``reconciled`` is True when CreateIpPool failed ambiguously and the client found the
    pool it had in fact created.
    """

    id: str = ""
    name: str = ""
    ips: Ips = ()
    reconciled: bool = False


@attrs.frozen
class PoolIp:
    """An IP in a pool (ListIpAssignedToIpPool)."""

    ip: str = ""
    region: str | None = None
    pools: tuple[PoolRef, ...] = ()
