"""e2e: crash safety. kill -9 the standalone process while tasks run, start it again: every
run finishes, no task instance succeeds twice, nothing is left stuck."""
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import weirtest
from weirtest import WeirTest, main


class CrashTest(WeirTest):
    def test_kill9_and_restart(self):
        marks = os.path.join(self.w.tmp, "marks")
        os.makedirs(marks)
        tasks = []
        for i in range(6):
            needs = f", needs: [t{i-1}]" if i % 3 else ""
            tasks.append(f'  t{i}: {{run: shell.run{needs}, retries: 2, retry_delay: 1s, with: '
                         f'{{command: "sleep 0.{3 + i % 4}; echo ok >> {marks}/{{{{ run_id }}}}-{{{{ task.id }}}}.done"}}}}')
        self.w.write_dag("c.yaml", "dag: c\nmax_active_runs: 4\ntasks:\n" + "\n".join(tasks) + "\n")
        self.w.env["WEIR_SCHEDULER__ZOMBIE_TIMEOUT"] = "3"
        self.w.env["WEIR_SCHEDULER__HEARTBEAT_INTERVAL"] = "1"
        self.w.env["WEIR_EXECUTOR__PARALLELISM"] = "3"
        p = self.w.start_synced()
        run_ids = [f"r{i}" for i in range(4)]
        for r in run_ids:
            self.w.run("dags", "trigger", "c", "--run-id", r, check=0)
        # wait until some tasks are running, then kill -9 in the middle of things
        self.w.wait_for(lambda: len(os.listdir(marks)) >= 3, 30, 0.05, "some tasks done")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        time.sleep(0.5)
        self.w.start(log_name="standalone2.log")
        for r in run_ids:
            st = self.w.wait_run("c", r, timeout=60)
            self.assertEqual(st["state"], "success", st)
            for ti in st["task_instances"]:
                self.assertEqual(ti["state"], "success", ti)
        # no task instance succeeded twice: each marker file has exactly one line
        files = os.listdir(marks)
        self.assertEqual(len(files), 4 * 6, sorted(files))
        for f in files:
            with open(os.path.join(marks, f)) as fh:
                self.assertEqual(fh.read(), "ok\n", f)
        # nothing stuck
        for state in ("queued", "running"):
            self.assertEqual(self.w.json("runs", "list", "--state", state)["total_entries"], 0)

    def start_one_running_others_waiting(self, dag, sleep):
        """Four tasks at parallelism 1, triggered; returns once one runs and the others
        wait in the executor's queue (forked ahead, holding their claims)."""
        marks = os.path.join(self.w.tmp, "marks")
        os.makedirs(marks)
        tasks = [f'  t{i}: {{run: shell.run, with: {{command: "sleep {sleep}; echo ok >> {marks}/t{i}.done"}}}}'
                 for i in range(4)]
        self.w.write_dag(f"{dag}.yaml", f"dag: {dag}\ntasks:\n" + "\n".join(tasks) + "\n")
        self.w.env["WEIR_EXECUTOR__PARALLELISM"] = "1"
        p = self.w.start_synced()
        self.w.run("dags", "trigger", dag, "--run-id", "r1", check=0)

        def states():
            st = self.w.json("runs", "show", dag, "r1")
            # a task instance not yet scheduled has no state (null)
            return sorted(ti["state"] or "none" for ti in st["task_instances"])
        self.w.wait_for(lambda: states().count("running") == 1 and states().count("queued") >= 1,
                        20, 0.05, "one running, others queued")
        return p, marks, states

    def assert_each_ran_once(self, dag, marks):
        st = self.w.wait_run(dag, "r1", timeout=60)
        self.assertEqual(st["state"], "success", st)
        files = sorted(os.listdir(marks))
        self.assertEqual(files, [f"t{i}.done" for i in range(4)])
        for f in files:
            with open(os.path.join(marks, f)) as fh:
                self.assertEqual(fh.read(), "ok\n", f)

    def test_stop_with_waiting_tries(self):
        """SIGTERM while one try runs and others wait in the executor's queue: the running
        one finishes on its own, the waiting ones exit without running, and after a
        restart every task ran exactly once."""
        p, marks, states = self.start_one_running_others_waiting("q", 1)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        time.sleep(1.5)  # the running try finishes and records itself; nothing else runs
        self.assertEqual(len(os.listdir(marks)), 1, sorted(os.listdir(marks)))
        self.assertEqual(states().count("success"), 1, states())
        self.w.start(log_name="standalone2.log")
        self.assert_each_ran_once("q", marks)

    def test_fork_server_killed(self):
        """kill -9 of the fork server while one try runs and others wait for a slot: the
        running try still records its end through the executor, the waiting ones are told
        not to run and are started with exec instead, and every task runs exactly once."""
        p, marks, _ = self.start_one_running_others_waiting("f", 0.7)
        server = None
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            rest = stat[stat.rindex(")") + 2:].split()
            if int(rest[1]) == p.pid and "fork-serve" in stat[:stat.rindex(")")]:
                server = int(pid)
        self.assertIsNotNone(server, "no fork server child of the standalone process")
        os.kill(server, signal.SIGKILL)
        self.assert_each_ran_once("f", marks)
        self.assertIn("fork server exited", self.w.log_text())
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)

    def use_fixture_plugin(self):
        """The test plugin `fixture` (its `block` operator sleeps without calling the host)
        beside the real ones."""
        src = os.path.join(os.environ["WEIR_TEST_FIXTURE_PLUGINS"], "weir_fixture.so")
        pdir = os.path.join(self.w.tmp, "plugins")
        os.makedirs(pdir)
        shutil.copy(src, pdir)
        self.w.env["WEIR_CORE__PLUGINS_PATH"] = pdir + ":" + os.path.join(os.path.dirname(weirtest.ARGS.weir), "plugins")

    def ti_times(self, dag, run_id, task):
        """(start_date, heartbeat_at) of a task instance, in microseconds, from the store."""
        sql = (f"SELECT start_date, heartbeat_at FROM task_instance WHERE dag_id = '{dag}' "
               f"AND run_id = '{run_id}' AND task_id = '{task}'")
        if self.w.backend == "pg":
            out = subprocess.run(["psql", "-At", "-F", " ", self.w.env["WEIR_STORE__URL"], "-c", sql],
                                 check=True, capture_output=True, text=True, timeout=30).stdout.split()
            return tuple(int(x) if x else None for x in out) if out else None
        with sqlite3.connect(os.path.join(self.w.home, "weir.db"), timeout=10) as db:
            return db.execute(sql).fetchone()

    def test_executor_heartbeats_a_silent_try(self):
        """A try that never calls the host (so it never starts a heartbeat thread of its own)
        still gets heartbeats: the local executor writes them."""
        self.use_fixture_plugin()
        self.w.write_dag("h.yaml", "dag: h\ntasks:\n  b: {run: fixture.block, with: {ms: 4000}}\n")
        self.w.env["WEIR_SCHEDULER__HEARTBEAT_INTERVAL"] = "1"
        p = self.w.start_synced()
        self.w.run("dags", "trigger", "h", "--run-id", "r1", check=0)

        def beating():
            t = self.ti_times("h", "r1", "b")
            return t if t and t[0] and t[1] and t[1] - t[0] >= 1_500_000 else None
        self.w.wait_for(beating, 10, 0.1, "a heartbeat 1.5 s after the start")
        st = self.w.wait_run("h", "r1", timeout=30)
        self.assertEqual(st["state"], "success", st)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)

    def test_restart_adopts_a_silent_try(self):
        """kill -9 while a try runs that never calls the host, restart with a zombie timeout
        shorter than the downtime: the try's process lives on, so the new scheduler adopts it
        (and writes its heartbeats) instead of failing it; it finishes once, successfully."""
        self.use_fixture_plugin()
        self.w.write_dag("a.yaml", "dag: a\ntasks:\n  b: {run: fixture.block, with: {ms: 4000}}\n")
        self.w.env["WEIR_SCHEDULER__HEARTBEAT_INTERVAL"] = "1"
        self.w.env["WEIR_SCHEDULER__ZOMBIE_TIMEOUT"] = "1"
        p = self.w.start_synced()
        self.w.run("dags", "trigger", "a", "--run-id", "r1", check=0)
        self.w.wait_for(lambda: self.w.json("runs", "show", "a", "r1")["task_instances"][0]["state"] == "running",
                        20, 0.05, "the try running")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        time.sleep(2)  # longer than the zombie timeout
        self.w.start(log_name="standalone2.log")
        st = self.w.wait_run("a", "r1", timeout=30)
        self.assertEqual(st["state"], "success", st)
        ti = st["task_instances"][0]
        self.assertEqual(ti["try_number"], 1, ti)
        logs = self.w.run("tasks", "logs", "a", "r1", "b", check=0).stdout
        self.assertIn("blocked for 4000 ms", logs)
        self.assertNotIn("vanished", logs)
        p2 = self.w.procs[-1]
        p2.send_signal(signal.SIGTERM)
        p2.wait(timeout=20)

    def test_restart_fails_a_try_whose_process_is_gone(self):
        """kill -9 of the scheduler and of the try's process: its heartbeat is still fresh
        at the restart, but the process is gone from this host, so the try is failed at
        once with the reason in its log."""
        self.use_fixture_plugin()
        self.w.write_dag("g.yaml", "dag: g\ntasks:\n  b: {run: fixture.block, with: {ms: 60000}}\n")
        self.w.env["WEIR_SCHEDULER__ZOMBIE_TIMEOUT"] = "600"
        p = self.w.start_synced()
        self.w.run("dags", "trigger", "g", "--run-id", "r1", check=0)
        ti = self.w.wait_for(lambda: next((t for t in self.w.json("runs", "show", "g", "r1")["task_instances"]
                                           if t["state"] == "running" and t["pid"]), None),
                             20, 0.05, "the try running")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        os.kill(ti["pid"], signal.SIGKILL)
        self.w.wait_for(lambda: not os.path.exists(f"/proc/{ti['pid']}"), 10, 0.05, "the try gone")
        self.w.start(log_name="standalone2.log")
        st = self.w.wait_run("g", "r1", timeout=30)
        self.assertEqual(st["state"], "failed", st)
        logs = self.w.run("tasks", "logs", "g", "r1", "b", check=0).stdout
        self.assertIn("task process vanished (scheduler restarted while it ran)", logs)
        p2 = self.w.procs[-1]
        p2.send_signal(signal.SIGTERM)
        p2.wait(timeout=20)

    def test_workers(self):
        """Tries of a plugin that declares itself reusable (shell) run one after another in
        worker processes of the fork server, also tries of a DAG read after the worker was
        forked; a task with `env` gets a process that ends with its try (its variables never
        reach a later one); a try that times out in a worker is killed like any other;
        tries of other plugins get a fresh process each; no worker outlives the scheduler."""
        self.use_fixture_plugin()
        marks = os.path.join(self.w.tmp, "marks")
        os.makedirs(marks)
        chain = ["e0"] + [f"a{i}" for i in range(1, 7)]
        lines = []
        for i, t in enumerate(chain):
            needs = f", needs: [{chain[i - 1]}]" if i else ""
            env = ", env: {FOO: leaked}" if t == "e0" else ""
            lines.append(f"  {t}: {{run: shell.run{needs}{env}, with: {{command: "
                         f"'echo \"${{FOO:-unset}}\" > {marks}/{t}'}}}}")
        self.w.write_dag("w.yaml", "dag: w\ntasks:\n" + "\n".join(lines) + "\n")
        self.w.env["WEIR_EXECUTOR__PARALLELISM"] = "2"
        p = self.w.start_synced()

        def run(dag, timeout=30):
            self.w.wait_for(lambda: any(d["dag_id"] == dag for d in self.w.json("dags", "list")["dags"]),
                            10, 0.1, f"dag {dag}")
            self.w.run("dags", "trigger", dag, "--run-id", "r1", check=0)
            st = self.w.wait_run(dag, "r1", timeout=timeout)
            return {ti["task_id"]: ti for ti in st["task_instances"]}

        tis = run("w")
        for t in chain:
            self.assertEqual(tis[t]["state"], "success", tis[t])
        with open(os.path.join(marks, "e0")) as f:
            self.assertEqual(f.read(), "leaked\n")
        for t in chain[1:]:
            with open(os.path.join(marks, t)) as f:
                self.assertEqual(f.read(), "unset\n", f"{t} saw the environment of e0")
        pid = {t: tis[t]["pid"] for t in tis}
        workers = {pid[t] for t in chain[1:]}
        # A chain keeps one worker busy at a time: a try usually finds the one before it idle
        # (a fresh process only when its request beats that worker's DONE, as can happen on
        # a loaded machine); never a process per try, and never the process that set FOO.
        self.assertLess(len(workers), len(chain) - 1, pid)
        self.assertNotIn(pid["e0"], workers)

        # Another DAG, read after those workers were forked: its first try finds them idle
        # and runs in one (the server sends a worker the task along with the request).
        self.w.write_dag("w2.yaml", "dag: w2\nparams: {p: {default: hi}}\ntasks:\n  b1: {run: shell.run, "
                         f"with: {{command: 'echo \"{{{{ params.p }}}}\" > {marks}/b1'}}}}\n")
        tis = run("w2")
        self.assertEqual(tis["b1"]["state"], "success", tis)
        self.assertIn(tis["b1"]["pid"], workers, (tis, pid))
        with open(os.path.join(marks, "b1")) as f:
            self.assertEqual(f.read(), "hi\n")

        # A try that times out in a worker is killed; other plugins' tries get fresh processes.
        self.w.write_dag("w3.yaml", "dag: w3\ntasks:\n"
                         f"  slow: {{run: shell.run, timeout: 1s, with: {{command: 'sleep 30; touch {marks}/slow'}}}}\n"
                         "  f1: {run: fixture.echo, needs: [slow], trigger_rule: all_done, with: {msg: x}}\n"
                         "  f2: {run: fixture.echo, needs: [f1], with: {msg: y}}\n")
        t0 = time.monotonic()
        tis = run("w3", timeout=60)
        self.assertLess(time.monotonic() - t0, 25, "the timed-out try was not killed in time")
        self.assertEqual(tis["slow"]["state"], "failed", tis["slow"])
        self.assertIn(tis["slow"]["pid"], workers, (tis, pid))
        for t in ("f1", "f2"):
            self.assertEqual(tis[t]["state"], "success", tis[t])
        self.assertNotEqual(tis["f1"]["pid"], tis["f2"]["pid"])
        self.assertFalse({tis["f1"]["pid"], tis["f2"]["pid"]} & workers, tis)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        for w in workers:
            self.assertFalse(os.path.exists(f"/proc/{w}"), f"worker {w} outlived the scheduler")
        self.assertFalse(os.path.exists(os.path.join(marks, "slow")))

if __name__ == "__main__":
    main()
