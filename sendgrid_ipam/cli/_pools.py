"""``sendgrid-ipam pools ...``: IP pools (IP Address Management)."""

from __future__ import annotations

from typing import Any

import click

from ..models import IpPool, PoolIp
from ._common import run_api, table_option
from ._ips import include_region_option
from ._output import confirm, show_list, show_one

__all__ = ["pools"]

pool_id_argument = click.argument("pool_id")
ips_argument = click.argument("ips", metavar="IP...", nargs=-1, required=True)


@click.group()
def pools() -> None:
    """IP pools and the IPs in them."""


@pools.command("list")
@click.option("--ip", metavar="IP", help="Only pools holding this IP.")
@click.option("--limit", type=int, metavar="N",
              help="Page size, 1-100: pools per request (every page is listed).")
@click.option("--region", type=click.Choice(["all", "eu", "us"]), help="Only this region.")
@include_region_option
@table_option
def list_(table: bool, **filters: Any) -> None:
    """List the pools, each with a preview of its IPs (ListIpPool)."""
    show_list(table, IpPool, lambda sg: sg.pools.list(**filters))


@pools.command()
@click.argument("name")
@click.argument("ips", metavar="[IP]...", nargs=-1)
# The style before IPs were arguments everywhere; still accepted, no longer shown.
@click.option("--ip", "ip_options", multiple=True, metavar="IP", hidden=True)
@table_option
def create(name: str, ips: tuple[str, ...], ip_options: tuple[str, ...], table: bool) -> None:
    """Create a pool, with up to 100 IPs in it (CreateIpPool)."""
    show_one(table, lambda sg: sg.pools.create(name, ips=ips + ip_options))


@pools.command()
@pool_id_argument
@include_region_option
@table_option
def get(pool_id: str, include_region: bool | None, table: bool) -> None:
    """Show a pool with a preview of its IPs (GetIpPool)."""
    show_one(table, lambda sg: sg.pools.get(pool_id, include_region=include_region))


@pools.command()
@pool_id_argument
@click.argument("name")
@table_option
def rename(pool_id: str, name: str, table: bool) -> None:
    """Rename a pool (UpdateIpPool)."""
    show_one(table, lambda sg: sg.pools.rename(pool_id, name))


@pools.command()
@pool_id_argument
def delete(pool_id: str) -> None:
    """Delete a pool; its IPs stay on the account (DeleteIpPool)."""
    run_api(lambda sg: sg.pools.delete(pool_id))
    confirm(f"deleted pool {pool_id}")


@pools.command("list-ips")
@pool_id_argument
@click.option("--limit", type=int, metavar="N",
              help="Page size, 1-100: IPs per request (every page is listed).")
@include_region_option
@table_option
def list_ips(pool_id: str, limit: int | None, include_region: bool | None, table: bool) -> None:
    """List the IPs in a pool (ListIpAssignedToIpPool)."""
    show_list(table, PoolIp, lambda sg: sg.pools.list_ips(
        pool_id, limit=limit, include_region=include_region))


@pools.command("add-ips")
@pool_id_argument
@ips_argument
@table_option
def add_ips(pool_id: str, ips: tuple[str, ...], table: bool) -> None:
    """Add IPs to a pool (AddIpsToIpPool)."""
    show_one(table, lambda sg: sg.pools.add_ips(pool_id, ips))


@pools.command("remove-ips")
@pool_id_argument
@ips_argument
def remove_ips(pool_id: str, ips: tuple[str, ...]) -> None:
    """Remove IPs from a pool (DeleteIpsFromIpPool).

    They stay on the account.
    """
    run_api(lambda sg: sg.pools.remove_ips(pool_id, ips))
    confirm(f"removed {len(ips)} IP(s) from pool {pool_id}")
