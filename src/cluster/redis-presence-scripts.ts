/**
 * Lua for the Redis presence model (see redis-presence.ts). Every mutation runs in one script,
 * so the per-user counts, the lex-ordered sets and the join/leave events never disagree, and
 * events are numbered and published in the order Redis applied them, cluster-wide. KEYS[1] is
 * the project's presence channel `<prefix>presence:{<pid>}` (RedisKeys.presence); every key is
 * built from it, so all share its hash tag and a script touches one slot, and the events are
 * published (SPUBLISH on a cluster) on that channel, in the same slot.
 * Times come from Redis (TIME), so node clock skew does not shorten or stretch an expiry.
 */
const PRELUDE = `
local CHANNEL = KEYS[1]
local base = CHANNEL .. ':'
local K_CONNS, K_EXP, K_CIDS = base .. 'conns', base .. 'expiry', base .. 'cids'
local K_USERS, K_COUNTS, K_SEQ = base .. 'users', base .. 'counts', base .. 'seq'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function emit(kind, uid, cid, node)
  local seq = redis.call('INCR', K_SEQ)
  redis.call('$PUBLISH', CHANNEL, cjson.encode({seq, kind, uid, cid, node, now}))
end

-- e = {uid, node, connectedAt}
local function drop(cid, e)
  redis.call('HDEL', K_CONNS, cid)
  redis.call('ZREM', K_EXP, cid)
  redis.call('ZREM', K_CIDS, cid)
  redis.call('SREM', base .. 'user:' .. e[1], cid)
  if redis.call('HINCRBY', K_COUNTS, e[1], -1) <= 0 then
    redis.call('HDEL', K_COUNTS, e[1])
    redis.call('ZREM', K_USERS, e[1])
    emit('leave', e[1], cid, e[2])
  end
end

local function put(cid, uid, node, at, expires)
  local cur = redis.call('HGET', K_CONNS, cid)
  if cur then
    local e = cjson.decode(cur)
    if e[1] == uid then
      redis.call('ZADD', K_EXP, expires, cid)
      return
    end
    drop(cid, e)
  end
  redis.call('HSET', K_CONNS, cid, cjson.encode({uid, node, tonumber(at)}))
  redis.call('ZADD', K_EXP, expires, cid)
  redis.call('ZADD', K_CIDS, 0, cid)
  redis.call('SADD', base .. 'user:' .. uid, cid)
  if redis.call('HINCRBY', K_COUNTS, uid, 1) == 1 then
    redis.call('ZADD', K_USERS, 0, uid)
    emit('join', uid, cid, node)
  end
end
`;

/**
 * ARGV: ttl ms, then (cid, uid, node, connectedAt) per entry. Adds or re-asserts. Returns 1
 * when the project had no entries before (the caller then lists it in presence:pids, a key of
 * another slot), else 0.
 */
const PUT = `${PRELUDE}
local was_empty = redis.call('HLEN', K_CONNS) == 0
local expires = now + tonumber(ARGV[1])
for i = 2, #ARGV, 4 do put(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], expires) end
if was_empty then return 1 end
return 0`;

/** ARGV: cid. */
const REMOVE = `${PRELUDE}
local cur = redis.call('HGET', K_CONNS, ARGV[1])
if cur then drop(ARGV[1], cjson.decode(cur)) end
return 0`;

/**
 * ARGV: limit. Removes up to `limit` expired entries; returns {how many, entries left}
 * (0 left: the caller may take the project out of presence:pids).
 */
const EXPIRE = `${PRELUDE}
local dead = redis.call('ZRANGEBYSCORE', K_EXP, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, cid in ipairs(dead) do
  local cur = redis.call('HGET', K_CONNS, cid)
  if cur then drop(cid, cjson.decode(cur)) else redis.call('ZREM', K_EXP, cid) end
end
return {#dead, redis.call('HLEN', K_CONNS)}`;

/** ARGV: limit, after ('' = from the start). Returns {uids, counts, total}. */
const LIST_USERS = `${PRELUDE}
local from = ARGV[2] == '' and '-' or ('(' .. ARGV[2])
local uids = redis.call('ZRANGEBYLEX', K_USERS, from, '+', 'LIMIT', 0, tonumber(ARGV[1]))
local counts = {}
if #uids > 0 then counts = redis.call('HMGET', K_COUNTS, unpack(uids)) end
return {uids, counts, redis.call('ZCARD', K_USERS)}`;

/** ARGV: limit, after. Returns {cids, entries (JSON)}. */
const LIST_CONNECTIONS = `${PRELUDE}
local from = ARGV[2] == '' and '-' or ('(' .. ARGV[2])
local cids = redis.call('ZRANGEBYLEX', K_CIDS, from, '+', 'LIMIT', 0, tonumber(ARGV[1]))
local entries = {}
if #cids > 0 then entries = redis.call('HMGET', K_CONNS, unpack(cids)) end
return {cids, entries}`;

/** ARGV: uids... Returns per uid a flat list cid, entry (JSON), cid, entry, ... */
const USERS = `${PRELUDE}
local out = {}
for i = 1, #ARGV do
  local flat = {}
  for _, cid in ipairs(redis.call('SMEMBERS', base .. 'user:' .. ARGV[i])) do
    local e = redis.call('HGET', K_CONNS, cid)
    if e then
      flat[#flat + 1] = cid
      flat[#flat + 1] = e
    end
  end
  out[#out + 1] = flat
end
return out`;

/** No ARGV. Returns {users, connections, seq}. */
const COUNT = `${PRELUDE}
return {redis.call('ZCARD', K_USERS), redis.call('HLEN', K_CONNS), tonumber(redis.call('GET', K_SEQ) or '0')}`;

// KEYS[1]: <prefix>{nodes} (ZSET id → expires-at); its ':info' HASH shares the tag.
const NODES_PRELUDE = `
local K_NODES, K_INFO = KEYS[1], KEYS[1] .. ':info'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_NODES, '-inf', now)) do
  redis.call('ZREM', K_NODES, id)
  redis.call('HDEL', K_INFO, id)
end
`;

/** ARGV: ttl ms, node id, record (JSON). Stores "<now> <record>"; drops expired nodes. */
const NODE_BEAT = `${NODES_PRELUDE}
redis.call('ZADD', K_NODES, now + tonumber(ARGV[1]), ARGV[2])
redis.call('HSET', K_INFO, ARGV[2], now .. ' ' .. ARGV[3])
return 0`;

/** No ARGV. Drops expired nodes; returns the live ones' "<heartbeat> <record>" values. */
const NODES = `${NODES_PRELUDE}
return redis.call('HVALS', K_INFO)`;

/** The presence scripts with their publish command (PUBLISH, or SPUBLISH on a cluster). */
export function presenceScripts(publish: 'PUBLISH' | 'SPUBLISH') {
  const withPublish = (lua: string): string => lua.replaceAll('$PUBLISH', publish);
  return {
    pwPut: withPublish(PUT),
    pwRemove: withPublish(REMOVE),
    pwExpire: withPublish(EXPIRE),
    pwListUsers: LIST_USERS,
    pwListConns: LIST_CONNECTIONS,
    pwUsers: USERS,
    pwCount: COUNT,
    pwNodeBeat: NODE_BEAT,
    pwNodes: NODES,
  };
}
