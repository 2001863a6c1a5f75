// webui/assets/js/dag.js - one DAG: header (pause, trigger), then tabs: the grid of recent
// runs x tasks, the task graph with the states of one run, run history, the DAG file and
// details. While a run is active the page polls, re-fetching only the task instances of
// unfinished runs; finished runs are cached. The grid is rendered once as one HTML string
// and later updated cell by cell, so 200 tasks x 100 runs stays smooth.
import { get, patch, post, qs, enc, limitAll, getAll, can } from './api.js';
import { esc, h, fmtTime, fmtDur, durOf, relTime, sClass, stateBadge, legend, cronWords, scheduleText, confirm, guard, toast, FINISHED, isActive } from './ui.js';
import { openTrigger, renderPager } from './dags.js';

const RUN_CHOICES = [10, 25, 50, 100];

export async function render(main, { dag: dagId, tab, query }) {
  let alive = true;
  let timer = null;
  const nRuns = RUN_CHOICES.includes(+query.get('runs')) ? +query.get('runs') : 25;
  let selRun = query.get('run') || null;
  const base = '#/dags/' + enc(dagId);

  main.innerHTML = `<div class="crumbs"><a href="#/">DAGs</a> /</div>
    <div class="toolbar" id="dag-head"><h1 class="grow mono" id="dag-title">${esc(dagId)}</h1></div>
    <nav class="tabs">${['grid', 'graph', 'runs', 'code', 'details'].map(t =>
      `<a href="${base}/${t}${selRun && (t === 'grid' || t === 'graph') ? '?run=' + enc(selRun) : ''}" class="${t === tab ? 'active' : ''}" data-tab="${t}">${t[0].toUpperCase() + t.slice(1)}</a>`).join('')}</nav>
    <div id="tab"></div>`;
  const tabEl = main.querySelector('#tab');

  let dag;
  try { dag = await get('/dags/' + enc(dagId)); } catch (e) {
    tabEl.innerHTML = `<div class="banner error">${esc(e.message)}</div>`;
    return null;
  }
  renderHead(main.querySelector('#dag-head'), dag);

  if (tab === 'code') { await renderCode(tabEl, dag); return () => { alive = false; }; }
  if (tab === 'details') { await renderDetails(tabEl, dagId); return () => { alive = false; }; }
  if (tab === 'runs') { await renderRuns(tabEl, dagId, query); return () => { alive = false; }; }

  // grid and graph share the data model
  let tasks = [];
  try { tasks = (await get(`/dags/${enc(dagId)}/tasks`)).tasks || []; } catch (e) {
    tabEl.innerHTML = `<div class="banner error">${esc(e.message)}</div>`;
    return null;
  }
  const order = topoOrder(tasks);
  let runs = [];
  const tiCache = new Map(); // run id -> {state, tis: Map(task -> ti)}

  async function refresh() {
    const r = await get(`/dags/${enc(dagId)}/dagRuns` + qs({ limit: nRuns, order_by: '-execution_date' }));
    runs = (r.dag_runs || []).slice().reverse(); // oldest left, newest right, as Airflow draws it
    const need = runs.filter(x => {
      const c = tiCache.get(x.dag_run_id);
      return !c || !FINISHED.has(x.state) || c.state !== x.state;
    });
    await limitAll(need.map(x => async () => {
      const list = await getAll(`/dags/${enc(dagId)}/dagRuns/${enc(x.dag_run_id)}/taskInstances`, 'task_instances', {}, 100, 20000);
      tiCache.set(x.dag_run_id, { state: x.state, tis: new Map(list.map(t => [t.task_id, t])) });
    }), 6);
    const keep = new Set(runs.map(x => x.dag_run_id));
    for (const k of tiCache.keys()) if (!keep.has(k)) tiCache.delete(k);
  }
  const anyActive = () => runs.some(x => !FINISHED.has(x.state) || [...(tiCache.get(x.dag_run_id)?.tis.values() || [])].some(t => isActive(t.state)));

  const view = tab === 'graph' ? graphView(tabEl, dagId, tasks, order) : gridView(tabEl, dagId, order, nRuns, base);
  async function tick() {
    if (!alive) return;
    try {
      if (!document.hidden) {
        await refresh();
        if (!alive) return;
        if (selRun && !runs.some(x => x.dag_run_id === selRun) && runs.length) selRun = null;
        view.update(runs, tiCache, selRun, s => {
          selRun = s;
          // grid and graph tabs keep the chosen run
          for (const a of main.querySelectorAll('nav.tabs a[data-tab="grid"], nav.tabs a[data-tab="graph"]'))
            a.href = `${base}/${a.dataset.tab}?run=${enc(s)}`;
        });
      }
    } catch (e) {
      if (alive) toast(e.message, 'error');
    }
    if (alive) timer = setTimeout(tick, anyActive() ? 1500 : 8000);
  }
  await tick();
  return () => { alive = false; clearTimeout(timer); };
}

