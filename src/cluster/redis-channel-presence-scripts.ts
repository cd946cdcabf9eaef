/**
 * Lua for channel presence in Redis (see redis-channel-presence.ts). KEYS[1] is the channel's
 * base `<prefix>cp:{<channel>}` (RedisKeys.channelPresence); both keys are built from it and
 * share its hash tag, so each script touches one slot on a Redis Cluster (the slot of the
 * channel's bus channel and history). Times come from Redis (TIME): node clock skew neither
 * shortens nor stretches an expiry.
 *   <base>:m  HASH client → user        <base>:x  ZSET client → expires-at ms
 * Both keys also carry a key TTL pushed back by every write, so the channel of a cluster whose
 * nodes all died disappears by itself: no index of channels, no scan.
 */
const PRELUDE = `
local K_M, K_X = KEYS[1] .. ':m', KEYS[1] .. ':x'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function prune(limit)
  local dead
  if limit then
    dead = redis.call('ZRANGEBYSCORE', K_X, '-inf', now, 'LIMIT', 0, limit)
  else
    dead = redis.call('ZRANGEBYSCORE', K_X, '-inf', now)
  end
  for _, c in ipairs(dead) do
    redis.call('HDEL', K_M, c)
    redis.call('ZREM', K_X, c)
  end
end
`;

/**
 * ARGV: ttl ms, then (client, user) per member. Adds or re-asserts them with a fresh expiry,
 * and removes up to 100 expired members (a dead node's) on the way.
 */
const PUT = `${PRELUDE}
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', K_M, ARGV[i], ARGV[i + 1])
  redis.call('ZADD', K_X, now + ttl, ARGV[i])
end
prune(100)
redis.call('PEXPIRE', K_M, ttl)
redis.call('PEXPIRE', K_X, ttl)
return 0`;

/** ARGV: client. */
const REMOVE = `${PRELUDE}
redis.call('HDEL', K_M, ARGV[1])
redis.call('ZREM', K_X, ARGV[1])
return 0`;

/** No ARGV. Removes the expired members; returns the live ones as a flat client, user list. */
const LIST = `${PRELUDE}
prune(nil)
return redis.call('HGETALL', K_M)`;

export const channelPresenceScripts = { pwChanPut: PUT, pwChanRemove: REMOVE, pwChanList: LIST };
