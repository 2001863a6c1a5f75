// webui/assets/js/ui.js - small DOM helpers shared by every page: escaping, formatting of
// times and durations, state badges, dialogs and toasts, cron in words, and the check of a
// trigger's conf against the DAG's params. Everything that goes into innerHTML passes esc().

export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

// h('div.a.b', {attrs}, children...) builds an element; strings become text nodes.
export function h(sel, attrs, ...kids) {
  const [tag, ...cls] = sel.split('.');
  const el = document.createElement(tag || 'div');
  if (cls.length) el.className = cls.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) { kids.unshift(attrs); attrs = null; }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'html') el.innerHTML = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

export const $ = (s, root = document) => root.querySelector(s);
export const $$ = (s, root = document) => Array.from(root.querySelectorAll(s));

const pad = n => String(n).padStart(2, '0');
// Times are shown in UTC, as the API and the CLI show them.
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}
export function fmtDur(sec) {
  if (sec === null || sec === undefined || isNaN(sec)) return '';
  sec = Number(sec);
  if (sec < 1) return (sec * 1000).toFixed(0) + ' ms';
  if (sec < 60) return sec.toFixed(sec < 10 ? 1 : 0) + ' s';
  const m = Math.floor(sec / 60), s = Math.round(sec % 60);
  if (m < 60) return `${m}m ${pad(s)}s`;
  const hh = Math.floor(m / 60);
  return `${hh}h ${pad(m % 60)}m`;
}
export function durOf(start, end) {
  if (!start) return null;
  const a = Date.parse(start), b = end ? Date.parse(end) : Date.now();
  return isNaN(a) || isNaN(b) ? null : Math.max(0, (b - a) / 1000);
}
export function relTime(iso) {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (isNaN(t)) return '';
  const d = (t - Date.now()) / 1000, a = Math.abs(d);
  const u = a < 60 ? [a, 's'] : a < 3600 ? [a / 60, 'min'] : a < 86400 ? [a / 3600, 'h'] : [a / 86400, 'd'];
  const n = Math.round(u[0]);
  return d >= 0 ? `in ${n} ${u[1]}` : `${n} ${u[1]} ago`;
}

export const STATES = ['success', 'running', 'failed', 'queued', 'scheduled', 'up_for_retry',
  'upstream_failed', 'skipped', 'removed', 'restarting', 'deferred', 'none'];
export const sClass = s => 's-' + (STATES.includes(s) ? s : (s ? 'queued' : 'none'));
export const stateBadge = s => `<span class="st ${sClass(s)}" data-state="${esc(s || 'none')}">${esc(s || 'none')}</span>`;
export const FINISHED = new Set(['success', 'failed', 'skipped', 'upstream_failed', 'removed']);
export const isActive = s => s === 'running' || s === 'queued' || s === 'scheduled' || s === 'up_for_retry' || s === 'restarting' || s === 'deferred';

export function legend(states = STATES) {
  return `<div class="legend">${states.map(s => `<span><i class="sq ${sClass(s)}"></i>${esc(s)}</span>`).join('')}</div>`;
}

// ---- toasts and dialogs ----
export function toast(msg, kind = '') {
  let box = $('.toasts');
  if (!box) { box = h('div.toasts'); document.body.append(box); }
  const t = h('div.toast' + (kind ? '.' + kind : ''), { role: 'status' }, msg);
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3500);
}

// Shows a modal dialog. body: Node or string (text). Buttons: [{label, value, cls}].
// Resolves to the chosen value, or null when closed with Escape.
export function dialog(title, body, buttons, opts = {}) {
  return new Promise(resolve => {
    const d = h('dialog', { 'aria-label': title, class: opts.cls || '' });
    const acts = h('div.actions');
    let done = false;
    const finish = v => { if (done) return; done = true; d.close(); d.remove(); resolve(v); };
    for (const b of buttons) {
      const btn = h('button', { type: 'button', class: b.cls || '', 'data-value': b.value }, b.label);
      btn.addEventListener('click', async () => {
        if (b.check) {
          btn.disabled = true;
          const ok = await b.check(d);
          btn.disabled = false;
          if (!ok) return;
        }
        finish(b.value);
      });
      acts.append(btn);
    }
    d.append(h('h3', title), typeof body === 'string' ? h('p', body) : body, acts);
    d.addEventListener('cancel', e => { e.preventDefault(); finish(null); });
    document.body.append(d);
    d.showModal();
    const focus = d.querySelector('[autofocus]') || acts.querySelector('.primary');
    if (focus) focus.focus();
  });
}

