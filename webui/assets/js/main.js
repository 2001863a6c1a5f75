// webui/assets/js/main.js - entry point: loads the session, then routes the URL hash to a
// page. A page is render(main, route) returning a cleanup function; the router calls it
// before the next page renders, so polling timers never outlive their page.
import { loadSession, session, logout, can } from './api.js';
import { esc } from './ui.js';

const routes = [
  [/^\/?$/, () => import('./dags.js'), () => ({})],
  [/^\/dags\/([^/]+)\/runs\/([^/]+)\/tasks\/([^/]+)$/, () => import('./ti.js'), m => ({ dag: m[1], run: m[2], task: m[3] })],
  [/^\/dags\/([^/]+)(?:\/(grid|graph|code|runs|details))?$/, () => import('./dag.js'), m => ({ dag: m[1], tab: m[2] || 'grid' })],
  [/^\/admin\/(variables|connections|pools|users)$/, () => import('./admin.js'), m => ({ kind: m[1] })],
];

let cleanup = null;
let seq = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query] = raw.split('?');
  return { path, query: new URLSearchParams(query || '') };
}

async function route() {
  const my = ++seq;
  if (cleanup) { try { cleanup(); } catch { /* a page's cleanup must not stop navigation */ } cleanup = null; }
  const main = document.getElementById('main');
  const { path, query } = parseHash();
  for (const [re, load, args] of routes) {
    const m = path.match(re);
    if (!m) continue;
    const params = args(m);
    for (const k of Object.keys(params)) params[k] = decodeURIComponent(params[k]);
    params.query = query;
    const nav = params.kind || (params.dag ? 'dag' : 'dags');
    document.querySelectorAll('header.top nav a').forEach(a => a.classList.toggle('active', a.dataset.nav === nav));
    const mod = await load();
    if (my !== seq) return; // the user navigated again while the module loaded
    main.replaceChildren();
    try {
      cleanup = (await mod.render(main, params)) || null;
    } catch (e) {
      main.innerHTML = `<div class="banner error">${esc(e.message || e)}</div>`;
    }
    if (my !== seq && cleanup) { cleanup(); cleanup = null; }
    return;
  }
  main.innerHTML = `<h1>Not found</h1><p>No page at <code>${esc(path)}</code>. <a href="#/">Back to DAGs</a></p>`;
}

async function start() {
  try {
    await loadSession();
  } catch (e) {
    document.getElementById('main').innerHTML = `<div class="banner error">${esc(e.message)}</div>`;
    return;
  }
  document.getElementById('who').textContent = session.username || '';
  document.getElementById('role').textContent = session.role;
  document.getElementById('logout').addEventListener('click', logout);
  document.body.dataset.role = session.role;
  if (!can.admin()) document.querySelector('[data-nav="users"]').classList.add('hidden');
  window.addEventListener('hashchange', route);
  route();
}

start();
