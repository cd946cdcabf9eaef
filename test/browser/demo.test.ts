// The SDK demo page in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
// the page, served by node A at /demo, receives pushes made over REST; A is drained and restarted on the
// same ports while node B (same Redis) takes more pushes; the page reconnects by itself, recovers, and
// shows the missed publications, none twice. A screenshot goes to test-artifacts/ (not committed).
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from '../cluster/support.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { freePort } from '../helpers/ports.js';
import type { TestRedis } from '../helpers/redis-server.js';
import { pushJson, range } from '../helpers/sdk.js';

const CHANNELS = JSON.stringify({
  namespaces: { ticker: { history: { size: 1000, ttl: '1h' } }, chat: { history: { size: 1000, ttl: '1h' } } },
});
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);

interface DemoState {
  state: string;
  received: Record<string, number[]>;
  subscribed: Array<{ channel: string; wasRecovering: boolean; recovered: boolean }>;
}

describe('SDK demo page in headless Chromium', () => {
  const cluster = new Cluster('sdk-demo');
  let redis: TestRedis;
  let a: NodeProcess;
  let b: NodeProcess;
  let ports: string[];
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  // The page comes from the HTTP port and opens its WebSocket on another port: another origin, allowed explicitly.
  const startA = async (): Promise<NodeProcess> =>
    (a = await cluster.node(redis, ['--demo', 'true', '--channels', CHANNELS, '--allowed-origins', `http://127.0.0.1:${ports[3]}`, ...ports]));
  const demo = (): Promise<DemoState> => page.evaluate(() => (globalThis as unknown as { pushwireDemo: DemoState }).pushwireDemo);
  const waitDemo = (fn: string, timeout = 20_000): Promise<unknown> => page.waitForFunction(fn, undefined, { timeout, polling: 50 });

  beforeAll(async () => {
    redis = await cluster.startRedis();
    ports = ['--ws-port', String(await freePort()), '--http-port', String(await freePort()), '--grpc-port', String(await freePort())];
    await startA();
    b = await cluster.node(redis, ['--channels', CHANNELS]);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS, timeout: 60_000 });
    page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await cluster.cleanup();
  });

  it('shows live pushes, reconnects after the node restarts, and shows every missed chat message exactly once', async () => {
    await page.goto(`${a.httpUrl}/demo?name=tester`);
    await waitDemo(`window.pushwireDemo?.state === 'connected' && window.pushwireDemo.subscribed.length === 2`);
    expect(await page.locator('#state').textContent()).toBe('connected');

    for (const n of range(1, 3)) await pushJson(a.httpUrl, 'chat:lobby', { user: 'rest', text: `before ${n}` });
    await pushJson(a.httpUrl, 'ticker:prices', { symbol: 'ACME', price: 101.5 });
    await waitDemo(`window.pushwireDemo.received['chat:lobby'].length === 3 && window.pushwireDemo.received['ticker:prices'].length === 1`);
    expect(await page.locator('#prices').textContent()).toContain('101.50');

    // The chat form pushes through the REST API of the node that served the page.
    await page.fill('#text', 'typed in the page');
    await page.click('#send button');
    await waitDemo(`window.pushwireDemo.received['chat:lobby'].length === 4`);

    expect(await a.stop('SIGTERM')).toBe(0);
    await waitDemo(`window.pushwireDemo.state === 'connecting'`);
    for (const n of range(1, 5)) await pushJson(b.httpUrl, 'chat:lobby', { user: 'rest', text: `missed ${n}` });
    await pushJson(b.httpUrl, 'ticker:prices', { symbol: 'ACME', price: 99.25 });

    await startA();
    await waitDemo(`window.pushwireDemo.received['chat:lobby'].length === 9 && window.pushwireDemo.received['ticker:prices'].length === 2`, 30_000);
    await pushJson(a.httpUrl, 'chat:lobby', { user: 'rest', text: 'after' });
    await waitDemo(`window.pushwireDemo.received['chat:lobby'].length === 10`);

    const state = await demo();
    expect(state.state).toBe('connected');
    expect(state.received['chat:lobby']).toEqual(range(1, 10));
    expect(state.received['ticker:prices']).toEqual([1, 2]);
    const chatSubs = state.subscribed.filter((s) => s.channel === 'chat:lobby');
    expect(chatSubs.at(-1)).toMatchObject({ wasRecovering: true, recovered: true });
    // What a person sees: each message once, in order, and the recovery banner.
    const shown = await page.locator('#messages li').allTextContents();
    expect(shown).toHaveLength(10);
    expect(shown.filter((t) => t.includes('missed'))).toEqual(range(1, 5).map((n) => `#${n + 4}rest: missed ${n}`));
    expect(shown[3]).toContain('tester: typed in the page');
    expect(await page.locator('#recovery').textContent()).toContain('recovered: true');
    expect(await page.locator('#prices').textContent()).toContain('99.25');
    expect(pageErrors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('demo.png', ARTIFACTS).pathname, fullPage: true });
  }, 120_000);
});
