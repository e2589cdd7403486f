"""The Lua scripts of the Redis coordinator: each runs atomically inside Redis.

Keys of one namespace ``NS``: ``NS:lease:KEY`` (the holder's nonce, with a TTL: a random
value of its own per holding, so that even a holder that never heard its token back can
free it),
``NS:token:KEY`` (the last token given out for KEY; a new counter starts at a random
40-bit number, so that one lost with Redis's data does not give out the same tokens again),
``NS:want:KEY`` (which coordinator has
waited longest for KEY, briefly), ``NS:gate:ENDPOINT`` (present while that endpoint's
rate-limit window is closed; its TTL is the time left) and ``NS:budget`` (the shared retry
budget's balance). Times are milliseconds, measured by Redis (no clock of ours is compared
with another host's).
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "CLOSE", "CONFIRM", "GATE", "HOLD", "RELEASE", "SETTLE", "TAKE",
           "with_lease", "with_releases"]

# Take KEY if it is free and no other coordinator has been waiting for it: a new token.
# Returns {1, token}, or {0, ms the holder has left (0: free, but another waiter's turn)}.
# The "want" mark gives the key to a waiting coordinator before the releasing one's next
# local waiter, so processes take turns instead of the busiest one keeping the key.
# Whether NONCE still holds it; if so its TTL starts again (check and renewal): 1 or 0.
_LEASE_FUNCTIONS = """
local function acquire(lease, token, want, ttl, id, want_ms, nonce)
  local holder = redis.call('GET', lease)
  local wanting = redis.call('GET', want)
  if holder then
    if not wanting then
      redis.call('SET', want, id, 'PX', want_ms)
    elseif wanting == id then
      redis.call('PEXPIRE', want, want_ms)
    end
    return {0, math.max(redis.call('PTTL', lease), 1)}
  end
  if wanting and wanting ~= id then
    return {0, 0}
  end
  if wanting then
    redis.call('DEL', want)
  end
  if redis.call('EXISTS', token) == 0 then
    -- A counter lost with Redis's data (a restart without persistence, a failover before
    -- it was replicated) must not count again through tokens already given out, which a
    -- bulk chunk compares with its own: a new counter starts at a random place (40 bits).
    redis.call('SET', token, tonumber(string.sub(nonce, 1, 10), 16) or 0)
  end
  local taken = redis.call('INCR', token)
  redis.call('SET', lease, nonce, 'PX', ttl)
  return {1, taken}
end

local function confirm(lease, nonce, ttl)
  if redis.call('GET', lease) == nonce then
    redis.call('PEXPIRE', lease, ttl)
    return 1
  end
  return 0
end
"""

# KEYS: lease, token, want. ARGV: ttl ms, this coordinator's id, how long a want lasts (ms),
# the holding's nonce.
ACQUIRE = _LEASE_FUNCTIONS + """
return acquire(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
"""

# KEYS: lease. ARGV: nonce, ttl ms. Returns 1 (held) or 0 (lost).
CONFIRM = _LEASE_FUNCTIONS + """
return confirm(KEYS[1], ARGV[1], ARGV[2])
"""

TAKE, HOLD = "1", "2"
"""What `with_lease` does with the lease before reserving: take it, or confirm it."""


def with_lease(reserve: str) -> str:
    """``reserve`` (a script that reserves on an endpoint's pace: ``_pacing.RESERVE``) with a
    write lease taken or confirmed first, in the same round trip.

    The script runs whole, unchanged, inside a function, once the lease step succeeded; its
    KEYS and ARGV are given first, and the lease's follow them: KEYS: ..., lease, token,
    want; ARGV: ..., TAKE or HOLD, ttl ms, this coordinator's id, how long a want lasts (ms),
    the holding's nonce. Returns {lease step (1: done), the token taken or 0, then what
    ``reserve`` returns (nothing when the step failed)}; a failed TAKE answers, as
    ``acquire``, the ms its holder has left (0: another waiter's turn) in place of the token.
    """
    return _LEASE_FUNCTIONS + "local function reserve_step()\n" + reserve + """
end
local k, a = #KEYS, #ARGV
local lease, nonce, ttl = KEYS[k - 2], ARGV[a], ARGV[a - 3]
local step
if ARGV[a - 4] == '1' then
  step = acquire(lease, KEYS[k - 1], KEYS[k], ttl, ARGV[a - 2], ARGV[a - 1], nonce)
else
  step = {confirm(lease, nonce, ttl), 0}
end
if step[1] == 0 then return step end
local reserved = reserve_step()
table.insert(reserved, 1, step[2])
table.insert(reserved, 1, 1)
return reserved
"""


# Free the lease, only if NONCE still holds it. KEYS: lease. ARGV: nonce. Returns 1 or 0.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def with_releases(script: str) -> str:
    """``script`` with this process's pending lease releases done first, in the same round
    trip (each as `RELEASE`: only if its nonce still holds the key).

    KEYS: the R leases to free, then ``script``'s; ARGV: R, the R nonces, then ``script``'s.
    ``script`` runs whole, unchanged, inside a function that sees only its own KEYS and ARGV
    (locals of those names, shifted past the releases'), and its reply is the reply.
    """
    return """local released = tonumber(ARGV[1])
for i = 1, released do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('DEL', KEYS[i])
  end
end
local KEYS, ARGV = {unpack(KEYS, released + 1)}, {unpack(ARGV, released + 2)}
local function script()
""" + script + """
end
return script()
"""


# Close an endpoint's window for MS milliseconds, never shortening a longer closure.
# KEYS: gate. ARGV: ms. Returns 1 if the closure was extended.
CLOSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
  return 1
end
return 0
"""

# The retry budget: credit what calls earned, then reserve up to WANT whole retries.
# Returns {reserved, balance after (as text: Lua numbers come back as integers)}.
_SETTLE_FUNCTION = """
local function settle(key, credit, want, capacity)
  local balance = tonumber(redis.call('GET', key) or capacity)
  balance = math.min(capacity, balance + credit)
  local taken = math.max(0, math.min(want, math.floor(balance)))
  balance = balance - taken
  redis.call('SET', key, tostring(balance))
  return {taken, tostring(balance)}
end
"""

# KEYS: budget. ARGV: credit, want, capacity.
SETTLE = _SETTLE_FUNCTION + """
return settle(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
"""

# The check before each request: ms the endpoint's window stays closed (<= 0: open), and,
# in the same round trip, the retry budget's credits and reservation when there are any.
# KEYS: gate, budget. ARGV: credit, want, capacity. Returns {ms, reserved, balance or ''}.
GATE = _SETTLE_FUNCTION + """
local closed = redis.call('PTTL', KEYS[1])
local credit, want = tonumber(ARGV[1]), tonumber(ARGV[2])
if credit == 0 and want == 0 then
  return {closed, 0, ''}
end
local settled = settle(KEYS[2], credit, want, tonumber(ARGV[3]))
return {closed, settled[1], settled[2]}
"""
