// tests/browser/ui.test.mjs - the web UI in headless chromium against a real `weir
// standalone`: log in as the generated admin, see the DAG list with an import error, trigger a
// DAG with conf checked against its params, watch the grid turn green, read a task's log,
// clear a task (with downstream), look at graph / code / runs, pause a DAG, use the admin
// pages (the connection password never shows), and a viewer who cannot trigger or pause.
// Screenshots of every page go to WEIR_BROWSER_ARTIFACTS.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Weir, launch, login, shot, watchPage, waitFor } from './harness.mjs';

const CONF_DAG = `dag: ui_conf
description: Browser test DAG with params
tags: [browser]
params:
  greeting: {type: string, default: hello, description: What to say}
  count: {type: integer, default: 2}
tasks:
  greet:
    run: shell.run
    with:
      command: |
        echo "greeting={{ params.greeting }} count={{ params.count }}"
        sleep 1
        echo "greet done"
  after:
    needs: [greet]
    run: shell.run
    with: {command: echo after}
  last:
    needs: [after]
    run: shell.run
    with: {command: echo last}
  side:
    needs: [greet]
    run: shell.run
    with: {command: echo side}
`;
const PAUSE_DAG = `dag: ui_pause
description: A scheduled DAG the test pauses
schedule: "30 6 * * mon-fri"
start_date: 2026-01-01
tasks:
  only:
    run: shell.run
    with: {command: "true"}
`;
const TAIL_DAG = `dag: ui_tail
description: Writes a line, waits, writes another (for the live log tail)
tasks:
  slow:
    run: shell.run
    with:
      command: |
        echo "first line"
        sleep 4
        echo "second line"
`;
const BROKEN_DAG = `dag: ui_broken
schedul: "@daily"
tasks: {}
`;

const enc = encodeURIComponent;

// The steps build on each other (the run triggered in one is cleared in the next), so after
// the first failure the rest are skipped instead of each waiting out its own timeout.
let broken = null;
function step(name, fn) {
  test(name, async t => {
    if (broken) { t.skip(`after the failure of '${broken}'`); return; }
    try { await fn(t); } catch (e) { broken = name; throw e; }
  });
}

