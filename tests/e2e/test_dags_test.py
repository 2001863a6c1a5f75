"""e2e: `weir dags test` runs whole runs in the foreground: examples, retries, trigger rules,
templates, timeouts, XComs, logs."""
import os
import time

from weirtest import WeirTest, main


class DagsTest(WeirTest):
    def test_examples_pass(self):
        for f in sorted(os.listdir(os.path.join(os.path.dirname(__file__), "..", "..", "dags"))):
            if f.endswith(".yaml"):
                self.w.copy_example(f)
        for dag in ("hello_world", "example_features"):
            p = self.w.run("dags", "test", dag, "2026-03-02", timeout=120)
            self.assertEqual(p.returncode, 0, f"{dag}:\n{p.stdout}\n{p.stderr}")

    def test_failure_exit_code_and_upstream_failed(self):
        self.w.write_dag("f.yaml", """dag: f
tasks:
  bad: {run: shell.run, with: {command: "echo boom >&2; exit 3"}}
  after: {run: shell.run, needs: [bad], with: {command: "echo never"}}
  always: {run: shell.run, needs: [bad], trigger_rule: all_done, with: {command: "echo cleanup"}}
  on_fail: {run: shell.run, needs: [bad], trigger_rule: one_failed, with: {command: "echo alert"}}
""")
        p = self.w.run("dags", "test", "f", "2026-01-05")
        self.assertEqual(p.returncode, 1, p.stderr)
        runs = self.w.runs("f")
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["state"], "failed")
        tis = {t["task_id"]: t for t in self.w.run_state("f", runs[0]["dag_run_id"])["task_instances"]}
        self.assertEqual(tis["bad"]["state"], "failed")
        self.assertEqual(tis["after"]["state"], "upstream_failed")
        self.assertEqual(tis["always"]["state"], "success")
        self.assertEqual(tis["on_fail"]["state"], "success")
        logs = self.w.run("tasks", "logs", "f", runs[0]["dag_run_id"], "bad", check=0).stdout
        self.assertIn("boom", logs)

    def test_retries_with_backoff(self):
        self.w.write_dag("r.yaml", """dag: r
tasks:
  flaky:
    run: shell.run
    retries: 2
    retry_delay: 1s
    retry_exponential_backoff: true
    with:
      command: |
        n=$(cat "$TMPDIR/count" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$TMPDIR/count"
        echo "try $n"; [ "$n" -ge 3 ]
""")
        t0 = time.monotonic()
        p = self.w.run("dags", "test", "r", "2026-01-05", timeout=60)
        elapsed = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, p.stderr)
        run = self.w.runs("r")[0]["dag_run_id"]
        ti = self.w.run_state("r", run)["task_instances"][0]
        self.assertEqual(ti["try_number"], 3)
        self.assertEqual(ti["state"], "success")
        # delays 1 s then 2 s (exponential backoff)
        self.assertGreaterEqual(elapsed, 3.0)
        for n in (1, 2, 3):
            logs = self.w.run("tasks", "logs", "r", run, "flaky", "--try", str(n), check=0).stdout
            self.assertIn(f"try {n}", logs)

    def test_templates_xcom_params(self):
        self.w.write_dag("t.yaml", """dag: t
params:
  who: {type: string, default: world}
tasks:
  first: {run: shell.run, with: {command: "echo 'ignored'; echo '{{ params.who | upper }}-{{ ds_nodash }}'"}}
  second:
    needs: [first]
    run: shell.run
    with:
      command: |
        echo "got {{ xcom('first', 'return_value') }} for {{ dag.id }}.{{ task.id }} {{ ts }}"
        {% if params.who == 'world' %}echo default-param{% else %}echo custom-param{% endif %}
""")
        p = self.w.run("dags", "test", "t", "2026-02-03", "--conf", '{"who": "bob"}', timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        run = self.w.runs("t")[0]["dag_run_id"]
        logs = self.w.run("tasks", "logs", "t", run, "second", check=0).stdout
        self.assertIn("got BOB-20260203 for t.second 2026-02-03T00:00:00+00:00", logs)
        self.assertIn("custom-param", logs)

    def test_template_error_fails_clearly(self):
        self.w.write_dag("e.yaml", """dag: e
tasks:
  a: {run: shell.run, with: {command: "echo {{ params.missing }}"}}
""")
        p = self.w.run("dags", "test", "e", "2026-01-05", timeout=60)
        self.assertEqual(p.returncode, 1)
        run = self.w.runs("e")[0]["dag_run_id"]
        logs = self.w.run("tasks", "logs", "e", run, "a", check=0).stdout
        self.assertIn("missing", logs)

    def test_timeout_kills_process_group(self):
        marker = os.path.join(self.w.tmp, "grandchild.pid")
        self.w.write_dag("to.yaml", f"""dag: to
tasks:
  slow:
    run: shell.run
    timeout: 1s
    with:
      command: "sleep 300 & echo $! > {marker}; wait"
""")
        t0 = time.monotonic()
        p = self.w.run("dags", "test", "to", "2026-01-05", timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertLess(time.monotonic() - t0, 30)
        pid = int(open(marker).read())
        # the grandchild (sleep) was killed with its group
        deadline = time.monotonic() + 10
        alive = True
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().split()[2] == "Z":
                        alive = False
                        break
            except (ProcessLookupError, FileNotFoundError):
                alive = False
                break
            time.sleep(0.1)
        self.assertFalse(alive, "grandchild survived the timeout")
        run = self.w.runs("to")[0]["dag_run_id"]
        logs = self.w.run("tasks", "logs", "to", run, "slow", check=0).stdout
        self.assertIn("timed out", logs)

    def test_skip_exit_code_and_skipped_propagation(self):
        self.w.write_dag("s.yaml", """dag: s
tasks:
  maybe: {run: shell.run, with: {command: "exit 99"}}
  next: {run: shell.run, needs: [maybe], with: {command: "echo no"}}
  anyway: {run: shell.run, needs: [maybe], trigger_rule: none_failed, with: {command: "echo yes"}}
""")
        p = self.w.run("dags", "test", "s", "2026-01-05", timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        run = self.w.runs("s")[0]["dag_run_id"]
        tis = {t["task_id"]: t["state"] for t in self.w.run_state("s", run)["task_instances"]}
        self.assertEqual(tis, {"maybe": "skipped", "next": "skipped", "anyway": "success"})


    def test_plain_commands_run_without_a_shell(self):
        self.w.write_dag("p.yaml", """dag: p
tasks:
  plain: {run: shell.run, with: {command: "echo plain words  here"}}
  missing: {run: shell.run, with: {command: "no-such-program-xyz --flag"}}
  shelly: {run: shell.run, with: {command: "echo $((6*7))"}}
""")
        p = self.w.run("dags", "test", "p", "2026-01-05", timeout=60)
        self.assertEqual(p.returncode, 1)
        run = self.w.runs("p")[0]["dag_run_id"]
        tis = {t["task_id"]: t["state"] for t in self.w.run_state("p", run)["task_instances"]}
        self.assertEqual(tis, {"plain": "success", "missing": "failed", "shelly": "success"})
        logs = self.w.run("tasks", "logs", "p", run, "plain", check=0).stdout
        self.assertIn("plain words here", logs)
        logs = self.w.run("tasks", "logs", "p", run, "missing", check=0).stdout
        self.assertIn("not found", logs)  # the shell's own error, exit 127
        logs = self.w.run("tasks", "logs", "p", run, "shelly", check=0).stdout
        self.assertIn("42", logs)


if __name__ == "__main__":
    main()
