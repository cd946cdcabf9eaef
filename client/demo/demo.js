// The pushwire SDK demo: one Client, two subscriptions (a ticker and a chat room, both on channels
// with history), connection state and recovery shown as they happen. No framework, no build step:
// the SDK is loaded as ES modules from /demo/sdk/ (client/dist).
import { Client } from '/demo/sdk/index.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const { wsPort } = await (await fetch('/demo/config.json')).json();
const url = params.get('ws') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:${wsPort}/ws`;
const me = params.get('name') ?? `guest-${Math.random().toString(36).slice(2, 6)}`;

// What the page saw, for people (the DOM) and for the browser test (window.pushwireDemo).
const demo = (window.pushwireDemo = { url, state: 'disconnected', cid: '', received: { 'ticker:prices': [], 'chat:lobby': [] }, subscribed: [], events: [] });

function log(text, cls) {
  demo.events.push(text);
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  if (cls) li.className = cls;
  $('log').prepend(li);
}

const client = new Client(url, { minReconnectDelay: 300, maxReconnectDelay: 3000, name: 'pushwire-demo' });
client.on('state', ({ state }) => {
  demo.state = state;
  $('state').textContent = state;
  $('state').className = `badge ${state}`;
});
client.on('connecting', ({ code, reason }) => log(`connecting (${code} ${reason})`));
client.on('connected', ({ client: cid, node }) => {
  demo.cid = cid;
  $('cid').textContent = cid;
  $('node').textContent = node;
  log(`connected as ${cid} on node ${node}`);
});
client.on('disconnected', ({ code, reason }) => log(`disconnected (${code} ${reason})`, 'lost'));
client.on('error', ({ error }) => log(`error: ${error.message}`));

function track(sub, label, onData) {
  sub.on('state', ({ state }) => ($(label).textContent = state));
  sub.on('subscribed', (e) => {
    demo.subscribed.push({ channel: e.channel, wasRecovering: e.wasRecovering, recovered: e.recovered, offset: e.offset, epoch: e.epoch });
    if (!e.wasRecovering) {
      log(`subscribed ${e.channel} at offset ${e.offset ?? '-'}`);
      return;
    }
    const text = e.recovered ? `${e.channel}: recovered: true, missed publications follow` : `${e.channel}: recovered: false (history did not reach back; state reloaded from offset ${e.offset})`;
    $('recovery').textContent = text;
    $('recovery').className = e.recovered ? 'recovered' : 'lost';
    log(text, e.recovered ? 'recovered' : 'lost');
  });
  sub.on('subscribing', ({ code, reason }) => code !== 0 && log(`${sub.channel}: resubscribing (${code} ${reason})`));
  sub.on('error', ({ error }) => log(`${sub.channel}: ${error.message}`));
  sub.on('publication', (p) => {
    demo.received[sub.channel].push(p.offset ?? 0);
    onData(p);
  });
}

// Ticker: {symbol, price}; the table keeps the latest price per symbol, the list every tick.
const last = new Map();
const ticker = client.subscribe('ticker:prices', { decode: (d) => ({ symbol: String(d?.symbol ?? '?'), price: Number(d?.price ?? NaN) }) });
track(ticker, 'ticker-sub', ({ data, offset }) => {
  const prev = last.get(data.symbol);
  last.set(data.symbol, { price: data.price, offset, dir: prev === undefined ? '' : data.price >= prev.price ? 'up' : 'down' });
  $('prices').replaceChildren(
    ...[...last].sort(([a], [b]) => a.localeCompare(b)).map(([symbol, v]) => {
      const tr = document.createElement('tr');
      tr.innerHTML = `<td>${symbol}</td><td class="${v.dir}">${v.price.toFixed(2)}</td><td>${v.offset ?? '-'}</td>`;
      return tr;
    }),
  );
  const li = document.createElement('li');
  li.innerHTML = `<span class="off">#${offset ?? '-'}</span>`;
  li.append(`${data.symbol} ${data.price.toFixed(2)}`);
  $('ticks').prepend(li);
});

// Chat: {user, text}.
const chat = client.subscribe('chat:lobby', { decode: (d) => (typeof d === 'object' && d ? { user: String(d.user ?? '?'), text: String(d.text ?? '') } : { user: '?', text: String(d) }) });
track(chat, 'chat-sub', ({ data, offset }) => {
  const li = document.createElement('li');
  li.dataset.offset = String(offset ?? '');
  li.innerHTML = `<span class="off">#${offset ?? '-'}</span><b></b> `;
  li.querySelector('b').textContent = `${data.user}:`;
  li.append(data.text);
  $('messages').append(li);
  $('messages').scrollTop = $('messages').scrollHeight;
});

$('send').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  $('text').value = '';
  const bytes = new TextEncoder().encode(JSON.stringify({ user: me, text }));
  const res = await fetch('/v1/pushData', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ topic: 'chat:lobby', data: btoa(String.fromCharCode(...bytes)) }),
  });
  if (!res.ok) log(`send failed: HTTP ${res.status} ${await res.text()}`, 'lost');
});

client.connect();
