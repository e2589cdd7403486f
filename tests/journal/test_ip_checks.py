"""The journal's fast IPv4 check agrees with the slow one on every string."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendgrid_ipam.errors import ValidationError
from sendgrid_ipam.journal import base

_PARTS = st.sampled_from(["0", "1", "00", "01", "9", "10", "99", "255", "256", "300", "1000",
                          "\u0661", "", " ", "x", "\0", "\ud800", "::1", "-1", "+1", "0x1"])
_LOOKS_LIKE_IPV4 = st.lists(_PARTS, min_size=1, max_size=6).map(".".join)


def _valid_slowly(ip: str) -> bool:
    if base._IPV4.fullmatch(ip):
        return True
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return False
    return True


@given(st.lists(st.one_of(_LOOKS_LIKE_IPV4, st.text(max_size=20)), min_size=1, max_size=4))
def test_a_list_of_ips_is_accepted_exactly_when_each_ip_is_valid(ips: list[str]) -> None:
    base._VALID_IPS.clear()  # the fast path, not the memory of earlier examples
    if all(_valid_slowly(ip) for ip in ips):
        assert base._ips("ips", tuple(ips)) == tuple(dict.fromkeys(ips))
    else:
        with pytest.raises(ValidationError):
            base._ips("ips", tuple(ips))
