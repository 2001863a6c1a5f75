"""tests/e2e/weirtest.py - helpers for end-to-end tests that run the real weir binary.

Each test gets a fresh WEIR_HOME and DAG folder in a temp dir and, for the PostgreSQL
backend, a fresh database on the throwaway cluster that ctest's pg.start fixture started
(its URL is in the file named by WEIR_TEST_PG_URL_FILE). Every wait is bounded.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

ARGS = None


def parse_args():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--weir", required=True)
    p.add_argument("--backend", default="sqlite", choices=["sqlite", "pg"])
    p.add_argument("--repo", default=os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
    ARGS, rest = p.parse_known_args()
    return [sys.argv[0]] + rest


def pg_admin_url():
    path = os.environ.get("WEIR_TEST_PG_URL_FILE")
    if not path or not os.path.exists(path):
        raise unittest.SkipTest("no PostgreSQL fixture (WEIR_TEST_PG_URL_FILE)")
    with open(path) as f:
        return f.read().strip()


def psql(url, sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)


class Weir:
    """One weir installation: home, DAG folder, store, and helpers to run commands."""

    def __init__(self, backend=None):
        self.backend = backend or ARGS.backend
        self.tmp = tempfile.mkdtemp(prefix="weir-e2e-")
        self.home = os.path.join(self.tmp, "home")
        self.dags = os.path.join(self.tmp, "dags")
        os.makedirs(self.home)
        os.makedirs(self.dags)
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("WEIR_") and k != "WEIR_TEST_PG_URL_FILE":
                del self.env[k]
        self.env["WEIR_HOME"] = self.home
        self.env["WEIR_CORE__DAGS_FOLDER"] = self.dags
        self.env["WEIR_CORE__LOG_LEVEL"] = "info"
        # `weir standalone` serves the web UI too: a free port, so tests run in parallel
        self.env["WEIR_WEBSERVER__PORT"] = "0"
        self.env["TMPDIR"] = self.tmp
        self.db = None
        if self.backend == "pg":
            admin = pg_admin_url()
            self.db = "weir_e2e_" + uuid.uuid4().hex[:12]
            psql(admin, f"CREATE DATABASE {self.db}")
            base = admin.rsplit("/", 1)[0]
            self.env["WEIR_STORE__URL"] = f"{base}/{self.db}"
        self.procs = []

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        if self.db:
            try:
                psql(pg_admin_url(), f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")
            except Exception:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_dag(self, name, text):
        path = os.path.join(self.dags, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)
        return path

    def copy_example(self, name):
        shutil.copy(os.path.join(ARGS.repo, "dags", name), os.path.join(self.dags, name))

    def run(self, *args, timeout=120, check=None, input=None):
        """Runs `weir ARGS`; returns CompletedProcess (text). check: expected exit code."""
        p = subprocess.run([ARGS.weir, *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, input=input)
        if check is not None and p.returncode != check:
            raise AssertionError(f"weir {' '.join(args)}: exit {p.returncode}, expected {check}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def json(self, *args, timeout=120):
        p = self.run(*args, "--json", timeout=timeout, check=0)
        return json.loads(p.stdout)

    def start(self, *args, log_name="standalone.log"):
        """Starts `weir standalone` (or ARGS) in the background, output to a log file."""
        log = open(os.path.join(self.tmp, log_name), "ab")
        p = subprocess.Popen([ARGS.weir, *(args or ("standalone",))], env=self.env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=False)
        self.procs.append(p)
        return p

    def start_synced(self):
        """Starts `weir standalone` and returns once it has synced the DAGs folder."""
        p = self.start()
        self.wait_for(lambda: "dags folder synced" in self.log_text(), 20, 0.05, "startup")
        return p

    def log_text(self, log_name="standalone.log"):
        try:
            with open(os.path.join(self.tmp, log_name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_for(self, cond, timeout=60, interval=0.1, what="condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = cond()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n"
                             f"--- standalone log ---\n{self.log_text()[-6000:]}")

    def runs(self, dag=None):
        args = ["runs", "list", "--limit", "0"]
        if dag:
            args += ["--dag", dag]
        return self.json(*args)["dag_runs"]

    def run_state(self, dag, run_id):
        return self.json("runs", "show", dag, run_id)

    def wait_run(self, dag, run_id, timeout=60, states=("success", "failed")):
        def done():
            r = self.run_state(dag, run_id)
            return r if r["state"] in states else None
        return self.wait_for(done, timeout, 0.2, f"run {dag} {run_id} to finish")


class WeirTest(unittest.TestCase):
    def setUp(self):
        self.w = Weir()

    def tearDown(self):
        self.w.close()


def main():
    argv = parse_args()
    unittest.main(argv=argv, verbosity=2)
