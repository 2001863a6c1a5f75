"""e2e: `weir standalone` as a service: triggers from the CLI, DAG folder changes picked up
without a restart, pause, clear, backfill, catchup, and a clean shutdown."""
import datetime
import json
import os
import signal
import time

from weirtest import WeirTest, main

TWO = """dag: two
tasks:
  a: {run: shell.run, with: {command: "echo a-{{ run_id }}"}}
  b: {run: shell.run, needs: [a], with: {command: "echo b"}}
"""


class StandaloneTest(WeirTest):
    def setUp(self):
        super().setUp()
        self.w.env["WEIR_SCHEDULER__SWEEP_INTERVAL"] = "30"  # events, not the sweep, must drive it

    def start(self):
        return self.w.start_synced()

    def test_trigger_runs_to_success(self):
        self.w.write_dag("two.yaml", TWO)
        p = self.start()
        self.w.run("dags", "trigger", "two", "--run-id", "m1", check=0)
        r = self.w.wait_run("two", "m1", timeout=20)
        self.assertEqual(r["state"], "success")
        self.assertEqual([t["state"] for t in r["task_instances"]], ["success", "success"])
        logs = self.w.run("tasks", "logs", "two", "m1", "a", check=0).stdout
        self.assertIn("a-m1", logs)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=20), 0)

    def test_large_conf(self):
        """A run whose conf is larger than the fork server's request line (the executor
        leaves its run hint out, and the try asks for the run) still runs, with its conf."""
        self.w.write_dag("big.yaml", "dag: big\nparams: {blob: {type: string, default: ''}}\n"
                         "tasks:\n  t: {run: shell.run, with: {command: 'echo {{ params.blob | length }}'}}\n")
        p = self.start()
        blob = "x" * 6000
        self.w.run("dags", "trigger", "big", "--run-id", "c1", "--conf", json.dumps({"blob": blob}), check=0)
        r = self.w.wait_run("big", "c1", timeout=20)
        self.assertEqual(r["state"], "success", r)
        self.assertIn("6000", self.w.run("tasks", "logs", "big", "c1", "t", check=0).stdout)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=20), 0)

    def test_dag_file_changes_without_restart(self):
        self.start()
        time.sleep(0.3)
        self.w.write_dag("two.yaml", TWO)
        t0 = time.monotonic()
        self.w.wait_for(lambda: any(d["dag_id"] == "two" for d in self.w.json("dags", "list")["dags"]),
                        10, 0.1, "new dag")
        # the scheduler (not the CLI's own sync) must have picked it up: check the log
        self.w.wait_for(lambda: self.w.log_text().count("dags folder synced") >= 2, 2.5, 0.05,
                        "scheduler resync within 2s")
        self.assertLess(time.monotonic() - t0, 5)
        # edit: a new task appears in a new version
        self.w.write_dag("two.yaml", TWO + '  c: {run: shell.run, needs: [b], with: {command: "echo c"}}\n')
        self.w.wait_for(lambda: self.w.log_text().count("dags folder synced") >= 3, 2.5, 0.05, "edit")
        self.w.run("dags", "trigger", "two", "--run-id", "after-edit", check=0)
        r = self.w.wait_run("two", "after-edit", timeout=20)
        self.assertEqual(len(r["task_instances"]), 3)
        # delete: the DAG disappears from the list
        os.unlink(os.path.join(self.w.dags, "two.yaml"))
        self.w.wait_for(lambda: self.w.log_text().count("dags folder synced") >= 4, 2.5, 0.05, "delete")
        self.assertEqual(self.w.json("dags", "list")["dags"], [])

    def test_subfolder_changes_without_restart(self):
        """DAG files in subfolders, existing or made after the start, are watched too."""
        os.makedirs(os.path.join(self.w.dags, "team", "nested"))
        self.start()
        time.sleep(0.3)

        def synced():
            return self.w.log_text().count("dags folder synced")

        def write(rel, text):
            with open(os.path.join(self.w.dags, rel), "w") as f:
                f.write(text)

        n = synced()
        write("team/nested/two.yaml", TWO)
        self.w.wait_for(lambda: synced() > n, 2.5, 0.05, "a file in an existing subfolder")
        n = synced()
        os.makedirs(os.path.join(self.w.dags, "later"))
        self.w.wait_for(lambda: synced() > n, 2.5, 0.05, "a new subfolder")
        time.sleep(0.3)
        n = synced()
        write("later/three.yaml", TWO.replace("dag: two", "dag: three"))
        self.w.wait_for(lambda: synced() > n, 2.5, 0.05, "a file in a subfolder made after the start")
        n = synced()
        os.unlink(os.path.join(self.w.dags, "team", "nested", "two.yaml"))
        self.w.wait_for(lambda: synced() > n, 2.5, 0.05, "a file deleted in a subfolder")
        ids = sorted(d["dag_id"] for d in self.w.json("dags", "list")["dags"])
        self.assertEqual(ids, ["three"])

    def test_paused_dag_does_not_run_until_unpaused(self):
        self.w.write_dag("two.yaml", TWO)
        self.start()
        self.w.run("dags", "pause", "two", check=0)
        self.w.run("dags", "trigger", "two", "--run-id", "p1", check=0)
        time.sleep(1.5)
        self.assertEqual(self.w.run_state("two", "p1")["state"], "queued")
        self.w.run("dags", "unpause", "two", check=0)
        self.assertEqual(self.w.wait_run("two", "p1", timeout=20)["state"], "success")

    def test_clear_reruns_task_and_downstream(self):
        self.w.write_dag("two.yaml", TWO)
        self.start()
        self.w.run("dags", "trigger", "two", "--run-id", "c1", check=0)
        self.w.wait_run("two", "c1", timeout=20)
        p = self.w.run("tasks", "clear", "two", "c1", "a", "--downstream", check=0)
        self.assertIn("cleared 2", p.stdout)
        def rerun_done():
            r = self.w.run_state("two", "c1")
            return r if r["state"] == "success" and all(t["try_number"] == 2 for t in r["task_instances"]) else None
        self.w.wait_for(rerun_done, 20, 0.2, "cleared tasks to run again")
        logs = self.w.run("tasks", "logs", "two", "c1", "a", "--try", "2", check=0).stdout
        self.assertIn("a-c1", logs)

    def test_catchup_and_backfill(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        start = (now - datetime.timedelta(days=3)).strftime("%Y-%m-%d")
        self.w.write_dag("daily.yaml", f"""dag: daily
schedule: "@daily"
start_date: {start}
catchup: true
max_active_runs: 2
tasks:
  t: {{run: shell.run, with: {{command: "echo {{{{ ds }}}} {{{{ data_interval_start }}}}"}}}}
""")
        self.w.write_dag("nocatch.yaml", f"""dag: nocatch
schedule: "@daily"
start_date: {start}
tasks:
  t: {{run: shell.run, with: {{command: "echo hi"}}}}
""")
        self.start()
        # catchup: one run per day since start (3 or 4 depending on the hour), all succeed
        def caught_up():
            runs = self.w.runs("daily")
            return runs if len(runs) >= 3 and all(r["state"] == "success" for r in runs) else None
        runs = self.w.wait_for(caught_up, 30, 0.3, "catchup runs")
        dates = sorted(r["logical_date"] for r in runs)
        self.assertTrue(dates[0].startswith(start), dates)
        first = [r for r in runs if r["logical_date"] == dates[0]][0]
        self.assertEqual(first["run_type"], "scheduled")
        self.assertEqual(first["data_interval_end"], first["logical_date"])
        # no catchup: only the latest
        nc = self.w.wait_for(lambda: self.w.runs("nocatch"), 20, 0.3, "nocatch run")
        time.sleep(1)
        self.assertEqual(len(self.w.runs("nocatch")), 1)
        # backfill an earlier range
        p = self.w.run("dags", "backfill", "daily", "--from", "2025-12-01", "--to", "2025-12-03", check=0)
        self.assertIn("3 runs created", p.stdout)
        def backfilled():
            rs = [r for r in self.w.runs("daily") if r["run_type"] == "backfill"]
            return rs if len(rs) == 3 and all(r["state"] == "success" for r in rs) else None
        self.w.wait_for(backfilled, 30, 0.3, "backfill runs")
        p = self.w.run("dags", "backfill", "daily", "--from", "2025-12-01", "--to", "2025-12-03", check=0)
        self.assertIn("0 runs created", p.stdout)


    def test_scratch_folders_are_private_and_cleaned_up(self):
        """Each try starts in an empty scratch folder of its own, whatever the tries before it
        left behind (folders are reused by the fork server only when empty), and none is
        left once the scheduler has stopped."""
        marks = os.path.join(self.w.tmp, "marks")
        os.makedirs(marks)
        tasks = []
        for i in range(8):
            litter = "mkdir sub; touch sub/f junk" if i % 2 == 0 else "true"
            needs = f", needs: [t{i-1}]" if i % 4 else ""
            tasks.append(f'  t{i}: {{run: shell.run{needs}, with: {{command: '
                         f'"pwd > {marks}/t{i}.pwd; ls -A > {marks}/t{i}.ls; {litter}"}}}}')
        self.w.write_dag("s.yaml", "dag: s\ntasks:\n" + "\n".join(tasks) + "\n")
        self.w.env["WEIR_EXECUTOR__PARALLELISM"] = "2"
        p = self.start()
        for r in ("r1", "r2"):
            self.w.run("dags", "trigger", "s", "--run-id", r, check=0)
            st = self.w.wait_run("s", r, timeout=60)
            self.assertEqual(st["state"], "success", st)
            for i in range(8):
                with open(os.path.join(marks, f"t{i}.ls")) as f:
                    self.assertEqual(f.read(), "", f"{r} t{i} did not start in an empty folder")
                with open(os.path.join(marks, f"t{i}.pwd")) as f:
                    self.assertIn("/weir-try-", f.read())
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        left = [d for d in os.listdir(self.w.tmp) if d.startswith("weir-try-")]
        self.assertEqual(left, [], "scratch folders left behind")


if __name__ == "__main__":
    main()
