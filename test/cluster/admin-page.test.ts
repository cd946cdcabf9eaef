import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';
import { Cluster } from './support.js';

/**
 * The admin page in headless Chromium against a two-node cluster (CLI nodes, test-owned Redis):
 * a wrong key is refused, the right one shows both nodes and the projects, the push form
 * delivers through the cluster and the push rate moves.
 */

/** What the functions run in the page use of its DOM (the tests' TypeScript has no DOM lib). */
interface PageElement {
  textContent: string | null;
  cells: ArrayLike<PageElement>;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
};

const ADMIN_KEY = 'admin-page-test-key';
const SECRET = 'admin-page-secret';
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);
/** The agreed flags for browser tests (CONTRACTS.md). */
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];

describe('admin page (/admin) in headless Chromium, two-node cluster', () => {
  const cluster = new Cluster(SECRET);
  let A: NodeProcess;
  let B: NodeProcess;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    const redis = await cluster.startRedis();
    A = await cluster.node(redis, ['--admin-key', ADMIN_KEY]);
    B = await cluster.node(redis);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS, timeout: 60_000 });
    page = await browser.newPage();
    page.setDefaultTimeout(20_000);
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await cluster.cleanup();
  }, 60_000);

  it('is off (404) on a node without --admin-key', async () => {
    for (const path of ['/admin', '/admin/', '/admin/api/overview']) {
      const res = await fetch(`${B.httpUrl}${path}`);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toMatchObject({ code: 5, message: 'Not Found' });
    }
  });

  it('refuses a wrong key: the page says so and shows nothing else', async () => {
    await page.goto(`${A.httpUrl}/admin`);
    expect(new URL(page.url()).pathname).toBe('/admin/');
    await page.fill('#key', 'not-the-key');
    await page.click('#login-form button[type=submit]');
    await page.locator('#login-error').waitFor({ state: 'visible' });
    expect(await page.textContent('#login-error')).toBe('Wrong admin key.');
    expect(await page.isHidden('#dashboard')).toBe(true);
    // The API refuses it the same way, and a missing key too.
    const wrong = await fetch(`${A.httpUrl}/admin/api/overview`, { headers: { authorization: 'Bearer not-the-key' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ code: 16 });
    expect((await fetch(`${A.httpUrl}/admin/api/overview`)).status).toBe(401);
    expect((await fetch(`${A.httpUrl}/admin/api/push`, { method: 'POST', body: '{}' })).status).toBe(401);
  });

  it('with the key: both nodes, the CLI agrees, and the project shows a logged-in user', async () => {
    await page.fill('#key', ADMIN_KEY);
    await page.click('#login-form button[type=submit]');
    await page.locator('#dashboard').waitFor({ state: 'visible' });
    expect(await page.isHidden('#login')).toBe(true);

    await page.waitForFunction(
      ([a, b]) => {
        const text = document.querySelector('#nodes tbody')?.textContent ?? '';
        return text.includes(a!) && text.includes(b!);
      },
      [A.nodeId, B.nodeId],
    );
    expect(await page.locator('#nodes tbody tr').count()).toBe(2);
    expect(await page.textContent('#node-count')).toBe('(2)');
    // `pushwire nodes` reads the same ClusterService.
    const cli = JSON.parse((await runCli(['nodes', '--grpc', B.grpcAddress, '--json'])).stdout) as { nodes: Array<{ nodeId: string }> };
    expect(cli.nodes.map((n) => n.nodeId).sort()).toEqual([A.nodeId, B.nodeId].sort());

    const jwt = execFileSync(process.execPath, [new URL('../../dist/src/cli.js', import.meta.url).pathname, 'token', '--sub', 'zoe', '--secret', SECRET]).toString().trim();
    cluster.track(await TestClient.connect(`${B.wsUrl}?token=${jwt}`));
    // Presence is cluster-wide: a user on B shows on A's page.
    await page.waitForFunction(() => {
      const row = [...document.querySelectorAll('#projects tbody tr')].find((tr) => tr.cells[0]?.textContent === 'default');
      return row?.cells[1]?.textContent === '1' && row.cells[2]?.textContent === '1';
    });
  });

  it('push from the form: the message reaches a subscriber on the other node and the push rate moves', async () => {
    const subscriber = cluster.track(await TestClient.connect(B.wsUrl));
    expect(await subscriber.subscribe('admin-news')).toMatchObject({ code: 20001 });
    expect(await page.textContent('#push-rate')).toMatch(/^(–|0\.0)$/);
    const totalBefore = Number((await page.textContent('#push-total'))!.split(' ')[0]);

    await page.selectOption('#push-pid', 'default');
    await page.fill('#push-topic', 'admin-news');
    await page.fill('#push-data', 'hello from the admin page');
    await page.click('#push-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#push-result')?.textContent?.startsWith('pushed: message '));
    expect(await page.textContent('#push-result')).toContain(`via node ${A.nodeId}`);
    expect((await subscriber.next((f) => f.text === 'hello from the admin page')).text).toBe('hello from the admin page');

    await page.waitForFunction(() => Number.parseFloat(document.querySelector('#push-rate')?.textContent ?? '') > 0);
    await page.waitForFunction((before) => document.querySelector('#push-total')?.textContent === `${before + 1} total`, totalBefore);
    // The delivery happened on B; A's own counters show the push, and A's latency stays "–" or a bucket.
    expect(await page.textContent('#latency')).toMatch(/^(–|[≤>] [\d.]+ m?s) \/ (–|[≤>] [\d.]+ m?s)$/);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('admin.png', ARTIFACTS).pathname, fullPage: true });
  });

  it('a failed push shows the node\'s message', async () => {
    await page.fill('#push-topic', '');
    await page.fill('#push-uid', 'x'.repeat(300));
    await page.click('#push-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#push-result')?.textContent?.startsWith('push failed: '));
    expect(await page.getAttribute('#push-result', 'class')).toBe('error');
  });
});
