"""e2e: the CLI on its own: exit codes, listings, broken DAG files, --json shapes."""
import json
import os

from weirtest import WeirTest, main

GOOD = """dag: good
schedule: "0 * * * *"
start_date: 2026-01-01
tasks:
  a: {run: shell.run, with: {command: "echo a"}}
  b: {run: shell.run, needs: [a], with: {command: "echo b"}}
"""

BROKEN = """dag: broken
tasks:
  a:
    run: shell.run
    needz: [b]
    with: {command: "true"}
"""


class CliTest(WeirTest):
    def test_version_and_usage(self):
        p = self.w.run("version", check=0)
        self.assertTrue(p.stdout.startswith("weir "))
        self.assertEqual(self.w.run().returncode, 2)
        p = self.w.run("nonsense", check=2)
        self.assertIn("unknown command 'nonsense'", p.stderr)
        p = self.w.run("dags", "trigger", check=2)
        self.assertIn("needs a DAG id", p.stderr)
        p = self.w.run("runs", "list", "--state", "bogus", check=2)
        self.assertIn("unknown run state 'bogus'", p.stderr)

    def test_db_migrate_is_idempotent(self):
        p = self.w.run("db", "migrate", check=0)
        self.assertIn("schema version", p.stdout)
        p = self.w.run("db", "migrate", check=0)
        self.assertIn("(0 migrations applied", p.stdout)

    def test_broken_file_does_not_hide_others(self):
        self.w.write_dag("good.yaml", GOOD)
        self.w.write_dag("broken.yaml", BROKEN)
        out = self.w.json("dags", "list")
        ids = [d["dag_id"] for d in out["dags"]]
        self.assertEqual(ids, ["good"])
        self.assertEqual(out["total_entries"], 1)
        errs = out["import_errors"]
        self.assertEqual(len(errs), 1)
        self.assertTrue(errs[0]["filename"].endswith("broken.yaml"))
        # file:line:column and the key
        self.assertIn("broken.yaml:5:5", errs[0]["stack_trace"])
        self.assertIn("'needz'", errs[0]["stack_trace"])
        # plain listing shows the error too
        p = self.w.run("dags", "list", check=0)
        self.assertIn("good", p.stdout)
        self.assertIn("needz", p.stdout)
        # fixing the file clears the error
        self.w.write_dag("broken.yaml", BROKEN.replace("needz: [b]", "needs: []"))
        out = self.w.json("dags", "list")
        self.assertEqual(sorted(d["dag_id"] for d in out["dags"]), ["broken", "good"])
        self.assertEqual(out["import_errors"], [])

    def test_show_and_tasks_list(self):
        self.w.write_dag("good.yaml", GOOD)
        d = self.w.json("dags", "show", "good")
        self.assertEqual(d["dag_id"], "good")
        self.assertEqual([t["task_id"] for t in d["tasks"]], ["a", "b"])
        t = self.w.json("tasks", "list", "good")
        self.assertEqual(t["total_entries"], 2)
        p = self.w.run("dags", "show", "missing", check=3)
        self.assertIn("missing", p.stderr)

    def test_trigger_conflict_and_conf_errors(self):
        self.w.write_dag("good.yaml", GOOD)
        r = self.w.json("dags", "trigger", "good", "--run-id", "r1", "--conf", '{"x": 1}')
        self.assertEqual(r["dag_run_id"], "r1")
        self.assertEqual(r["state"], "queued")
        self.assertEqual(r["conf"], {"x": 1})
        self.assertEqual(r["run_type"], "manual")
        p = self.w.run("dags", "trigger", "good", "--run-id", "r1", check=4)
        self.assertIn("r1", p.stderr)
        p = self.w.run("dags", "trigger", "good", "--conf", "{nope", check=2)
        self.assertIn("--conf", p.stderr)
        runs = self.w.runs("good")
        self.assertEqual([x["dag_run_id"] for x in runs], ["r1"])
        show = self.w.run_state("good", "r1")
        self.assertEqual(sorted(ti["task_id"] for ti in show["task_instances"]), ["a", "b"])
        self.assertIsNone(show["task_instances"][0]["state"])

    def test_pause_unpause(self):
        self.w.write_dag("good.yaml", GOOD)
        self.w.run("dags", "pause", "good", check=0)
        self.assertTrue(self.w.json("dags", "show", "good")["is_paused"])
        self.w.run("dags", "unpause", "good", check=0)
        self.assertFalse(self.w.json("dags", "show", "good")["is_paused"])
        self.w.run("dags", "pause", "nope", check=3)

    def test_is_paused_upon_creation(self):
        self.w.write_dag("good.yaml", GOOD)
        self.w.write_dag("later.yaml", GOOD.replace("dag: good", "dag: later\nis_paused_upon_creation: true"))
        dags = {d["dag_id"]: d for d in self.w.json("dags", "list")["dags"]}
        self.assertFalse(dags["good"]["is_paused"])
        self.assertTrue(dags["later"]["is_paused"])
        # only upon creation: unpausing sticks when the file is parsed again
        self.w.run("dags", "unpause", "later", check=0)
        dags = {d["dag_id"]: d for d in self.w.json("dags", "list")["dags"]}
        self.assertFalse(dags["later"]["is_paused"])

    def test_plugins_list(self):
        out = self.w.json("plugins", "list")
        names = {p["name"]: p for p in out["plugins"]}
        self.assertIn("shell", names)
        ops = [o["name"] for o in names["shell"]["operators"]]
        self.assertIn("run", ops)
        self.assertEqual(out["errors"], [])

    def test_cron_next(self):
        p = self.w.run("cron", "next", "0 2 * * *", "--tz", "Europe/Amsterdam",
                       "--from", "2026-03-28T12:00:00Z", "--count", "2", check=0)
        # 02:00 does not exist on 2026-03-29 in Amsterdam: fires at the end of the gap (01:00Z)
        self.assertEqual(p.stdout.split(), ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"])
        p = self.w.run("cron", "next", "61 * * * *", check=2)
        self.assertIn("minute", p.stderr)

    def test_unknown_operator_is_an_import_error(self):
        self.w.write_dag("x.yaml", "dag: x\ntasks:\n  a: {run: nosuch.op}\n")
        out = self.w.json("dags", "list")
        self.assertEqual(len(out["import_errors"]), 1)
        self.assertIn("nosuch.op", out["import_errors"][0]["stack_trace"])


if __name__ == "__main__":
    main()
