"""The per-endpoint pace shared through Redis: `ratelimit.reserve` and `ratelimit.learn` in Lua.

Each paced endpoint has a hash ``NS:pace:ENDPOINT`` holding the numbers of a `PaceState`
(``remaining``, ``reset_at``, ``next_at``, ``probe_until``, ``sent``, ``seen``, ``limit``) and
``gen``, the pace's generation (from the hash ``NS:pace-generations``, one counter per
endpoint): a ticket is only good for the generation it was taken in, as in
`coordination.pacer`. No hash: the endpoint is not paced. Every process runs the same two
steps on it atomically: `RESERVE` before each request (with the retry budget's top-up, one
round trip) and `LEARN` after each reply with rate-limit news.

**Clock**: the times in the hash are Unix seconds on *Redis's* clock (``TIME``), never on a
client's, so hosts whose clocks differ share one pace: a host that is 5 s behind would
otherwise hold an endpoint 5 s longer than the others, and one ahead would send into a
window that has not reset. A client sends a reply's times on its own clock (already moved
onto it from SendGrid's ``Date`` by `ratelimit.read_limits`) together with its own "now";
the script moves them by the difference (Redis's now minus the client's), as ``read_limits``
moves a reply's times by the difference between the server's clock and ours. What is lost is
the one-way latency to Redis (well under a millisecond on a LAN).

Both scripts take an optional ``now`` (ARGV[1], empty: Redis's ``TIME``) so that the tests
can drive them on a clock of their own and compare them, step by step, with the Python
functions (tests/redis/test_pacing_differential.py). The Lua is a line-by-line port of
``reserve`` and ``learn``: Lua numbers are IEEE doubles like Python floats, ``math.min`` and
``math.max`` pick the same operand as Python's ``min``/``max``, and numbers cross as
``%.17g``/``repr`` text, which round-trips exactly. Counts (Remaining, Limit) above 2**53 are
clamped by the client before they are sent (doubles hold every integer up to there).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..ratelimit import _EPOCH_THRESHOLD, _SKEW, PaceRules, RateLimit, _header, _number
from ._scripts import _SETTLE_FUNCTION

__all__ = [
    "COUNT_CAP", "FIELDS", "LEARN", "RESERVE", "UNANSWERED", "learn_args", "reserve_args", "window",
]

COUNT_CAP = 2**53
"""The largest count sent to the scripts (the largest integer a double holds exactly)."""

FIELDS = ("remaining", "reset_at", "next_at", "probe_until", "sent", "seen", "limit", "gen",
          "window")
"""The fields of a pace's hash."""

