// webui/assets/js/api.js - the UI's only door to the server: JSON calls to /api/v1 with the
// session cookie and the CSRF token, problem-JSON errors turned into exceptions, a small
// concurrency limiter so a page with many rows never floods the server.

export const BASE = '/api/v1';

let csrfToken = null;
export const session = { username: null, role: 'viewer', csrf: null };

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

function loginRedirect() {
  const next = location.pathname + location.search + location.hash;
  location.href = '/login?next=' + encodeURIComponent(next);
}

function cookie(name) {
  const m = document.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
  return m ? decodeURIComponent(m[1]) : null;
}

// Loads who is logged in and the CSRF token. Resolves to the session; on 401 goes to login.
export async function loadSession() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta && meta.content) csrfToken = meta.content;
  let r;
  try {
    r = await fetch('/auth/me', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  } catch (e) {
    throw new ApiError(0, 'server unreachable', String(e));
  }
  if (r.status === 401) { loginRedirect(); return new Promise(() => {}); }
  if (!r.ok) throw new ApiError(r.status, 'cannot load the session', r.statusText);
  const s = await r.json();
  csrfToken = s.csrf_token || csrfToken || cookie('weir_csrf');
  session.username = s.username || null;
  session.role = pickRole(s);
  session.csrf = csrfToken;
  return session;
}

const RANK = { viewer: 0, user: 1, op: 2, admin: 3 };
function pickRole(s) {
  let roles = [];
  if (typeof s.role === 'string') roles.push(s.role);
  if (Array.isArray(s.roles)) for (const x of s.roles) roles.push(typeof x === 'string' ? x : x && x.name);
  roles = roles.filter(Boolean).map(x => x.toLowerCase());
  let best = 'viewer';
  for (const x of roles) if ((RANK[x] ?? -1) > RANK[best]) best = x;
  return best;
}

export const can = {
  // op and admin change runs and DAGs; viewers only look.
  edit: () => RANK[session.role] >= RANK.op,
  admin: () => session.role === 'admin',
};

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach(x => u.append(k, x)); else u.append(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;

// Calls the API. body: object sent as JSON. opts.text: return the body as text.
// Throws ApiError (status 0 for network errors). A 401 sends the browser to the login page.
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: opts.accept || 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let r;
  try {
    r = await fetch(BASE + path, {
      method, headers, credentials: 'same-origin', signal: opts.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'server unreachable', String(e.message || e));
  }
  if (r.status === 401 && !opts.noRedirect) { loginRedirect(); throw new ApiError(401, 'not logged in'); }
  if (!r.ok) {
    let title = r.statusText || ('HTTP ' + r.status), detail = '';
    try {
      const t = await r.text();
      try {
        const j = JSON.parse(t);
        title = j.title || title;
        detail = j.detail || j.message || '';
      } catch { detail = t.slice(0, 300); }
    } catch { /* body unreadable: keep the status line */ }
    throw new ApiError(r.status, title, detail);
  }
  if (r.status === 204) return null;
  const ct = r.headers.get('content-type') || '';
  if (opts.text || !ct.includes('json')) return r.text();
  return r.json();
}

export const get = (p, o) => api('GET', p, undefined, o);
export const post = (p, b, o) => api('POST', p, b === undefined ? {} : b, o);
export const patch = (p, b, o) => api('PATCH', p, b, o);
export const del = (p, o) => api('DELETE', p, undefined, o);

// Fetches every page of a collection (`key` names the array), `pageSize` at a time,
// at most `max` items. Pages after the first are fetched in parallel once total is known.
export async function getAll(path, key, params = {}, pageSize = 100, max = 10000) {
  const first = await get(path + qs({ ...params, limit: pageSize, offset: 0 }));
  const items = first[key] || [];
  const total = Math.min(first.total_entries ?? items.length, max);
  if (items.length >= total || items.length < pageSize) return items;
  const offs = [];
  for (let o = pageSize; o < total; o += pageSize) offs.push(o);
  const pages = await limitAll(offs.map(o => () => get(path + qs({ ...params, limit: pageSize, offset: o }))), 4);
  for (const p of pages) items.push(...(p[key] || []));
  return items;
}

// Runs async thunks with at most n in flight; resolves to their results in order.
export async function limitAll(thunks, n = 6) {
  const out = new Array(thunks.length);
  let i = 0;
  async function worker() {
    while (i < thunks.length) {
      const k = i++;
      out[k] = await thunks[k]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, thunks.length) }, worker));
  return out;
}

export async function logout() {
  try {
    await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin',
      headers: csrfToken ? { 'X-CSRF-Token': csrfToken } : {} });
  } finally {
    location.href = '/login';
  }
}
