/**
 * Lua for the Redis presence model (see redis-presence.ts). Every mutation runs in one script,
 * so the per-user counts, the lex-ordered sets and the join/leave events never disagree, and
 * events are numbered and published in the order Redis applied them, cluster-wide. KEYS[1] is
 * the project's presence channel `<prefix>presence:{<pid>}` (RedisKeys.presence); every key is
 * built from it, so all share its hash tag and a script touches one slot, and the events are
 * published (SPUBLISH on a cluster) on that channel, in the same slot.
 * Times come from Redis (TIME), so node clock skew does not shorten or stretch an expiry.
 *
 * Expiry is per node, not per entry: `nodes` ZSET node → expires-at and `node:<id>` SET of the
 * node's cids, so keeping a node's entries alive is one ZADD per project, whatever their number.
 * `ver` HASH node → the version of the node's last write: a refresh whose version matches knows
 * every write of the node landed (one connection, applied in order); any other answer (a write
 * failed, Redis restarted or failed over, a sweep took the node for dead) makes the node replace
 * its entries with SYNC.
 */
const PRELUDE = `
local CHANNEL = KEYS[1]
local base = CHANNEL .. ':'
local K_CONNS, K_CIDS = base .. 'conns', base .. 'cids'
local K_USERS, K_COUNTS, K_SEQ = base .. 'users', base .. 'counts', base .. 'seq'
local K_NODES, K_VER = base .. 'nodes', base .. 'ver'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- One numbered message per script call: INCRBY once, PUBLISH once (a list of events).
local events = {}
local function emit(kind, uid, cid, node)
  events[#events + 1] = {0, kind, uid, cid, node, now}
end
local function flush_events()
  if #events == 0 then return end
  local last = redis.call('INCRBY', K_SEQ, #events)
  for i, e in ipairs(events) do e[1] = last - #events + i end
  redis.call('$PUBLISH', CHANNEL, cjson.encode(events))
end

-- e = {uid, node, connectedAt}
local function drop(cid, e)
  redis.call('HDEL', K_CONNS, cid)
  redis.call('ZREM', K_CIDS, cid)
  redis.call('SREM', base .. 'user:' .. e[1], cid)
  redis.call('SREM', base .. 'node:' .. e[2], cid)
  if redis.call('HINCRBY', K_COUNTS, e[1], -1) <= 0 then
    redis.call('HDEL', K_COUNTS, e[1])
    redis.call('ZREM', K_USERS, e[1])
    emit('leave', e[1], cid, e[2])
  end
end

local function drop_cid(cid)
  local cur = redis.call('HGET', K_CONNS, cid)
  if cur then drop(cid, cjson.decode(cur)) end
end

local function put(cid, uid, node, at)
  local value = cjson.encode({uid, node, tonumber(at)})
  if redis.call('HSETNX', K_CONNS, cid, value) == 0 then
    local e = cjson.decode(redis.call('HGET', K_CONNS, cid))
    if e[1] == uid and e[2] == node then return end
    drop(cid, e)
    redis.call('HSET', K_CONNS, cid, value)
  end
  redis.call('ZADD', K_CIDS, 0, cid)
  redis.call('SADD', base .. 'user:' .. uid, cid)
  redis.call('SADD', base .. 'node:' .. node, cid)
  if redis.call('HINCRBY', K_COUNTS, uid, 1) == 1 then
    redis.call('ZADD', K_USERS, 0, uid)
    emit('join', uid, cid, node)
  end
end

local function alive(node, ttl, version)
  redis.call('ZADD', K_NODES, now + tonumber(ttl), node)
  redis.call('HSET', K_VER, node, version)
end

-- The node has nothing left in the project: it leaves the expiry index.
local function forget(node)
  redis.call('ZREM', K_NODES, node)
  redis.call('HDEL', K_VER, node)
end
`;

/**
 * ARGV: ttl ms, node ('' for removals only, of entries the caller does not know), version, then per operation 'p', cid, uid, connectedAt (add) or 'r', cid
 * (remove), in the order the node made them. Returns 1 when the project had no entries before
 * (the caller then lists it in presence:pids, a key of another slot), else 0.
 */
