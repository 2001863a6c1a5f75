"""e2e: the REST API over real HTTP against the real `weir standalone` (and `weir webserver`):
DAGs, runs, task instances, clear, logs with continuation tokens, XComs, variables,
connections (passwords never returned), pools, users, auth (basic, bearer, session cookie
with CSRF), roles, metrics, and bad requests that must be refused without changing the
store while the server keeps serving."""
import base64
import http.client
import json
import re
import signal
import socket
import time
import unittest

from weirtest import Weir, main

TWO = """dag: two
tags: [demo]
params:
  n: {type: integer, default: 1}
tasks:
  a: {run: shell.run, with: {command: "echo a-{{ run_id }}"}}
  b: {run: shell.run, needs: [a], with: {command: "echo b-{{ params.n }}"}}
"""

SLOW = """dag: slow
tasks:
  tick:
    run: shell.run
    with: {command: "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.4; done"}
"""


class Client:
    """HTTP/1.1 client over http.client: full control over paths, bodies and headers."""

    def __init__(self, port, auth=None):
        self.port = port
        self.auth = auth  # ("basic", user, pw) | ("bearer", token) | None
        self.cookies = {}
        self.csrf = None

    def headers(self, extra=None, auth=True):
        h = {}
        if auth and self.auth and self.auth[0] == "basic":
            h["Authorization"] = "Basic " + base64.b64encode(
                f"{self.auth[1]}:{self.auth[2]}".encode()).decode()
        elif auth and self.auth and self.auth[0] == "bearer":
            h["Authorization"] = "Bearer " + self.auth[1]
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        h.update(extra or {})
        return h

    def raw(self, method, path, body=None, headers=None, auth=True):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            h = self.headers(headers, auth)
            if body is not None and "Content-Length" not in h:
                h["Content-Length"] = str(len(body))
            for k, v in h.items():
                c.putheader(k, v)
            c.endheaders()
            if body is not None:
                try:
                    c.send(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
            r = c.getresponse()
            data = r.read()
            for v in r.headers.get_all("Set-Cookie") or []:
                name, _, rest = v.partition("=")
                self.cookies[name] = rest.split(";")[0]
            return r.status, r.headers, data
        finally:
            c.close()

    def call(self, method, path, body=None, headers=None, auth=True):
        """JSON in and out: returns (status, parsed body or None)."""
        hdr = dict(headers or {})
        raw = None
        if body is not None:
            raw = json.dumps(body).encode()
            hdr.setdefault("Content-Type", "application/json")
        st, h, data = self.raw(method, path, raw, hdr, auth)
        try:
            return st, json.loads(data) if data else None
        except ValueError:
            return st, data.decode(errors="replace")


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = Weir()
        cls.w.env["WEIR_SCHEDULER__SWEEP_INTERVAL"] = "30"
        cls.w.write_dag("two.yaml", TWO)
        cls.w.write_dag("slow.yaml", SLOW)
        cls.proc = cls.w.start()
        text = cls.w.wait_for(lambda: re.search(r"web server listening url=http://[^:]+:(\d+)/",
                                                cls.w.log_text()), 30, what="web server")
        cls.port = int(text.group(1))
        m = re.search(r"created user 'admin' \(role admin\) with password: (\S+)",
                      cls.w.log_text())
        assert m, cls.w.log_text()
        cls.admin_pw = m.group(1)
        cls.api = Client(cls.port, ("basic", "admin", cls.admin_pw))
        cls.w.run("users", "create", "--username", "viewer1", "--role", "viewer",
                  "--password", "viewer-pass-1", check=0)
        cls.w.run("users", "create", "--username", "op1", "--role", "op",
                  "--password", "op-pass-123", check=0)

    @classmethod
    def tearDownClass(cls):
        try:
            # a clean exit: the server stops, and sanitizer builds find no leak or error
            if cls.proc.poll() is None:
                cls.proc.send_signal(signal.SIGTERM)
            rc = cls.proc.wait(timeout=30)
            if rc != 0:
                raise AssertionError(f"weir standalone exited {rc}\n{cls.w.log_text()[-6000:]}")
        finally:
            cls.w.close()

    # ---- helpers --------------------------------------------------------------------------

    def ok(self, method, path, body=None, status=200, client=None):
        st, data = (client or self.api).call(method, path, body)
        self.assertEqual(st, status, f"{method} {path}: {data}")
        return data

    def problem(self, st, data, status):
        self.assertEqual(st, status, data)
        self.assertIsInstance(data, dict, data)
        self.assertEqual(data["status"], status)
        for k in ("type", "title", "detail"):
            self.assertIn(k, data)

    def wait_run(self, dag, run_id, states=("success", "failed"), timeout=30):
        def done():
            r = self.ok("GET", f"/api/v1/dags/{dag}/dagRuns/{run_id}")
            return r if r["state"] in states else None
        return self.w.wait_for(done, timeout, 0.1, f"run {dag}/{run_id}")

    def trigger(self, dag, run_id, **kw):
        return self.ok("POST", f"/api/v1/dags/{dag}/dagRuns", dict(dag_run_id=run_id, **kw))

    def snapshot(self):
        """Everything a bad request could have changed."""
        return [self.ok("GET", p) for p in (
            "/api/v1/dags?limit=1000", "/api/v1/dags/~/dagRuns?limit=1000",
            "/api/v1/dags/~/dagRuns/~/taskInstances?limit=1000", "/api/v1/variables",
            "/api/v1/connections", "/api/v1/pools", "/api/v1/users")]

    # ---- unauthenticated -------------------------------------------------------------------

    def test_health_needs_no_auth(self):
        anon = Client(self.port)
        for path in ("/health", "/api/v1/health"):
            st, data = anon.call("GET", path)
            self.assertEqual(st, 200)
            self.assertEqual(data["metadatabase"]["status"], "healthy")
            self.assertEqual(data["scheduler"]["status"], "healthy")

    def test_everything_else_needs_auth(self):
        anon = Client(self.port)
        for path in ("/api/v1/dags", "/api/v1/version", "/api/v1/openapi.json", "/metrics",
                     "/api/v1/dags/two/dagRuns", "/api/v1/variables", "/api/v1/nope", "/auth/me"):
            st, data = anon.call("GET", path)
            self.problem(st, data, 401)
        st, data = anon.call("POST", "/api/v1/dags/two/dagRuns", {"dag_run_id": "anon"})
        self.problem(st, data, 401)
        for auth in (("basic", "admin", "wrong-password"), ("basic", "nobody", "whatever1"),
                     ("bearer", "weir_" + "0" * 64)):
            st, data = Client(self.port, auth).call("GET", "/api/v1/dags")
            self.problem(st, data, 401)
        # the login page is public; it is HTML
        st, h, body = anon.raw("GET", "/login")
        self.assertEqual(st, 200)
        self.assertIn("text/html", h["Content-Type"])

    # ---- DAGs ------------------------------------------------------------------------------

    def test_dags_list_get_patch(self):
        data = self.ok("GET", "/api/v1/dags")
        ids = [d["dag_id"] for d in data["dags"]]
        self.assertEqual(ids, ["slow", "two"])
        self.assertEqual(data["total_entries"], 2)
        self.assertEqual(self.ok("GET", "/api/v1/dags?limit=1&offset=1")["dags"][0]["dag_id"], "two")
        self.assertEqual([d["dag_id"] for d in self.ok("GET", "/api/v1/dags?tags=demo")["dags"]],
                         ["two"])
        self.assertEqual([d["dag_id"] for d in self.ok("GET", "/api/v1/dags?order_by=-dag_id")["dags"]],
                         ["two", "slow"])
        d = self.ok("GET", "/api/v1/dags/two")
        self.assertEqual(d["tags"], [{"name": "demo"}])
        self.assertFalse(d["is_paused"])
        d = self.ok("PATCH", "/api/v1/dags/two?update_mask=is_paused", {"is_paused": True})
        self.assertTrue(d["is_paused"])
        self.assertTrue(self.ok("GET", "/api/v1/dags/two")["is_paused"])
        self.assertEqual([x["dag_id"] for x in self.ok("GET", "/api/v1/dags?paused=true")["dags"]],
                         ["two"])
        d = self.ok("PATCH", "/api/v1/dags/two", {"is_paused": False})
        self.assertFalse(d["is_paused"])
        st, data = self.api.call("GET", "/api/v1/dags/nope")
        self.problem(st, data, 404)
        st, data = self.api.call("PATCH", "/api/v1/dags/two", {"is_paused": "yes"})
        self.problem(st, data, 400)

    def test_dag_details_tasks_source(self):
        det = self.ok("GET", "/api/v1/dags/two/details")
        self.assertEqual(det["params"]["n"]["value"], 1)
        tasks = self.ok("GET", "/api/v1/dags/two/tasks")
        self.assertEqual([t["task_id"] for t in tasks["tasks"]], ["a", "b"])
        self.assertEqual(tasks["tasks"][0]["downstream_task_ids"], ["b"])
        self.assertEqual(self.ok("GET", "/api/v1/dags/two/tasks/b")["operator_name"], "shell.run")
        st, h, body = self.api.raw("GET", "/api/v1/dags/two/source")
        self.assertEqual(st, 200)
        self.assertIn(b"dag: two", body)
        st, data = self.api.call("GET", "/api/v1/dags/two/source",
                                 headers={"Accept": "application/json"})
        self.assertEqual(st, 200)
        self.assertEqual(data["content"], TWO)

    def test_version_and_openapi(self):
        self.assertIn("version", self.ok("GET", "/api/v1/version"))
        doc = self.ok("GET", "/api/v1/openapi.json")
        self.assertTrue(doc["openapi"].startswith("3."))
        for p in ("/dags", "/dags/{dag_id}/dagRuns", "/dags/{dag_id}/clearTaskInstances",
                  "/variables/{variable_key}", "/connections", "/pools"):
            self.assertIn(p, doc["paths"])
        try:
            from openapi_spec_validator import validate_spec
        except ImportError:
            return
        validate_spec(doc)

    # ---- runs ------------------------------------------------------------------------------

    def test_trigger_get_list_patch_delete_runs(self):
        r = self.trigger("two", "api-1", conf={"n": 7}, note="from the API",
                         logical_date="2026-03-01T10:00:00+00:00")
        self.assertEqual(r["dag_run_id"], "api-1")
        self.assertEqual(r["conf"], {"n": 7})
        self.assertEqual(r["note"], "from the API")
        self.assertEqual(r["logical_date"], "2026-03-01T10:00:00+00:00")
        self.assertEqual(r["run_type"], "manual")
        done = self.wait_run("two", "api-1")
        self.assertEqual(done["state"], "success")
        # duplicate run id: 409, nothing changes
        st, data = self.api.call("POST", "/api/v1/dags/two/dagRuns", {"dag_run_id": "api-1"})
        self.problem(st, data, 409)
        self.assertEqual(self.ok("GET", "/api/v1/dags/two/dagRuns/api-1")["conf"], {"n": 7})
        # list with filters
        runs = self.ok("GET", "/api/v1/dags/two/dagRuns?state=success&limit=100")
        self.assertIn("api-1", [x["dag_run_id"] for x in runs["dag_runs"]])
        everywhere = self.ok("GET", "/api/v1/dags/~/dagRuns?order_by=-execution_date")
        self.assertGreaterEqual(everywhere["total_entries"], 1)
        st, data = self.api.call("GET", "/api/v1/dags/two/dagRuns?state=bogus")
        self.problem(st, data, 400)
        st, data = self.api.call("GET", "/api/v1/dags/two/dagRuns?limit=-1")
        self.problem(st, data, 400)
        # patch state: failed marks the run and every unfinished task instance
        self.ok("PATCH", "/api/v1/dags/two", {"is_paused": True})
        try:
            self.trigger("two", "api-2")
            r = self.ok("PATCH", "/api/v1/dags/two/dagRuns/api-2", {"state": "failed"})
            self.assertEqual(r["state"], "failed")
            tis = self.ok("GET", "/api/v1/dags/two/dagRuns/api-2/taskInstances")["task_instances"]
            self.assertEqual({t["state"] for t in tis}, {"failed"})
        finally:
            self.ok("PATCH", "/api/v1/dags/two", {"is_paused": False})
        r = self.ok("PATCH", "/api/v1/dags/two/dagRuns/api-2/setNote", {"note": "n2"})
        self.assertEqual(r["note"], "n2")
        st, data = self.api.call("PATCH", "/api/v1/dags/two/dagRuns/api-2", {"state": "running"})
        self.problem(st, data, 400)
        # delete
        self.ok("DELETE", "/api/v1/dags/two/dagRuns/api-2", status=204)
        st, data = self.api.call("GET", "/api/v1/dags/two/dagRuns/api-2")
        self.problem(st, data, 404)
        st, data = self.api.call("DELETE", "/api/v1/dags/two/dagRuns/api-2")
        self.problem(st, data, 404)
        st, data = self.api.call("POST", "/api/v1/dags/nope/dagRuns", {})
        self.problem(st, data, 404)

    def test_task_instances_logs_xcom(self):
        self.trigger("two", "ti-1")
        self.wait_run("two", "ti-1")
        tis = self.ok("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances")
        self.assertEqual(tis["total_entries"], 2)
        self.assertEqual([t["state"] for t in tis["task_instances"]], ["success", "success"])
        ti = self.ok("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/a")
        self.assertEqual(ti["try_number"], 1)
        anywhere = self.ok("GET", "/api/v1/dags/~/dagRuns/~/taskInstances?state=success")
        self.assertGreaterEqual(anywhere["total_entries"], 2)
        log = self.ok("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/a/logs/1")
        self.assertIn("a-ti-1", log["content"])
        self.assertTrue(log["end_of_log"])
        again = self.ok("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/a/logs/1?token="
                        + log["continuation_token"])
        self.assertEqual(again["content"], "")
        st, h, body = self.api.raw("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/a/logs/1",
                                   headers={"Accept": "text/plain"})
        self.assertEqual(st, 200)
        self.assertIn(b"a-ti-1", body)
        for bad in ("0", "x", "99"):
            st, data = self.api.call("GET", f"/api/v1/dags/two/dagRuns/ti-1/taskInstances/a/logs/{bad}")
            self.assertIn(st, (400, 404), data)
        st, data = self.api.call("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/a/logs/1?token=abc")
        self.problem(st, data, 400)
        xs = self.ok("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/a/xcomEntries")
        self.assertEqual([x["key"] for x in xs["xcom_entries"]], ["return_value"])
        x = self.ok("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/a/xcomEntries/return_value")
        self.assertEqual(x["value"], "a-ti-1")
        st, data = self.api.call("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/a/xcomEntries/nope")
        self.problem(st, data, 404)
        # mark failed, then success again
        ref = self.ok("PATCH", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/b",
                      {"new_state": "failed", "dry_run": False})
        self.assertEqual(ref["task_id"], "b")
        self.assertEqual(self.ok("GET", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/b")["state"], "failed")
        st, data = self.api.call("PATCH", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/b",
                                 {"new_state": "running"})
        self.problem(st, data, 400)
        self.ok("PATCH", "/api/v1/dags/two/dagRuns/ti-1/taskInstances/b", {"new_state": "success"})

    def test_live_log_tail_with_continuation_token(self):
        self.trigger("slow", "tail-1")
        base = "/api/v1/dags/slow/dagRuns/tail-1/taskInstances/tick/logs/1"
        token, content, polls = None, "", 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st, data = self.api.call("GET", base + (f"?token={token}" if token else ""))
            if st == 404:  # the try has not started yet
                time.sleep(0.1)
                continue
            self.assertEqual(st, 200, data)
            content += data["content"]
            token = data["continuation_token"]
            polls += 1
            if data["end_of_log"]:
                break
            time.sleep(0.15)
        lines = re.findall(r"INFO (line-\d)$", content, re.M)
        self.assertEqual(lines, [f"line-{i}" for i in range(1, 7)])
        self.assertGreater(polls, 2)  # it was a tail, not one read at the end

    def test_clear_task_instances(self):
        self.trigger("two", "clr-1")
        self.wait_run("two", "clr-1")
        body = {"dag_run_id": "clr-1", "task_ids": ["a"], "include_downstream": True}
        dry = self.ok("POST", "/api/v1/dags/two/clearTaskInstances", body)  # dry_run defaults to true
        self.assertEqual(sorted(t["task_id"] for t in dry["task_instances"]), ["a", "b"])
        self.assertEqual(self.ok("GET", "/api/v1/dags/two/dagRuns/clr-1")["state"], "success")
        done = self.ok("POST", "/api/v1/dags/two/clearTaskInstances", dict(body, dry_run=False))
        self.assertEqual(sorted(t["task_id"] for t in done["task_instances"]), ["a", "b"])

        def rerun():
            tis = self.ok("GET", "/api/v1/dags/two/dagRuns/clr-1/taskInstances")["task_instances"]
            return all(t["try_number"] == 2 and t["state"] == "success" for t in tis)
        self.w.wait_for(rerun, 30, 0.1, "cleared tasks to run again")
        log2 = self.ok("GET", "/api/v1/dags/two/dagRuns/clr-1/taskInstances/a/logs/2")
        self.assertIn("a-clr-1", log2["content"])
        st, data = self.api.call("POST", "/api/v1/dags/two/clearTaskInstances", {"bogus": 1})
        self.problem(st, data, 400)

    # ---- variables, connections, pools, users -----------------------------------------------

    def test_variables_crud(self):
        v = self.ok("POST", "/api/v1/variables", {"key": "v1", "value": "hello", "description": "d"})
        self.assertEqual(v, {"key": "v1", "value": "hello", "description": "d"})
        self.assertEqual(self.ok("GET", "/api/v1/variables/v1")["value"], "hello")
        self.assertIn("v1", [x["key"] for x in self.ok("GET", "/api/v1/variables")["variables"]])
        v = self.ok("PATCH", "/api/v1/variables/v1", {"key": "v1", "value": "bye"})
        self.assertEqual((v["value"], v["description"]), ("bye", "d"))
        st, data = self.api.call("PATCH", "/api/v1/variables/v1", {"key": "other", "value": "x"})
        self.problem(st, data, 400)
        self.ok("DELETE", "/api/v1/variables/v1", status=204)
        st, data = self.api.call("GET", "/api/v1/variables/v1")
        self.problem(st, data, 404)
        st, data = self.api.call("POST", "/api/v1/variables", {"key": "v2"})
        self.problem(st, data, 400)

    def test_connections_crud_never_return_password(self):
        secret = "s3cr3t-pa55word"
        c = self.ok("POST", "/api/v1/connections", {
            "connection_id": "db1", "conn_type": "postgres", "host": "db.example", "port": 5432,
            "login": "me", "password": secret, "extra": json.dumps({"sslmode": "require",
                                                                   "api_token": "tok-123"})})
        self.assertNotIn("password", c)
        self.assertEqual(c["host"], "db.example")
        self.assertEqual(json.loads(c["extra"])["api_token"], "***")
        st, data = self.api.call("POST", "/api/v1/connections",
                                 {"connection_id": "db1", "conn_type": "postgres"})
        self.problem(st, data, 409)
        for path in ("/api/v1/connections", "/api/v1/connections/db1"):
            st, h, body = self.api.raw("GET", path)
            self.assertEqual(st, 200)
            self.assertNotIn(secret.encode(), body)
            self.assertNotIn(b"tok-123", body)
            self.assertNotIn(b'"password"', body)
        c = self.ok("PATCH", "/api/v1/connections/db1?update_mask=port", {"port": 6543, "host": "ignored"})
        self.assertEqual((c["port"], c["host"]), (6543, "db.example"))
        st, data = self.api.call("PATCH", "/api/v1/connections/db1", {"port": "x"})
        self.problem(st, data, 400)
        self.ok("DELETE", "/api/v1/connections/db1", status=204)
        st, data = self.api.call("GET", "/api/v1/connections/db1")
        self.problem(st, data, 404)

    def test_pools_crud(self):
        pools = self.ok("GET", "/api/v1/pools")["pools"]
        default = [p for p in pools if p["name"] == "default_pool"][0]
        self.assertEqual(default["slots"], 128)
        for k in ("occupied_slots", "running_slots", "queued_slots", "open_slots"):
            self.assertIn(k, default)
        p = self.ok("POST", "/api/v1/pools", {"name": "p1", "slots": 3, "description": "three"})
        self.assertEqual((p["slots"], p["open_slots"]), (3, 3))
        st, data = self.api.call("POST", "/api/v1/pools", {"name": "p1", "slots": 1})
        self.problem(st, data, 409)
        p = self.ok("PATCH", "/api/v1/pools/p1", {"slots": 5})
        self.assertEqual((p["slots"], p["description"]), (5, "three"))
        self.ok("DELETE", "/api/v1/pools/p1", status=204)
        st, data = self.api.call("DELETE", "/api/v1/pools/default_pool")
        self.problem(st, data, 400)
        st, data = self.api.call("POST", "/api/v1/pools", {"name": "p2", "slots": -5})
        self.problem(st, data, 400)

    def test_users_api_admin_only(self):
        u = self.ok("POST", "/api/v1/users", {"username": "u1", "password": "u1-password",
                                              "roles": [{"name": "op"}]})
        self.assertEqual(u["role"], "op")
        self.assertNotIn("password", u)
        st, _ = Client(self.port, ("basic", "u1", "u1-password")).call("GET", "/api/v1/dags")
        self.assertEqual(st, 200)
        st, data = Client(self.port, ("basic", "u1", "u1-password")).call("GET", "/api/v1/users")
        self.problem(st, data, 403)
        self.ok("PATCH", "/api/v1/users/u1", {"role": "viewer"})
        self.assertEqual(self.ok("GET", "/api/v1/users/u1")["role"], "viewer")
        st, data = self.api.call("POST", "/api/v1/users", {"username": "u1", "password": "xxxxxxxx",
                                                           "role": "op"})
        self.problem(st, data, 409)
        st, data = self.api.call("POST", "/api/v1/users", {"username": "u2", "password": "short",
                                                           "role": "op"})
        self.problem(st, data, 400)
        self.ok("DELETE", "/api/v1/users/u1", status=204)
        # the cached basic credentials of a deleted user die with it
        self.problem(*Client(self.port, ("basic", "u1", "u1-password")).call("GET", "/api/v1/dags"), 401)
        st, data = self.api.call("DELETE", "/api/v1/users/admin")  # not yourself
        self.problem(st, data, 400)

    # ---- roles, tokens, sessions -------------------------------------------------------------

    def test_viewer_cannot_change_anything(self):
        viewer = Client(self.port, ("basic", "viewer1", "viewer-pass-1"))
        before = self.snapshot()
        self.assertEqual(viewer.call("GET", "/api/v1/dags")[0], 200)
        self.assertEqual(viewer.call("GET", "/api/v1/dags/two/dagRuns")[0], 200)
        for method, path, body in (
                ("POST", "/api/v1/dags/two/dagRuns", {"dag_run_id": "viewer-run"}),
                ("PATCH", "/api/v1/dags/two", {"is_paused": True}),
                ("POST", "/api/v1/dags/two/clearTaskInstances", {"dry_run": False}),
                ("POST", "/api/v1/variables", {"key": "vv", "value": "x"}),
                ("POST", "/api/v1/pools", {"name": "vp", "slots": 1}),
                ("DELETE", "/api/v1/dags/two", None),
                ("GET", "/api/v1/users", None)):
            st, data = viewer.call(method, path, body)
            self.problem(st, data, 403)
        self.assertEqual(self.snapshot(), before)
        op = Client(self.port, ("basic", "op1", "op-pass-123"))
        st, data = op.call("POST", "/api/v1/variables", {"key": "opvar", "value": "x"})
        self.assertEqual(st, 200, data)
        self.problem(*op.call("GET", "/api/v1/users"), 403)
        self.ok("DELETE", "/api/v1/variables/opvar", status=204)

    def test_bearer_token(self):
        tok = self.w.run("users", "token", "viewer1", check=0).stdout.strip()
        self.assertTrue(tok.startswith("weir_"))
        c = Client(self.port, ("bearer", tok))
        self.assertEqual(c.call("GET", "/api/v1/dags")[0], 200)
        self.problem(*c.call("PATCH", "/api/v1/dags/two", {"is_paused": True}), 403)
        self.problem(*Client(self.port, ("bearer", tok[:-1] + "x")).call("GET", "/api/v1/dags"), 401)

    def test_session_cookie_and_csrf(self):
        c = Client(self.port)
        st, data = c.call("POST", "/auth/login", {"username": "admin", "password": "wrong-one"})
        self.problem(st, data, 401)
        st, h, body = c.raw("POST", "/auth/login", json.dumps(
            {"username": "admin", "password": self.admin_pw}).encode(),
            {"Content-Type": "application/json"})
        self.assertEqual(st, 200, body)
        cookies = h.get_all("Set-Cookie")
        sess = [x for x in cookies if x.startswith("weir_session=")][0]
        self.assertIn("HttpOnly", sess)
        self.assertIn("SameSite=Strict", sess)
        csrf = json.loads(body)["csrf_token"]
        self.assertEqual(c.call("GET", "/api/v1/dags/two")[0], 200)
        me = c.call("GET", "/auth/me")[1]
        self.assertEqual((me["username"], me["role"], me["csrf_token"]), ("admin", "admin", csrf))
        before = self.snapshot()
        for hdr in (None, {"X-CSRF-Token": "0" * len(csrf)}, {"X-CSRF-Token": ""}):
            st, data = c.call("PATCH", "/api/v1/dags/two", {"is_paused": True}, headers=hdr)
            self.problem(st, data, 403)
            st, data = c.call("POST", "/api/v1/dags/two/dagRuns", {"dag_run_id": "csrf"}, headers=hdr)
            self.problem(st, data, 403)
        self.assertEqual(self.snapshot(), before)
        st, data = c.call("POST", "/api/v1/variables", {"key": "cookie-var", "value": "1"},
                          headers={"X-CSRF-Token": csrf})
        self.assertEqual(st, 200, data)
        self.ok("DELETE", "/api/v1/variables/cookie-var", status=204)
        st, _ = c.call("POST", "/auth/logout", headers={"X-CSRF-Token": csrf})
        self.assertEqual(st, 204)
        self.assertEqual(c.call("GET", "/api/v1/dags")[0], 401)

    # ---- bad requests ------------------------------------------------------------------------

    def test_bad_requests_change_nothing(self):
        before = self.snapshot()
        runs = "/api/v1/dags/two/dagRuns"
        json_h = {"Content-Type": "application/json"}
        cases = [
            ("POST", runs, b'{"dag_run_id": "x",', json_h, 400),          # malformed JSON
            ("POST", runs, b'{"dag_run_id": "x", "bogus": 1}', json_h, 400),  # unknown field
            ("POST", runs, b'{"dag_run_id": "x\xff\xfe"}', json_h, 400),  # invalid UTF-8
            ("POST", runs, b'{"dag_run_id": "x", "conf": {"a": "\xc0\xaf"}}', json_h, 400),
            ("POST", runs, b'[1, 2]', json_h, 400),                        # not an object
            ("POST", runs, b'', json_h, 400),                              # empty
            ("POST", runs, b'{"conf": ' + b'[' * 200 + b']' * 200 + b'}', json_h, 400),  # depth
            ("POST", runs, b'{"dag_run_id": "x", "dag_run_id": "y"}', json_h, 400),  # duplicate key
            ("POST", runs, b'{"dag_run_id": "x"}', {"Content-Type": "text/plain"}, 400),
            ("POST", runs, b'{"dag_run_id": "a b"}', json_h, 400),
            ("POST", runs, b'{"dag_run_id": "x", "conf": [1]}', json_h, 400),
            ("POST", runs, b'{"dag_run_id": "x", "logical_date": "yesterday"}', json_h, 400),
            ("POST", runs, b'{"dag_run_id": "x", "conf": {"pad": "' + b'a' * (2 << 20) + b'"}}',
             json_h, 413),                                                  # huge body
            ("PATCH", "/api/v1/dags/two", b'{"is_paused": true, "owners": []}', json_h, 400),
            ("POST", "/api/v1/variables", b'{"key": "../../etc", "value": "x"}', json_h, 400),
            ("POST", "/api/v1/pools", b'{"name": "p", "slots": 1.5}', json_h, 400),
            ("PUT", "/api/v1/dags/two", b'{}', json_h, 405),
            ("GET", "/api/v1/nope", None, None, 404),
            ("GET", "/api/v1/dags/two/nope", None, None, 404),
            ("GET", "/api/v1/dags/two/dagRuns/nope", None, None, 404),
            ("GET", "/api/v1/dags/%ff%fe", None, None, 400),
        ]
        for method, path, body, hdr, want in cases:
            st, h, data = self.api.raw(method, path, body, hdr)
            self.assertEqual(st, want, f"{method} {path} {body[:80] if body else ''}: {data[:300]}")
            problem = json.loads(data)
            self.assertEqual(problem["status"], want)
            self.assertIn("application/problem+json", h["Content-Type"])
        for path in ("/api/v1", "/api/v1/", "/api/v1//dags", "/api/v1/dags/"):
            st, data = self.api.call("GET", path)
            self.problem(st, data, 404)
        # a body announced far over the limit is refused before it is read
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            auth = self.api.headers()["Authorization"]
            s.sendall(b"POST /api/v1/variables HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                      auth.encode() + b"\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 104857600\r\n\r\n{\"key\": ")
            head = s.recv(4096)
            self.assertTrue(head.startswith(b"HTTP/1.1 413"), head[:200])
        finally:
            s.close()
        # the server is still there and nothing changed
        self.assertEqual(self.api.call("GET", "/health")[0], 200)
        self.assertEqual(self.snapshot(), before)

    def test_path_traversal(self):
        for path in ("/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                     "/api/v1/dags/../../../etc/passwd", "/api/v1/dags/..%2f..%2fetc%2fpasswd/source",
                     "/api/v1/dags/%2e%2e/source", "/index.html/../../etc/passwd",
                     "/js/../../../../etc/passwd", "/api/v1/variables/..%2F..%2Fetc%2Fpasswd",
                     "//etc/passwd", "/api/v1/dags/two/dagRuns/..%2F..%2F/taskInstances"):
            st, h, body = self.api.raw("GET", path)
            self.assertIn(st, (400, 404), f"{path}: {st} {body[:200]}")
            self.assertNotIn(b"root:", body)

    def test_slow_clients_do_not_block_others(self):
        socks = []
        try:
            for _ in range(8):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s.sendall(b"GET /api/v1/dags HTTP/1.1\r\nHost: x\r\n")  # never finishes
                socks.append(s)
            t0 = time.monotonic()
            for _ in range(5):
                self.assertEqual(self.api.call("GET", "/api/v1/version")[0], 200)
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            for s in socks:
                s.close()

    # ---- metrics -----------------------------------------------------------------------------

    def test_metrics(self):
        self.api.call("GET", "/api/v1/nope")
        st, h, body = self.api.raw("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertIn("text/plain", h["Content-Type"])
        text = body.decode()
        for needle in ('weir_task_instances{state="success"}', 'weir_dag_runs{state="queued"}',
                       "weir_queue_depth", 'weir_http_requests_total{code="200"}',
                       'weir_http_requests_total{code="404"}',
                       "weir_scheduler_loop_duration_seconds", "weir_executor_open_slots",
                       "weir_store_query_duration_seconds_bucket", "weir_scheduler_runs_started_total"):
            self.assertIn(needle, text)
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-z_]+(\{[^}]*\})? [-0-9.e+]+$')


class WebserverAloneTest(unittest.TestCase):
    """`weir webserver` without a scheduler: serves the API over the same store."""

    def problem_status(self, res, status):
        self.assertEqual(res[0], status, res[1])

    def setUp(self):
        self.w = Weir()

    def tearDown(self):
        self.w.close()

    def test_webserver_alone(self):
        self.w.write_dag("two.yaml", TWO)
        self.w.run("dags", "list", check=0)  # parses the folder into the store
        out = self.w.run("users", "create", "--username", "ops", "--role", "op", check=0).stdout
        pw = out.strip()
        self.assertGreaterEqual(len(pw), 16)
        self.assertEqual(self.w.run("users", "create", "--username", "ops", "--role", "op").returncode, 4)
        self.assertEqual(self.w.run("users", "create", "--username", "x", "--role", "king").returncode, 2)
        users = self.w.json("users", "list")["users"]
        self.assertEqual([(u["username"], u["role"]) for u in users], [("ops", "op")])
        self.assertEqual(self.w.run("users", "create", "--username", "a:b", "--role", "op",
                                    "--password", "long-enough").returncode, 2)
        self.assertEqual(self.w.run("users", "password", "ops", "--password", "short").returncode, 2)
        self.w.run("users", "password", "ops", "--password", "new-password-1", check=0)
        self.assertEqual(self.w.run("users", "token", "ops", "--ttl", "soon").returncode, 2)
        self.assertEqual(self.w.run("users", "token", "nobody").returncode, 3)
        tok = self.w.run("users", "token", "ops", "--ttl", "1h", check=0).stdout.strip()
        p = self.w.start("webserver", log_name="web.log")
        m = self.w.wait_for(lambda: re.search(r"listening url=http://[^:]+:(\d+)/",
                                              self.w.log_text("web.log")), 20, what="webserver")
        port = int(m.group(1))
        self.problem_status(Client(port, ("basic", "ops", pw)).call("GET", "/api/v1/dags"), 401)
        self.assertEqual(Client(port, ("bearer", tok)).call("GET", "/api/v1/dags")[0], 200)
        c = Client(port, ("basic", "ops", "new-password-1"))
        st, data = c.call("GET", "/health", auth=False)
        self.assertEqual(st, 200)
        self.assertIsNone(data["scheduler"]["status"])
        self.assertNotIn("created user", self.w.log_text("web.log"))  # only standalone does that
        st, data = c.call("POST", "/api/v1/dags/two/dagRuns", {"dag_run_id": "w1"})
        self.assertEqual(st, 200, data)
        self.assertEqual(data["state"], "queued")
        self.assertEqual(self.w.run_state("two", "w1")["state"], "queued")
        self.w.run("users", "delete", "ops", check=0)
        # the user's tokens die with it at once (cached basic credentials may live 30 s)
        self.problem_status(Client(port, ("bearer", tok)).call("GET", "/api/v1/dags"), 401)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=20), 0)

    def test_scheduler_and_two_webservers_share_one_store(self):
        """The Kubernetes shape: `weir scheduler` and several `weir webserver` replicas over
        one store (PostgreSQL in the pg run). A trigger through one replica is run by the
        scheduler (woken through the wake file) and seen, with its log, through the other."""
        self.w.write_dag("two.yaml", TWO)
        pw = self.w.run("users", "create", "--username", "ops", "--role", "op",
                        check=0).stdout.strip()
        self.w.start("scheduler", log_name="sched.log")
        self.w.wait_for(lambda: "dags folder synced" in self.w.log_text("sched.log"), 20,
                        what="scheduler")
        ports = []
        for name in ("web1.log", "web2.log"):
            self.w.start("webserver", log_name=name)
            m = self.w.wait_for(lambda: re.search(r"listening url=http://[^:]+:(\d+)/",
                                                  self.w.log_text(name)), 20, what=name)
            ports.append(int(m.group(1)))
        self.assertNotEqual(ports[0], ports[1])
        a = Client(ports[0], ("basic", "ops", pw))
        b = Client(ports[1], ("basic", "ops", pw))
        st, data = a.call("POST", "/api/v1/dags/two/dagRuns", {"dag_run_id": "shared"})
        self.assertEqual(st, 200, data)

        def done():
            st2, run = b.call("GET", "/api/v1/dags/two/dagRuns/shared")
            return run if st2 == 200 and run["state"] in ("success", "failed") else None
        run = self.w.wait_for(done, 30, 0.2, "run through the other replica")
        self.assertEqual(run["state"], "success")
        st, tis = b.call("GET", "/api/v1/dags/two/dagRuns/shared/taskInstances")
        self.assertEqual(st, 200)
        self.assertEqual(sorted(t["state"] for t in tis["task_instances"]), ["success", "success"])


if __name__ == "__main__":
    main()