function renderHead(el, dag) {
  const edit = can.edit();
  const cron = scheduleText(dag);
  el.append(
    h('span.muted.small', { id: 'dag-schedule', title: cron || '' }, cron ? `${dag.timetable_description && dag.timetable_description !== cron ? dag.timetable_description : cronWords(cron)} (${cron})` : 'manual only'),
    h('span.muted.small', dag.next_dagrun ? `next run ${fmtTime(dag.next_dagrun)} (${relTime(dag.next_dagrun)})` : ''),
    h('label.row', h('label.switch', h('input', { type: 'checkbox', id: 'dag-pause', checked: !dag.is_paused, disabled: !edit, 'aria-label': 'Active',
      onchange: async e => {
        const t = e.target, paused = !t.checked;
        t.disabled = true;
        const r = await guard(() => patch(`/dags/${enc(dag.dag_id)}` + qs({ update_mask: 'is_paused' }), { is_paused: paused }), paused ? 'DAG paused' : 'DAG unpaused');
        t.disabled = false;
        t.checked = r ? !r.is_paused : !paused;
        el.querySelector('#dag-pause-label').textContent = t.checked ? 'active' : 'paused';
      } }), h('span')), h('span', { id: 'dag-pause-label' }, dag.is_paused ? 'paused' : 'active')),
    h('button.primary', { type: 'button', id: 'dag-trigger', disabled: !edit, title: edit ? 'Trigger a run' : 'Your role cannot trigger runs', onclick: () => openTrigger(dag.dag_id) }, '▶ Trigger'));
  if (dag.description) el.after(h('p.muted', { id: 'dag-desc' }, dag.description));
}

// Tasks in topological order (ties by id); a cycle, which the parser rejects, falls back to id order.
function topoOrder(tasks) {
  const ids = tasks.map(t => t.task_id).sort();
  const indeg = new Map(ids.map(i => [i, 0]));
  const down = new Map(tasks.map(t => [t.task_id, (t.downstream_task_ids || []).filter(d => indeg.has(d))]));
  for (const ds of down.values()) for (const d of ds) indeg.set(d, indeg.get(d) + 1);
  const out = [], ready = ids.filter(i => indeg.get(i) === 0);
  while (ready.length) {
    const i = ready.shift();
    out.push(i);
    for (const d of down.get(i).slice().sort()) { indeg.set(d, indeg.get(d) - 1); if (indeg.get(d) === 0) ready.push(d); }
  }
  return out.length === ids.length ? out : ids;
}

