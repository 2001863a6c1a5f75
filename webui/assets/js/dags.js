// webui/assets/js/dags.js - the DAG list: import errors on top, one page of DAGs (server-side
// paging and search, so 500 DAGs cost one page of rows), each with its schedule in words,
// next run, recent run states (fetched per visible row, a few at a time), pause toggle and
// trigger button. Also the trigger dialog, shared with the DAG page.
import { get, patch, post, qs, enc, limitAll, can } from './api.js';
import { esc, h, fmtTime, relTime, sClass, cronWords, scheduleText, normParams, checkConf, dialog, toast, guard } from './ui.js';

const PAGE = 50;
const RECENT = 10;

export async function render(main, { query }) {
  const page = Math.max(1, parseInt(query.get('page') || '1', 10) || 1);
  const q = query.get('q') || '';
  const status = query.get('status') || 'all';
  let alive = true;
  let timer = null;

  main.innerHTML = `
    <div id="import-errors"></div>
    <div class="toolbar">
      <h1 class="grow">DAGs <span class="muted small" id="dag-count"></span></h1>
      <input type="search" id="dag-search" placeholder="Search DAG id…" value="${esc(q)}" aria-label="Search DAGs">
      <select id="dag-status" aria-label="Filter">
        <option value="all">All</option><option value="active">Active</option><option value="paused">Paused</option>
      </select>
    </div>
    <table class="list" id="dag-table">
      <thead><tr><th title="Active (unpaused)">On</th><th>DAG</th><th>Schedule</th><th>Next run</th><th>Recent runs</th><th class="right">Actions</th></tr></thead>
      <tbody><tr><td colspan="6" class="loading">Loading…</td></tr></tbody>
    </table>
    <div class="pager" id="dag-pager"></div>`;
  const sel = main.querySelector('#dag-status');
  sel.value = status;
  const go = (p, nq = main.querySelector('#dag-search').value.trim(), ns = sel.value) => {
    location.hash = '#/' + qs({ q: nq, status: ns === 'all' ? '' : ns, page: p > 1 ? p : '' });
  };
  let debounce = null;
  main.querySelector('#dag-search').addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(() => go(1), 300); });
  sel.addEventListener('change', () => go(1));

  loadImportErrors(main.querySelector('#import-errors'));

  const tbody = main.querySelector('#dag-table tbody');
  let dags = [];

  async function load() {
    const params = { limit: PAGE, offset: (page - 1) * PAGE, order_by: 'dag_id', dag_id_pattern: q || undefined };
    if (status !== 'all') params.paused = status === 'paused';
    let r;
    try { r = await get('/dags' + qs(params)); } catch (e) {
      tbody.innerHTML = `<tr><td colspan="6" class="err">${esc(e.message)}</td></tr>`;
      return;
    }
    if (!alive) return;
    dags = r.dags || [];
    const total = r.total_entries ?? dags.length;
    main.querySelector('#dag-count').textContent = `${total} total`;
    renderRows();
    renderPager(main.querySelector('#dag-pager'), page, Math.max(1, Math.ceil(total / PAGE)), go);
    await loadRecent();
  }

  function renderRows() {
    if (!dags.length) {
      tbody.innerHTML = `<tr><td colspan="6" class="muted">No DAGs${q ? ' match “' + esc(q) + '”' : ''}. Put a DAG file in the DAG folder.</td></tr>`;
      return;
    }
    const edit = can.edit();
    tbody.innerHTML = dags.map(d => {
      const cron = scheduleText(d);
      const words = d.timetable_description && d.timetable_description !== cron ? d.timetable_description : cronWords(cron);
      const href = '#/dags/' + enc(d.dag_id);
      return `<tr data-dag="${esc(d.dag_id)}" class="${d.is_paused ? 'paused-row' : ''}">
        <td><label class="switch" title="${d.is_paused ? 'Paused: click to unpause' : 'Active: click to pause'}"><input type="checkbox" class="pause-toggle" aria-label="Active ${esc(d.dag_id)}" ${d.is_paused ? '' : 'checked'} ${edit ? '' : 'disabled'}><span></span></label></td>
        <td><a href="${href}" class="dag-link"><b>${esc(d.dag_display_name || d.dag_id)}</b></a>
          ${(d.tags || []).map(t => `<span class="tag">${esc(t.name ?? t)}</span>`).join('')}
          ${d.description ? `<div class="muted small">${esc(d.description)}</div>` : ''}</td>
        <td>${cron ? `<div>${esc(words || cron)}</div><code class="muted small">${esc(cron)}</code>` : '<span class="muted">manual only</span>'}</td>
        <td class="nowrap">${d.next_dagrun ? `${esc(fmtTime(d.next_dagrun))}<div class="muted small">${esc(relTime(d.next_dagrun))}</div>` : '<span class="muted">—</span>'}</td>
        <td class="recent"><div class="runs-mini"><span class="muted small">…</span></div></td>
        <td class="right nowrap"><button type="button" class="trigger" title="Trigger a run" ${edit && !d.has_import_errors ? '' : 'disabled'}>▶ Trigger</button></td>
      </tr>`;
    }).join('');
  }

  async function loadRecent() {
    const jobs = dags.map(d => async () => {
      if (!alive) return;
      let runs = [];
      try {
        runs = (await get(`/dags/${enc(d.dag_id)}/dagRuns` + qs({ limit: RECENT, order_by: '-execution_date' }))).dag_runs || [];
      } catch { return; }
      const row = tbody.querySelector(`tr[data-dag="${CSS.escape(d.dag_id)}"] .runs-mini`);
      if (!row) return;
      row.innerHTML = runs.length ? runs.slice().reverse().map(r =>
        `<a class="${sClass(r.state)}" data-state="${esc(r.state)}" href="#/dags/${enc(d.dag_id)}/grid?run=${enc(r.dag_run_id)}" title="${esc(r.dag_run_id)}: ${esc(r.state)}"></a>`).join('')
        : '<span class="muted small">no runs</span>';
    });
    await limitAll(jobs, 6);
  }

  tbody.addEventListener('change', async e => {
    const t = e.target;
    if (!t.classList.contains('pause-toggle')) return;
    const id = t.closest('tr').dataset.dag;
    const paused = !t.checked;
    t.disabled = true;
    const r = await guard(() => patch(`/dags/${enc(id)}` + qs({ update_mask: 'is_paused' }), { is_paused: paused }),
      `${id} ${paused ? 'paused' : 'unpaused'}`);
    t.disabled = false;
    if (!r) { t.checked = !t.checked; return; }
    t.closest('tr').classList.toggle('paused-row', !!r.is_paused);
    t.checked = !r.is_paused;
  });
  tbody.addEventListener('click', e => {
    const b = e.target.closest('button.trigger');
    if (b) openTrigger(b.closest('tr').dataset.dag);
  });

  await load();
  // Recent run states change under the user's eyes: refresh them while the tab is visible.
  timer = setInterval(() => { if (alive && !document.hidden) loadRecent(); }, 10000);
  return () => { alive = false; clearInterval(timer); };
}

