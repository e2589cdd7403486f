"""The 18 operation subcommands: JSON out, checked against the fake's state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sendgrid_ipam.testing import FakeSendGrid

from . import KEY, api, invoke, json_lines, no_backoff, one_error_line, running_fake


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with running_fake(accounts=["acct-1", "acct-2"], ipam_ips=4) as server:
        yield server


# ---------------------------------------------------------------- provisioning


def test_provisioning_add_ips(fake: FakeSendGrid) -> None:
    (added,) = json_lines(api(fake, "provisioning", "add-ips", "acct-1", "--count", "3",
                              "--region", "us"))
    assert sorted(added["ips"]) == sorted(fake.account_ips("acct-1"))
    assert len(added["ips"]) == 3
    assert added["region"] == "us"


def test_provisioning_list_ips_follows_every_page(fake: FakeSendGrid) -> None:
    fake.add_account("acct-2", ips=5, region="eu")
    items = json_lines(api(fake, "provisioning", "list-ips", "acct-2", "--limit", "2"))
    assert [item["ip"] for item in items] == fake.account_ips("acct-2")
    assert {item["region"] for item in items} == {"eu"}
    assert fake.count("ListAccountIps") == 3


def test_provisioning_remove_ips(fake: FakeSendGrid) -> None:
    first, second = fake.add_account("acct-1", ips=2)
    result = api(fake, "provisioning", "remove-ips", "acct-1", first)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "removed 1 IP(s) from acct-1" in result.stderr
    assert fake.account_ips("acct-1") == [second]


# ---------------------------------------------------------------- IPs


def test_ips_list(fake: FakeSendGrid) -> None:
    items = json_lines(api(fake, "ips", "list", "--limit", "3"))
    assert [item["ip"] for item in items] == fake.ipam_ips()
    assert set(items[0]) >= {"ip", "pools", "is_auto_warmup", "is_enabled", "added_at"}


def test_ips_list_filters(fake: FakeSendGrid) -> None:
    items = json_lines(api(fake, "ips", "list", "--region", "eu", "--include-region",
                           "--enabled"))
    eu = [ip for ip in fake.ipam_ips() if fake.ipam_ip(ip)["region"] == "eu"]
    assert eu
    assert [item["ip"] for item in items] == eu
    assert {item["region"] for item in items} == {"eu"}
    assert fake.records("ListIp")[-1].query["is_enabled"] == "true"


def test_ips_get(fake: FakeSendGrid) -> None:
    ip = fake.ipam_ips()[1]
    (item,) = json_lines(api(fake, "ips", "get", ip, "--include-region"))
    expected = fake.ipam_ip(ip)
    for field in ("ip", "is_auto_warmup", "is_parent_assigned", "is_enabled", "is_leased",
                  "added_at", "region"):
        assert item[field] == expected[field], field


def test_ips_add(fake: FakeSendGrid) -> None:
    (added,) = json_lines(api(fake, "ips", "add", "--auto-warmup", "--no-parent-assigned",
                              "--subuser", "alice", "--subuser", "bob", "--region", "eu"))
    assert added["ip"] == fake.ipam_ips()[-1]
    state = fake.ipam_ip(added["ip"])
    assert state["is_auto_warmup"] is True
    assert state["is_parent_assigned"] is False
    assert state["region"] == "eu"
    assert state["subusers"] == ["alice", "bob"]


def test_ips_update(fake: FakeSendGrid) -> None:
    ip = fake.ipam_ips()[0]
    (updated,) = json_lines(api(fake, "ips", "update", ip, "--disabled", "--auto-warmup"))
    assert updated["ip"] == ip
    assert fake.ipam_ip(ip)["is_enabled"] is False
    assert fake.ipam_ip(ip)["is_auto_warmup"] is True


def test_ips_subusers(fake: FakeSendGrid) -> None:
    ip = fake.ipam_ips()[0]
    (assigned,) = json_lines(api(fake, "ips", "add-subusers", ip, "alice", "bob", "carol"))
    assert assigned["ip"] == ip
    assert fake.ipam_ip(ip)["subusers"] == ["alice", "bob", "carol"]

    listed = json_lines(api(fake, "ips", "list-subusers", ip, "--limit", "2"))
    assert listed == ["alice", "bob", "carol"]

    result = api(fake, "ips", "remove-subusers", ip, "bob")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert fake.ipam_ip(ip)["subusers"] == ["alice", "carol"]


# ---------------------------------------------------------------- pools


def test_pools_lifecycle(fake: FakeSendGrid) -> None:
    first, second, third = fake.ipam_ips()[:3]

    (created,) = json_lines(api(fake, "pools", "create", "marketing", "--ip", first,
                                "--ip", second))
    (pool,) = fake.pools()
    assert created == {"id": pool.id, "name": "marketing", "ips": [first, second],
                       "reconciled": False}

    listed = json_lines(api(fake, "pools", "list"))
    assert [(p["id"], p["name"], p["ips_preview"]) for p in listed] == [
        (pool.id, "marketing", [first, second])]

    (got,) = json_lines(api(fake, "pools", "get", pool.id))
    assert got["total_ip_count"] == 2

    (renamed,) = json_lines(api(fake, "pools", "rename", pool.id, "transactional"))
    assert renamed["name"] == "transactional"
    assert fake.pools()[0].name == "transactional"

    (grown,) = json_lines(api(fake, "pools", "add-ips", pool.id, third))
    assert grown["ips"] == [first, second, third]
    assert fake.pools()[0].ips == (first, second, third)

    in_pool = json_lines(api(fake, "pools", "list-ips", pool.id, "--limit", "2"))
    assert [item["ip"] for item in in_pool] == [first, second, third]

    result = api(fake, "pools", "remove-ips", pool.id, second)
    assert (result.exit_code, result.stdout) == (0, "")
    assert fake.pools()[0].ips == (first, third)

    result = api(fake, "pools", "delete", pool.id)
    assert (result.exit_code, result.stdout) == (0, "")
    assert "deleted pool" in result.stderr
    assert fake.pools() == []


def test_table(fake: FakeSendGrid) -> None:
    fake.add_account("acct-1", ips=2)
    result = api(fake, "provisioning", "list-ips", "acct-1", "--table")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert any("ip" in line and "region" in line for line in lines)
    for ip in fake.account_ips("acct-1"):
        assert any(ip in line for line in lines)


# ---------------------------------------------------------------- global options


def test_on_behalf_of_and_key_from_environment(fake: FakeSendGrid) -> None:
    result = invoke("--base-url", fake.url, "--on-behalf-of", "sub-1", "ips", "list",
                    env={"SENDGRID_API_KEY": KEY})
    assert len(json_lines(result)) == 4
    assert fake.records("ListIp")[-1].on_behalf_of == "sub-1"


def test_max_attempts_one_does_not_retry(fake: FakeSendGrid) -> None:
    from sendgrid_ipam.testing import Fault

    fake.script("ListIp", Fault.error(503))
    result = api(fake, "--max-attempts", "1", "ips", "list")
    assert result.exit_code == 1
    assert one_error_line(result).startswith("error: 503 Service Unavailable")
    assert fake.count("ListIp") == 1


def test_retries_are_logged_with_verbose(
    fake: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sendgrid_ipam.testing import Fault

    no_backoff(monkeypatch)
    fake.script("ListIp", Fault.error(503))
    result = api(fake, "-v", "--timeout", "5", "--max-attempts", "2", "ips", "list")
    assert len(json_lines(result)) == 4
    assert "retrying ListIp after attempt 1" in result.stderr
