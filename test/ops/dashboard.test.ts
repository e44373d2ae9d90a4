/**
 * `ferry dashboard` for a deployment that is not the demo: two sites and a receiver as real
 * processes, the dashboard as a user starts it, the page in headless Chromium. It lists the
 * shipping node of A and the passive node of B, charts and tables the partitions behind (and
 * draws them in the per-partition lag grid) while Kafka is down and shows them caught up once it is back, and filters by site.
 * FERRY_DASHBOARD_SCREENSHOT=<file.png> saves a screenshot (docs/dashboard.png is one).
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FerryClient } from '../../store/client/client.js';
import { kafkaPerFile } from '../helpers/kafka.js';
import { Proc, runCli, startSites, waitFor } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
/** Longest wait for the page to show a state. */
const PAGE_TIMEOUT_MS = 30_000;

const kafka = kafkaPerFile(test);

async function write(c: FerryClient, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) await c.put({ namespace: 'test', set: 'dash', key: `${tag}-${i}` }, { i });
}

interface Row {
  site: string;
  status: string;
  cls: string;
  cells: string[];
}
/** The rows of a table on the page (evaluated in the browser; tsconfig has no DOM types). */
const rows = (page: Page, table: string): Promise<Row[]> =>
  page.locator(`#${table} tbody tr`).evaluateAll((trs: Array<{ getAttribute(n: string): string | null; className: string; children: ArrayLike<{ textContent: string | null }> }>) =>
    trs.map((tr) => ({ site: tr.getAttribute('data-site') ?? '', status: tr.getAttribute('data-status') ?? '', cls: tr.className, cells: Array.from(tr.children, (td) => td.textContent ?? '') })),
  );

interface Grid {
  site: string;
  dest: string;
  ns: string;
  records: number;
  cells: Array<{ pid: number; behind: number; node: string; x: number; y: number }>;
}
/** The partition-lag grids on the page. */
const partitionGrid = (page: Page): Promise<Grid[]> =>
  page.locator('#partition-lag .plag').evaluateAll((divs: Array<{ getAttribute(n: string): string | null; querySelectorAll(q: string): ArrayLike<{ getAttribute(n: string): string | null }> }>) =>
    divs.map((d) => ({
      site: d.getAttribute('data-site') ?? '',
      dest: d.getAttribute('data-dest') ?? '',
      ns: d.getAttribute('data-ns') ?? '',
      records: Number(d.getAttribute('data-records')),
      cells: Array.from(d.querySelectorAll('rect[data-pid]'), (r) => ({ pid: Number(r.getAttribute('data-pid')), behind: Number(r.getAttribute('data-behind')), node: r.getAttribute('data-node') ?? '', x: Number(r.getAttribute('x')), y: Number(r.getAttribute('y')) })),
    })),
  );

