"""What the fake holds: the addresses it handed out, IPAM IPs, IP pools and partner accounts.

The methods here only change data; the handlers check every rule first, so that a refused
request leaves the state as it was.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

# RFC 5737 documentation networks first: never routable, so a test cannot reach a real host.
DOCUMENTATION_NETWORKS = ("192.0.2", "198.51.100", "203.0.113")
# Then RFC 2544's benchmarking network 198.18.0.0/15, never routed on the internet either:
# the three documentation /24s hold only 762 addresses, and the demo alone buys 3,600.
BENCHMARKING_NETWORKS = tuple(f"198.{18 + n // 256}.{n % 256}" for n in range(512))
NETWORKS = DOCUMENTATION_NETWORKS + BENCHMARKING_NETWORKS
_HOSTS = range(1, 255)  # no .0 or .255


class AddressesExhausted(Exception):
    """More addresses were asked for than the non-routable networks have left."""


@attrs.define
class Address:
    """An address the fake handed out: `seq` orders addresses by when they were handed out."""

    ip: str
    seq: int
    region: str


class Addresses:
    """Hands out each non-routable address once, in order, and remembers every one."""

    capacity = len(NETWORKS) * len(_HOSTS)

    def __init__(self) -> None:
        self.known: dict[str, Address] = {}

    @property
    def remaining(self) -> int:
        """How many addresses are left to hand out."""
        return self.capacity - len(self.known)

    def allocate(self, count: int, region: str) -> list[str]:
        """`count` new addresses in `region`, or AddressesExhausted (and none) if too few remain."""
        if count > self.remaining:
            raise AddressesExhausted
        ips = []
        for _ in range(count):
            seq = len(self.known)
            network, host = divmod(seq, len(_HOSTS))
            ip = f"{NETWORKS[network]}.{_HOSTS[host]}"
            self.known[ip] = Address(ip, seq, region)
            ips.append(ip)
        return ips

    def seq(self, ip: str) -> int:
        """The order key of a known address."""
        return self.known[ip].seq


@attrs.define
class IpamIp:
    """An IP address of the IP Address Management API."""

    ip: str
    seq: int
    region: str
    added_at: int
    is_auto_warmup: bool
    is_parent_assigned: bool
    is_enabled: bool | None = True
    is_leased: bool = True
    updated_at: int | None = None
    subusers: dict[str, None] = attrs.Factory(dict)


@attrs.define
class Pool:
    """An IP pool; `ips` is an ordered set."""

    id: int
    name: str
    ips: dict[str, None] = attrs.Factory(dict)


class State:
    """All data of one fake SendGrid."""

    def __init__(self) -> None:
        self.addresses = Addresses()
        self.ipam: dict[str, IpamIp] = {}
        self.ipam_order: list[IpamIp] = []  # ascending seq; IPAM has no operation that removes
        self.pools: dict[int, Pool] = {}  # ascending id
        self.pool_ids: dict[str, int] = {}  # by name
        self.pools_of_ip: dict[str, dict[int, None]] = {}
        self.accounts: dict[str, list[str]] = {}  # account id -> IPs, ascending seq
        self._last_pool_id = 0

    # IPAM IPs
    def add_ipam_ip(
        self,
        *,
        region: str,
        added_at: int,
        is_auto_warmup: bool,
        is_parent_assigned: bool,
        is_enabled: bool | None = True,
        is_leased: bool = True,
        subusers: Iterable[str] = (),
    ) -> IpamIp:
        """Hand out a new address as an IPAM IP (AddressesExhausted when none is left)."""
        (ip,) = self.addresses.allocate(1, region)
        record = IpamIp(
            ip=ip,
            seq=self.addresses.seq(ip),
            region=region,
            added_at=added_at,
            is_auto_warmup=is_auto_warmup,
            is_parent_assigned=is_parent_assigned,
            is_enabled=is_enabled,
            is_leased=is_leased,
            subusers=dict.fromkeys(subusers),
        )
        self.ipam[ip] = record
        self.ipam_order.append(record)
        return record

    # pools
    def create_pool(self, name: str, ips: Iterable[str]) -> Pool:
        """A new pool holding `ips`."""
        self._last_pool_id += 1
        pool = Pool(self._last_pool_id, name)
        self.pools[pool.id] = pool
        self.pool_ids[name] = pool.id
        self.assign(pool, ips)
        return pool

    def rename_pool(self, pool: Pool, name: str) -> None:
        """Give the pool a new name."""
        del self.pool_ids[pool.name]
        pool.name = name
        self.pool_ids[name] = pool.id

    def delete_pool(self, pool: Pool) -> None:
        """Remove the pool; its IPs stay known."""
        self.unassign(pool, list(pool.ips))
        del self.pools[pool.id]
        del self.pool_ids[pool.name]

    def assign(self, pool: Pool, ips: Iterable[str]) -> None:
        """Put the IPs in the pool (those already in it stay where they are)."""
        for ip in ips:
            pool.ips[ip] = None
            self.pools_of_ip.setdefault(ip, {})[pool.id] = None

    def unassign(self, pool: Pool, ips: Iterable[str]) -> None:
        """Take the IPs out of the pool."""
        for ip in ips:
            pool.ips.pop(ip, None)
            self.pools_of_ip.get(ip, {}).pop(pool.id, None)

    def pool_ips(self, pool: Pool) -> list[str]:
        """The pool's IPs in the order they were handed out."""
        return sorted(pool.ips, key=self.addresses.seq)

    def pool_refs(self, ip: str) -> list[dict[str, str]]:
        """The pools holding an IP, as the API lists them: ``[{"id", "name"}]`` by id."""
        ids = sorted(self.pools_of_ip.get(ip, ()))
        return [{"id": str(pool_id), "name": self.pools[pool_id].name} for pool_id in ids]

    def region(self, ip: str) -> str:
        """The region of a known IP."""
        return self.addresses.known[ip].region

    # partner accounts
    def add_account_ips(self, account_id: str, count: int, region: str) -> list[str]:
        """Hand out `count` new addresses to a partner account (AddressesExhausted if too few)."""
        ips = self.addresses.allocate(count, region)
        self.accounts[account_id].extend(ips)
        return ips

    def remove_account_ips(self, account_id: str, ips: Iterable[str]) -> None:
        """Take IPs away from a partner account; they are never handed out again."""
        removed = set(ips)
        self.accounts[account_id] = [ip for ip in self.accounts[account_id] if ip not in removed]
