/**
 * Lua for channel presence in Redis (see redis-channel-presence.ts). KEYS[1] is the channel's
 * base `<prefix>cp:{<channel>}` (RedisKeys.channelPresence); every key is built from it and
 * shares its hash tag, so each script touches one slot on a Redis Cluster: the slot of the
 * channel's bus channel and history. Times come from Redis (TIME): node clock skew neither
 * shortens nor stretches an expiry.
 *   <base>:m  HASH client → user          <base>:x  ZSET client → expires-at ms
 *   <base>:j  SET  clients owed a leave (namespace option joinLeave)
 *   <base>:l  ZSET client → pruned-at ms: joinLeave members pruned with a leave (tombstones)
 * Every key also carries a key TTL of 2 ttl pushed back by every PUT, so the channel of a
 * cluster whose nodes all died disappears by itself (no index of channels, no scan), and a live
 * node whose refresh comes late still finds a dead node's expired members to announce.
 *
 * A member whose node stopped refreshing it (the node died) is pruned by whichever script of
 * whichever node touches the channel next, and the live subscribers' nodes PUT every ttl/3.
 * The leave of a pruned joinLeave member is PUBLISHed (SPUBLISH on a cluster: same slot) by
 * the script that prunes it, on the channel's bus channel: the removal and its announcement
 * are one atomic step, so two nodes pruning at once send one leave per member, and no leave is
 * lost with a caller that dies or loses Redis between a removal and its publish (which
 * returning the removed members to the caller would allow). The frame is the channel's leave
 * head (built by core/channel-events.ts, passed by the caller) + the member's client and user,
 * each as a u16 big-endian byte length and the bytes (ChannelEventHeads).
 *
 * Common ARGV of PUT, LIST and PRUNE: [1] the bus channel, [2] join head, [3] leave head.
 */
const PRELUDE = (publish: 'PUBLISH' | 'SPUBLISH'): string => `
local base = KEYS[1]
local K_M, K_X, K_J, K_L = base .. ':m', base .. ':x', base .. ':j', base .. ':l'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function str16(s)
  return string.char(math.floor(#s / 256), #s % 256) .. s
end

local function announce(head, client, user)
  redis.call('${publish}', ARGV[1], head .. str16(client) .. str16(user))
end

-- Removes up to limit expired members, publishing the leave of each joinLeave one and leaving
-- its tombstone; returns how many it removed.
local function prune(limit)
  local dead = redis.call('ZRANGEBYSCORE', K_X, '-inf', now, 'LIMIT', 0, limit)
  for _, c in ipairs(dead) do
    if redis.call('SREM', K_J, c) == 1 then
      announce(ARGV[3], c, redis.call('HGET', K_M, c) or '')
      redis.call('ZADD', K_L, now, c)
    end
    redis.call('HDEL', K_M, c)
    redis.call('ZREM', K_X, c)
  end
  return #dead
end

local function expiredLeft()
  return redis.call('ZCOUNT', K_X, '-inf', now)
end
`;

/**
 * ARGV after the common three: [4] ttl ms, [5] 'a' (adds at subscribe) or 'r' (a refresh), then
 * (client, user, joinLeave '1'/'0') per member. Adds or re-asserts them with a fresh expiry and
 * prunes up to 100 expired members; returns {pruned, expired members left}. A member that a
 * refresh brings back after it was pruned with a leave (its node was cut off from Redis for a
 * TTL but lived) is announced with a join, so its subscribers do not keep it as gone; at
 * subscribe the node publishes the join itself. Tombstones are kept 10 TTLs.
 */
const put = (publish: 'PUBLISH' | 'SPUBLISH'): string => `${PRELUDE(publish)}
local ttl = tonumber(ARGV[4])
local refresh = ARGV[5] == 'r'
for i = 6, #ARGV, 3 do
  local c, u = ARGV[i], ARGV[i + 1]
  if redis.call('HSET', K_M, c, u) == 1 and ARGV[i + 2] == '1' then
    redis.call('SADD', K_J, c)
    if redis.call('ZREM', K_L, c) == 1 and refresh then announce(ARGV[2], c, u) end
  end
  redis.call('ZADD', K_X, now + ttl, c)
end
local pruned = prune(100)
redis.call('ZREMRANGEBYSCORE', K_L, '-inf', now - 10 * ttl)
for _, k in ipairs({ K_M, K_X, K_J, K_L }) do redis.call('PEXPIRE', k, 2 * ttl) end
return { pruned, expiredLeft() }`;

/** ARGV: client (no common ARGV). Removes it; its node publishes the leave. */
const REMOVE = `
local base = KEYS[1]
redis.call('HDEL', base .. ':m', ARGV[1])
redis.call('ZREM', base .. ':x', ARGV[1])
redis.call('SREM', base .. ':j', ARGV[1])
redis.call('ZREM', base .. ':l', ARGV[1])
return 0`;

/**
 * No ARGV after the common three. Prunes up to 1000 expired members; returns {pruned, flat
 * client, user list of the live ones} (expired ones beyond the 1000 are left out of the list).
 */
const list = (publish: 'PUBLISH' | 'SPUBLISH'): string => `${PRELUDE(publish)}
local pruned = prune(1000)
local all = redis.call('HGETALL', K_M)
if expiredLeft() == 0 then return { pruned, all } end
local gone = {}
for _, c in ipairs(redis.call('ZRANGEBYSCORE', K_X, '-inf', now)) do gone[c] = true end
local live = {}
for i = 1, #all, 2 do
  if not gone[all[i]] then
    live[#live + 1] = all[i]
    live[#live + 1] = all[i + 1]
  end
end
return { pruned, live }`;

/** No ARGV after the common three. Prunes up to 1000 expired members; returns {pruned, expired members left}. */
const prune = (publish: 'PUBLISH' | 'SPUBLISH'): string => `${PRELUDE(publish)}
local pruned = prune(1000)
return { pruned, expiredLeft() }`;

/** The scripts, with the publish command of the mode: SPUBLISH on a Redis Cluster (a script may publish only within its slot). */
export const channelPresenceScripts = (publish: 'PUBLISH' | 'SPUBLISH') => ({
  pwChanPut: put(publish),
  pwChanRemove: REMOVE,
  pwChanList: list(publish),
  pwChanPrune: prune(publish),
});