export async function confirm(title, body, okLabel = 'Confirm', danger = false) {
  const v = await dialog(title, body, [
    { label: 'Cancel', value: false },
    { label: okLabel, value: true, cls: 'primary' + (danger ? ' danger' : '') },
  ]);
  return v === true;
}

// Runs fn and reports an error as a toast; returns fn's result or undefined.
export async function guard(fn, okMsg) {
  try {
    const r = await fn();
    if (okMsg) toast(okMsg);
    return r;
  } catch (e) {
    if (e.name !== 'AbortError') toast(e.message || String(e), 'error');
    return undefined;
  }
}

// ---- cron in words ----
const DOW = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MON = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DOWN = { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 };
const MONN = { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 };
const PRESETS = {
  '@hourly': 'every hour', '@daily': 'every day at 00:00', '@midnight': 'every day at 00:00',
  '@weekly': 'every Sunday at 00:00', '@monthly': 'on the 1st of every month at 00:00',
  '@yearly': 'every year on January 1st at 00:00', '@annually': 'every year on January 1st at 00:00',
  '@once': 'once', '@continuous': 'continuously',
};

function nameList(field, names, map, base) {
  const conv = x => { const k = x.toLowerCase(); return k in map ? map[k] : Number(x); };
  return field.split(',').map(part => {
    const [range, step] = part.split('/');
    let txt;
    if (range === '*') txt = null;
    else if (range.includes('-')) {
      const [a, b] = range.split('-').map(conv);
      txt = `${names[(a - base) % names.length]} to ${names[(b - base) % names.length]}`;
    } else txt = names[(conv(range) - base) % names.length];
    if (step) return `every ${step}${txt ? ' from ' + txt : ''}`;
    return txt;
  }).filter(Boolean).join(', ');
}
function ordinal(n) {
  const s = ['th', 'st', 'nd', 'rd'], v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}

// Describes a five-field cron expression in English; returns '' for what it cannot read.
export function cronWords(expr) {
  if (!expr) return 'manual only';
  expr = String(expr).trim();
  if (PRESETS[expr]) return PRESETS[expr];
  const f = expr.split(/\s+/);
  if (f.length !== 5) return '';
  const [mi, ho, dom, mo, dow] = f;
  const num = /^\d+$/;
  let when;
  if (num.test(mi) && num.test(ho)) when = `at ${pad(ho)}:${pad(mi)}`;
  else if (num.test(mi) && ho === '*') when = mi === '0' ? 'every hour' : `at minute ${mi} of every hour`;
  else if (/^\*\/\d+$/.test(mi) && ho === '*') when = `every ${mi.slice(2)} minutes`;
  else if (mi === '*' && ho === '*') when = 'every minute';
  else if (num.test(mi) && /^\*\/\d+$/.test(ho)) when = `at minute ${mi} every ${ho.slice(2)} hours`;
  else if (num.test(mi) && /^[\d,-]+$/.test(ho)) when = `at minute ${mi} past hour ${ho}`;
  else when = `at minute ${mi}, hour ${ho}`;
  const parts = [when];
  if (dom !== '*') parts.push(/^\d+$/.test(dom) ? `on the ${ordinal(+dom)}` : `on day ${dom} of the month`);
  if (mo !== '*') parts.push(`in ${nameList(mo, MON, MONN, 1)}`);
  if (dow !== '*') parts.push(`on ${nameList(dow, DOW, DOWN, 0)}`);
  if (dom === '*' && dow === '*' && num.test(ho)) parts.push('every day');
  return parts.join(' ');
}

