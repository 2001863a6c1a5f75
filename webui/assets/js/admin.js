// webui/assets/js/admin.js - admin pages: variables, connections (the password is write-only:
// the API never returns it and the form never shows it), pools and users. One generic
// list + form-dialog page, described per kind below.
import { get, post, patch, del, qs, enc, can } from './api.js';
import { esc, h, dialog, confirm, guard, fmtTime } from './ui.js';
import { renderPager } from './dags.js';

const PAGE = 100;

const KINDS = {
  variables: {
    title: 'Variables', path: '/variables', list: 'variables', key: 'key',
    cols: [['key', 'Key', 'mono'], ['value', 'Value', 'mono small'], ['description', 'Description']],
    fields: [['key', 'Key', 'text', { required: true, keyField: true }], ['value', 'Value', 'textarea'], ['description', 'Description', 'text']],
  },
  connections: {
    title: 'Connections', path: '/connections', list: 'connections', key: 'connection_id',
    cols: [['connection_id', 'Id', 'mono'], ['conn_type', 'Type'], ['host', 'Host', 'mono'], ['port', 'Port'], ['schema', 'Schema'], ['login', 'Login'], ['password', 'Password'], ['description', 'Description']],
    fields: [['connection_id', 'Id', 'text', { required: true, keyField: true }], ['conn_type', 'Type', 'text', { required: true, placeholder: 'http, postgres, aws, …' }],
      ['host', 'Host', 'text'], ['port', 'Port', 'number'], ['schema', 'Schema', 'text'], ['login', 'Login', 'text'],
      ['password', 'Password', 'password', { writeOnly: true }], ['extra', 'Extra (JSON)', 'textarea'], ['description', 'Description', 'text']],
    cell: (k, v) => (k === 'password' ? '<span class="muted">••••••</span>' : undefined),
  },
  pools: {
    title: 'Pools', path: '/pools', list: 'pools', key: 'name',
    cols: [['name', 'Name', 'mono'], ['slots', 'Slots'], ['occupied_slots', 'Occupied'], ['running_slots', 'Running'], ['queued_slots', 'Queued'], ['open_slots', 'Open'], ['description', 'Description']],
    fields: [['name', 'Name', 'text', { required: true, keyField: true }], ['slots', 'Slots', 'number', { required: true }], ['description', 'Description', 'text']],
  },
  users: {
    title: 'Users', path: '/users', list: 'users', key: 'username', noEdit: true,
    cols: [['username', 'Username', 'mono'], ['roles', 'Role'], ['email', 'Email'], ['active', 'Active'], ['last_login', 'Last login'], ['created_on', 'Created']],
    fields: [['username', 'Username', 'text', { required: true, keyField: true }], ['password', 'Password', 'password', { required: true }],
      ['role', 'Role', 'select', { options: ['viewer', 'op', 'admin'] }], ['email', 'Email', 'text']],
    cell: (k, v) => (k === 'roles' ? esc((v || []).map(r => r.name ?? r).join(', ')) : k === 'last_login' || k === 'created_on' ? esc(fmtTime(v)) : undefined),
    toBody: b => ({ username: b.username, password: b.password, email: b.email || undefined, roles: [{ name: b.role }] }),
  },
};

