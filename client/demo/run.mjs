#!/usr/bin/env node
// `npm run demo`: starts one pushwire node on the embedded defaults with the demo page on (--demo true)
// and history on the demo's channels, pushes a price tick every second over the REST API, and prints
// the page's URL. Extra arguments go to `pushwire serve` (e.g. `npm run demo -- --http-port 8080`).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const channels = {
  namespaces: {
    ticker: { history: { size: 1000, ttl: '1h' } },
    chat: { history: { size: 1000, ttl: '24h' } },
  },
};
// The page is served from the HTTP port and opens its WebSocket on the WebSocket port, another origin: a local demo
// allows any (--allowed-origins *); a deployment lists its pages' origins instead.
const node = spawn(process.execPath, [cli, 'serve', '--demo', 'true', '--allowed-origins', '*', '--channels', JSON.stringify(channels), ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const stop = () => node.kill('SIGTERM');
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
node.once('exit', (code) => process.exit(code ?? 0));

let ticker;
createInterface({ input: node.stdout }).on('line', (line) => {
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    console.log(line);
    return;
  }
  if (entry.level >= 40) console.error(line);
  if (entry.msg !== 'pushwire node listening' || ticker) return;
  const http = `http://localhost:${entry.httpPort}`;
  console.log(`\npushwire demo: open ${http}/demo  (Ctrl-C stops the node)\n`);
  const prices = { ACME: 100, GLOBEX: 42, INITECH: 7.5 };
  ticker = setInterval(async () => {
    for (const symbol of Object.keys(prices)) {
      prices[symbol] = Math.max(0.01, prices[symbol] * (1 + (Math.random() - 0.5) * 0.02));
      const data = Buffer.from(JSON.stringify({ symbol, price: Number(prices[symbol].toFixed(2)) })).toString('base64');
      await fetch(`${http}/v1/pushData`, { method: 'POST', body: JSON.stringify({ topic: 'ticker:prices', data }) }).catch(() => {});
    }
  }, 1000);
  ticker.unref();
});