describe('web UI', () => {
  let w, br, page;
  const problems = [];
  let runId;

  before(async () => {
    try {
      w = new Weir('ui');
      w.writeDag('ui_conf.yaml', CONF_DAG);
      w.writeDag('ui_pause.yaml', PAUSE_DAG);
      w.writeDag('ui_tail.yaml', TAIL_DAG);
      w.writeDag('ui_broken.yaml', BROKEN_DAG);
      await w.start();
      await w.waitDag('ui_conf');
      await w.waitDag('ui_pause');
      await w.waitDag('ui_tail');
      br = await launch();
      page = br.browser.pages()[0] || await br.browser.newPage();
      page.setDefaultTimeout(20000);
      watchPage(page, problems);
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
  after(cleanup);

  step('unauthenticated visitors get the login page, and a wrong password is refused', async () => {
    await page.goto(w.url + '/');
    await page.waitForURL(/\/login/, { timeout: 15000 });
    await shot(page, '01-login');
    await page.fill('#username', 'admin');
    await page.fill('#password', 'not-the-password');
    await page.click('#login-submit');
    await page.waitForSelector('#login-error:not(.hidden)');
    assert.match(await page.textContent('#login-error'), /wrong username or password/i);
    const r = await fetch(w.url + '/api/v1/dags');
    assert.equal(r.status, 401, 'the API needs credentials');
  });

  step('admin logs in and sees the DAG list with the import error on top', async () => {
    await login(page, w.url, 'admin', w.adminPassword);
    await page.waitForSelector('tr[data-dag="ui_conf"]');
    await page.waitForSelector('#import-error-banner', { timeout: 20000 });
    const banner = await page.textContent('#import-error-banner');
    assert.match(banner, /ui_broken\.yaml/);
    assert.match(banner, /schedul/);
    const row = await page.textContent('tr[data-dag="ui_pause"]');
    assert.match(row, /30 6 \* \* mon-fri/);
    assert.match(row, /06:30/);
    assert.match(row, /Monday to Friday/);
    assert.equal(await page.textContent('#role'), 'admin');
    await shot(page, '02-dag-list');
  });

  step('trigger checks conf against the params, then starts a run', async () => {
    await page.click('tr[data-dag="ui_conf"] button.trigger');
    await page.waitForSelector('#trigger-conf');
    const defaults = JSON.parse(await page.inputValue('#trigger-conf'));
    assert.deepEqual(defaults, { greeting: 'hello', count: 2 }, 'the editor starts from the defaults');
    await page.fill('#trigger-conf', '{"greeting": "hi there", "count": "two"}');
    await waitFor(async () => /count.*integer/.test(await page.textContent('#trigger-check')), { what: 'type error' });
    await page.fill('#trigger-conf', '{"count": 3}');
    await waitFor(async () => /matches/.test(await page.textContent('#trigger-check')), { what: 'defaults fill the rest' });
    await page.fill('#trigger-conf', '{"greeting": "hi there", "count": ');
    await waitFor(async () => /not valid JSON/.test(await page.textContent('#trigger-check')), { what: 'JSON error' });
    await page.click('dialog button.primary');
    assert.ok(await page.isVisible('dialog'), 'an invalid conf keeps the dialog open');
    await page.fill('#trigger-conf', '{"greeting": "hi there", "count": 5}');
    await waitFor(async () => /matches/.test(await page.textContent('#trigger-check')), { what: 'valid conf' });
    await shot(page, '03-trigger-dialog');
    await page.click('dialog button.primary');
    await page.waitForURL(/#\/dags\/ui_conf\/grid\?run=/, { timeout: 15000 });
    runId = decodeURIComponent(page.url().split('run=')[1]);
    const run = await w.api('GET', `/dags/ui_conf/dagRuns/${enc(runId)}`);
    assert.deepEqual(run.conf, { greeting: 'hi there', count: 5 });
  });

  step('the grid turns green', async () => {
    await page.waitForSelector('#grid');
    await waitFor(async () => page.evaluate(() => {
      const cells = [...document.querySelectorAll('#grid tbody tr')].map(r => r.lastElementChild.firstElementChild.dataset.state);
      return cells.length === 4 && cells.every(s => s === 'success') ? cells : null;
    }), { timeout: 90000, interval: 250, what: 'every task of the run to succeed in the grid' });
    await page.waitForSelector('#grid thead .bar[data-state="success"]', { timeout: 15000 });
    assert.match(await page.textContent('#run-panel'), /success/);
    await shot(page, '04-grid');
  });

  step('the graph shows the tasks with their states', async () => {
    await page.click('nav.tabs a[data-tab="graph"]');
    await page.waitForSelector('svg#graph g.node[data-task="last"][data-state="success"]');
    assert.equal(await page.locator('svg#graph g.node').count(), 4);
    assert.equal(await page.locator('svg#graph path.edge').count(), 3);
    await shot(page, '05-graph');
  });

  step('a task log shows the rendered conf', async () => {
    await page.click('nav.tabs a[data-tab="grid"]');
    await page.waitForSelector('#grid .sq[data-task="greet"]');
    await page.click('#grid tbody tr:first-child td:last-child .sq');
    await page.waitForURL(/\/tasks\/greet/);
    await waitFor(async () => /greeting=hi there count=5/.test(await page.textContent('#log')),
      { timeout: 20000, what: 'the log to show the conf' });
    assert.match(await page.textContent('#log'), /greet done/);
    assert.match(await page.textContent('#ti-state'), /success/);
    await shot(page, '06-task-log');
  });

  step('the log of a running task is tailed live', async () => {
    const run = await w.api('POST', '/dags/ui_tail/dagRuns', { conf: {} });
    await page.goto(`${w.url}/#/dags/ui_tail/runs/${enc(run.dag_run_id)}/tasks/slow`);
    // the command's own output lines, not the shell plugin's echo of the command
    const first = /\bINFO first line$/m, second = /\bINFO second line$/m;
    await waitFor(async () => first.test(await page.textContent('#log')), { timeout: 30000, what: 'the first line' });
    assert.doesNotMatch(await page.textContent('#log'), second);
    assert.ok(await page.isVisible('#log-live'), 'the tail shows it is live');
    await shot(page, '06b-task-log-live');
    await waitFor(async () => second.test(await page.textContent('#log')), { timeout: 30000, what: 'the second line, without a reload' });
    await page.waitForSelector('#ti-state [data-state="success"]', { timeout: 20000 });
    await page.waitForSelector('#log-live', { state: 'detached', timeout: 10000 });
    const text = await page.textContent('#log');
    assert.equal(text.match(/INFO first line$/gm).length, 1, 'no line is shown twice');
  });

  step('clear with downstream runs the tasks again', async () => {
    await page.goto(`${w.url}/#/dags/ui_conf/runs/${enc(runId)}/tasks/greet`);
    await page.waitForSelector('#ti-state [data-state="success"]');
    await page.click('#ti-clear');
    await page.waitForSelector('#clear-list li');
    const listed = await page.locator('#clear-list li').allTextContents();
    assert.deepEqual(listed.sort(), ['after', 'greet', 'last', 'side']);
    await shot(page, '07-clear-confirm');
    await page.click('dialog button.primary');
    await waitFor(async () => {
      const ti = await w.api('GET', `/dags/ui_conf/dagRuns/${enc(runId)}/taskInstances/greet`);
      return ti.try_number >= 2 && ti.state === 'success' ? ti : null;
    }, { timeout: 90000, interval: 300, what: 'greet to run a second time' });
    await page.waitForSelector('#ti-tries a[data-try="2"]', { timeout: 20000 });
    await waitFor(async () => /greet done/.test(await page.textContent('#log')), { timeout: 20000, what: 'the log of try 2' });
    await shot(page, '08-task-after-clear');
  });

  step('mark failed asks first and sets the state', async () => {
    await page.goto(`${w.url}/#/dags/ui_conf/runs/${enc(runId)}/tasks/side`);
    await page.waitForSelector('#ti-state .st');
    await waitFor(async () => /success/.test(await page.textContent('#ti-state')), { timeout: 60000, what: 'side to succeed again' });
    await page.click('#ti-failed');
    await page.waitForSelector('dialog');
    await page.click('dialog button:not(.primary)'); // cancel: nothing changes
    assert.equal((await w.api('GET', `/dags/ui_conf/dagRuns/${enc(runId)}/taskInstances/side`)).state, 'success');
    await page.click('#ti-failed');
    await page.click('dialog button.primary');
    await waitFor(async () => (await w.api('GET', `/dags/ui_conf/dagRuns/${enc(runId)}/taskInstances/side`)).state === 'failed',
      { timeout: 15000, what: 'side to be failed' });
    await page.waitForSelector('#ti-state [data-state="failed"]', { timeout: 15000 });
  });

  step('code and runs tabs', async () => {
    await page.goto(`${w.url}/#/dags/ui_conf/code`);
    await page.waitForSelector('#dag-source');
    assert.match(await page.textContent('#dag-source'), /dag: ui_conf/);
    await shot(page, '09-code');
    await page.goto(`${w.url}/#/dags/ui_conf/runs`);
    await page.waitForSelector('#runs-table tbody tr td .st');
    assert.match(await page.textContent('#runs-table'), new RegExp(runId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    await shot(page, '10-runs');
  });

  step('pause a DAG from the list', async () => {
    await page.goto(w.url + '/#/');
    const toggle = page.locator('tr[data-dag="ui_pause"] input.pause-toggle');
    await toggle.waitFor({ state: 'attached' });
    assert.equal(await toggle.isChecked(), true);
    await page.click('tr[data-dag="ui_pause"] label.switch'); // the visible switch, as a user clicks it
    await waitFor(async () => (await w.api('GET', '/dags/ui_pause')).is_paused === true, { what: 'ui_pause to be paused' });
    await page.reload();
    await page.locator('tr[data-dag="ui_pause"] input.pause-toggle').waitFor({ state: 'attached' });
    assert.equal(await page.locator('tr[data-dag="ui_pause"] input.pause-toggle').isChecked(), false);
    assert.ok(await page.locator('tr[data-dag="ui_pause"].paused-row').count());
    await shot(page, '11-dag-paused');
  });

  step('admin pages: variables, connections without passwords, pools, users', async () => {
    await page.goto(w.url + '/#/admin/variables');
    await page.click('#adm-add');
    await page.fill('#adm-form [name="key"]', 'city');
    await page.fill('#adm-form [name="value"]', 'Utrecht');
    await page.click('dialog button.primary');
    await page.waitForSelector('#adm-table tr[data-key="city"]');
    assert.equal((await w.api('GET', '/variables/city')).value, 'Utrecht');
    await shot(page, '12-variables');

    await w.api('POST', '/connections', { connection_id: 'minio', conn_type: 'aws', host: '127.0.0.1', port: 9000, login: 'weir', password: 'sekrit-pass-123' });
    await page.goto(w.url + '/#/admin/connections');
    await page.waitForSelector('#adm-table tr[data-key="minio"]');
    const html = await page.content();
    assert.ok(!html.includes('sekrit-pass-123'), 'the password never reaches the page');
    await shot(page, '13-connections');

    await page.goto(w.url + '/#/admin/pools');
    await page.click('#adm-add');
    await page.fill('#adm-form [name="name"]', 'ui_pool');
    await page.fill('#adm-form [name="slots"]', '3');
    await page.click('dialog button.primary');
    await page.waitForSelector('#adm-table tr[data-key="ui_pool"]');
    await page.click('#adm-table tr[data-key="ui_pool"] .adm-edit');
    await page.fill('#adm-form [name="slots"]', '7');
    await page.click('dialog button.primary');
    await waitFor(async () => (await w.api('GET', '/pools/ui_pool')).slots === 7, { what: 'the pool edit' });
    await shot(page, '14-pools');

    await page.goto(w.url + '/#/admin/users');
    await page.waitForSelector('#adm-table tr[data-key="admin"]');
    await page.click('#adm-add');
    await page.fill('#adm-form [name="username"]', 'otto');
    await page.fill('#adm-form [name="password"]', 'operator-pass-1');
    await page.selectOption('#adm-form [name="role"]', 'op');
    await page.click('dialog button.primary');
    await page.waitForSelector('#adm-table tr[data-key="otto"]');
    assert.deepEqual((await w.api('GET', '/users/otto')).roles.map(r => r.name), ['op']);
    await shot(page, '15-users');

    await page.goto(w.url + '/#/admin/variables');
    await page.click('#adm-table tr[data-key="city"] .adm-del');
    await page.click('dialog button.primary');
    await page.waitForSelector('#adm-table tr[data-key="city"]', { state: 'detached' });
    assert.equal((await w.api('GET', '/variables/city', undefined, { raw: true })).status, 404);
  });

  step('a viewer sees everything but cannot trigger, pause or clear', async () => {
    w.cli(['users', 'create', '--username', 'vera', '--role', 'viewer', '--password', 'viewer-pass-1'], { check: 0 });
    const ctx = await launch();
    try {
      const vp = ctx.browser.pages()[0] || await ctx.browser.newPage();
      watchPage(vp, problems);
      await login(vp, w.url, 'vera', 'viewer-pass-1');
      assert.equal(await vp.textContent('#role'), 'viewer');
      await vp.waitForSelector('tr[data-dag="ui_conf"] button.trigger');
      assert.equal(await vp.isDisabled('tr[data-dag="ui_conf"] button.trigger'), true);
      assert.equal(await vp.isDisabled('tr[data-dag="ui_conf"] input.pause-toggle'), true);
      await shot(vp, '16-viewer-dag-list');
      await vp.goto(`${w.url}/#/dags/ui_conf/grid`);
      await vp.waitForSelector('#dag-trigger');
      assert.equal(await vp.isDisabled('#dag-trigger'), true);
      await vp.goto(`${w.url}/#/dags/ui_conf/runs/${enc(runId)}/tasks/greet`);
      await vp.waitForSelector('#ti-clear');
      assert.equal(await vp.isDisabled('#ti-clear'), true);
      // The server refuses too, whatever the page shows: a forged request with a valid
      // session and CSRF token still gets 403.
      const status = await vp.evaluate(async () => {
        const me = await (await fetch('/auth/me')).json();
        const r = await fetch('/api/v1/dags/ui_conf/dagRuns', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token || '' }, body: '{"conf":{}}' });
        return r.status;
      });
      assert.equal(status, 403);
    } finally {
      await ctx.close();
    }
  });

  step('a state change without the CSRF token is refused', async () => {
    const status = await page.evaluate(async () => {
      const r = await fetch('/api/v1/dags/ui_conf?update_mask=is_paused', { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: '{"is_paused":true}' });
      return r.status;
    });
    assert.equal(status, 403);
    assert.equal((await w.api('GET', '/dags/ui_conf')).is_paused, false);
  });

  test('no script errors on any page', () => {
    assert.deepEqual(problems, []);
  });
});
