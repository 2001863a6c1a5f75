// tests/browser/scale.test.mjs - the UI stays usable at size: 500 DAGs in the list (server-side
// paging and search) and a run of a 200-task DAG in the grid and graph. Each page must be
// ready within a few seconds and the main thread must never block for long (long tasks are
// measured in the page with a PerformanceObserver). Figures go to the artifacts folder.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Weir, launch, login, shot, watchPage, waitFor, ARTIFACTS } from './harness.mjs';

const NDAGS = 500;
const NTASKS = 200;
// Generous bounds: the Sanitize build and a busy 2-core CI machine run this too.
const READY_MS = 8000;
const LONGEST_TASK_MS = 1500;

function bigDag() {
  let s = `dag: big_200\ndescription: ${NTASKS} tasks in 20 layers\nmax_active_tasks: 64\ntasks:\n`;
  for (let i = 0; i < NTASKS; i++) {
    s += `  task_${String(i).padStart(3, '0')}:\n    run: shell.run\n    with: {command: "true"}\n`;
    if (i >= 10) s += `    needs: [task_${String(i - 10).padStart(3, '0')}]\n`;
  }
  return s;
}

describe('UI at scale', () => {
  let w, br, page;
  const problems = [];
  const figures = {};

  before(async () => {
    try {
      w = new Weir('scale');
      for (let i = 0; i < NDAGS; i++) {
        const id = `dag_${String(i).padStart(3, '0')}`;
        // Schedules start in the future: next runs show, but no run is created meanwhile.
        w.writeDag(`${id}.yaml`, `dag: ${id}\ndescription: DAG number ${i}\nschedule: "${i % 60} ${i % 24} * * *"\nstart_date: 2030-01-01\ntags: [scale]\ntasks:\n  only: {run: shell.run, with: {command: "true"}}\n`);
      }
      w.writeDag('big_200.yaml', bigDag());
      await w.start();
      await waitFor(async () => (await w.api('GET', '/dags?limit=1')).total_entries === NDAGS + 1,
        { timeout: 60000, interval: 300, what: `${NDAGS + 1} DAGs parsed` });
      br = await launch();
      page = br.browser.pages()[0] || await br.browser.newPage();
      page.setDefaultTimeout(30000);
      watchPage(page, problems);
      await page.addInitScript(() => {
        window.__longest = 0;
        new PerformanceObserver(l => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); })
          .observe({ type: 'longtask', buffered: true });
      });
      await login(page, w.url, 'admin', w.adminPassword);
    } catch (e) {
      await cleanup();
      throw e;
    }
  });

  // after() does not run when before() failed: both call this, and it runs once.
  async function cleanup() {
    const b = br, x = w;
    br = w = null;
    if (b) await b.close();
    if (x) await x.stop();
  }
  after(async () => {
    fs.writeFileSync(path.join(ARTIFACTS, 'scale-figures.json'), JSON.stringify(figures, null, 2) + '\n');
    await cleanup();
  });

  test(`the DAG list pages through ${NDAGS} DAGs`, async () => {
    const t0 = Date.now();
    await page.goto(w.url + '/#/');
    await page.waitForSelector('#dag-table tbody tr[data-dag]');
    figures.dag_list_ms = Date.now() - t0;
    assert.equal(await page.locator('#dag-table tbody tr[data-dag]').count(), 50);
    assert.match(await page.textContent('#dag-count'), new RegExp(`${NDAGS + 1} total`));
    assert.match(await page.textContent('#dag-pager'), /Page 1 of 11/);
    await page.click('#dag-pager button:has-text("Next")');
    await page.waitForSelector('tr[data-dag="dag_049"]');
    await page.fill('#dag-search', 'dag_42');
    await page.waitForFunction(() => document.querySelectorAll('#dag-table tbody tr[data-dag]').length === 10);
    await shot(page, 'scale-01-dag-list');
    figures.dag_list_longest_task_ms = await page.evaluate(() => window.__longest);
    assert.ok(figures.dag_list_ms < READY_MS, `DAG list ready in ${figures.dag_list_ms} ms`);
  });

  test(`a run of ${NTASKS} tasks in the grid and the graph`, async () => {
    const run = await w.api('POST', '/dags/big_200/dagRuns', { conf: {} });
    await page.goto(`${w.url}/#/dags/big_200/grid`);
    const t0 = Date.now();
    await page.waitForFunction(n => document.querySelectorAll('#grid tbody tr').length === n, NTASKS);
    figures.grid_first_paint_ms = Date.now() - t0;
    await waitFor(async () => (await w.api('GET', `/dags/big_200/dagRuns/${encodeURIComponent(run.dag_run_id)}`)).state === 'success',
      { timeout: 200000, interval: 1000, what: 'the 200-task run to succeed' });
    await page.waitForFunction(() => [...document.querySelectorAll('#grid tbody .sq')].every(c => c.dataset.state === 'success'), null, { timeout: 30000 });
    await shot(page, 'scale-02-grid');
    figures.grid_longest_task_ms = await page.evaluate(() => window.__longest);
    const t1 = Date.now();
    await page.click('nav.tabs a[data-tab="graph"]');
    await page.waitForFunction(n => document.querySelectorAll('svg#graph g.node[data-state="success"]').length === n, NTASKS);
    figures.graph_ms = Date.now() - t1;
    await shot(page, 'scale-03-graph');
    figures.graph_longest_task_ms = await page.evaluate(() => window.__longest);
    assert.ok(figures.grid_first_paint_ms < READY_MS, `grid painted in ${figures.grid_first_paint_ms} ms`);
    assert.ok(figures.graph_ms < READY_MS, `graph ready in ${figures.graph_ms} ms`);
    for (const k of ['dag_list_longest_task_ms', 'grid_longest_task_ms', 'graph_longest_task_ms'])
      assert.ok(figures[k] < LONGEST_TASK_MS, `${k} = ${figures[k]} ms`);
  });

  test('no script errors', () => {
    assert.deepEqual(problems, []);
  });
});