export async function render(main, { kind, query }) {
  const K = KINDS[kind];
  const page = Math.max(1, parseInt(query.get('page') || '1', 10) || 1);
  const admin = can.admin();
  // Variables, connections and pools may be changed by op; users only by admin.
  const mayEdit = kind === 'users' ? admin : can.edit();
  main.innerHTML = `<div class="toolbar"><h1 class="grow">${esc(K.title)} <span class="muted small" id="adm-count"></span></h1>
    <button type="button" class="primary" id="adm-add" ${mayEdit ? '' : 'disabled'}>+ Add</button></div>
    <table class="list" id="adm-table"><thead><tr>${K.cols.map(c => `<th>${esc(c[1])}</th>`).join('')}<th></th></tr></thead>
    <tbody><tr><td colspan="${K.cols.length + 1}" class="loading">Loading…</td></tr></tbody></table><div class="pager" id="adm-pager"></div>`;
  const tbody = main.querySelector('tbody');
  let items = [];

  async function load() {
    let r;
    try { r = await get(K.path + qs({ limit: PAGE, offset: (page - 1) * PAGE })); } catch (e) {
      tbody.innerHTML = `<tr><td colspan="${K.cols.length + 1}" class="err">${esc(e.status === 403 ? 'Your role may not see this page.' : e.message)}</td></tr>`;
      return;
    }
    items = r[K.list] || [];
    const total = r.total_entries ?? items.length;
    main.querySelector('#adm-count').textContent = `${total} total`;
    tbody.innerHTML = items.length ? items.map((it, i) => `<tr data-i="${i}" data-key="${esc(it[K.key])}">${K.cols.map(([k, , cls]) => {
      const custom = K.cell && K.cell(k, it[k]);
      const v = it[k];
      const txt = custom !== undefined ? custom : esc(v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
      return `<td class="${cls || ''}">${txt}</td>`;
    }).join('')}<td class="right nowrap">${K.noEdit ? '' : `<button type="button" class="link adm-edit" ${mayEdit ? '' : 'disabled'}>Edit</button>`}<button type="button" class="link danger adm-del" ${mayEdit ? '' : 'disabled'}>Delete</button></td></tr>`).join('')
      : `<tr><td colspan="${K.cols.length + 1}" class="muted">None yet.</td></tr>`;
    renderPager(main.querySelector('#adm-pager'), page, Math.max(1, Math.ceil(total / PAGE)), p => { location.hash = `#/admin/${kind}` + qs({ page: p }); });
  }

  async function edit(item) {
    const inputs = {};
    const form = h('form', { id: 'adm-form', onsubmit: e => e.preventDefault() });
    for (const [k, label, type, o = {}] of K.fields) {
      let inp;
      if (type === 'textarea') inp = h('textarea', { name: k, rows: 4 });
      else if (type === 'select') inp = h('select', { name: k }, o.options.map(x => h('option', x)));
      else inp = h('input', { type, name: k, placeholder: o.writeOnly && item ? 'unchanged' : (o.placeholder || '') });
      const v = item ? item[k] : undefined;
      if (v !== undefined && v !== null && !o.writeOnly) inp.value = typeof v === 'object' ? JSON.stringify(v) : String(v);
      if (item && o.keyField) inp.readOnly = true;
      if (o.required && !(o.writeOnly && item)) inp.required = true;
      inputs[k] = inp;
      form.append(h('label.field', h('span', label + (o.required ? ' *' : '')), inp));
    }
    const err = h('div.err.small', { id: 'adm-error' });
    form.append(err);
    const v = await dialog(item ? `Edit ${item[K.key]}` : `Add ${K.title.replace(/s$/, '').toLowerCase()}`, form, [
      { label: 'Cancel', value: false },
      {
        label: 'Save', value: true, cls: 'primary', check: async () => {
          if (!form.reportValidity()) return false;
          const b = {};
          for (const [k, , type, o = {}] of K.fields) {
            let val = inputs[k].value;
            if (o.writeOnly && val === '') continue; // empty password: leave it as it is
            if (type === 'number') val = val === '' ? null : Number(val);
            b[k] = val;
          }
          const body = K.toBody ? K.toBody(b) : b;
          try {
            if (item) await patch(`${K.path}/${enc(item[K.key])}`, body);
            else await post(K.path, body);
            return true;
          } catch (e) { err.textContent = e.message; return false; }
        },
      }]);
    if (v) { load(); }
  }

  main.querySelector('#adm-add').onclick = () => edit(null);
  tbody.addEventListener('click', async e => {
    const tr = e.target.closest('tr[data-i]');
    if (!tr) return;
    const it = items[+tr.dataset.i];
    if (e.target.closest('.adm-edit')) edit(it);
    if (e.target.closest('.adm-del')) {
      if (!(await confirm(`Delete ${it[K.key]}`, `Delete ${kind.replace(/s$/, '')} '${it[K.key]}'? This cannot be undone.`, 'Delete', true))) return;
      await guard(() => del(`${K.path}/${enc(it[K.key])}`), 'Deleted');
      load();
    }
  });
  await load();
  return null;
}
