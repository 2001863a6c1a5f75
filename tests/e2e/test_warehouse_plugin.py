"""e2e: the warehouse plugin's operators under `weir dags test`, on local files (the S3
paths are covered by test_s3_pipelines.py): warehouse.load of CSV globs and NDJSON (gzip
too) into new and existing tables, append and replace, reruns and retries that replace
their own rows, the load ledger; warehouse.sql with several statements, a SQL file
rendered as a template and XComs; warehouse.export to a local CSV; the database folder
from a connection; and failures that must not retry (bad table name, bad SQL)."""
import csv
import gzip
import io
import json
import os
import urllib.parse

from weirtest import WeirTest, main


class WarehousePluginTest(WeirTest):
    def setUp(self):
        super().setUp()
        self.data = os.path.join(self.w.tmp, "data")
        os.makedirs(self.data)
        self.db = os.path.join(self.w.home, "warehouse")

    def write(self, name, text, gz=False):
        path = os.path.join(self.data, name)
        if gz:
            with gzip.open(path, "wt", encoding="utf-8") as f:
                f.write(text)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return path

    def dags_test(self, dag, date="2026-01-02", expect=0):
        p = self.w.run("dags", "test", dag, date, timeout=180)
        self.assertEqual(p.returncode, expect, f"{dag}:\n{p.stdout}\n{p.stderr}\n{self.all_logs(dag)}")
        return p

    def all_logs(self, dag):
        out = ""
        for r in self.w.runs(dag):
            for ti in self.w.run_state(dag, r["dag_run_id"])["task_instances"]:
                out += self.w.run("tasks", "logs", dag, r["dag_run_id"], ti["task_id"]).stdout
        return out[-6000:]

    def last_run(self, dag):
        runs = sorted(self.w.runs(dag), key=lambda r: r.get("start_date") or "")
        return runs[-1]["dag_run_id"]

    def ti(self, dag, task):
        run = self.last_run(dag)
        return {t["task_id"]: t for t in self.w.run_state(dag, run)["task_instances"]}[task]

    def logs(self, dag, task):
        return self.w.run("tasks", "logs", dag, self.last_run(dag), task, check=0).stdout

    def sql(self, query, db=None):
        p = self.w.run("sql", "--db", db or self.db, "-c", query, "--format", "csv", check=0)
        return list(csv.reader(io.StringIO(p.stdout)))[1:]

    def test_load_append_replace_and_rerun(self):
        self.write("a-1.csv", "city,temp,day\nAmsterdam,5.5,2026-01-01\nUtrecht,6,2026-01-01\n")
        self.write("a-2.csv", "day,city,temp\n2026-01-02,\"Den Haag, Centrum\",7.25\n")
        self.write("ev.ndjson.gz", '{"id": 1, "type": "PushEvent", "payload": {"a": [1, 2]}}\n'
                   '{"id": 2, "type": "WatchEvent", "payload": null}\n', gz=True)
        self.w.write_dag("wl.yaml", f"""dag: wl
tasks:
  csv:
    run: warehouse.load
    with: {{from: "{self.data}/a-*.csv", table: raw.temps}}
  json:
    run: warehouse.load
    with: {{from: ["{self.data}/ev.ndjson.gz"], table: events}}
  snapshot:
    needs: [csv]
    run: warehouse.load
    with: {{from: "{self.data}/a-1.csv", table: raw.snapshot, mode: replace}}
""")
        for attempt in (1, 2):
            self.dags_test("wl")
            rows = self.sql("SELECT city, temp, day FROM raw.temps ORDER BY city")
            self.assertEqual(rows, [["Amsterdam", "5.5", "2026-01-01"],
                                    ["Den Haag, Centrum", "7.25", "2026-01-02"],
                                    ["Utrecht", "6", "2026-01-01"]], f"run {attempt}")
            self.assertEqual(self.sql("SELECT count(*) FROM public.events"), [["2"]])
            self.assertEqual(self.sql("SELECT count(*) FROM raw.snapshot"), [["2"]])
        # inferred types, and the load key column
        cols = {r[0]: r[1] for r in self.sql(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'raw' AND table_name = 'temps'")}
        self.assertEqual(cols, {"city": "text", "temp": "double precision", "day": "date",
                                "_weir_load": "text"})
        self.assertEqual(self.sql("SELECT DISTINCT _weir_load FROM raw.temps"),
                         [["wl/csv/2026-01-02T00:00:00+00:00"]])
        self.assertEqual(self.sql("SELECT payload FROM events WHERE id = 1"), [['{"a":[1,2]}']])
        # the ledger: one row per table and key, naming the latest run
        ledger = self.sql("SELECT table_name, mode, task_id, rows, sources, run_id FROM weir.loads"
                          " ORDER BY table_name")
        self.assertEqual([r[:4] for r in ledger], [["public.events", "append", "json", "2"],
                                                   ["raw.snapshot", "replace", "snapshot", "2"],
                                                   ["raw.temps", "append", "csv", "3"]])
        self.assertEqual(json.loads(ledger[2][4]),
                         [f"{self.data}/a-1.csv", f"{self.data}/a-2.csv"])
        self.assertEqual(ledger[2][5], self.last_run("wl"))
        self.assertIn("3 rows of an earlier load with this key removed", self.logs("wl", "csv"))

        # another logical date appends; replace keeps only the newest load
        self.dags_test("wl", "2026-01-03")
        self.assertEqual(self.sql("SELECT count(*) FROM raw.temps"), [["6"]])
        self.assertEqual(self.sql("SELECT count(*) FROM raw.snapshot"), [["2"]])
        self.assertEqual(self.sql("SELECT count(*) FROM weir.loads WHERE table_name = 'raw.snapshot'"),
                         [["1"]])

        # an existing table takes a CSV whose header is in another order, with types checked
        self.write("a-3.csv", "temp,day,city\nnot-a-number,2026-01-04,Zwolle\n")
        self.w.write_dag("wl_bad.yaml", f"""dag: wl_bad
tasks:
  csv:
    run: warehouse.load
    retries: 2
    retry_delay: 0
    with: {{from: "{self.data}/a-3.csv", table: raw.temps}}
""")
        self.dags_test("wl_bad", expect=1)
        self.assertEqual(self.ti("wl_bad", "csv")["try_number"], 1)  # not retried
        self.assertIn('invalid input syntax for type double precision: "not-a-number"',
                      self.logs("wl_bad", "csv"))
        self.assertEqual(self.sql("SELECT count(*) FROM raw.temps"), [["6"]])

    def test_existing_table_keeps_its_types(self):
        self.write("p.csv", "price,at,sku\n1.5,2026-01-02T03:00:00Z,ab-1\n,2026-01-02 04:00:00+01,cd-2\n")
        self.write("long.csv", "sku,price\nmuch-too-long-sku,1\n")
        self.w.write_dag("wt.yaml", f"""dag: wt
tasks:
  ddl:
    run: warehouse.sql
    with: {{sql: "CREATE SCHEMA IF NOT EXISTS shop; CREATE TABLE IF NOT EXISTS shop.prices (sku varchar(8) NOT NULL, price numeric(6,2), at timestamptz)"}}
  load:
    needs: [ddl]
    run: warehouse.load
    with: {{from: "{self.data}/p.csv", table: shop.prices}}
""")
        self.dags_test("wt")
        self.assertEqual(self.sql("SELECT sku, price, at FROM shop.prices ORDER BY sku"),
                         [["ab-1", "1.50", "2026-01-02 03:00:00+00"],
                          ["cd-2", "", "2026-01-02 03:00:00+00"]])
        self.assertIn("adding column _weir_load", self.logs("wt", "load"))
        cols = [r[0] for r in self.sql("SELECT column_name FROM information_schema.columns"
                                       " WHERE table_schema = 'shop' AND table_name = 'prices'")]
        self.assertEqual(cols, ["sku", "price", "at", "_weir_load"])
        self.w.write_dag("wt2.yaml", f"""dag: wt2
tasks:
  load:
    run: warehouse.load
    with: {{from: "{self.data}/long.csv", table: shop.prices}}
""")
        self.dags_test("wt2", expect=1)
        self.assertIn("value too long for type character varying(8)", self.logs("wt2", "load"))
        self.assertEqual(self.sql("SELECT count(*) FROM shop.prices"), [["2"]])
        # a NULL into a NOT NULL column fails inside the load's transaction: nothing changes
        self.write("long.csv", "sku,price\n,1\n")
        self.dags_test("wt2", expect=1)
        self.assertIn("the load failed (nothing was changed)", self.logs("wt2", "load"))
        self.assertEqual(self.sql("SELECT count(*) FROM shop.prices"), [["2"]])
        self.assertEqual(self.sql("SELECT count(*) FROM weir.loads WHERE table_name = 'shop.prices'"),
                         [["1"]])

    def test_key_param_and_retry_after_success(self):
        self.write("k.csv", "n\n1\n2\n3\n")
        marker = os.path.join(self.w.tmp, "failed-once")
        self.w.write_dag("wk.yaml", f"""dag: wk
tasks:
  load:
    run: warehouse.load
    with: {{from: "{self.data}/k.csv", table: k, key: "batch-{{{{ ds }}}}"}}
  flaky:
    needs: [load]
    run: shell.run
    with: {{command: "test -e {marker} || (touch {marker}; exit 1)"}}
""")
        self.dags_test("wk", expect=1)
        # clearing the failed run's tasks reruns the load: its rows are replaced, not doubled
        run = self.last_run("wk")
        self.w.run("tasks", "clear", "wk", run, "load", "--downstream", check=0)
        self.w.start()
        self.w.wait_run("wk", run, timeout=60)
        self.assertEqual(self.w.run_state("wk", run)["state"], "success")
        self.assertEqual(self.sql("SELECT count(*), min(_weir_load) FROM k"), [["3", "batch-2026-01-02"]])
        self.assertEqual(self.sql("SELECT count(*) FROM weir.loads"), [["1"]])

    def test_sql_file_xcom_and_export(self):
        self.write("s.csv", "name,score\nann,3\nbob,5\ncyd,4\n")
        self.write("model.sql", "CREATE SCHEMA IF NOT EXISTS marts;\n"
                   "DROP TABLE IF EXISTS marts.best;\n"
                   "CREATE TABLE marts.best AS SELECT name, score FROM scores"
                   " WHERE score >= {{ params.min }};\n"
                   "SELECT name, score, score * 1.5 AS weighted FROM marts.best ORDER BY name;\n")
        out = os.path.join(self.w.tmp, "exports", "best.csv")
        qout = os.path.join(self.w.tmp, "exports", "q.csv")
        self.w.write_dag("ws.yaml", f"""dag: ws
params:
  min: {{type: integer, default: 4}}
tasks:
  load:
    run: warehouse.load
    with: {{from: "{self.data}/s.csv", table: scores}}
  model:
    needs: [load]
    run: warehouse.sql
    with: {{file: "{self.data}/model.sql", max_rows: 1}}
  count:
    needs: [model]
    run: warehouse.sql
    with:
      sql: "INSERT INTO marts.best VALUES ('dan', {{{{ xcom('model', 'rows') }}}}); SELECT 1"
  export:
    needs: [count]
    run: warehouse.export
    with: {{table: marts.best, to: "{out}"}}
  export_query:
    needs: [count]
    run: warehouse.export
    with: {{query: "SELECT name FROM marts.best WHERE name < 'c' ORDER BY name;", to: "{qout}", header: false}}
""")
        self.dags_test("ws")
        run = self.last_run("ws")
        xc = self.w.run("tasks", "logs", "ws", run, "model").stdout
        self.assertIn("statement 4: SELECT, 2 row(s)", xc)
        api = self.w.json("runs", "show", "ws", run)
        self.assertEqual(api["state"], "success")
        with open(out, newline="") as f:
            self.assertEqual(list(csv.reader(f)), [["name", "score"], ["bob", "5"], ["cyd", "4"],
                                                   ["dan", "2"]])
        with open(qout) as f:
            self.assertEqual(f.read().split(), ["bob"])

    def test_database_from_connection_and_failures(self):
        other = os.path.join(self.w.tmp, "wh2")
        self.w.env["WEIR_CONN_WH2"] = "warehouse://?path=" + urllib.parse.quote(other, safe="")
        self.w.env["WEIR_CONN_WH3"] = json.dumps({"conn_type": "warehouse", "extra": {"path": other}})
        self.w.env["WEIR_CONN_NOPATH"] = "warehouse://somehost"
        self.write("c.csv", "a\n1\n")
        self.w.write_dag("wc.yaml", f"""dag: wc
tasks:
  load:
    run: warehouse.load
    with: {{from: "{self.data}/c.csv", table: t, conn_id: wh2}}
""")
        self.dags_test("wc")
        self.assertEqual(self.sql("SELECT count(*) FROM t", db=other), [["1"]])
        # the JSON form, and WEIR_WAREHOUSE__PATH when the connection does not exist
        third = os.path.join(self.w.tmp, "wh3")
        self.w.env["WEIR_WAREHOUSE__PATH"] = third
        self.w.write_dag("wc.yaml", f"""dag: wc
tasks:
  load:
    run: warehouse.load
    with: {{from: "{self.data}/c.csv", table: t, conn_id: wh3, key: other}}
  env:
    run: warehouse.load
    with: {{from: "{self.data}/c.csv", table: t}}
""")
        self.dags_test("wc")
        self.assertEqual(self.sql("SELECT count(*) FROM t", db=other), [["2"]])
        self.assertEqual(self.sql("SELECT count(*) FROM t", db=third), [["1"]])
        del self.w.env["WEIR_WAREHOUSE__PATH"]
        self.assertFalse(os.path.exists(os.path.join(self.db, "public", "t")))
        cases = {
            "badtable": ("warehouse.load", f'from: "{self.data}/c.csv", table: "a.b.c"',
                         "expected 'table' or 'schema.table'"),
            "reserved": ("warehouse.load", f'from: "{self.data}/c.csv", table: weir.x',
                         "reserved"),
            "nopath": ("warehouse.load", f'from: "{self.data}/c.csv", table: t, conn_id: nopath',
                       "connection 'nopath' has no extra.path"),
            "badfmt": ("warehouse.load", f'from: "{self.data}/c.csv", table: t, format: xml',
                       "`format` must be"),
            "badsql": ("warehouse.sql", 'sql: "SELECT 1; SELEC 2"',
                       'the SQL failed: syntax error at or near "SELEC" at line 1, column 11'),
            "second": ("warehouse.sql", 'sql: "CREATE TABLE ok1 (a int); SELECT 1/0"',
                       "statement 2 failed (statement 1 stays applied): division by zero"),
            "nosuch": ("warehouse.sql", 'sql: "SELECT * FROM missing_table"',
                       'relation "missing_table" does not exist'),
        }
        for name, (op, args, msg) in cases.items():
            self.w.write_dag(f"f_{name}.yaml", f"""dag: f_{name}
tasks:
  t:
    run: {op}
    retries: 2
    retry_delay: 0
    with: {{{args}}}
""")
            self.dags_test(f"f_{name}", expect=1)
            self.assertEqual(self.ti(f"f_{name}", "t")["try_number"], 1, name)
            self.assertIn(msg, self.logs(f"f_{name}", "t"), name)


if __name__ == "__main__":
    main()