// ---------------- grid ----------------
function gridView(el, dagId, order, nRuns, base) {
  el.innerHTML = `<div class="toolbar"><span class="muted small">Runs shown:</span>
      <select id="grid-runs">${RUN_CHOICES.map(n => `<option ${n === nRuns ? 'selected' : ''}>${n}</option>`).join('')}</select>
      <span class="grow"></span>${legend(['success', 'running', 'failed', 'queued', 'scheduled', 'up_for_retry', 'upstream_failed', 'skipped', 'none'])}</div>
    <div class="split"><div class="grid-wrap grow" id="grid-wrap"><div class="loading">Loading…</div></div><aside class="side" id="run-panel"><span class="muted">Select a run</span></aside></div>`;
  el.querySelector('#grid-runs').addEventListener('change', e => { location.hash = `${base}/grid?runs=${e.target.value}`; });
  const wrap = el.querySelector('#grid-wrap');
  const panel = el.querySelector('#run-panel');
  let shape = '';
  let cells = null; // cells[taskIndex][runIndex] = element
  let bars = null;
  let state = { runs: [], sel: null, setSel: null };

  wrap.addEventListener('click', e => {
    const c = e.target.closest('[data-ti]');
    if (c) {
      const [ri, ti] = c.dataset.ti.split(':').map(Number);
      const run = state.runs[ri];
      if (run) location.hash = `#/dags/${enc(dagId)}/runs/${enc(run.dag_run_id)}/tasks/${enc(order[ti])}`;
      return;
    }
    const b = e.target.closest('[data-run]');
    if (b) {
      const run = state.runs[+b.dataset.run];
      state.setSel(run.dag_run_id);
      state.sel = run.dag_run_id;
      markSel();
      runPanel(panel, dagId, run);
      history.replaceState(null, '', `${base}/grid?run=${enc(run.dag_run_id)}${nRuns !== 25 ? '&runs=' + nRuns : ''}`);
    }
  });

  function markSel() {
    if (!bars) return;
    bars.forEach((b, i) => b.classList.toggle('sel', state.runs[i].dag_run_id === state.sel));
  }

  function update(runs, tiCache, sel, setSel) {
    state = { runs, sel: sel || (runs.length ? runs[runs.length - 1].dag_run_id : null), setSel };
    const key = runs.map(r => r.dag_run_id).join('\n');
    if (!runs.length) {
      wrap.innerHTML = '<p class="muted pad" id="grid-empty">No runs yet. Trigger one with ▶.</p>';
      shape = '';
      panel.innerHTML = '<span class="muted">No runs</span>';
      panel.dataset.key = '';
      return;
    }
    if (key !== shape) {
      shape = key;
      const head = runs.map((r, i) => `<th><span class="bar ${sClass(r.state)}" data-run="${i}" data-run-id="${esc(r.dag_run_id)}" data-state="${esc(r.state)}" title="${esc(r.dag_run_id)}\n${esc(r.state)} ${esc(fmtDur(durOf(r.start_date, r.end_date)))}"></span></th>`).join('');
      const rows = order.map((t, ti) => `<tr><th class="task mono" title="${esc(t)}">${esc(t)}</th>${runs.map((r, ri) => `<td><span class="sq" data-ti="${ri}:${ti}" data-task="${esc(t)}"></span></td>`).join('')}</tr>`).join('');
      wrap.innerHTML = `<table class="grid" id="grid"><thead><tr><th class="task muted small">task \\ run</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
      const tb = wrap.querySelector('tbody');
      cells = Array.from(tb.rows, row => Array.from(row.cells, c => c.firstElementChild));
      bars = Array.from(wrap.querySelectorAll('thead .bar'));
    }
    const maxDur = Math.max(1, ...runs.map(r => durOf(r.start_date, r.end_date) || 0));
    runs.forEach((r, ri) => {
      const b = bars[ri];
      b.className = 'bar ' + sClass(r.state);
      b.dataset.state = r.state;
      b.title = `${r.dag_run_id}\n${r.state} ${fmtDur(durOf(r.start_date, r.end_date))}`;
      // bar height shows the run's duration relative to the longest run shown
      b.style.height = (8 + Math.round(52 * (durOf(r.start_date, r.end_date) || 0) / maxDur)) + 'px';
      const tis = tiCache.get(r.dag_run_id)?.tis;
      order.forEach((t, ti) => {
        const c = cells[ti][ri + 1];
        const x = tis && tis.get(t);
        const s = x ? (x.state || 'none') : 'none';
        if (c.dataset.state !== s) {
          c.dataset.state = s;
          c.className = 'sq ' + sClass(s);
        }
        c.title = `${t} · ${s}${x && x.try_number > 1 ? ' · try ' + x.try_number : ''}${x && x.duration ? ' · ' + fmtDur(x.duration) : ''}`;
      });
    });
    markSel();
    const run = runs.find(r => r.dag_run_id === state.sel);
    if (run) runPanel(panel, dagId, run);
  }
  return { update };
}

function runPanel(panel, dagId, run) {
  // Re-rendered only when the run changed, so a poll never swaps a button under the pointer.
  const key = JSON.stringify(run);
  if (panel.dataset.key === key) return;
  panel.dataset.key = key;
  const edit = can.edit();
  panel.innerHTML = `<h2 class="mono flush">${esc(run.dag_run_id)}</h2>
    <dl class="kv">
      <dt>State</dt><dd id="run-state">${stateBadge(run.state)}</dd>
      <dt>Type</dt><dd>${esc(run.run_type || '')}</dd>
      <dt>Logical date</dt><dd>${esc(fmtTime(run.logical_date || run.execution_date))}</dd>
      <dt>Interval</dt><dd>${esc(fmtTime(run.data_interval_start))} → ${esc(fmtTime(run.data_interval_end))}</dd>
      <dt>Started</dt><dd>${esc(fmtTime(run.start_date))}</dd>
      <dt>Ended</dt><dd>${esc(fmtTime(run.end_date))}</dd>
      <dt>Duration</dt><dd>${esc(fmtDur(durOf(run.start_date, run.end_date)))}</dd>
      ${run.note ? `<dt>Note</dt><dd>${esc(run.note)}</dd>` : ''}
      <dt>Conf</dt><dd><pre class="mono small conf">${esc(JSON.stringify(run.conf ?? {}, null, 1))}</pre></dd>
    </dl>
    <div class="row gap-top">
      <button type="button" id="run-clear" ${edit ? '' : 'disabled'}>Clear run</button>
      <button type="button" id="run-success" ${edit ? '' : 'disabled'}>Mark success</button>
      <button type="button" id="run-failed" class="danger" ${edit ? '' : 'disabled'}>Mark failed</button>
    </div>`;
  const path = `/dags/${enc(dagId)}/dagRuns/${enc(run.dag_run_id)}`;
  panel.querySelector('#run-clear').onclick = async () => {
    if (await confirm('Clear run', `Clear every task instance of ${run.dag_run_id}? They run again.`, 'Clear', true))
      guard(() => post(`/dags/${enc(dagId)}/clearTaskInstances`, { dag_run_id: run.dag_run_id, dry_run: false, only_failed: false, reset_dag_runs: true }), 'Run cleared');
  };
  for (const s of ['success', 'failed']) {
    panel.querySelector('#run-' + s).onclick = async () => {
      if (await confirm(`Mark run ${s}`, `Set ${run.dag_run_id} to ${s}?`, 'Mark ' + s, s === 'failed'))
        guard(() => patch(path, { state: s }), `Run marked ${s}`);
    };
  }
}

// ---------------- graph ----------------
// Layers by longest path from the roots, then two barycenter sweeps to reduce crossings.
export function layout(tasks, order) {
  const down = new Map(tasks.map(t => [t.task_id, (t.downstream_task_ids || []).slice()]));
  const up = new Map(order.map(i => [i, []]));
  for (const [u, ds] of down) for (const d of ds) if (up.has(d)) up.get(d).push(u);
  const layer = new Map();
  for (const i of order) layer.set(i, Math.max(-1, ...up.get(i).map(u => layer.get(u) ?? 0)) + 1);
  const layers = [];
  for (const i of order) (layers[layer.get(i)] ||= []).push(i);
  const pos = new Map();
  layers.forEach(L => L.forEach((i, k) => pos.set(i, k)));
  const sweep = (nbrs, seq) => {
    for (const L of seq) {
      const bc = new Map(L.map(i => { const n = nbrs.get(i) || []; return [i, n.length ? n.reduce((s, x) => s + pos.get(x), 0) / n.length : pos.get(i)]; }));
      L.sort((a, b) => bc.get(a) - bc.get(b));
      L.forEach((i, k) => pos.set(i, k));
    }
  };
  sweep(up, layers.slice(1));
  sweep(down, layers.slice(0, -1).reverse());
  sweep(up, layers.slice(1));
  return { layers, up, down };
}

function graphView(el, dagId, tasks, order) {
  const { layers, down } = layout(tasks, order);
  const NW = Math.min(220, Math.max(90, 16 + 7.2 * Math.max(...order.map(i => i.length), 4)));
  const NH = 30, GX = 60, GY = 14;
  const tallest = Math.max(...layers.map(L => L.length));
  const W = layers.length * (NW + GX) + 20, H = tallest * (NH + GY) + 20;
  const xy = new Map();
  layers.forEach((L, li) => {
    const off = (tallest - L.length) * (NH + GY) / 2; // centre short layers
    L.forEach((i, k) => xy.set(i, [10 + li * (NW + GX), 10 + off + k * (NH + GY)]));
  });
  const maxChars = Math.floor((NW - 14) / 7.2);
  let edges = '';
  for (const [u, ds] of down) for (const d of ds) {
    if (!xy.has(u) || !xy.has(d)) continue;
    const [x1, y1] = xy.get(u), [x2, y2] = xy.get(d);
    const ax = x1 + NW, ay = y1 + NH / 2, bx = x2, by = y2 + NH / 2, mx = (ax + bx) / 2;
    edges += `<path class="edge" d="M${ax},${ay} C${mx},${ay} ${mx},${by} ${bx - 4},${by}" marker-end="url(#arrow)"/>`;
  }
  const nodes = order.map(i => {
    const [x, y] = xy.get(i);
    const label = i.length > maxChars ? i.slice(0, maxChars - 1) + '…' : i;
    return `<g class="node" data-task="${esc(i)}" transform="translate(${x},${y})"><title>${esc(i)}</title><rect width="${NW}" height="${NH}" rx="5"/><text x="8" y="19">${esc(label)}</text></g>`;
  }).join('');
  el.innerHTML = `<div class="toolbar"><label class="row small">Run <select id="graph-run"></select></label><span class="grow"></span>${legend(['success', 'running', 'failed', 'queued', 'scheduled', 'up_for_retry', 'upstream_failed', 'skipped', 'none'])}</div>
    <div class="graph-wrap"><svg class="graph" id="graph" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">
      <defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#8c959f"/></marker></defs>
      ${edges}${nodes}</svg></div>`;
  const gnodes = new Map(Array.from(el.querySelectorAll('g.node'), g => [g.dataset.task, g]));
  const select = el.querySelector('#graph-run');
  let cur = { runs: [], sel: null };
  select.addEventListener('change', () => {
    cur.sel = select.value;
    cur.setSel(cur.sel);
    paint();
    history.replaceState(null, '', `#/dags/${enc(dagId)}/graph?run=${enc(cur.sel)}`);
  });
  el.querySelector('#graph').addEventListener('click', e => {
    const g = e.target.closest('g.node');
    if (g && cur.sel) location.hash = `#/dags/${enc(dagId)}/runs/${enc(cur.sel)}/tasks/${enc(g.dataset.task)}`;
  });
  let tiMap = new Map();
  function paint() {
    const tis = tiMap.get(cur.sel)?.tis;
    for (const [t, g] of gnodes) {
      const x = tis && tis.get(t);
      const s = x ? x.state || 'none' : 'none';
      g.setAttribute('class', 'node st-' + s);
      g.dataset.state = s;
      g.firstElementChild.textContent = `${t} · ${s}${x && x.duration ? ' · ' + fmtDur(x.duration) : ''}`;
    }
  }
  function update(runs, tiCache, sel, setSel) {
    tiMap = tiCache;
    const latest = runs.length ? runs[runs.length - 1].dag_run_id : null;
    cur = { runs, sel: sel || latest, setSel };
    const opts = runs.slice().reverse().map(r => `<option value="${esc(r.dag_run_id)}">${esc(r.dag_run_id)} (${esc(r.state)})</option>`).join('');
    if (select.dataset.opts !== opts) { select.innerHTML = opts; select.dataset.opts = opts; }
    if (cur.sel) select.value = cur.sel;
    paint();
  }
  return { update };
}

