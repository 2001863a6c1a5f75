"""e2e: the weather and gharchive plugins under `weir dags test`, against the local replay
server (tests/helpers/replay_server.py) standing in for Open-Meteo and GH Archive: files
and row counts, XComs, retries inside the operator (429, 500, truncated, cut and slow
responses), task retries (an hour not published yet), errors that must not retry, and
reruns that reproduce the same output."""
import collections
import gzip
import json
import os
import subprocess
import sys
import time
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


def base(*segments):
    return f"http://127.0.0.1:{PORT}" + "".join("/" + s for s in segments)


def tag():
    return uuid.uuid4().hex[:8]


def read_ndjson(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


class IngestTest(WeirTest):
    def setUp(self):
        super().setUp()
        self.out = os.path.join(self.w.tmp, "out")
        self.cities = os.path.join(weirtest.ARGS.repo, "dags", "data", "dutch_cities.csv")

    def dags_test(self, dag, date, expect=0, timeout=180):
        p = self.w.run("dags", "test", dag, date, timeout=timeout)
        self.assertEqual(p.returncode, expect, f"{dag}:\n{p.stdout}\n{p.stderr}")
        return p

    def last_run(self, dag):
        runs = sorted(self.w.runs(dag), key=lambda r: r.get("start_date") or "")
        return runs[-1]["dag_run_id"]

    def ti(self, dag, run, task):
        tis = {t["task_id"]: t for t in self.w.run_state(dag, run)["task_instances"]}
        return tis[task]

    def logs(self, dag, run, task, try_number=None):
        args = ["tasks", "logs", dag, run, task]
        if try_number:
            args += ["--try", str(try_number)]
        return self.w.run(*args, check=0).stdout

    def no_temp_files(self):
        for root, _, files in os.walk(self.out):
            for f in files:
                self.assertNotIn(".tmp-", f, f"temporary file left: {os.path.join(root, f)}")

    # ---- weather ----------------------------------------------------------------------

    def weather_dag(self, name, extra="", task_extra=""):
        self.w.write_dag(f"{name}.yaml", f"""dag: {name}
tasks:
  fetch:
    run: weather.forecast
{task_extra}    with:
      places: {self.cities}
      to: {self.out}/weather/raw-{{{{ ds }}}}.json
      rows_to: {self.out}/weather/rows-{{{{ ds }}}}.ndjson
      batch_size: 10
      forecast_days: 2
      retry_backoff: 0.1
{extra}  report:
    needs: [fetch]
    run: shell.run
    with:
      command: echo "rows={{{{ xcom('fetch', 'rows') }}}} path={{{{ xcom('fetch') }}}}"
""")

    def test_weather_files_rows_xcom_and_rerun(self):
        self.w.env["WEIR_CONN_OPEN_METEO"] = base(f"f-429x1-{tag()}")
        self.weather_dag("wx")
        self.dags_test("wx", "2026-03-02")
        raw_path = os.path.join(self.out, "weather", "raw-2026-03-02.json")
        rows_path = os.path.join(self.out, "weather", "rows-2026-03-02.ndjson")
        with open(raw_path) as f:
            raw = json.load(f)
        self.assertEqual(raw["source"], "open-meteo")
        self.assertEqual(len(raw["requests"]), 3)  # 24 places, 10 per request
        self.assertEqual([len(r["places"]) for r in raw["requests"]], [10, 10, 4])
        for r in raw["requests"]:
            self.assertIn("fetched_at", r)
            self.assertIn("/v1/forecast?latitude=", r["url"])
            resp = r["response"] if isinstance(r["response"], list) else [r["response"]]
            self.assertEqual(len(resp), len(r["places"]))
        rows = read_ndjson(rows_path)
        self.assertEqual(len(rows), 24 * 48)
        self.assertEqual(set(rows[0]), {"name", "latitude", "longitude", "time", "temperature_2m",
                                        "precipitation", "wind_speed_10m"})
        self.assertEqual(rows[0]["name"], "Amsterdam")
        self.assertEqual(len({r["name"] for r in rows}), 24)
        self.no_temp_files()
        run = self.last_run("wx")
        self.assertIn("HTTP 429; retry 1 of 3", self.logs("wx", run, "fetch"))
        self.assertIn(f"rows=1152 path={raw_path}", self.logs("wx", run, "report"))
        # a rerun replaces the outputs with the same rows
        with open(rows_path, "rb") as f:
            first = f.read()
        self.dags_test("wx", "2026-03-02")
        with open(rows_path, "rb") as f:
            self.assertEqual(f.read(), first)
        self.no_temp_files()

    def test_weather_retries_500_truncated_slow(self):
        for fault, why in (("500x2", "HTTP 500"), ("truncx1", "not JSON"),
                           ("cutx1", "GET http"), ("slowx1", "GET http")):
            with self.subTest(fault=fault):
                self.w.env["WEIR_CONN_OPEN_METEO"] = base(f"f-{fault}-{tag()}")
                name = "wx_" + fault.replace("x", "_")
                self.weather_dag(name, extra="      timeout: 2\n")
                self.dags_test(name, "2026-03-02")
                run = self.last_run(name)
                self.assertIn(why, self.logs(name, run, "fetch"))
                rows = read_ndjson(os.path.join(self.out, "weather", "rows-2026-03-02.ndjson"))
                self.assertEqual(len(rows), 24 * 48)

    def test_weather_api_error_fails_without_retry(self):
        self.w.env["WEIR_CONN_OPEN_METEO"] = base()
        self.weather_dag("wx_bad", extra="      hourly: temperature_2m,foo\n",
                         task_extra="    retries: 2\n    retry_delay: 1s\n")
        self.dags_test("wx_bad", "2026-03-02", expect=1)
        run = self.last_run("wx_bad")
        ti = self.ti("wx_bad", run, "fetch")
        self.assertEqual(ti["state"], "failed")
        self.assertEqual(ti["try_number"], 1)
        logs = self.logs("wx_bad", run, "fetch")
        self.assertIn("open-meteo refused the request: Cannot initialize WeatherVariable from"
                      " invalid String value foo for key hourly", logs)
        self.assertFalse(os.path.exists(os.path.join(self.out, "weather", "raw-2026-03-02.json")))
        self.no_temp_files()

    def test_weather_recorded_response(self):
        # the real recorded Open-Meteo answer (Enschede), served byte for byte
        self.w.env["WEIR_CONN_OPEN_METEO"] = base("recorded")
        places = os.path.join(self.w.tmp, "enschede.csv")
        with open(places, "w") as f:
            f.write("name,latitude,longitude\nEnschede,52.2215,6.8937\n")
        self.w.write_dag("wx_rec.yaml", f"""dag: wx_rec
tasks:
  fetch:
    run: weather.forecast
    with:
      places: {places}
      to: {self.out}/rec/raw.json
      rows_to: {self.out}/rec/rows.ndjson
      hourly: [temperature_2m, windspeed_10m, weathercode]
""")
        self.dags_test("wx_rec", "2026-10-03")
        with open(os.path.join(HELPERS, "..", "..", "..", "shared", "fixtures", "open-meteo",
                               "forecast-example.json")) as f:
            recorded = json.load(f)
        with open(os.path.join(self.out, "rec", "raw.json")) as f:
            self.assertEqual(json.load(f)["requests"][0]["response"], recorded)
        rows = read_ndjson(os.path.join(self.out, "rec", "rows.ndjson"))
        self.assertEqual(len(rows), len(recorded["hourly"]["time"]))
        for i, r in enumerate(rows):
            self.assertEqual(r["name"], "Enschede")
            self.assertEqual(r["time"], recorded["hourly"]["time"][i])
            for v in ("temperature_2m", "windspeed_10m", "weathercode"):
                self.assertEqual(r[v], recorded["hourly"][v][i])

    def test_weather_persistent_429_uses_task_retries(self):
        # 3 x 429: try 1 gives up after 2 attempts, try 2 succeeds on its second
        self.w.env["WEIR_CONN_OPEN_METEO"] = base(f"f-429x3-{tag()}")
        self.weather_dag("wx_429", extra="      http_retries: 1\n",
                         task_extra="    retries: 1\n    retry_delay: 1s\n")
        self.dags_test("wx_429", "2026-03-02")
        run = self.last_run("wx_429")
        ti = self.ti("wx_429", run, "fetch")
        self.assertEqual(ti["state"], "success")
        self.assertEqual(ti["try_number"], 2)
        self.assertIn("failed after 2 tries: HTTP 429", self.logs("wx_429", run, "fetch", 1))

    # ---- gharchive --------------------------------------------------------------------

    def gh_dag(self, name, schedule="0 * * * *", extra="", task_extra=""):
        self.w.write_dag(f"{name}.yaml", f"""dag: {name}
schedule: "{schedule}"
start_date: 2026-01-01
catchup: false
tasks:
  fetch:
    run: gharchive.fetch
{task_extra}    with:
      raw_to: {self.out}/gh/raw/
      events_to: {self.out}/gh/events-{{{{ ts_nodash }}}}.ndjson
      retry_backoff: 0.1
{extra}  report:
    needs: [fetch]
    run: shell.run
    with:
      command: echo "rows={{{{ xcom('fetch', 'rows') }}}}"
""")

    def expected_events(self, hour, n, types=None):
        evs = list(gharchive_gen.events(hour, n))
        return [e for e in evs if not types or e["type"] in types]

    def check_events(self, path, expected):
        rows = read_ndjson(path)
        self.assertEqual(len(rows), len(expected))
        for r, e in zip(rows, expected):
            self.assertEqual(r["id"], e["id"])
            self.assertEqual(r["type"], e["type"])
            self.assertEqual(r["actor_id"], e["actor"]["id"])
            self.assertEqual(r["actor_login"], e["actor"]["login"])
            self.assertEqual(r["repo_id"], e["repo"]["id"])
            self.assertEqual(r["repo_name"], e["repo"]["name"])
            self.assertEqual(r["org_login"], e.get("org", {}).get("login"))
            self.assertEqual(r["created_at"], e["created_at"])
            self.assertEqual(r["public"], e["public"])
            self.assertEqual(json.loads(r["payload"]), e["payload"])

    def test_gharchive_hour_raw_events_and_rerun(self):
        self.w.env["WEIR_CONN_GHARCHIVE"] = base("n-250")
        self.gh_dag("gh")
        self.dags_test("gh", "2026-01-02T03:00:00Z")
        raw = os.path.join(self.out, "gh", "raw", "2026-01-02-3.json.gz")
        with open(raw, "rb") as f:
            self.assertEqual(f.read(), gharchive_gen.gz_bytes("2026-01-02T03", 250))
        events = os.path.join(self.out, "gh", "events-20260102T030000.ndjson")
        self.check_events(events, self.expected_events("2026-01-02T03", 250))
        run = self.last_run("gh")
        self.assertIn("rows=250", self.logs("gh", run, "report"))
        self.no_temp_files()
        with open(events, "rb") as f:
            first = f.read()
        self.dags_test("gh", "2026-01-02T03:00:00Z")
        with open(events, "rb") as f:
            self.assertEqual(f.read(), first)

    def test_gharchive_interval_of_three_hours_with_filter(self):
        self.w.env["WEIR_CONN_GHARCHIVE"] = base("n-120")
        # `dags test` runs have an empty data interval (as manual runs do): name the hours
        self.gh_dag("gh3", schedule="0 */3 * * *",
                    extra="      event_types: [PushEvent, WatchEvent]\n"
                          "      interval_start: \"{{ logical_date }}\"\n"
                          "      interval_end: 2026-01-02T06:00:00Z\n")
        self.dags_test("gh3", "2026-01-02T03:00:00Z")
        expected = []
        for h in ("2026-01-02T03", "2026-01-02T04", "2026-01-02T05"):
            expected += self.expected_events(h, 120, {"PushEvent", "WatchEvent"})
        for h in (3, 4, 5):
            self.assertTrue(os.path.exists(os.path.join(self.out, "gh", "raw",
                                                        f"2026-01-02-{h}.json.gz")))
        self.check_events(os.path.join(self.out, "gh", "events-20260102T030000.ndjson"), expected)
        counts = collections.Counter(e["type"] for e in expected)
        self.assertEqual(set(counts), {"PushEvent", "WatchEvent"})

    def test_gharchive_not_published_then_task_retry(self):
        self.w.env["WEIR_CONN_GHARCHIVE"] = base(f"f-404x1-{tag()}", "n-50")
        self.gh_dag("gh404", task_extra="    retries: 1\n    retry_delay: 1s\n")
        self.dags_test("gh404", "2026-01-02T03:00:00Z")
        run = self.last_run("gh404")
        ti = self.ti("gh404", run, "fetch")
        self.assertEqual(ti["try_number"], 2)
        self.assertEqual(ti["state"], "success")
        self.assertIn("'2026-01-02-3.json.gz' not published yet (HTTP 404",
                      self.logs("gh404", run, "fetch", 1))
        self.assertEqual(len(read_ndjson(os.path.join(self.out, "gh",
                                                      "events-20260102T030000.ndjson"))), 50)

    def test_gharchive_wait_timeout_polls(self):
        self.w.env["WEIR_CONN_GHARCHIVE"] = base(f"f-404x2-{tag()}", "n-50")
        self.gh_dag("ghwait", extra="      wait_timeout: 30\n      poke_interval: 1\n")
        t0 = time.monotonic()
        self.dags_test("ghwait", "2026-01-02T03:00:00Z")
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)
        run = self.last_run("ghwait")
        self.assertEqual(self.ti("ghwait", run, "fetch")["try_number"], 1)
        self.assertEqual(self.logs("ghwait", run, "fetch").count("not published yet (404); polling"),
                         2)

    def test_gharchive_retries_inside_the_operator(self):
        for fault, why in (("500x2", "HTTP 500"), ("truncx1", "truncated gzip"),
                           ("cutx1", "GET http"), ("429x1", "HTTP 429")):
            with self.subTest(fault=fault):
                self.w.env["WEIR_CONN_GHARCHIVE"] = base(f"f-{fault}-{tag()}", "n-80")
                name = "gh_" + fault.replace("x", "_")
                self.gh_dag(name)
                self.dags_test(name, "2026-01-02T03:00:00Z")
                run = self.last_run(name)
                self.assertIn(why, self.logs(name, run, "fetch"))
                self.check_events(os.path.join(self.out, "gh", "events-20260102T030000.ndjson"),
                                  self.expected_events("2026-01-02T03", 80))
                self.no_temp_files()

    def test_gharchive_gives_up_and_keeps_old_output(self):
        self.w.env["WEIR_CONN_GHARCHIVE"] = base("n-10")
        self.gh_dag("ghfail", extra="      http_retries: 1\n")
        self.dags_test("ghfail", "2026-01-02T03:00:00Z")
        events = os.path.join(self.out, "gh", "events-20260102T030000.ndjson")
        with open(events, "rb") as f:
            before = f.read()
        self.w.env["WEIR_CONN_GHARCHIVE"] = base(f"f-500x5-{tag()}", "n-99")
        self.dags_test("ghfail", "2026-01-02T03:00:00Z", expect=1)
        run = self.last_run("ghfail")
        self.assertIn("failed after 2 tries: HTTP 500", self.logs("ghfail", run, "fetch"))
        with open(events, "rb") as f:
            self.assertEqual(f.read(), before)  # never half replaced
        self.no_temp_files()


if __name__ == "__main__":
    main()