const APPLY = `${PRELUDE}
local was_empty = redis.call('HLEN', K_CONNS) == 0
local node = ARGV[2]
local i = 4
while i <= #ARGV do
  if ARGV[i] == 'p' then
    put(ARGV[i + 1], ARGV[i + 2], node, ARGV[i + 3])
    i = i + 4
  else
    drop_cid(ARGV[i + 1])
    i = i + 2
  end
end
if node ~= '' then alive(node, ARGV[1], ARGV[3]) end
flush_events()
if was_empty then return 1 end
return 0`;

/**
 * ARGV: ttl ms, node, version, how many entries the node holds in the project. Returns 1 (alive
 * again), 2 (nothing held and nothing stored: forgotten) or 0 (stored state differs: SYNC).
 */
const BEAT = `${PRELUDE}
if redis.call('HGET', K_VER, ARGV[2]) ~= ARGV[3] then return 0 end
local stored = redis.call('SCARD', base .. 'node:' .. ARGV[2])
if stored ~= tonumber(ARGV[4]) then return 0 end
if stored == 0 then
  forget(ARGV[2])
  return 2
end
redis.call('ZADD', K_NODES, now + tonumber(ARGV[1]), ARGV[2])
return 1`;

/**
 * ARGV: ttl ms, node, version, first (1/0), last (1/0), then (cid, uid, connectedAt) per entry.
 * The node's entries become exactly those sent over the calls from first to last (sent in one
 * event-loop turn, so none of the node's own writes comes between them): each is put, and the
 * last call drops what the node had stored but did not send. Returns 1 when the project had no
 * entries before, else 0.
 */
const SYNC = `${PRELUDE}
local was_empty = redis.call('HLEN', K_CONNS) == 0
local node = ARGV[2]
local staging = base .. 'sync:' .. node
if ARGV[4] == '1' then redis.call('DEL', staging) end
for i = 6, #ARGV, 3 do
  put(ARGV[i], ARGV[i + 1], node, ARGV[i + 2])
  redis.call('SADD', staging, ARGV[i])
end
if ARGV[5] == '1' then
  local K_NODE = base .. 'node:' .. node
  for _, cid in ipairs(redis.call('SDIFF', K_NODE, staging)) do
    drop_cid(cid)
    redis.call('SREM', K_NODE, cid)
  end
  redis.call('DEL', staging)
  if redis.call('SCARD', K_NODE) == 0 then forget(node) else alive(node, ARGV[1], ARGV[3]) end
end
flush_events()
if was_empty then return 1 end
return 0`;

/**
 * ARGV: limit. Removes up to about `limit` entries of expired nodes; returns {how many, entries
 * left} (0 left: the caller may take the project out of presence:pids). Entries written by a
 * version before per-node expiry (the `expiry` ZSET cid → expires-at) expire here too.
 */
const EXPIRE = `${PRELUDE}
local limit = tonumber(ARGV[1])
local removed = 0
for _, node in ipairs(redis.call('ZRANGEBYSCORE', K_NODES, '-inf', now, 'LIMIT', 0, 10)) do
  -- Its version goes first: a node that comes back syncs instead of trusting half-swept state.
  redis.call('HDEL', K_VER, node)
  local K_NODE = base .. 'node:' .. node
  local cids = redis.call('SRANDMEMBER', K_NODE, limit - removed)
  for _, cid in ipairs(cids) do
    drop_cid(cid)
    redis.call('SREM', K_NODE, cid)
  end
  removed = removed + #cids
  if redis.call('SCARD', K_NODE) == 0 then redis.call('ZREM', K_NODES, node) end
  if removed >= limit then break end
end
local K_LEGACY = base .. 'expiry'
if removed < limit then
  for _, cid in ipairs(redis.call('ZRANGEBYSCORE', K_LEGACY, '-inf', now, 'LIMIT', 0, limit - removed)) do
    drop_cid(cid)
    redis.call('ZREM', K_LEGACY, cid)
    removed = removed + 1
  end
end
flush_events()
return {removed, redis.call('HLEN', K_CONNS)}`;

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
    pwApply: withPublish(APPLY),
    pwBeat: withPublish(BEAT),
    pwSync: withPublish(SYNC),
    pwExpire: withPublish(EXPIRE),
    pwListUsers: LIST_USERS,
    pwListConns: LIST_CONNECTIONS,
    pwUsers: USERS,
    pwCount: COUNT,
    pwNodeBeat: NODE_BEAT,
    pwNodes: NODES,
  };
}
