"""``sendgrid-ipam provisioning ...``: partner customer accounts' IPs (IP Provisioning)."""

from __future__ import annotations

from typing import Any

import click

from ..models import AccountIp
from ._common import run_api, table_option
from ._output import confirm, show_list, show_one

__all__ = ["provisioning"]


@click.group()
def provisioning() -> None:
    """The IPs of a partner's customer accounts."""


@provisioning.command("add-ips")
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--count", type=int, required=True, help="How many IPs, 1-10.")
@click.option("--region", type=click.Choice(["us", "eu"]), required=True, help="Their region.")
@table_option
def add_ips(account_id: str, count: int, region: Any, table: bool) -> None:
    """Add new IPs to a customer account (AddAccountIps).

    Never sent twice blindly: after an ambiguous failure the client checks whether it
    took effect before resending or giving up, at any --max-attempts.
    """
    show_one(table, lambda sg: sg.provisioning.add_ips(account_id, count=count, region=region))


@provisioning.command("list-ips")
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--limit", type=int, metavar="N",
              help="Page size, 1-5000: IPs per request (every page is listed).")
@table_option
def list_ips(account_id: str, limit: int | None, table: bool) -> None:
    """List a customer account's IPs, newest first (ListAccountIps)."""
    show_list(table, AccountIp, lambda sg: sg.provisioning.list_ips(account_id, limit=limit))


@provisioning.command("remove-ips")
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("ips", metavar="IP...", nargs=-1, required=True)
def remove_ips(account_id: str, ips: tuple[str, ...]) -> None:
    """Remove 1-10 IPs from a customer account (RemoveAccountIps)."""
    run_api(lambda sg: sg.provisioning.remove_ips(account_id, ips=ips))
    confirm(f"removed {len(ips)} IP(s) from {account_id}")
