"""e2e: the reference pipelines in dags/ (weather_forecast, gharchive_hourly, s3_export),
copied unchanged into the test's DAG folder and run with `weir dags test` from the
repository root (so `dags/data/dutch_cities.csv` resolves as it does for a user), against
the local replay server (Open-Meteo, GH Archive), the SigV4-verifying S3 test server
(ctest fixture "s3") as WEIR_CONN_AWS_DEFAULT, and the bundled warehouse in
$WEIR_HOME/warehouse. Checks the objects, the row counts of raw tables and marts, that a
rerun of the same logical date replaces its rows instead of adding them, and that the
export's CSV in S3 matches the table."""
import csv
import gzip
import io
import json
import os
import subprocess
import sys
import unittest
import uuid

import weirtest
from weirtest import WeirTest, main

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers")
sys.path.insert(0, HELPERS)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gharchive_gen  # noqa: E402
from test_s3_ingest import conn_uri, s3_settings  # noqa: E402

SERVER = None
PORT = None
CITIES = 24


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


class PipelinesTest(WeirTest):
    def setUp(self):
        super().setUp()
        self.s3 = s3_settings()
        self.bucket = "weir-pipe-" + uuid.uuid4().hex[:10]
        self.w.env["WEIR_CONN_AWS_DEFAULT"] = conn_uri(self.s3)
        self.w.env["WEIR_CONN_OPEN_METEO"] = f"http://127.0.0.1:{PORT}"
        self.w.env["WEIR_CONN_GHARCHIVE"] = f"http://127.0.0.1:{PORT}/n-150"
        self.out = os.path.join(self.w.tmp, "out")
        self.conf = json.dumps({"bucket": self.bucket})
        self.w.write_dag("setup.yaml", f"""dag: setup
tasks:
  bucket: {{run: s3.create_bucket, with: {{bucket: {self.bucket}}}}}
""")
        self.dags_test("setup", "2026-01-01")

    def dags_test(self, dag, date, conf=None, expect=0):
        args = [weirtest.ARGS.weir, "dags", "test", dag, date]
        if conf:
            args += ["--conf", conf]
        p = subprocess.run(args, env=self.w.env, cwd=weirtest.ARGS.repo, capture_output=True,
                           text=True, timeout=240)
        if p.returncode != expect:
            logs = ""
            for r in self.w.runs(dag):
                for ti in self.w.run_state(dag, r["dag_run_id"])["task_instances"]:
                    logs += self.w.run("tasks", "logs", dag, r["dag_run_id"], ti["task_id"]).stdout
            self.fail(f"{dag}: exit {p.returncode}\n{p.stdout}\n{p.stderr}\n{logs[-8000:]}")
        return p

    def sql(self, query):
        """Rows of `query` on the test's warehouse, as lists of strings."""
        p = self.w.run("sql", "--db", os.path.join(self.w.home, "warehouse"), "-c", query,
                       "--format", "csv", check=0)
        return list(csv.reader(io.StringIO(p.stdout)))[1:]

    def count(self, table, where=""):
        return int(self.sql(f"SELECT count(*) FROM {table} {where}")[0][0])

    def s3_get(self, url, dest):
        self.w.write_dag("get.yaml", f"""dag: get
tasks:
  get: {{run: s3.get, with: {{src: "{url}", dest: "{dest}"}}}}
""")
        self.dags_test("get", "2026-01-01")
        with open(dest, "rb") as f:
            return f.read()

    def test_weather_forecast(self):
        self.w.copy_example("weather_forecast.yaml")
        date = "2026-03-02T10:00:00Z"
        for attempt in (1, 2):  # the rerun replaces its load instead of adding to it
            self.dags_test("weather_forecast", date, self.conf)
            self.assertEqual(self.count("raw.weather_hourly"), CITIES * 48, f"run {attempt}")
            self.assertEqual(self.count("weir.loads", "WHERE table_name = 'raw.weather_hourly'"), 1)
            self.assertEqual(self.count("staging.weather_hourly"), CITIES * 48)
            self.assertEqual(self.count("marts.weather_daily"), CITIES * 2)
        # the raw response and the rows are in S3
        raw = json.loads(self.s3_get(f"s3://{self.bucket}/weather/raw/2026-03-02/20260302T100000.json",
                                     os.path.join(self.out, "raw.json")))
        self.assertEqual(len(raw["requests"]), 3)
        rows = self.s3_get(f"s3://{self.bucket}/weather/rows/2026-03-02/20260302T100000.ndjson",
                           os.path.join(self.out, "rows.ndjson"))
        self.assertEqual(len(rows.splitlines()), CITIES * 48)
        # the summary agrees with the raw rows
        (row,) = self.sql("SELECT min_temperature_c, max_temperature_c, total_precipitation_mm,"
                          " max_wind_kmh, hours FROM marts.weather_daily"
                          " WHERE city = 'Amsterdam' AND day = '2026-10-03'")
        ams = [json.loads(x) for x in rows.splitlines()]
        ams = [r for r in ams if r["name"] == "Amsterdam" and r["time"].startswith("2026-10-03")]
        self.assertEqual(len(ams), 24)
        self.assertAlmostEqual(float(row[0]), min(r["temperature_2m"] for r in ams))
        self.assertAlmostEqual(float(row[1]), max(r["temperature_2m"] for r in ams))
        self.assertAlmostEqual(float(row[2]), sum(r["precipitation"] for r in ams), places=6)
        self.assertAlmostEqual(float(row[3]), max(r["wind_speed_10m"] for r in ams))
        self.assertEqual(row[4], "24")
        # a later run adds its own load; staging keeps one row per city and hour
        self.dags_test("weather_forecast", "2026-03-02T11:00:00Z", self.conf)
        self.assertEqual(self.count("raw.weather_hourly"), 2 * CITIES * 48)
        self.assertEqual(self.count("staging.weather_hourly"), CITIES * 48)
        (newest,) = self.sql("SELECT DISTINCT forecast_for FROM staging.weather_hourly")
        self.assertTrue(newest[0].startswith("2026-03-02 11:00:00"), newest)

        # warehouse.load of an s3:// glob: both runs' row objects
        self.w.write_dag("globload.yaml", f"""dag: globload
tasks:
  load:
    run: warehouse.load
    with: {{from: "s3://{self.bucket}/weather/rows/2026-03-02/*.ndjson", table: scratch.rows}}
  missing:
    run: warehouse.load
    with: {{from: "s3://{self.bucket}/weather/rows/nope.ndjson", table: scratch.nope}}
""")
        self.dags_test("globload", "2026-03-02", expect=1)
        self.assertEqual(self.count("scratch.rows"), 2 * CITIES * 48)
        run = self.w.runs("globload")[0]["dag_run_id"]
        logs = self.w.run("tasks", "logs", "globload", run, "missing").stdout
        self.assertIn("NoSuchKey", logs)

        # s3_export: the daily summary as CSV in S3
        self.w.copy_example("s3_export.yaml")
        self.dags_test("s3_export", "2026-03-03", self.conf)
        data = self.s3_get(f"s3://{self.bucket}/exports/marts.weather_daily/2026-03-03.csv",
                           os.path.join(self.out, "export.csv")).decode()
        exported = list(csv.reader(io.StringIO(data)))
        self.assertEqual(exported[0][:2], ["city", "day"])
        self.assertNotIn("_weir_load", exported[0])
        self.assertEqual(len(exported) - 1, CITIES * 2)
        self.assertEqual(sorted(exported[1:]), sorted(self.sql(
            "SELECT * FROM marts.weather_daily")))

    def test_gharchive_hourly(self):
        self.w.copy_example("gharchive_hourly.yaml")
        hours = ["2026-01-02T03:00:00Z", "2026-01-02T04:00:00Z"]
        for attempt in (1, 2):
            for h in hours:
                self.dags_test("gharchive_hourly", h, self.conf)
            self.assertEqual(self.count("raw.github_events"), 2 * 150, f"round {attempt}")
            self.assertEqual(self.count("weir.loads", "WHERE table_name = 'raw.github_events'"), 2)
        events = list(gharchive_gen.events("2026-01-02T03", 150)) + list(gharchive_gen.events("2026-01-02T04", 150))
        # events per type per hour
        got = {(r[0][:13], r[1]): int(r[2]) for r in self.sql(
            "SELECT hour, type, events FROM marts.github_events_hourly")}
        want = {}
        for e in events:
            k = (e["created_at"][:13].replace("T", " "), e["type"])
            want[k] = want.get(k, 0) + 1
        self.assertEqual(got, want)
        # top repositories per day
        top = self.sql("SELECT day, rank, repo_name, events FROM marts.github_top_repos_daily"
                       " ORDER BY rank")
        per_repo = {}
        for e in events:
            per_repo[e["repo"]["name"]] = per_repo.get(e["repo"]["name"], 0) + 1
        best = sorted(per_repo.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        self.assertEqual([(r[2], int(r[3])) for r in top], best)
        self.assertEqual({r[0] for r in top}, {"2026-01-02"})
        # the raw hour file is in S3, unchanged
        gz = self.s3_get(f"s3://{self.bucket}/gharchive/raw/2026-01-02-3.json.gz",
                         os.path.join(self.out, "h.json.gz"))
        self.assertEqual(gz, gharchive_gen.gz_bytes("2026-01-02T03", 150))
        self.assertEqual(len(gzip.decompress(gz).splitlines()), 150)

    def test_gharchive_backfill(self):
        """Catchup's runs have real data intervals: a backfill of three hourly runs (up to
        four at once, their loads serialized by the warehouse lock) fetches the three hours
        before them."""
        self.w.copy_example("gharchive_hourly.yaml")
        p = subprocess.run([weirtest.ARGS.weir, "dags", "backfill", "gharchive_hourly",
                            "--from", "2026-01-05T01:00:00Z", "--to", "2026-01-05T03:00:00Z",
                            "--conf", self.conf, "--wait"], env=self.w.env, cwd=weirtest.ARGS.repo,
                           capture_output=True, text=True, timeout=240)
        self.assertEqual(p.returncode, 0, f"{p.stdout}\n{p.stderr}")
        self.assertIn("3 runs created", p.stdout)
        self.assertEqual(self.count("raw.github_events"), 3 * 150)
        self.assertEqual(self.sql("SELECT count(DISTINCT hour), sum(events)"
                                  " FROM marts.github_events_hourly"), [["3", "450"]])
        self.assertEqual(self.sql("SELECT min(hour), max(hour) FROM marts.github_events_hourly"),
                         [["2026-01-05 00:00:00+00", "2026-01-05 02:00:00+00"]])
        events = [e for h in ("2026-01-05T00", "2026-01-05T01", "2026-01-05T02")
                  for e in gharchive_gen.events(h, 150)]
        per_repo = {}
        for e in events:
            per_repo[e["repo"]["name"]] = per_repo.get(e["repo"]["name"], 0) + 1
        best = sorted(per_repo.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        top = self.sql("SELECT repo_name, events FROM marts.github_top_repos_daily"
                       " WHERE day = '2026-01-05' ORDER BY rank")
        self.assertEqual([(r[0], int(r[1])) for r in top], best)
        for h in ("2026-01-05-0", "2026-01-05-1", "2026-01-05-2"):
            self.s3_get(f"s3://{self.bucket}/gharchive/raw/{h}.json.gz",
                        os.path.join(self.out, f"{h}.json.gz"))


if __name__ == "__main__":
    main()
