"""The Lua pace (redis/_pacing.py) against the Python one (`ratelimit.reserve` / `learn`).

Random sequences of reservations and replies go through both, on a real redis-server with
the scripts' clock given (so both run at the same "now"); after every step the delay, the
ticket and the whole state must be *equal* (not close): the shared pace is the in-process
one, step for step. Tickets of a pace that was dropped are not good for the next one (the
generations), as in `coordination.pacer`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from sendgrid_ipam.ratelimit import PaceRules, PaceState, RateLimit, learn, reserve

if TYPE_CHECKING:
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer

RULES = [PaceRules(), PaceRules(max_closure=3.0, pace_below=8, probe_timeout=0.25,
                                unknown_window=0.7, jitter=0.2)]


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    made = aioredis.Redis.from_url(redis_server.url)
    try:
        yield made
    finally:
        await made.aclose()


class Both:
    """One pace kept twice: in Python (`state`) and in Redis (the hash at `key`)."""

    def __init__(self, client: Any, key: str, rules: PaceRules) -> None:
        from sendgrid_ipam.redis import _pacing

        self.pacing = _pacing
        self.client, self.key, self.rules = client, key, rules
        self.generations_key = f"{key}:generations"
        self.reserve_script = client.register_script(_pacing.RESERVE)
        self.learn_script = client.register_script(_pacing.LEARN)
        self.state: PaceState | None = None
        self.generation = 0  # of the Python pace (0: none)
        self.window = ""  # of the Python pace
        self.generations = 0

    async def reserve(self, now: float) -> tuple[int, int] | None:
        """Reserve in both; the (generation, ticket) taken, if any."""
        delay, _, ticket, generation, _, _ = await self.reserve_script(
            keys=[self.key, "budget-unused"],
            args=self.pacing.reserve_args(self.rules, 0.0, 0, 100.0, now=now))
        if self.state is None:
            assert (float(delay), int(ticket), int(generation)) == (0.0, 0, 0)
            return None
        expected, state = reserve(self.state, now, self.rules)
        assert float(delay) == expected
        assert int(generation) == self.generation
        if expected:
            return None
        self.state = state
        assert int(ticket) == state.sent
        return self.generation, state.sent

    async def learn(self, reply: RateLimit, now: float, limited: bool,
                    ticket: tuple[int, int] | None, jitter: float, window: str) -> None:
        await self.learn_script(
            keys=[self.key, self.generations_key],
            args=self.pacing.learn_args(reply, now, limited=limited, ticket=ticket,
                                        jitter=jitter, rules=self.rules, window=window,
                                        now=now))
        mine = ticket[1] if ticket is not None and ticket[0] == self.generation else None
        capped = attrs.evolve(
            reply, **{name: min(value, self.pacing.COUNT_CAP) for name in ("limit", "remaining")
                      if (value := getattr(reply, name)) is not None})
        state = learn(self.state, capped, now, limited=limited, ticket=mine, jitter=jitter,
                      rules=self.rules)
        if state is not None and state is not self.state:
            state = self.keep_lower(state, window)
        if state is None:
            self.generation = 0
        elif self.state is None:
            self.generations += 1
            self.generation = self.generations
        self.state = state

    def keep_lower(self, state: PaceState, window: str) -> PaceState:
        """The scripts' step after `learn` (see _pacing.py): in the same window, the
        remaining budget is never raised."""
        before, same_window = self.state, window != "" and window == self.window
        self.window = window
        if before is not None and same_window and state.remaining > before.remaining:
            return attrs.evolve(state, remaining=before.remaining)
        return state

    async def same(self) -> None:
        stored = {k.decode(): v.decode() for k, v in (await self.client.hgetall(self.key)).items()}
        if self.state is None:
            assert stored == {}
            return
        assert int(stored.pop("gen")) == self.generation
        assert stored.pop("window") == self.window
        limit = stored.pop("limit", None)
        assert PaceState(
            remaining=int(stored["remaining"]), reset_at=float(stored["reset_at"]),
            next_at=float(stored["next_at"]), probe_until=float(stored["probe_until"]),
            sent=int(stored["sent"]), seen=int(stored["seen"]),
            limit=None if limit is None else int(limit),
        ) == self.state


def _reply(rng: random.Random, now: float, rules: PaceRules) -> RateLimit:
    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.8 else None

    remaining = rng.choice([0, 0, 1, 2, 3, rules.pace_below, rules.pace_below + 1, 5, 40,
                            10_000, 2**60])
    reset = rng.choice([now + rng.uniform(0.0, 1.5), now + rng.uniform(-3.0, 0.0),
                        now + 1e9, now + rng.uniform(0, 0.2), now - 2.0])
    retry_after = rng.choice([None, None, rng.uniform(0, 2), 0.0, 1e12])
    return RateLimit(
        limit=maybe(rng.choice([100, 0, 2**62])), remaining=maybe(remaining),
        reset_at=maybe(reset), retry_after=retry_after,
        retry_at=None if retry_after is None else now + retry_after,
    )


@pytest.mark.parametrize("rules", RULES, ids=["default", "tight"])
async def test_lua_and_python_paces_agree_step_by_step(client: Any, rules: PaceRules) -> None:
    rng = random.Random(20261128)
    steps = {"reserved": 0, "held": 0, "learned": 0, "paced": 0}
    for sequence in range(120):
        both = Both(client, f"diff:{rules.pace_below}:{sequence}", rules)
        now = 1_764_300_000 + rng.random()
        tickets: list[tuple[int, int] | None] = []
        for _ in range(40):
            now += rng.choice([0.0, rng.uniform(0, 0.05), rng.uniform(0, 0.6), 2.5])
            if both.state is not None and rng.random() < 0.2:  # exactly on a boundary
                state = both.state
                now = max([now] + [t for t in (state.next_at, state.reset_at,
                                               state.probe_until) if t - now < 3])
            if rng.random() < 0.5:
                taken = await both.reserve(now)
                tickets.append(taken)
                steps["reserved" if taken else "held"] += 1
            else:
                ticket = tickets.pop(rng.randrange(len(tickets))) if tickets else None
                await both.learn(_reply(rng, now, rules), now, limited=rng.random() < 0.2,
                                 ticket=ticket, jitter=rng.random(),
                                 window=rng.choice(["", "1764300000.0", "1764300001.0"]))
                steps["learned"] += 1
            steps["paced"] += both.state is not None
            await both.same()
    # The sequences went through every branch often enough to mean something.
    assert min(steps.values()) > 300, steps


async def test_a_client_clock_off_by_minutes_learns_the_same_pace(client: Any) -> None:
    """A reply's times cross on the client's clock with its "now"; Redis moves them."""
    rules = PaceRules()
    now, off = 1_764_300_000.25, -300.0  # the client's clock is 5 minutes behind Redis's
    both = Both(client, "diff:skewed", rules)
    reply = RateLimit(limit=100, remaining=7, reset_at=now + 0.8)
    on_client = attrs.evolve(reply, reset_at=now + off + 0.8)
    await both.learn_script(keys=[both.key, both.generations_key],
                            args=both.pacing.learn_args(on_client, now + off, limited=False,
                                                        ticket=None, jitter=0.0, rules=rules,
                                                        now=now))
    stored = await client.hgetall(both.key)
    assert int(stored[b"remaining"]) == 7
    assert float(stored[b"reset_at"]) == pytest.approx(now + 0.8, abs=1e-6)
