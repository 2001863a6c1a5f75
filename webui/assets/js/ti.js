// webui/assets/js/ti.js - one task instance: its state and timings, the log of each try
// (tailed live through the API's continuation token while the try runs), its XComs and
// rendered fields, and the actions clear (optionally with downstream, after a dry run that
// lists what would be cleared), mark success and mark failed, each behind a confirmation.
import { get, patch, post, qs, enc, can } from './api.js';
import { esc, h, fmtTime, fmtDur, durOf, stateBadge, confirm, dialog, guard, toast, isActive } from './ui.js';

const MAX_LOG = 4 * 1024 * 1024; // characters kept on screen; older text is dropped from the top

export async function render(main, { dag, run, task, query }) {
  let alive = true;
  let timer = null, logTimer = null;
  const tiPath = `/dags/${enc(dag)}/dagRuns/${enc(run)}/taskInstances/${enc(task)}`;
  const pinnedTry = parseInt(query.get('try') || '', 10) || null;
  const self = `#/dags/${enc(dag)}/runs/${enc(run)}/tasks/${enc(task)}`;

  main.innerHTML = `<div class="crumbs"><a href="#/">DAGs</a> / <a href="#/dags/${enc(dag)}">${esc(dag)}</a> / <a href="#/dags/${enc(dag)}/grid?run=${enc(run)}" class="mono">${esc(run)}</a> /</div>
    <div class="toolbar"><h1 class="mono">${esc(task)}</h1><span id="ti-state"></span><span class="grow"></span>
      <button type="button" id="ti-clear">Clear…</button>
      <button type="button" id="ti-success">Mark success</button>
      <button type="button" id="ti-failed" class="danger">Mark failed</button></div>
    <div class="split"><div class="grow">
      <nav class="tabs" id="ti-tries"></nav>
      <div class="row small"><span id="log-status" class="muted"></span><span class="grow"></span>
        <label class="row"><input type="checkbox" id="log-follow" checked> follow</label>
        <button type="button" class="link" id="log-raw" title="The whole log of this try as plain text">raw</button></div>
      <pre class="log" id="log" aria-live="off"></pre>
      <h2>XComs</h2><div id="xcoms" class="muted">Loading…</div>
      <div id="rendered"></div>
    </div>
    <aside class="side"><dl class="kv" id="ti-details"></dl></aside></div>`;

  const edit = can.edit();
  for (const id of ['ti-clear', 'ti-success', 'ti-failed']) {
    main.querySelector('#' + id).disabled = !edit;
    if (!edit) main.querySelector('#' + id).title = 'Your role cannot change task instances';
  }

  let ti = null;
  let curTry = null;
  let log = null; // {try, token, done}
  const logEl = main.querySelector('#log');
  const status = main.querySelector('#log-status');
  const follow = main.querySelector('#log-follow');

  async function loadTi() {
    ti = await get(tiPath);
    if (!alive) return;
    main.querySelector('#ti-state').innerHTML = stateBadge(ti.state);
    const dur = ti.duration ?? durOf(ti.start_date, ti.end_date);
    const kv = [['State', stateBadge(ti.state), true], ['Try', `${ti.try_number ?? 0} of ${(ti.max_tries ?? 0) + 1}`], ['Operator', ti.operator], ['Pool', ti.pool],
      ['Queued', fmtTime(ti.queued_when)], ['Started', fmtTime(ti.start_date)], ['Ended', fmtTime(ti.end_date)], ['Duration', fmtDur(dur)],
      ['Host', ti.hostname], ['PID', ti.pid], ['Executor', ti.executor], ['Note', ti.note]];
    main.querySelector('#ti-details').innerHTML = kv.filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v, raw]) => `<dt>${esc(k)}</dt><dd>${raw ? v : esc(v)}</dd>`).join('');
    const tries = Math.max(1, ti.try_number || 0);
    const want = pinnedTry && pinnedTry <= tries ? pinnedTry : tries;
    main.querySelector('#ti-tries').innerHTML = Array.from({ length: tries }, (_, i) => i + 1)
      .map(n => `<a href="${self}?try=${n}" class="${n === want ? 'active' : ''}" data-try="${n}">Try ${n}</a>`).join('');
    if (want !== curTry) { curTry = want; startLog(want); }
    else if (log && log.done && isActive(ti.state) && want === tries) { log.done = false; pollLog(); }
  }

  function startLog(n) {
    clearTimeout(logTimer);
    logEl.textContent = '';
    log = { try: n, token: null, done: false, got: 0 };
    pollLog();
  }

  async function pollLog() {
    clearTimeout(logTimer);
    if (!alive || !log || log.done) return;
    const me = log;
    let r;
    try {
      r = await get(`${tiPath}/logs/${me.try}` + qs({ token: me.token || undefined }));
    } catch (e) {
      if (e.status === 404 && isActive(ti && ti.state)) { status.textContent = 'waiting for the log…'; logTimer = setTimeout(pollLog, 1000); return; }
      status.textContent = e.message;
      return;
    }
    if (!alive || me !== log) return;
    let text = typeof r === 'string' ? r : r.content;
    if (Array.isArray(text)) text = text.map(x => (Array.isArray(x) ? x[1] : x)).join('');
    text = text ?? '';
    const atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 30;
    if (text) {
      logEl.append(document.createTextNode(text));
      me.got += text.length;
      if (me.got > MAX_LOG) { logEl.textContent = '[… earlier lines dropped …]\n' + logEl.textContent.slice(-MAX_LOG / 2); me.got = MAX_LOG / 2; }
    }
    if (r && typeof r === 'object' && r.continuation_token) me.token = r.continuation_token;
    const running = ti && isActive(ti.state) && me.try === Math.max(1, ti.try_number || 0);
    // weir's API says end_of_log once the try is over and every line was sent; without
    // that field, a running task keeps the tail open and a finished one is drained.
    const eol = r && typeof r === 'object' && typeof r.end_of_log === 'boolean' ? r.end_of_log : null;
    if (follow.checked && atBottom) logEl.scrollTop = logEl.scrollHeight;
    if (eol === true || (eol === null && !running && (!text || !me.token))) {
      me.done = true;
      status.textContent = me.got ? `${me.got.toLocaleString()} characters` : '';
      if (!me.got) logEl.textContent = '(no log lines)';
    } else if (eol === false && !running && text) {
      logTimer = setTimeout(pollLog, 0); // more pages of a finished try
    } else {
      status.innerHTML = '<span class="live" id="log-live">live</span>';
      logTimer = setTimeout(pollLog, text ? 300 : 1000);
    }
  }

  async function loadXcoms() {
    const el = main.querySelector('#xcoms');
    let list;
    try { list = (await get(`${tiPath}/xcomEntries` + qs({ limit: 100 }))).xcom_entries || []; } catch (e) { el.textContent = e.message; return; }
    if (!list.length) { el.textContent = 'No XComs.'; return; }
    // The list omits values in Airflow's API: fetch each entry (bounded).
    const full = await Promise.all(list.slice(0, 50).map(async x => ('value' in x) ? x
      : get(`${tiPath}/xcomEntries/${enc(x.key)}`).catch(() => x)));
    el.classList.remove('muted');
    el.innerHTML = `<table class="list" id="xcom-table"><thead><tr><th>Key</th><th>Value</th><th>Time</th></tr></thead><tbody>${full.map(x => {
      const v = typeof x.value === 'string' ? x.value : JSON.stringify(x.value);
      return `<tr><td class="mono">${esc(x.key)}</td><td class="mono small"><pre class="conf">${esc(v ?? '')}</pre></td><td class="nowrap small">${esc(fmtTime(x.timestamp))}</td></tr>`;
    }).join('')}</tbody></table>`;
    if (ti && ti.rendered_fields && Object.keys(ti.rendered_fields).length)
      main.querySelector('#rendered').innerHTML = `<h2>Rendered parameters</h2><pre class="code">${esc(JSON.stringify(ti.rendered_fields, null, 2))}</pre>`;
  }

  // The whole log of the shown try as text, in a new tab (a blob: the API wants the session
  // cookie and an Accept header that a plain link cannot send).
  main.querySelector('#log-raw').onclick = async () => {
    if (!log) return;
    const text = await guard(() => get(`${tiPath}/logs/${log.try}` + qs({ full_content: true }), { accept: 'text/plain', text: true }));
    if (text === undefined) return;
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain;charset=utf-8' }));
    window.open(url, '_blank', 'noopener');
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  };

  main.querySelector('#ti-clear').onclick = async () => {
    const down = h('input', { type: 'checkbox', id: 'clear-downstream', checked: true });
    const failedOnly = h('input', { type: 'checkbox', id: 'clear-only-failed' });
    const list = h('div', { id: 'clear-list', class: 'small' });
    const req = () => ({ dag_run_id: run, task_ids: [task], include_downstream: down.checked, include_upstream: false,
      only_failed: failedOnly.checked, reset_dag_runs: true });
    const preview = async () => {
      list.textContent = 'Checking…';
      try {
        const r = await post(`/dags/${enc(dag)}/clearTaskInstances`, { ...req(), dry_run: true });
        const tis = (r.task_instances || []).map(x => x.task_id);
        list.innerHTML = `These task instances will be cleared and run again (${tis.length}):<ul>${tis.map(t => `<li class="mono">${esc(t)}</li>`).join('')}</ul>`;
      } catch (e) { list.textContent = 'Preview failed: ' + e.message; }
    };
    down.onchange = preview; failedOnly.onchange = preview;
    preview();
    const body = h('div', h('label.row', down, 'Include downstream tasks'), h('label.row', failedOnly, 'Only failed'), list);
    const v = await dialog(`Clear ${task}`, body, [{ label: 'Cancel', value: false }, { label: 'Clear', value: true, cls: 'primary danger' }]);
    if (!v) return;
    await guard(() => post(`/dags/${enc(dag)}/clearTaskInstances`, { ...req(), dry_run: false }), 'Cleared');
    refreshSoon();
  };
  for (const s of ['success', 'failed']) {
    main.querySelector('#ti-' + s).onclick = async () => {
      if (!(await confirm(`Mark ${s}`, `Set ${task} in ${run} to ${s}?`, 'Mark ' + s, s === 'failed'))) return;
      await guard(() => patch(tiPath, { new_state: s, dry_run: false }), `Marked ${s}`);
      refreshSoon();
    };
  }

  function refreshSoon() { clearTimeout(timer); timer = setTimeout(tick, 300); }
  async function tick() {
    if (!alive) return;
    try { if (!document.hidden) await loadTi(); } catch (e) { if (alive) toast(e.message, 'error'); }
    if (alive) timer = setTimeout(tick, ti && isActive(ti.state) ? 1500 : 6000);
  }

  try { await loadTi(); } catch (e) {
    main.querySelector('#ti-details').innerHTML = `<dd class="err">${esc(e.message)}</dd>`;
    status.textContent = '';
    return () => { alive = false; };
  }
  loadXcoms();
  timer = setTimeout(tick, isActive(ti.state) ? 1500 : 6000);
  return () => { alive = false; clearTimeout(timer); clearTimeout(logTimer); };
}
