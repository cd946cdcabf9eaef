/**
 * Lua for the Redis presence model (see redis-presence.ts). Every mutation runs in one script,
 * so the per-user counts, the lex-ordered sets and the join/leave events never disagree, and
 * events are numbered and published in the order Redis applied them, cluster-wide. Keys are
 * built inside the scripts from ARGV[1] (prefix) and ARGV[2] (pid): standalone Redis only.
 * Times come from Redis (TIME), so node clock skew does not shorten or stretch an expiry.
 */
const PRELUDE = `
local prefix, pid = ARGV[1], ARGV[2]
local base = prefix .. 'presence:' .. pid .. ':'
local K_CONNS, K_EXP, K_CIDS = base .. 'conns', base .. 'expiry', base .. 'cids'
local K_USERS, K_COUNTS, K_SEQ = base .. 'users', base .. 'counts', base .. 'seq'
local K_PIDS = prefix .. 'presence:pids'
local CHANNEL = prefix .. 'presence:' .. pid
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function emit(kind, uid, cid, node)
  local seq = redis.call('INCR', K_SEQ)
  redis.call('PUBLISH', CHANNEL, cjson.encode({seq, kind, uid, cid, node, now}))
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

local function forget_if_empty()
  if redis.call('HLEN', K_CONNS) == 0 then redis.call('SREM', K_PIDS, pid) end
end
`;

/** ARGV: prefix, pid, ttl ms, then (cid, uid, node, connectedAt) per entry. Adds or re-asserts. */
export const PUT = `${PRELUDE}
local expires = now + tonumber(ARGV[3])
for i = 4, #ARGV, 4 do put(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], expires) end
redis.call('SADD', K_PIDS, pid)
return 0`;

/** ARGV: prefix, pid, cid. */
export const REMOVE = `${PRELUDE}
local cur = redis.call('HGET', K_CONNS, ARGV[3])
if cur then drop(ARGV[3], cjson.decode(cur)) end
forget_if_empty()
return 0`;

/** ARGV: prefix, pid, limit. Removes up to `limit` expired entries; returns how many. */
export const EXPIRE = `${PRELUDE}
local dead = redis.call('ZRANGEBYSCORE', K_EXP, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, cid in ipairs(dead) do
  local cur = redis.call('HGET', K_CONNS, cid)
  if cur then drop(cid, cjson.decode(cur)) else redis.call('ZREM', K_EXP, cid) end
end
forget_if_empty()
return #dead`;

/** ARGV: prefix, pid, limit, after ('' = from the start). Returns {uids, counts, total}. */
export const LIST_USERS = `${PRELUDE}
local from = ARGV[4] == '' and '-' or ('(' .. ARGV[4])
local uids = redis.call('ZRANGEBYLEX', K_USERS, from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
local counts = {}
if #uids > 0 then counts = redis.call('HMGET', K_COUNTS, unpack(uids)) end
return {uids, counts, redis.call('ZCARD', K_USERS)}`;

/** ARGV: prefix, pid, limit, after. Returns {cids, entries (JSON)}. */
export const LIST_CONNECTIONS = `${PRELUDE}
local from = ARGV[4] == '' and '-' or ('(' .. ARGV[4])
local cids = redis.call('ZRANGEBYLEX', K_CIDS, from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
local entries = {}
if #cids > 0 then entries = redis.call('HMGET', K_CONNS, unpack(cids)) end
return {cids, entries}`;

/** ARGV: prefix, pid, uids... Returns per uid a flat list cid, entry (JSON), cid, entry, ... */
export const USERS = `${PRELUDE}
local out = {}
for i = 3, #ARGV do
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

/** ARGV: prefix, pid. Returns {users, connections, seq}. */
export const COUNT = `${PRELUDE}
return {redis.call('ZCARD', K_USERS), redis.call('HLEN', K_CONNS), tonumber(redis.call('GET', K_SEQ) or '0')}`;

const NODES_PRELUDE = `
local K_NODES, K_INFO = ARGV[1] .. 'nodes', ARGV[1] .. 'nodes:info'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_NODES, '-inf', now)) do
  redis.call('ZREM', K_NODES, id)
  redis.call('HDEL', K_INFO, id)
end
`;

/** ARGV: prefix, ttl ms, node id, record (JSON). Stores "<now> <record>"; drops expired nodes. */
export const NODE_BEAT = `${NODES_PRELUDE}
redis.call('ZADD', K_NODES, now + tonumber(ARGV[2]), ARGV[3])
redis.call('HSET', K_INFO, ARGV[3], now .. ' ' .. ARGV[4])
return 0`;

/** ARGV: prefix. Drops expired nodes; returns the live ones' "<heartbeat> <record>" values. */
export const NODES = `${NODES_PRELUDE}
return redis.call('HVALS', K_INFO)`;
