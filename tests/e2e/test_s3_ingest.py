"""e2e: weather.forecast and gharchive.fetch writing s3:// outputs through the shared S3
client, against the SigV4-verifying S3 test server (ctest fixture "s3", settings in the
file named by WEIR_TEST_S3_ENV) and the local replay server for the sources. The objects
are fetched back with s3.get and compared; a rerun overwrites them with the same bytes.
A wrong secret fails the upload clearly."""
import json
import os
import shlex
import subprocess
import sys
import unittest
import urllib.parse
import uuid

import weirtest
from weirtest import WeirTest, main

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers")
sys.path.insert(0, HELPERS)
import gharchive_gen  # noqa: E402

SERVER = None
PORT = None


def setUpModule():
    global SERVER, PORT
    SERVER = subprocess.Popen([sys.executable, os.path.join(HELPERS, "replay_server.py")],
                              stdout=subprocess.PIPE, text=True)
    line = SERVER.stdout.readline()
    assert line.startswith("PORT "), line
    PORT = int(line.split()[1])


def tearDownModule():
    if SERVER:
        SERVER.kill()
        SERVER.wait(timeout=10)


def s3_settings():
    path = os.environ.get("WEIR_TEST_S3_ENV")
    if not path or not os.path.exists(path):
        raise unittest.SkipTest("no S3 fixture (WEIR_TEST_S3_ENV)")
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.strip().split("=", 1)
                env[k] = shlex.split(v)[0] if v else ""
    return env


def conn_uri(s3, secret=None):
    hostport = urllib.parse.urlsplit(s3["S3_ENDPOINT"]).netloc
    q = lambda v: urllib.parse.quote(v, safe="")  # noqa: E731
    return (f"s3://{q(s3['S3_ACCESS_KEY'])}:{q(secret or s3['S3_SECRET_KEY'])}@{hostport}/"
            f"?region_name={s3['S3_REGION']}&path_style=true&secure=false")


class S3IngestTest(WeirTest):
    def setUp(self):
        super().setUp()
        self.s3 = s3_settings()
        self.bucket = "weir-ing-" + uuid.uuid4().hex[:10]
        self.w.env["WEIR_CONN_S3TEST"] = conn_uri(self.s3)
        self.w.env["WEIR_CONN_S3BAD"] = conn_uri(self.s3, secret="wrong-secret")
        self.w.env["WEIR_CONN_OPEN_METEO"] = f"http://127.0.0.1:{PORT}"
        self.w.env["WEIR_CONN_GHARCHIVE"] = f"http://127.0.0.1:{PORT}/n-150"
        self.out = os.path.join(self.w.tmp, "out")
        self.cities = os.path.join(weirtest.ARGS.repo, "dags", "data", "dutch_cities.csv")

    def test_outputs_to_s3(self):
        b, out = self.bucket, self.out
        self.w.write_dag("s3ing.yaml", f"""dag: s3ing
tasks:
  bucket: {{run: s3.create_bucket, with: {{bucket: {b}, conn_id: s3test}}}}
  wx:
    needs: [bucket]
    run: weather.forecast
    with:
      places: {self.cities}
      to: s3://{b}/weather/raw/{{{{ ds }}}}.json
      rows_to: s3://{b}/weather/rows/{{{{ ds }}}}.ndjson
      forecast_days: 1
      s3_conn_id: s3test
  gh:
    needs: [bucket]
    run: gharchive.fetch
    with:
      raw_to: s3://{b}/gh/raw/
      events_to: s3://{b}/gh/events/{{{{ ds }}}}.ndjson
      s3_conn_id: s3test
  get_rows:
    needs: [wx]
    run: s3.get
    with: {{src: "s3://{b}/weather/rows/{{{{ ds }}}}.ndjson", dest: "{out}/rows.ndjson", conn_id: s3test}}
  get_raw:
    needs: [wx]
    run: s3.get
    with: {{src: "s3://{b}/weather/raw/{{{{ ds }}}}.json", dest: "{out}/raw.json", conn_id: s3test}}
  get_events:
    needs: [gh]
    run: s3.get
    with: {{src: "s3://{b}/gh/events/{{{{ ds }}}}.ndjson", dest: "{out}/events.ndjson", conn_id: s3test}}
  get_gz:
    needs: [gh]
    run: s3.get
    with: {{src: "s3://{b}/gh/raw/2026-01-02-0.json.gz", dest: "{out}/hour.json.gz", conn_id: s3test}}
""")
        for attempt in (1, 2):  # the rerun overwrites the same keys
            p = self.w.run("dags", "test", "s3ing", "2026-01-02", timeout=240)
            self.assertEqual(p.returncode, 0, f"run {attempt}:\n{p.stdout}\n{p.stderr}")
            with open(os.path.join(out, "rows.ndjson")) as f:
                rows = [json.loads(line) for line in f]
            self.assertEqual(len(rows), 24 * 24)
            with open(os.path.join(out, "raw.json")) as f:
                self.assertEqual(len(json.load(f)["requests"]), 3)
            with open(os.path.join(out, "events.ndjson")) as f:
                events = [json.loads(line) for line in f]
            self.assertEqual([e["id"] for e in events],
                             [e["id"] for e in gharchive_gen.events("2026-01-02T00", 150)])
            with open(os.path.join(out, "hour.json.gz"), "rb") as f:
                self.assertEqual(f.read(), gharchive_gen.gz_bytes("2026-01-02T00", 150))

    def test_wrong_secret_fails_clearly(self):
        b = self.bucket
        self.w.write_dag("s3bad.yaml", f"""dag: s3bad
tasks:
  bucket: {{run: s3.create_bucket, with: {{bucket: {b}, conn_id: s3test}}}}
  wx:
    needs: [bucket]
    run: weather.forecast
    with:
      places: {self.cities}
      to: s3://{b}/weather/raw.json
      forecast_days: 1
      s3_conn_id: s3bad
""")
        p = self.w.run("dags", "test", "s3bad", "2026-01-02", timeout=240)
        self.assertEqual(p.returncode, 1, f"{p.stdout}\n{p.stderr}")
        run = self.w.runs("s3bad")[0]["dag_run_id"]
        logs = self.w.run("tasks", "logs", "s3bad", run, "wx", check=0).stdout
        self.assertIn("SignatureDoesNotMatch", logs)
        self.assertNotIn("wrong-secret", logs)


if __name__ == "__main__":
    main()
