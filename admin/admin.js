// pushwire admin page: polls GET /admin/api/overview with the admin key and turns this node's
// counters into rates over a sliding window; the push form calls POST /admin/api/push.
'use strict';

const POLL_MS = 1000;
/** Rates are over this window, so one push stays visible for a while instead of one poll. */
const WINDOW_MS = 10_000;
const KEY_STORE = 'pushwire-admin-key';

const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem(KEY_STORE) || '';
let samples = [];
let timer;

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...(init.headers || {}), authorization: `Bearer ${key}` } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(body.message || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

function show(loggedIn) {
  $('login').hidden = loggedIn;
  $('dashboard').hidden = !loggedIn;
  $('logout').hidden = !loggedIn;
}

async function login(candidate) {
  key = candidate;
  try {
    const overview = await api('/admin/api/overview');
    sessionStorage.setItem(KEY_STORE, key);
    $('login-error').hidden = true;
    show(true);
    samples = [];
    render(overview);
    clearInterval(timer);
    timer = setInterval(poll, POLL_MS);
  } catch (err) {
    key = '';
    sessionStorage.removeItem(KEY_STORE);
    show(false);
    $('login-error').textContent = err.status === 401 ? 'Wrong admin key.' : `Cannot reach the node: ${err.message}`;
    $('login-error').hidden = false;
  }
}

async function poll() {
  try {
    render(await api('/admin/api/overview'));
    $('status').hidden = true;
  } catch (err) {
    if (err.status === 401) return logout();
    $('status').textContent = `Update failed: ${err.message}`;
    $('status').hidden = false;
  }
}

function logout() {
  clearInterval(timer);
  key = '';
  sessionStorage.removeItem(KEY_STORE);
  show(false);
}

/** Per-second rate of a counter between the oldest sample in the window and the newest. */
function rate(name) {
  if (samples.length < 2) return undefined;
  const first = samples[0];
  const last = samples[samples.length - 1];
  const seconds = (last.time - first.time) / 1000;
  return seconds > 0 ? Math.max(0, last.counters[name] - first.counters[name]) / seconds : undefined;
}

/** A quantile of the latency histogram's growth over the window (all of it before two samples). */
function quantile(q) {
  const last = samples[samples.length - 1].latency;
  const first = samples.length > 1 ? samples[0].latency : { count: 0, buckets: last.buckets.map((b) => ({ le: b.le, count: 0 })) };
  const total = last.count - first.count;
  if (total <= 0) return undefined;
  for (let i = 0; i < last.buckets.length; i++) {
    const grown = last.buckets[i].count - (first.buckets[i] ? first.buckets[i].count : 0);
    if (grown >= q * total) return last.buckets[i].le;
  }
  return '+Inf';
}

const fmtRate = (r) => (r === undefined ? '–' : r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString());
const fmtBytes = (r) => (r === undefined ? '–' : r < 1024 ? `${r.toFixed(0)} B` : r < 1024 ** 2 ? `${(r / 1024).toFixed(1)} KiB` : `${(r / 1024 ** 2).toFixed(1)} MiB`);
const fmtLe = (le) => (le === undefined ? '–' : le === '+Inf' ? '> 2.5 s' : `≤ ${Number(le) * 1000} ms`);

function uptime(ms) {
  const s = Math.floor(Number(ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function fill(tbody, rows) {
  tbody.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement('tr');
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.append(td);
      }
      return tr;
    }),
  );
}

function render(o) {
  samples.push({ time: o.time, counters: o.counters, latency: o.latency });
  while (samples.length > 2 && o.time - samples[1].time >= WINDOW_MS) samples.shift();

  $('node-label').textContent = `admin · node ${o.nodeId}`;
  $('rate-node').textContent = o.nodeId;
  $('window').textContent = String(Math.round(WINDOW_MS / 1000));
  $('push-rate').textContent = fmtRate(rate('pushwire_pushes_total'));
  $('push-total').textContent = `${o.counters.pushwire_pushes_total} total`;
  $('error-rate').textContent = fmtRate(rate('pushwire_push_errors_total'));
  $('delivery-rate').textContent = fmtRate(rate('pushwire_deliveries_total'));
  $('byte-rate').textContent = fmtBytes(rate('pushwire_bytes_sent_total'));
  $('latency').textContent = `${fmtLe(quantile(0.5))} / ${fmtLe(quantile(0.95))}`;

  $('node-count').textContent = `(${o.nodes.length})`;
  fill(
    $('nodes').tBodies[0],
    o.nodes.map((n) => [n.nodeId, n.wsAddress, n.httpAddress, n.grpcAddress, n.version, uptime(n.uptimeMs), String(n.connections || 0), String(n.subscriptions || 0)]),
  );
  fill(
    $('projects').tBodies[0],
    o.projects.map((p) => [p.pid, p.error ? p.error : String(p.users), p.error ? '–' : String(p.connections), String(p.localConnections), String(p.localChannels)]),
  );

  const select = $('push-pid');
  const pids = o.projects.map((p) => p.pid);
  if ([...select.options].map((x) => x.value).join() !== pids.join()) {
    const chosen = select.value;
    select.replaceChildren(...pids.map((pid) => new Option(pid, pid, false, pid === chosen)));
  }
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void login($('key').value);
});
$('logout').addEventListener('click', logout);
$('push-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const body = { pid: $('push-pid').value, topic: $('push-topic').value, uid: $('push-uid').value, data: $('push-data').value };
  $('push-result').className = '';
  try {
    const r = await api('/admin/api/push', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    $('push-result').textContent = `pushed: message ${r.messageId} via node ${r.nodeId}`;
    void poll();
  } catch (err) {
    $('push-result').className = 'error';
    $('push-result').textContent = `push failed: ${err.message}`;
  }
});

if (key) void login(key);
else show(false);
