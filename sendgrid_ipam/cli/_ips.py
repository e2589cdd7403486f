"""``sendgrid-ipam ips ...``: the account's IPs and their subusers (IP Address Management)."""

from __future__ import annotations

from typing import Any

import click

from ..models import IpAddress
from ._common import run_api, table_option
from ._output import confirm, show_list, show_one

__all__ = ["ips"]

include_region_option = click.option(
    "--include-region", is_flag=True, default=None, help="Include the region in the reply."
)


@click.group()
def ips() -> None:
    """The account's IPs, their settings and their subusers."""


@ips.command("list")
@click.option("--ip", metavar="IP", help="Only this IP.")
@click.option("--limit", type=int, metavar="N",
              help="Page size, 1-5000: IPs per request (every page is listed).")
@click.option("--leased/--not-leased", "is_leased", default=None, help="Filter on leasing.")
@click.option("--enabled/--disabled", "is_enabled", default=None, help="Filter on enabled.")
@click.option("--parent-assigned/--no-parent-assigned", "is_parent_assigned", default=None,
              help="Filter on assignment to the parent account.")
@click.option("--pool", metavar="POOL_ID", help="Only IPs in this pool.")
@click.option("--start-added-at", type=int, metavar="UNIX_TIME", help="Added at or after.")
@click.option("--end-added-at", type=int, metavar="UNIX_TIME", help="Added at or before.")
@click.option("--region", type=click.Choice(["all", "eu", "us"]), help="Only this region.")
@include_region_option
@table_option
def list_(table: bool, **filters: Any) -> None:
    """List the account's IPs (ListIp)."""
    show_list(table, IpAddress, lambda sg: sg.ips.list(**filters))


@ips.command()
@click.argument("ip")
@include_region_option
@table_option
def get(ip: str, include_region: bool | None, table: bool) -> None:
    """Show an IP's settings and pools (GetIp)."""
    show_one(table, lambda sg: sg.ips.get(ip, include_region=include_region))


@ips.command()
@click.option("--auto-warmup/--no-auto-warmup", "is_auto_warmup", required=True,
              help="Warm the IP up automatically.")
@click.option("--parent-assigned/--no-parent-assigned", "is_parent_assigned", required=True,
              help="Let the parent account send from it.")
@click.option("--subuser", "subusers", multiple=True, metavar="SUBUSER",
              help="Assign it to this subuser (repeatable, up to 100).")
@click.option("--region", type=click.Choice(["us", "eu"]), help="The IP's region (default us).")
@include_region_option
@table_option
def add(
    is_auto_warmup: bool, is_parent_assigned: bool, subusers: tuple[str, ...],
    region: Any, include_region: bool | None, table: bool,
) -> None:
    """Add a new IP to the account (AddIp)."""
    show_one(table, lambda sg: sg.ips.add(
        is_auto_warmup=is_auto_warmup, is_parent_assigned=is_parent_assigned,
        subusers=subusers or None, region=region, include_region=include_region,
    ))


@ips.command()
@click.argument("ip")
@click.option("--auto-warmup/--no-auto-warmup", "is_auto_warmup", default=None,
              help="Warm the IP up automatically.")
@click.option("--parent-assigned/--no-parent-assigned", "is_parent_assigned", default=None,
              help="Let the parent account send from it.")
@click.option("--enabled/--disabled", "is_enabled", default=None, help="Enable the IP.")
@table_option
def update(
    ip: str, is_auto_warmup: bool | None, is_parent_assigned: bool | None,
    is_enabled: bool | None, table: bool,
) -> None:
    """Change an IP's settings; give at least one (UpdateIp)."""
    show_one(table, lambda sg: sg.ips.update(
        ip, is_auto_warmup=is_auto_warmup, is_parent_assigned=is_parent_assigned,
        is_enabled=is_enabled,
    ))


@ips.command("list-subusers")
@click.argument("ip")
@click.option("--limit", type=int, metavar="N",
              help="Page size, 1-100: subusers per request (every page is listed).")
@table_option
def list_subusers(ip: str, limit: int | None, table: bool) -> None:
    """List the subusers assigned to an IP (ListSubUserAssignedToIp).

    One JSON string per line.
    """
    show_list(table, str, lambda sg: sg.ips.list_subusers(ip, limit=limit))


@ips.command("add-subusers")
@click.argument("ip")
@click.argument("subusers", metavar="SUBUSER...", nargs=-1, required=True)
@table_option
def add_subusers(ip: str, subusers: tuple[str, ...], table: bool) -> None:
    """Assign subusers to an IP (AddSubUsersToIp)."""
    show_one(table, lambda sg: sg.ips.add_subusers(ip, subusers))


@ips.command("remove-subusers")
@click.argument("ip")
@click.argument("subusers", metavar="SUBUSER...", nargs=-1, required=True)
def remove_subusers(ip: str, subusers: tuple[str, ...]) -> None:
    """Remove subusers from an IP (DeleteSubUsersFromIp)."""
    run_api(lambda sg: sg.ips.remove_subusers(ip, subusers))
    confirm(f"removed {len(subusers)} subuser(s) from {ip}")
