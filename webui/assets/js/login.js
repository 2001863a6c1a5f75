// webui/assets/js/login.js - the login page: posts the credentials as JSON to /auth/login,
// which sets the HttpOnly session cookie, then returns to the page the user came from.
const form = document.getElementById('login-form');
const errEl = document.getElementById('login-error');
const next = new URLSearchParams(location.search).get('next');
// Only same-site paths: a crafted link must never bounce a fresh login to another origin.
const target = next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';

function fail(msg) {
  errEl.textContent = msg;
  errEl.classList.remove('hidden');
}

form.addEventListener('submit', async e => {
  e.preventDefault();
  const btn = document.getElementById('login-submit');
  btn.disabled = true;
  try {
    const r = await fetch('/auth/login', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }),
    });
    if (r.ok) { location.replace(target); return; }
    let msg = 'Wrong username or password.';
    if (r.status !== 401) {
      try { const j = await r.json(); msg = j.detail || j.title || msg; } catch { /* keep the default */ }
    }
    fail(msg);
    form.password.select();
  } catch (x) {
    fail('The server cannot be reached.');
  } finally {
    btn.disabled = false;
  }
});
