#!/usr/bin/env python3
"""bench/webload.py - load test of the REST API (issue 4): `wrk` on 127.0.0.1 against
GET /api/v1/dags with 100 DAGs, 64 connections, 30 s. Targets: zero errors (socket errors and
non-2xx answers), p99 latency under 20 ms, and requests/s at least 0.2 of nginx serving a
static file of the same size, measured on the same machine in the same run (these machines
are noisy: compare, don't quote).

Everything runs on loopback and stops by itself: `weir standalone` (temp WEIR_HOME, 100
paused DAGs, port 0) and nginx (temp config and prefix, a free port) are started here and
stopped at the end. Needs the Debian packages wrk and nginx (not test dependencies: install
them with `apt-get install wrk nginx`).

usage: bench/webload.py --weir build/weir [--duration 30] [--connections 64] [--threads 2]
                        [--readme bench/README.md | --no-readme]
Exit status 0 when every target is met, 1 otherwise.
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
NDAGS = 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = cond()
        if last:
            return last
        time.sleep(0.1)
    raise SystemExit(f"webload: timed out waiting for {what} (last: {last!r})")


def write_dags(folder):
    for i in range(NDAGS):
        with open(os.path.join(folder, f"load_{i:03d}.yaml"), "w") as f:
            f.write(f"""dag: load_{i:03d}
description: Load-test DAG number {i}, three shell tasks
schedule: "{i % 60} {i % 24} * * *"
timezone: Europe/Amsterdam
start_date: 2026-01-01
tags: [bench, load]
params:
  city: {{type: string, default: Utrecht}}
tasks:
  extract: {{run: shell.run, with: {{command: "echo extract"}}}}
  transform: {{needs: [extract], run: shell.run, with: {{command: "echo transform"}}}}
  load: {{needs: [transform], run: shell.run, with: {{command: "echo load"}}}}