// The cron (or preset) text of an Airflow DAG's schedule_interval, or null for manual only.
export function scheduleText(dag) {
  const si = dag.schedule_interval;
  if (si === null || si === undefined) return dag.timetable_summary || null;
  if (typeof si === 'string') return si;
  if (si.__type === 'CronExpression') return si.value;
  if (si.__type === 'TimeDelta') return `every ${si.days ? si.days + 'd ' : ''}${fmtDur(si.seconds || 0)}`;
  if (si.__type === 'RelativeDelta') return 'relative delta';
  return si.value || null;
}

// ---- params ----
// Normalizes a DAG's params (weir's {type, default, ...} or Airflow's serialized
// {__class, value, schema, description}) to [{name, schema, def, hasDefault, description}].
export function normParams(params) {
  const out = [];
  for (const [name, p] of Object.entries(params || {})) {
    if (p && typeof p === 'object' && ('schema' in p || '__class' in p)) {
      out.push({ name, schema: p.schema || {}, def: p.value, hasDefault: p.value !== undefined && p.value !== null,
        description: p.description || (p.schema || {}).description || '' });
    } else if (p && typeof p === 'object' && !Array.isArray(p)) {
      out.push({ name, schema: p, def: p.default, hasDefault: 'default' in p, description: p.description || '' });
    } else {
      // a bare default: the type is inferred from it, as the DAG parser does
      out.push({ name, schema: p === null ? {} : { type: typeOf(p) === 'integer' ? 'integer' : typeOf(p) }, def: p, hasDefault: p !== null, description: '' });
    }
  }
  return out;
}

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

// Checks a conf value against one param schema (the JSON Schema subset DAG files use).
// Returns a list of error strings.
export function checkValue(name, v, s) {
  const errs = [];
  if (s.type) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const t = typeOf(v);
    const ok = types.some(x => x === t || (x === 'number' && t === 'integer'));
    if (!ok) { errs.push(`'${name}' must be ${types.join(' or ')}, not ${t}`); return errs; }
  }
  if (s.enum && !s.enum.some(e => JSON.stringify(e) === JSON.stringify(v)))
    errs.push(`'${name}' must be one of ${s.enum.map(x => JSON.stringify(x)).join(', ')}`);
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) errs.push(`'${name}' must be >= ${s.minimum}`);
    if (s.maximum !== undefined && v > s.maximum) errs.push(`'${name}' must be <= ${s.maximum}`);
  }
  if (typeof v === 'string') {
    if (s.minLength !== undefined && v.length < s.minLength) errs.push(`'${name}' must have at least ${s.minLength} characters`);
    if (s.maxLength !== undefined && v.length > s.maxLength) errs.push(`'${name}' must have at most ${s.maxLength} characters`);
    if (s.pattern) {
      try { if (!new RegExp(s.pattern, 'u').test(v)) errs.push(`'${name}' must match ${s.pattern}`); } catch { /* a pattern JS cannot read is left to the server */ }
    }
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) errs.push(`'${name}' needs at least ${s.minItems} items`);
    if (s.maxItems !== undefined && v.length > s.maxItems) errs.push(`'${name}' takes at most ${s.maxItems} items`);
  }
  return errs;
}

// Parses conf text and checks it against params. Returns {conf, errors, warnings}.
export function checkConf(text, params) {
  const r = { conf: null, errors: [], warnings: [] };
  const t = text.trim();
  if (t === '') { r.conf = {}; }
  else {
    try { r.conf = JSON.parse(t); } catch (e) { r.errors.push('not valid JSON: ' + e.message); return r; }
  }
  if (typeOf(r.conf) !== 'object') { r.errors.push('conf must be a JSON object'); return r; }
  const ps = normParams(params);
  const known = new Set(ps.map(p => p.name));
  for (const p of ps) {
    if (!(p.name in r.conf)) {
      if (!p.hasDefault) r.errors.push(`'${p.name}' is required (no default)`);
      continue;
    }
    r.errors.push(...checkValue(p.name, r.conf[p.name], p.schema));
  }
  for (const k of Object.keys(r.conf)) if (!known.has(k)) r.warnings.push(`'${k}' is not a param of this DAG`);
  return r;
}
