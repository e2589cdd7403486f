"""The global --coordinator and --lease-ttl options."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from sendgrid_ipam.testing import FakeSendGrid
from tests.cli import KEY, api, invoke, json_lines, one_error_line, running_fake
from tests.redis.server import redis_binary

if TYPE_CHECKING:
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with running_fake(accounts=["cli-acct"]) as server:
        yield server


def _token(server: RedisServer, key: str) -> int | None:
    import redis

    with redis.Redis.from_url(server.url) as client:
        value = client.get(f"sendgrid-ipam:token:{key}")
        return None if value is None else int(value)


def _one_more(before: int | None, after: int | None) -> bool:
    """Whether one lease was taken between the two readings (a new counter starts at a
    random place)."""
    return after is not None and (before is None or after == before + 1)


def test_a_write_takes_its_lease_in_redis(fake: FakeSendGrid, redis_server: RedisServer) -> None:
    before = _token(redis_server, "account:cli-acct")
    (added,) = json_lines(api(fake, "--coordinator", redis_server.url, "--lease-ttl", "5",
                              "provisioning", "add-ips", "cli-acct", "--count", "2",
                              "--region", "us"))
    assert sorted(added["ips"]) == sorted(fake.account_ips("cli-acct"))
    assert _one_more(before, _token(redis_server, "account:cli-acct"))


def test_the_coordinator_can_come_from_the_environment(
    fake: FakeSendGrid, redis_server: RedisServer
) -> None:
    before = _token(redis_server, "account:cli-acct")
    result = invoke("--api-key", KEY, "--base-url", fake.url, "provisioning", "add-ips",
                    "cli-acct", "--count", "1", "--region", "us",
                    env={"SENDGRID_IPAM_COORDINATOR": redis_server.url})
    assert result.exit_code == 0, result.stderr
    assert _one_more(before, _token(redis_server, "account:cli-acct"))


def test_redis_down_is_one_error_line_and_nothing_is_sent(
    fake: FakeSendGrid, own_redis: RedisServer
) -> None:
    own_redis.stop()
    url = f"redis://:s3cret-pass@127.0.0.1:{own_redis.port}/0"
    result = api(fake, "-vv", "--coordinator", url, "provisioning", "add-ips", "cli-acct",
                 "--count", "1", "--region", "us")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"Redis at 127.0.0.1:{own_redis.port}/0 is unavailable" in line
    assert "the request was not sent (AddAccountIps)" in line
    assert "s3cret-pass" not in result.stderr + result.stdout
    assert fake.records() == []


def test_lease_ttl_needs_a_coordinator(fake: FakeSendGrid) -> None:
    result = api(fake, "--lease-ttl", "5", "ips", "list")
    assert result.exit_code == 2
    assert "--lease-ttl needs --coordinator" in one_error_line(result)


def test_a_coordinator_url_that_is_not_redis_is_a_usage_error(fake: FakeSendGrid) -> None:
    redis_binary()  # redis-py is needed to get as far as the URL
    result = api(fake, "--coordinator", "http://127.0.0.1:6379", "ips", "list")
    assert result.exit_code == 2
    assert "redis://" in one_error_line(result)
    assert fake.records() == []