""")


def start_weir(weir, tmp, procs):
    home, dags = os.path.join(tmp, "home"), os.path.join(tmp, "dags")
    os.makedirs(home)
    os.makedirs(dags)
    write_dags(dags)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    # Paused DAGs: the scheduler creates no runs, so the API is all that works during the test.
    env.update(WEIR_HOME=home, WEIR_CORE__DAGS_FOLDER=dags, WEIR_CORE__LOG_LEVEL="info",
               WEIR_WEBSERVER__HOST="127.0.0.1", WEIR_WEBSERVER__PORT="0",
               WEIR_SCHEDULER__DAGS_ARE_PAUSED_AT_CREATION="true")
    log_path = os.path.join(tmp, "standalone.log")
    log = open(log_path, "wb")
    p = subprocess.Popen([weir, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT)
    procs.append(p)  # registered at once: a failed wait below still stops it

    def out():
        with open(log_path, errors="replace") as f:
            return f.read()

    def url():
        if p.poll() is not None:
            raise SystemExit(f"webload: weir standalone exited {p.returncode}:\n{out()}")
        m = re.search(r"https?://(?:127\.0\.0\.1|localhost|0\.0\.0\.0):(\d+)", out())
        return m and f"http://127.0.0.1:{m.group(1)}"

    base = wait_for(url, 30, "the web server URL")
    pw = wait_for(lambda: (m := re.search(r"created user 'admin'.*?password:\s*(\S+)", out())) and m.group(1),
                  10, "the admin password")
    auth = "Basic " + base64.b64encode(f"admin:{pw}".encode()).decode()

    def total():
        try:
            req = urllib.request.Request(base + "/api/v1/dags?limit=1", headers={"Authorization": auth})
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.load(r).get("total_entries") == NDAGS
        except (urllib.error.URLError, OSError, ValueError):
            return False

    wait_for(total, 60, f"{NDAGS} DAGs in the API")
    return base, auth


def start_nginx(tmp, body, procs):
    root = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(root, "html"))
    os.makedirs(os.path.join(root, "logs"))
    with open(os.path.join(root, "html", "dags.json"), "wb") as f:
        f.write(body)
    os.chmod(tmp, 0o755)
    for d, _, fs in os.walk(root):
        os.chmod(d, 0o755)
        for x in fs:
            os.chmod(os.path.join(d, x), 0o644)
    port = free_port()
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
worker_processes auto;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body; proxy_temp_path {root}/proxy; fastcgi_temp_path {root}/fcgi;
    uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
    sendfile on; tcp_nopush on; keepalive_requests 1000000;
    types {{ application/json json; }}
    server {{
        listen 127.0.0.1:{port};
        root {root}/html;
    }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    p = subprocess.Popen([nginx, "-p", root, "-e", os.path.join(root, "logs", "error.log"), "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    procs.append(p)
    url = f"http://127.0.0.1:{port}/dags.json"

    def up():
        if p.poll() is not None:
            raise SystemExit(f"webload: nginx exited {p.returncode}: {p.stderr.read().decode(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    wait_for(up, 15, "nginx")
    return url


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def run_wrk(url, args, header=None):
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
           "--timeout", "5s"]
    if header:
        cmd += ["-H", header]
    cmd.append(url)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         timeout=args.duration + 60).stdout
    res = {"raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        res[f"p{pct}"] = float(m.group(1)) * UNITS[m.group(2)] if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    res["errors"] = res["socket_errors"] + res["non2xx"]
    return res


def update_readme(path, text):
    """Replaces (or appends) the '## webui' section of bench/README.md, leaving the rest."""
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    section = "## webui\n\n" + text.rstrip() + "\n"
    m = re.search(r"^## webui\n.*?(?=^## |\Z)", old, re.M | re.S)
    new = old[:m.start()] + section + ("\n" + old[m.end():] if old[m.end():] else "") if m \
        else old.rstrip() + "\n\n" + section
    with open(path, "w") as f:
        f.write(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weir", default=os.path.join(HERE, "..", "build", "weir"))
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--readme", default=os.path.join(HERE, "README.md"))
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            raise SystemExit(f"webload: '{tool}' not found: apt-get install wrk nginx")
    weir = os.path.abspath(args.weir)
    tmp = tempfile.mkdtemp(prefix="weir-webload-")
    procs = []
    try:
        base, auth = start_weir(weir, tmp, procs)
        api_url = base + "/api/v1/dags"
        req = urllib.request.Request(api_url, headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        assert len(json.loads(body)["dags"]) == NDAGS, "the response must hold all 100 DAGs"
        static_url = start_nginx(tmp, body, procs)
        # Warm-up: fills the auth cache and the store's page cache before measuring.
        run_wrk(api_url, argparse.Namespace(threads=1, connections=4, duration=2), "Authorization: " + auth)
        w = run_wrk(api_url, args, "Authorization: " + auth)
        n = run_wrk(static_url, args)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = w["rps"] / n["rps"] if n["rps"] else 0.0
    checks = [("zero errors", w["errors"] == 0, f"{w['errors']} (socket {w['socket_errors']}, non-2xx {w['non2xx']})"),
              ("p99 < 20 ms", w["p99"] is not None and w["p99"] < 20.0, f"{w['p99']:.2f} ms" if w["p99"] is not None else "n/a"),
              ("ratio to nginx >= 0.2", ratio >= 0.2, f"{ratio:.3f}")]
    fmt = lambda v: f"{v:.2f}" if v is not None else "n/a"
    table = (f"`bench/webload.py`: wrk, {args.threads} threads, {args.connections} connections, {args.duration} s, "
             f"on 127.0.0.1; GET /api/v1/dags with {NDAGS} DAGs ({len(body)} bytes, basic auth), against nginx "
             f"serving a static file of the same size in the same run. {time.strftime('%Y-%m-%d', time.gmtime())}, "
             f"{os.cpu_count()} CPUs.\n\n"
             "| server | requests/s | p50 ms | p90 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|\n"
             f"| weir `GET /api/v1/dags` | {w['rps']:.0f} | {fmt(w['p50'])} | {fmt(w['p90'])} | {fmt(w['p99'])} | {w['errors']} |\n"
             f"| nginx, static file | {n['rps']:.0f} | {fmt(n['p50'])} | {fmt(n['p90'])} | {fmt(n['p99'])} | {n['errors']} |\n\n"
             f"Ratio weir / nginx: **{ratio:.3f}** (target >= 0.2).\n\n"
             + "\n".join(f"- {name}: {'met' if ok else 'MISSED'} ({val})" for name, ok, val in checks) + "\n")
    print(table)
    if not args.no_readme:
        update_readme(args.readme, table)
    ok = all(c[1] for c in checks)
    print("webload:", "all targets met" if ok else "target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