# Reading, writing and the two steps; `s` is a table with FIELDS (limit may be nil).
_PACE_FUNCTIONS = """
local function num(x) return string.format('%.17g', x) end

local function load(key)
  local f = redis.call('HMGET', key, 'remaining', 'reset_at', 'next_at', 'probe_until',
                       'sent', 'seen', 'limit', 'gen', 'window')
  if not f[8] then return nil end
  return {remaining = tonumber(f[1]), reset_at = tonumber(f[2]), next_at = tonumber(f[3]),
          probe_until = tonumber(f[4]), sent = tonumber(f[5]), seen = tonumber(f[6]),
          limit = f[7] and tonumber(f[7]) or nil, gen = tonumber(f[8]), window = f[9] or ''}
end

local function save(key, s)
  redis.call('HSET', key, 'remaining', num(s.remaining), 'reset_at', num(s.reset_at),
             'next_at', num(s.next_at), 'probe_until', num(s.probe_until),
             'sent', num(s.sent), 'seen', num(s.seen), 'gen', num(s.gen),
             'window', s.window or '')
  if s.limit then redis.call('HSET', key, 'limit', num(s.limit))
  else redis.call('HDEL', key, 'limit') end
end

local function clock(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function optional(text)
  if text == '' then return nil end
  return tonumber(text)
end

-- ratelimit.reserve: the delay (0: go, and s counts the request) and why it waits
-- (0 go, 1 held after a 429, 2 spent until the reset, 3 a probe's reply awaited).
local function reserve(s, now, probe_timeout)
  if now < s.next_at then return s.next_at - now, 1 end
  if s.remaining > 0 then
    s.remaining = s.remaining - 1
    s.sent = s.sent + 1
    return 0, 0
  end
  if now < s.reset_at then return s.reset_at - now, 2 end
  if now < s.probe_until then return s.probe_until - now, 3 end
  s.probe_until = now + probe_timeout
  s.sent = s.sent + 1
  return 0, 0
end

-- ratelimit.learn: returns the new state (s itself, changed in place, or a new table),
-- `state` unchanged (same table), or nil (not paced). `r` is the reply: limit, remaining,
-- reset_at, retry_at, each possibly nil; `k` the rules.
local function learn(state, r, now, limited, ticket, jitter, k)
  if state ~= nil then
    local older
    if ticket ~= nil then older = state.seen >= ticket else older = state.seen ~= 0 end
    if older then return state end
  end
  local base = state
  if base == nil then
    base = {remaining = 0, reset_at = 0.0, next_at = 0.0, probe_until = 0.0, sent = 0,
            seen = 0, limit = nil, gen = 0}
  end
  local seen = base.seen
  if ticket ~= nil then seen = ticket end
  local limit = base.limit
  if r.limit ~= nil and r.limit ~= 0 then limit = r.limit end
  local latest = now + k.max_closure
  if limited then
    local till = r.retry_at
    if till == nil then till = r.reset_at end
    local resume = 0
    if state == nil then
      if till ~= nil then resume = k.pace_below end
    elseif ticket == nil and base.next_at > now then
      resume = base.remaining
    end
    if till == nil then till = now + k.unknown_window end
    local wait = math.max(till - now, 0.0)
    local hold = math.min(now + wait + jitter * math.min(k.jitter, wait / 10), latest)
    return {remaining = resume, reset_at = hold, next_at = math.max(base.next_at, hold),
            probe_until = 0.0, sent = base.sent, seen = seen, limit = limit, gen = base.gen}
  end
  local held = base.next_at > now
  if r.remaining == nil or r.reset_at == nil or r.reset_at < now - k.skew then
    if held and state ~= nil then return state end
    return nil
  end
  local in_flight = base.sent
  if ticket ~= nil then in_flight = base.sent - ticket end
  local remaining = math.max(0, r.remaining - in_flight)
  if remaining > k.pace_below and not held then return nil end
  return {remaining = remaining, reset_at = math.min(r.reset_at, latest),
          next_at = base.next_at, probe_until = 0.0, sent = base.sent, seen = seen,
          limit = limit, gen = base.gen}
end

-- One step more than ratelimit.learn: news of the same window (the same X-RateLimit-Reset,
-- as the server wrote it) never raises the remaining budget. Across processes, requests
-- reserved before a reply's own often reach the server after it (other connections, other
-- hosts), so its Remaining has not counted them and "Remaining less the requests reserved
-- after this one" overstates the budget; the pace's own count is right unless requests it
-- counted never reached the server, which costs at most those requests of the window. A
-- new window (another reset) is learned as it comes, and so is a delay-style reset.
local function keep_lower(state, after, window)
  if after == nil or after == state then return after end
  if state ~= nil and window ~= '' and state.window == window
      and after.remaining > state.remaining then
    after.remaining = state.remaining
  end
  after.window = window
  return after
end
"""

# Before each request: reserve on the endpoint's pace (if it is paced) and settle the retry
# budget (credits, top-up) in the same round trip.
# KEYS: pace, budget. ARGV: now ('' = Redis TIME), probe_timeout, credit, want, capacity.
# Returns {delay (text), why, ticket, gen (0: not paced), reserved, balance or ''}.
RESERVE = _SETTLE_FUNCTION + _PACE_FUNCTIONS + """
local delay, why, ticket, gen = 0, 0, 0, 0
local s = load(KEYS[1])
if s ~= nil then
  delay, why = reserve(s, clock(ARGV[1]), tonumber(ARGV[2]))
  gen = s.gen
  if delay == 0 then
    save(KEYS[1], s)
    ticket = s.sent
  end
end
local credit, want = tonumber(ARGV[3]), tonumber(ARGV[4])
if credit == 0 and want == 0 then
  return {num(delay), why, ticket, gen, 0, ''}
end
local settled = settle(KEYS[2], credit, want, tonumber(ARGV[5]))
return {num(delay), why, ticket, gen, settled[1], settled[2]}
"""

