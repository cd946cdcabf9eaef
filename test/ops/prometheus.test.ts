import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { NodeProcess } from '../helpers/node-process.js';
import { TestPrometheus, promtool } from '../helpers/prometheus-server.js';
import { TestRedis } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/ports.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * deploy/grafana/pushwire.json and deploy/prometheus/alerts.yaml, proven against real parts: a
 * node started through the CLI (on Redis), scraped by Debian's Prometheus, which evaluates every
 * dashboard expression through its HTTP API and every rule itself. An expression that does not
 * parse, or names a metric the node does not export, fails here.
 */

const root = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const ALERTS = root('deploy/prometheus/alerts.yaml');
const dashboard: any = JSON.parse(readFileSync(root('deploy/grafana/pushwire.json'), 'utf8'));
const rules: any = parse(readFileSync(ALERTS, 'utf8'));

// Grafana's variables, as an operator's first load of the dashboard resolves them.
const GRAFANA_VARS: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '1h', job: 'pushwire', node: '.*' };
const resolveVars = (expr: string): string =>
  expr.replace(/\$\{?(\w+)\}?/g, (m, name: string) => {
    const value = GRAFANA_VARS[name];
    if (value === undefined) throw new Error(`unknown dashboard variable ${m} in ${expr}`);
    return value;
  });

interface Expr {
  where: string;
  expr: string;
}

/** Every PromQL expression of the dashboard: panel targets (rows included) and variable queries. */
function dashboardExprs(): Expr[] {
  const out: Expr[] = [];
  const visit = (panels: any[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: resolveVars(t.expr) });
      visit(p.panels ?? []);
    }
  };
  visit(dashboard.panels);
  for (const v of dashboard.templating.list) {
    if (v.type !== 'query') continue;
    const q: string = typeof v.query === 'string' ? v.query : v.query.query;
    // label_values(<selector>, <label>) is Grafana's: Prometheus evaluates the selector.
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q);
    out.push({ where: `variable $${v.name}`, expr: resolveVars(m ? m[1]! : q) });
  }
  return out;
}

const alertRules = (): Array<{ name: string; expr: string; record: boolean }> =>
  (rules.groups as any[]).flatMap((g) => (g.rules as any[]).map((r) => ({ name: (r.alert ?? r.record) as string, expr: r.expr as string, record: r.record !== undefined })));

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan', 'atan2']);

/**
 * The metric names a PromQL expression reads: identifiers left once strings, label matchers,
 * ranges and grouping clauses are removed, that are neither functions (followed by "(") nor
 * keywords.
 */
export function metricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  s = s.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.:])[a-zA-Z_:][\w:]*/g)) {
    if (s.slice(m.index + m[0].length).trimStart().startsWith('(')) continue;
    if (!KEYWORDS.has(m[0].toLowerCase())) names.add(m[0]);
  }
  return [...names];
}

/** Metric names the node declares on /metrics (histograms as their _bucket/_sum/_count series). */
async function exported(httpUrl: string): Promise<Set<string>> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(`${name}${s}`);
    else names.add(name!);
  }
  return names;
}

