// tests/browser/harness.mjs - what every browser test needs: a real `weir standalone` on
// 127.0.0.1 (fresh WEIR_HOME and DAG folder in a temp dir, port 0), the admin password it
// prints on first start, a `weir` CLI runner, a small API client (basic auth), and Debian's
// headless chromium driven by playwright-core with a fresh profile. Every wait is bounded.
//
// Environment (set by tests/browser/browser.cmake):
//   WEIR_BIN               the weir binary under test
//   WEIR_NODE_MODULES      the node_modules folder that holds playwright-core (build dir)
//   WEIR_BROWSER_ARTIFACTS folder for screenshots and logs
//   WEIR_CHROMIUM          browser executable (default /usr/bin/chromium)
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(path.join(process.env.WEIR_NODE_MODULES || path.join(process.cwd(), 'node_modules'), 'x.js'));
const { chromium } = require('playwright-core');

export const ARTIFACTS = process.env.WEIR_BROWSER_ARTIFACTS || path.join(os.tmpdir(), 'weir-browser-artifacts');
fs.mkdirSync(ARTIFACTS, { recursive: true });

const sleep = ms => new Promise(r => setTimeout(r, ms));

export async function waitFor(cond, { timeout = 30000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await cond();
    if (last) return last;
    await sleep(interval);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

export class Weir {
  constructor(name) {
    this.name = name;
    this.bin = process.env.WEIR_BIN;
    if (!this.bin) throw new Error('WEIR_BIN is not set');
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-browser-'));
    this.home = path.join(this.tmp, 'home');
    this.dags = path.join(this.tmp, 'dags');
    fs.mkdirSync(this.home);
    fs.mkdirSync(this.dags);
    this.env = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEIR_')) this.env[k] = v;
    Object.assign(this.env, {
      WEIR_HOME: this.home, WEIR_CORE__DAGS_FOLDER: this.dags, WEIR_CORE__LOG_LEVEL: 'info',
      WEIR_WEBSERVER__HOST: '127.0.0.1', WEIR_WEBSERVER__PORT: '0',
      WEIR_SCHEDULER__DAGS_ARE_PAUSED_AT_CREATION: 'false', TMPDIR: this.tmp,
    });
    this.out = '';
    this.proc = null;
  }

  writeDag(file, text) {
    const p = path.join(this.dags, file);
    fs.writeFileSync(p + '.tmp', text);
    fs.renameSync(p + '.tmp', p);
  }

  // Runs `weir ARGS` synchronously; returns {status, stdout, stderr}. check: expected exit code.
  cli(args, { check = 0, input } = {}) {
    const r = spawnSync(this.bin, args, { env: this.env, encoding: 'utf8', timeout: 60000, input });
    if (check !== null && r.status !== check)
      throw new Error(`weir ${args.join(' ')}: exit ${r.status}, expected ${check}\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  // Starts `weir standalone`; resolves once the web server answers /health, with the URL
  // and the admin password printed on first start.
  async start() {
    this.proc = spawn(this.bin, ['standalone'], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const logf = fs.createWriteStream(path.join(ARTIFACTS, `${this.name}-standalone.log`));
    const onData = d => { this.out += d.toString(); logf.write(d); };
    this.proc.stdout.on('data', onData);
    this.proc.stderr.on('data', onData);
    this.exited = new Promise(r => this.proc.on('exit', (code, sig) => r({ code, sig })));
    const url = await waitFor(() => {
      if (this.proc.exitCode !== null) throw new Error(`weir standalone exited ${this.proc.exitCode}:\n${this.out}`);
      const m = this.out.match(/https?:\/\/(127\.0\.0\.1|localhost|\[::1\]|0\.0\.0\.0):(\d+)/);
      return m && `http://127.0.0.1:${m[2]}`;
    }, { timeout: 30000, what: 'the web server URL in the standalone output' });
    this.url = url;
    const pw = await waitFor(() => {
      const m = this.out.match(/created user 'admin'.*?password:\s*(\S+)/);
      return m && m[1];
    }, { timeout: 10000, what: 'the admin password in the standalone output' });
    this.adminPassword = pw;
    await waitFor(async () => {
      try { return (await fetch(url + '/health')).ok; } catch { return false; }
    }, { timeout: 20000, what: '/health' });
    return this;
  }

  async api(method, p, body, { user = 'admin', password = this.adminPassword, raw = false } = {}) {
    const headers = { Authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64'), Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(this.url + '/api/v1' + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (raw) return r;
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  // Waits until the scheduler has parsed a DAG (it appears in the API).
  async waitDag(id, timeout = 30000) {
    try {
      return await waitFor(async () => {
        const r = await this.api('GET', `/dags/${encodeURIComponent(id)}`, undefined, { raw: true });
        return r.ok ? r.json() : null;
      }, { timeout, interval: 200, what: `DAG ${id} to be parsed` });
    } catch (e) {
      const errs = await this.api('GET', '/importErrors').catch(() => null);
      e.message += '\nimport errors: ' + JSON.stringify(errs && errs.import_errors);
      throw e;
    }
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(t);
    }
    if (!process.env.WEIR_KEEP_TMP) fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

// Launches headless Debian chromium with a fresh profile; returns {browser, close}.
export async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'weir-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.WEIR_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Collects page errors and failed same-origin requests other than expected ones, so a
// broken script fails the test instead of only looking odd in a screenshot.
export function watchPage(page, problems) {
  page.on('pageerror', e => problems.push('page error: ' + e.message));
  page.on('console', m => { if (m.type() === 'error' && !/status of (401|403|404|409)/.test(m.text())) problems.push('console: ' + m.text()); });
}

export async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, name + '.png'), fullPage: false });
}

export async function login(page, base, user, password) {
  await page.goto(base + '/login');
  await page.fill('#username', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(u => !String(u).includes('/login'), { timeout: 15000 }), page.click('#login-submit')]);
  await page.waitForSelector('#who:not(:empty)', { timeout: 15000 });
}