// ---------------- code, runs, details ----------------
async function renderCode(el, dag) {
  el.innerHTML = '<div class="loading">Loading…</div>';
  let text;
  try {
    const r = await get(`/dags/${enc(dag.dag_id)}/source`, { accept: 'application/json, text/plain' });
    text = typeof r === 'string' ? r : r.content;
  } catch (e) {
    if (!dag.file_token) { el.innerHTML = `<div class="banner error">${esc(e.message)}</div>`; return; }
    try {
      const r = await get(`/dagSources/${enc(dag.file_token)}`, { accept: 'application/json, text/plain' });
      text = typeof r === 'string' ? r : r.content;
    } catch (e2) { el.innerHTML = `<div class="banner error">${esc(e2.message)}</div>`; return; }
  }
  const lines = String(text ?? '').split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  el.innerHTML = `<p class="muted small mono">${esc(dag.fileloc || '')}</p><pre class="code" id="dag-source">${lines.map((l, i) => `<span class="ln">${i + 1}</span>${esc(l)}`).join('\n')}</pre>`;
}

async function renderRuns(el, dagId, query) {
  const PAGE = 50;
  const page = Math.max(1, parseInt(query.get('page') || '1', 10) || 1);
  const stateF = query.get('state') || '';
  el.innerHTML = `<div class="toolbar"><label class="row small">State <select id="runs-state"><option value="">any</option>${['queued', 'running', 'success', 'failed'].map(s => `<option ${s === stateF ? 'selected' : ''}>${s}</option>`).join('')}</select></label></div>
    <table class="list" id="runs-table"><thead><tr><th>State</th><th>Run id</th><th>Type</th><th>Logical date</th><th>Started</th><th>Ended</th><th class="right">Duration</th><th>Conf</th></tr></thead><tbody><tr><td colspan="8" class="loading">Loading…</td></tr></tbody></table>
    <div class="pager" id="runs-pager"></div>`;
  const go = (p, s = el.querySelector('#runs-state').value) => { location.hash = `#/dags/${enc(dagId)}/runs` + qs({ state: s, page: p > 1 ? p : '' }); };
  el.querySelector('#runs-state').addEventListener('change', () => go(1));
  let r;
  try {
    r = await get(`/dags/${enc(dagId)}/dagRuns` + qs({ limit: PAGE, offset: (page - 1) * PAGE, order_by: '-execution_date', state: stateF || undefined }));
  } catch (e) { el.querySelector('tbody').innerHTML = `<tr><td colspan="8" class="err">${esc(e.message)}</td></tr>`; return; }
  const runs = r.dag_runs || [];
  el.querySelector('tbody').innerHTML = runs.length ? runs.map(x => {
    const conf = JSON.stringify(x.conf ?? {});
    return `<tr><td>${stateBadge(x.state)}</td><td class="mono"><a href="#/dags/${enc(dagId)}/grid?run=${enc(x.dag_run_id)}">${esc(x.dag_run_id)}</a></td><td>${esc(x.run_type || '')}</td>
      <td class="nowrap">${esc(fmtTime(x.logical_date || x.execution_date))}</td><td class="nowrap">${esc(fmtTime(x.start_date))}</td><td class="nowrap">${esc(fmtTime(x.end_date))}</td>
      <td class="right nowrap">${esc(fmtDur(durOf(x.start_date, x.end_date)))}</td><td class="mono small" title="${esc(conf)}">${esc(conf.length > 60 ? conf.slice(0, 59) + '…' : conf)}</td></tr>`;
  }).join('') : '<tr><td colspan="8" class="muted">No runs</td></tr>';
  renderPager(el.querySelector('#runs-pager'), page, Math.max(1, Math.ceil((r.total_entries ?? runs.length) / PAGE)), go);
}

async function renderDetails(el, dagId) {
  let d;
  try { d = await get(`/dags/${enc(dagId)}/details`); } catch (e) { el.innerHTML = `<div class="banner error">${esc(e.message)}</div>`; return; }
  const rows = ['dag_id', 'description', 'fileloc', 'timezone', 'start_date', 'end_date', 'catchup', 'max_active_runs', 'max_active_tasks', 'is_paused', 'owners', 'tags', 'last_parsed_time', 'next_dagrun', 'params']
    .filter(k => d[k] !== undefined && d[k] !== null)
    .map(k => `<dt>${esc(k)}</dt><dd class="mono">${esc(typeof d[k] === 'object' ? JSON.stringify(d[k], null, 1) : String(d[k]))}</dd>`).join('');
  el.innerHTML = `<dl class="kv" id="dag-details">${rows}</dl>`;
}