test.serial('ferry dashboard: nodes per site, partitions behind (table and per-partition lag grid) while Kafka is down, caught up after; site filter; usage errors', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing: run "bash scripts/setup-test-deps.sh" (installs chromium)`);
    return;
  }
  const s = await startSites(t, (dir) => kafka.broker('embedded', dir));
  await write(s.clientA, 50, 'first');
  const dash = new Proc('dashboard', ['dashboard', '--site', `A=${s.a}`, '--site', `B=${s.b}`, '--receiver', s.receiverUrl, '--port', '0', '--interval-ms', '300'], /ferry dashboard on /);
  t.teardown(() => dash.stop('SIGKILL'));
  await dash.start();
  const url = /ferry dashboard on (http:\/\/\S+)/.exec(dash.output)?.[1];
  t.truthy(url, dash.output);

  let browser: Browser | undefined;
  t.teardown(async () => {
    await browser?.close().catch(() => undefined);
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  await page.goto(url!, { timeout: 10_000 });
  t.is(await page.title(), 'ferry: replication lag');

  // Both sites listed: A ships to B, B is passive; the receiver applied the first records.
  await waitFor(async () => {
    const n = await rows(page, 'nodes');
    const r = await rows(page, 'receivers');
    return n.some((x) => x.site === 'A' && x.status === 'shipping' && x.cells[3] === 'B') && n.some((x) => x.site === 'B' && x.status === 'passive') && r.some((x) => x.cells[1] === 'running' && Number(x.cells[3]!.replace(/,/g, '')) >= 50);
  }, PAGE_TIMEOUT_MS, 'the page to list A shipping, B passive and the receiver running');
  // The rebalance table lists every node (one-node sites: active, nothing to migrate).
  await waitFor(async () => (await rows(page, 'rebalance')).length >= 2, PAGE_TIMEOUT_MS, 'the rebalance table');
  t.true((await rows(page, 'rebalance')).every((r) => r.cells[3] === 'active'), JSON.stringify(await rows(page, 'rebalance')));

  // Kafka down: A cannot ship; the records-behind chart and the partitions table show it.
  await s.broker.stop();
  await write(s.clientA, 200, 'outage');
  const maxBehind = () => page.locator('#chart-behind polyline').first().getAttribute('data-max', { timeout: 5000 }).then(Number);
  await waitFor(async () => (await maxBehind()) >= 200 && (await rows(page, 'partitions')).filter((r) => r.cls !== 'none').length > 0, PAGE_TIMEOUT_MS, 'the page to show records and partitions behind');
  const behind = (await rows(page, 'partitions')).filter((r) => r.cls !== 'none');
  t.true(behind.every((r) => r.cells[0] === 'A' && r.cells[2] === 'B' && Number(r.cells[5]) > 0), JSON.stringify(behind.slice(0, 3)));
  t.is(behind.reduce((sum, r) => sum + Number(r.cells[5]!.replace(/,/g, '')), 0), 200, 'the partitions behind add up to the records written during the outage');
  // The partition-lag grid of A -> B: one cell per partition behind, at its place, the same counts.
  const grid = await partitionGrid(page);
  t.deepEqual(grid.map((g) => `${g.site}/${g.dest}/${g.ns}`), ['A/B/test'], 'one grid: A ships to B; passive B has none');
  const cells = grid[0]!.cells;
  t.is(cells.length, behind.length, 'a cell per partition behind');
  t.is(cells.reduce((sum, c) => sum + c.behind, 0), 200);
  t.deepEqual(cells.map((c) => c.pid), behind.map((r) => Number(r.cells[4])).sort((x, y) => x - y), 'the cells are the partitions of the table, in pid order');
  t.true(cells.every((c) => c.x === c.pid % 64 && c.y === Math.floor(c.pid / 64) && c.node === s.a), JSON.stringify(cells.slice(0, 3)));
  t.is(grid[0]!.records, 200);

  // Kafka back: everything ships, nothing is behind, the receiver applied all 250.
  await s.broker.start();
  await waitFor(async () => {
    const p = await rows(page, 'partitions');
    const r = await rows(page, 'receivers');
    const last = await page.locator('#chart-behind polyline').first().getAttribute('data-last');
    const g = await partitionGrid(page);
    return p.length === 1 && p[0]!.cls === 'none' && last === '0' && Number(r[0]!.cells[3]!.replace(/,/g, '')) >= 250 && g.length === 1 && g[0]!.cells.length === 0;
  }, 60_000, 'the page to show A caught up and 250 applied');
  t.regex(await page.locator('#partition-lag .plag p').first().innerText(), /all 4,096 partitions caught up/);
  const shot = process.env.FERRY_DASHBOARD_SCREENSHOT;
  if (shot) await page.screenshot({ path: shot, fullPage: true });

  // The site filter shows only that site's nodes.
  await page.selectOption('#site', 'B');
  await waitFor(async () => (await rows(page, 'nodes')).every((r) => r.site === 'B'), PAGE_TIMEOUT_MS, 'the site filter');
  t.true((await rows(page, 'nodes')).length >= 1);

  const [none, bad] = await Promise.all([runCli(['dashboard']), runCli(['dashboard', '--site', 'A'])]);
  t.is(none.code, 2);
  t.regex(none.stderr, /--site/);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--site must be NAME=host:port/);
});