describe('Grafana dashboard and Prometheus rules against a real node and Prometheus', () => {
  let redis: TestRedis;
  let node: NodeProcess;
  let prometheus: TestPrometheus;
  let names: Set<string>;

  beforeAll(async () => {
    redis = await TestRedis.start();
    node = await NodeProcess.start(['--redis', redis.url]);
    // Traffic, so the labelled series the panels group by exist: connects, a refused upgrade, a
    // disconnect, pushes that succeed and fail, over HTTP.
    const client = await TestClient.connect(node.wsUrl);
    expect((await client.subscribe('dash')).code).toBe(20001);
    const push = (body: string): Promise<Response> => fetch(`${node.httpUrl}/v1/pushData`, { method: 'POST', body });
    expect((await push(JSON.stringify({ topic: 'dash', data: 'aGk=' }))).status).toBe(200);
    expect((await push('{"topic": 1}')).status).toBe(400);
    await client.next((f) => f.text === 'hi');
    await client.close();
    await expect(TestClient.connect(`${node.wsUrl}?pid=nope`)).rejects.toThrow(/HTTP 404/);
    await TestClient.connect(node.wsUrl); // stays open: pushwire_connections is 1

    names = await exported(node.httpUrl);
    prometheus = await TestPrometheus.start({ targets: [`127.0.0.1:${node.ports.http}`], ruleFiles: [ALERTS] });
    // Scraped, several times (rate() needs two samples in its window), after the traffic above.
    await waitFor(
      async () => {
        const r = await prometheus.query('count_over_time(pushwire_connections_refused_total{job="pushwire"}[1m])');
        return r.status === 'success' && r.data.result.length > 0 && Number(r.data.result[0].value[1]) >= 3;
      },
      30_000,
      'three scrapes of the node',
    );
  }, 90_000);

  afterAll(async () => {
    await prometheus?.stop();
    await node?.stop();
    await redis?.stop();
  });

  it('counts refused upgrades by reason and connections by project (metrics the dashboard needs)', async () => {
    expect(await node.metric('pushwire_connections_refused_total', { reason: 'unknown_project' })).toBe(1);
    expect(await node.metric('pushwire_project_connections', { pid: 'default' })).toBe(1);
    expect(await node.metric('pushwire_connections_closed_total', { reason: 'client' })).toBe(1);
  });

  it('the node is an up target of job="pushwire"', async () => {
    const up = await prometheus.query('up{job="pushwire"}');
    expect(up.status).toBe('success');
    expect(up.data.result.map((r: any) => r.value[1])).toEqual(['1']);
  });

  it('every dashboard expression parses, evaluates, and names only metrics the node exports', async () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(30);
    const failures: string[] = [];
    const empty: string[] = [];
    for (const { where, expr } of exprs) {
      for (const name of metricNames(expr)) if (!names.has(name) && name !== 'up') failures.push(`${where}: ${name} is not exported by the node`);
      const r = await prometheus.query(expr);
      if (r.status !== 'success') failures.push(`${where}: ${r.errorType}: ${r.error}\n  ${expr}`);
      else if (r.data.result.length === 0) empty.push(where);
    }
    expect(failures).toEqual([]);
    // The overview and the unlabelled gauges and counters have data after one connect and one push.
    for (const title of ['Nodes up', 'Connections', 'Pushes/s', 'Deliveries/s', 'Bus not ready', 'Connections by node', 'Disconnects by reason', 'Bus ready']) {
      expect(empty.filter((w) => w.startsWith(`panel "${title}"`)), title).toEqual([]);
    }
    for (const v of ['$job', '$node']) expect(empty, v).not.toContain(`variable ${v}`);
  });

  it('every alert and recording rule names only exported (or recorded) metrics, parses, and evaluates in Prometheus', async () => {
    const all = alertRules();
    expect(all.filter((r) => !r.record).length).toBeGreaterThanOrEqual(8);
    const recorded = new Set(all.filter((r) => r.record).map((r) => r.name));
    for (const r of all) {
      for (const name of metricNames(r.expr)) {
        expect(names.has(name) || recorded.has(name) || name === 'up', `${r.name}: ${name}`).toBe(true);
      }
      const answer = await prometheus.query(r.expr);
      expect(answer.status, `${r.name}: ${answer.error}`).toBe('success');
    }
    // Prometheus loaded the file and evaluated each rule at least once, without error.
    await waitFor(
      async () => {
        const loaded = (await prometheus.api('rules')).data.groups.flatMap((g: any) => g.rules);
        return loaded.length === all.length && loaded.every((r: any) => r.health === 'ok');
      },
      20_000,
      'every rule evaluated',
    );
    const loaded = (await prometheus.api('rules')).data.groups.flatMap((g: any) => g.rules);
    expect(loaded.map((r: any) => r.name).sort()).toEqual(all.map((r) => r.name).sort());
    expect(loaded.filter((r: any) => r.lastError)).toEqual([]);
  });

  it('the node healthy, no alert fires', async () => {
    const firing = (await prometheus.api('alerts')).data.alerts.filter((a: any) => a.state === 'firing');
    expect(firing).toEqual([]);
  });

  it('promtool checks the rules and their unit tests pass (alerts fire when they should)', () => {
    const check = promtool(['check', 'rules', ALERTS]);
    expect(check.code, check.output).toBe(0);
    const tests = promtool(['test', 'rules', root('test/ops/alerts.promtool.yaml')]);
    expect(tests.code, tests.output).toBe(0);
  });

  it('extracts metric names from PromQL (the check above relies on it)', () => {
    expect(
      metricNames('histogram_quantile(0.99, sum by (le, node) (rate(a_bucket{job=~"x", le="0.3"}[5m]))) / ignoring(x) b_total offset 5m > 1e3 and on(node) c'),
    ).toEqual(['a_bucket', 'b_total', 'c']);
    expect(metricNames('absent(up{job="pushwire"} == 1)')).toEqual(['up']);
  });
});