export function renderPager(el, page, pages, go) {
  el.replaceChildren(
    h('button', { type: 'button', disabled: page <= 1, onclick: () => go(page - 1) }, '‹ Prev'),
    h('span.muted', `Page ${page} of ${pages}`),
    h('button', { type: 'button', disabled: page >= pages, onclick: () => go(page + 1) }, 'Next ›'));
}

async function loadImportErrors(el) {
  let r;
  try { r = await get('/importErrors' + qs({ limit: 100 })); } catch { return; }
  const errs = r.import_errors || [];
  if (!errs.length) { el.replaceChildren(); return; }
  el.innerHTML = `<div class="banner error" id="import-error-banner"><details ${errs.length <= 3 ? 'open' : ''}>
    <summary>${errs.length} DAG file${errs.length > 1 ? 's' : ''} could not be loaded</summary>
    ${errs.map(x => `<div class="import-error"><b class="mono">${esc(x.filename)}</b> <span class="muted small">${esc(fmtTime(x.timestamp))}</span><pre>${esc(x.stack_trace)}</pre></div>`).join('')}
  </details></div>`;
}

// Opens the trigger dialog for a DAG: conf editor prefilled with the params' defaults and
// checked against their schema as the user types. Navigates to the DAG's grid on success.
export async function openTrigger(dagId) {
  let details = {};
  try { details = await get(`/dags/${enc(dagId)}/details`); } catch (e) { toast(e.message, 'error'); return; }
  const params = details.params || {};
  const ps = normParams(params);
  const defaults = {};
  for (const p of ps) if (p.hasDefault) defaults[p.name] = p.def;
  const ta = h('textarea', { id: 'trigger-conf', rows: Math.min(16, 4 + ps.length * 1.5 | 0), spellcheck: false, 'aria-label': 'conf (JSON)' });
  ta.value = JSON.stringify(defaults, null, 2);
  const msg = h('div', { id: 'trigger-check', class: 'small' });
  const runId = h('input', { type: 'text', id: 'trigger-run-id', placeholder: 'manual__<time> (default)' });
  const logical = h('input', { type: 'text', id: 'trigger-logical-date', placeholder: 'now (default), e.g. 2026-01-02T00:00:00Z' });
  const note = h('input', { type: 'text', id: 'trigger-note', placeholder: 'optional' });
  const plist = ps.length ? h('table.list.small', h('thead', h('tr', h('th', 'param'), h('th', 'type'), h('th', 'default'), h('th', 'description'))),
    h('tbody', ps.map(p => h('tr', h('td.mono', p.name), h('td', [].concat(p.schema.type || 'any').join(' | ') + (p.schema.enum ? ' (enum)' : '')),
      h('td.mono', p.hasDefault ? JSON.stringify(p.def) : '(required)'), h('td', p.description || ''))))) : h('p.muted', 'This DAG has no params; conf is passed to templates as dag_run.conf.');
  const check = () => {
    const r = checkConf(ta.value, params);
    msg.className = 'small ' + (r.errors.length ? 'err' : 'ok');
    msg.textContent = r.errors.length ? r.errors.join('\n') : (r.warnings.length ? '✓ valid; ' + r.warnings.join('; ') : '✓ conf matches the params');
    return r;
  };
  ta.addEventListener('input', check);
  check();
  const body = h('div', plist,
    h('label.field', h('span', 'conf (JSON)'), ta), msg,
    h('details', h('summary.small', 'Run id, logical date, note'),
      h('label.field', h('span', 'Run id'), runId), h('label.field', h('span', 'Logical date'), logical), h('label.field', h('span', 'Note'), note)),
    h('div', { id: 'trigger-error', class: 'err small' }));
  let created = null;
  const v = await dialog(`Trigger ${dagId}`, body, [
    { label: 'Cancel', value: null },
    {
      label: 'Trigger', value: 'ok', cls: 'primary', check: async () => {
        const r = check();
        if (r.errors.length) { ta.focus(); return false; }
        const req = { conf: r.conf };
        if (runId.value.trim()) req.dag_run_id = runId.value.trim();
        if (logical.value.trim()) req.logical_date = logical.value.trim();
        if (note.value.trim()) req.note = note.value.trim();
        try {
          created = await post(`/dags/${enc(dagId)}/dagRuns`, req);
          return true;
        } catch (e) {
          body.querySelector('#trigger-error').textContent = e.message;
          return false;
        }
      },
    },
  ]);
  if (v !== 'ok' || !created) return null;
  toast(`Triggered ${dagId}: ${created.dag_run_id}`);
  location.hash = `#/dags/${enc(dagId)}/grid?run=${enc(created.dag_run_id)}`;
  return created;
}