# After a reply with rate-limit news (or a 429).
# KEYS: pace, generations. ARGV: now ('' = Redis TIME), the client's now, limited (0/1),
# ticket ('' = none), its generation, jitter, the reply's limit, remaining, reset_at,
# retry_at (each '' when absent; times on the client's clock), max_closure, pace_below,
# unknown_window, jitter (most seconds), skew, the reply's window ('' when unknown).
# Returns {what happened (0: not paced, 1: unchanged, 2: changed), the pace's generation}.
LEARN = _PACE_FUNCTIONS + """
local now = clock(ARGV[1])
local shift = now - tonumber(ARGV[2])
local function moved(text)
  local t = optional(text)
  if t ~= nil and shift ~= 0 then t = t + shift end
  return t
end
local state = load(KEYS[1])
local ticket = optional(ARGV[4])
if state == nil or state.gen ~= tonumber(ARGV[5]) then ticket = nil end
local r = {limit = optional(ARGV[7]), remaining = optional(ARGV[8]), reset_at = moved(ARGV[9]),
           retry_at = moved(ARGV[10])}
local k = {max_closure = tonumber(ARGV[11]), pace_below = tonumber(ARGV[12]),
           unknown_window = tonumber(ARGV[13]), jitter = tonumber(ARGV[14]),
           skew = tonumber(ARGV[15])}
local after = keep_lower(state, learn(state, r, now, ARGV[3] == '1', ticket,
                                      tonumber(ARGV[6]), k), ARGV[16])
if after == nil then
  if state ~= nil then redis.call('DEL', KEYS[1]) end
  return {0, 0}
end
if after == state then return {1, state.gen} end
if state == nil then after.gen = redis.call('HINCRBY', KEYS[2], KEYS[1], 1) end
save(KEYS[1], after)
return {2, after.gen}
"""


# After a request reserved with TICKET ended without news (its connection lost, a reply
# with no rate-limit headers): if it was the probe still out, the next request probes at
# once (`ratelimit.unanswered`). KEYS: pace. ARGV: ticket, its generation.
# Returns 1 if the probe was let go, else 0.
UNANSWERED = _PACE_FUNCTIONS + """
local s = load(KEYS[1])
local ticket = tonumber(ARGV[1])
if s == nil or s.gen ~= tonumber(ARGV[2]) then return 0 end
if s.probe_until ~= 0 and ticket == s.sent and ticket > s.seen then
  redis.call('HSET', KEYS[1], 'probe_until', num(0))
  return 1
end
return 0
"""


Arg = int | str


def _count(value: int | None) -> Arg:
    return "" if value is None else min(value, COUNT_CAP)


def _time(value: float | None) -> str:
    return "" if value is None else repr(value)


def reserve_args(rules: PaceRules, credit: float, want: int, capacity: float,
                 now: float | None = None) -> list[Arg]:
    """RESERVE's ARGV (``now``: None for Redis's clock)."""
    return [_time(now), repr(rules.probe_timeout), repr(credit), want, repr(capacity)]


def window(headers: Mapping[str, str]) -> str:
    """Which window a reply speaks of: its X-RateLimit-Reset as the server wrote it, when
    that is a timestamp ('' otherwise: a delay, or unreadable)."""
    reset = _number(_header(headers, "X-RateLimit-Reset"))
    return repr(reset) if reset is not None and reset >= _EPOCH_THRESHOLD else ""


def learn_args(reply: RateLimit, client_now: float, *, limited: bool,
               ticket: tuple[int, int] | None, jitter: float, rules: PaceRules,
               window: str = "", now: float | None = None) -> list[Arg]:
    """LEARN's ARGV: ``reply``'s times are on the client's clock, whose time is
    ``client_now``; ``ticket`` is (the pace's generation, the ticket); ``window`` what
    `window` says of the reply; ``now``: None for Redis's clock."""
    return [_time(now), repr(client_now), int(limited), "" if ticket is None else ticket[1],
            0 if ticket is None else ticket[0], repr(jitter), _count(reply.limit),
            _count(reply.remaining), _time(reply.reset_at), _time(reply.retry_at),
            repr(rules.max_closure), rules.pace_below, repr(rules.unknown_window),
            repr(rules.jitter), repr(_SKEW), window]
