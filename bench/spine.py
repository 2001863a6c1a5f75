#!/usr/bin/env python3
"""bench/spine.py - the spine's performance targets, each measured beside a baseline run on
the same machine in the same run (these machines are noisy: compare, don't quote).

  tasks1000  1000 independent no-op tasks (`true`), parallelism 2, SQLite, via `weir dags
             test`; baseline: `make -j2` running the same 1000 commands. Target ratio <= 3.
  chain200   a chain of 200 no-op tasks; median scheduling delay per hop (task start minus
             upstream end). Target < 10 ms.
  parse1000  1000 DAG files parsed and synced to the store (the scheduler's own log figure);
             baseline: `cat` of the same files. Target < 1 s.
  idle100    `weir standalone` idle with 100 DAGs: resident memory (target < 20 MiB) and CPU
             time over 10 idle seconds (target < 0.1 s).

usage: bench/spine.py --weir build/weir [--only tasks1000,chain200] [--reps N]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time


def env_for(tmp, parallelism=2):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env.update(WEIR_HOME=os.path.join(tmp, "home"), WEIR_CORE__DAGS_FOLDER=os.path.join(tmp, "dags"),
               WEIR_EXECUTOR__PARALLELISM=str(parallelism), WEIR_CORE__LOG_LEVEL="warn")
    os.makedirs(env["WEIR_CORE__DAGS_FOLDER"], exist_ok=True)
    return env


def timed(cmd, **kw):
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.monotonic() - t0


def bench_tasks1000(weir, reps):
    n = 1000
    rows = []
    for _ in range(reps):
        tmp = tempfile.mkdtemp(prefix="weir-bench-")
        env = env_for(tmp)
        with open(os.path.join(env["WEIR_CORE__DAGS_FOLDER"], "wide.yaml"), "w") as f:
            f.write("dag: wide\nmax_active_tasks: 100000\ntasks:\n")
            for i in range(n):
                f.write(f"  t{i}: {{run: shell.run, with: {{command: 'true'}}}}\n")
        subprocess.run([weir, "dags", "list"], env=env, check=True, stdout=subprocess.DEVNULL)
        t_weir = timed([weir, "dags", "test", "wide", "2026-01-01"], env=env)
        mk = os.path.join(tmp, "Makefile")
        with open(mk, "w") as f:
            f.write("all: " + " ".join(f"t{i}" for i in range(n)) + "\n")
            for i in range(n):
                f.write(f"t{i}:\n\t@true\n")
        t_make = timed(["make", "-s", "-j2", "-f", mk], cwd=tmp)
        rows.append((t_weir, t_make))
        shutil.rmtree(tmp, ignore_errors=True)
    w = statistics.median(r[0] for r in rows)
    m = statistics.median(r[1] for r in rows)
    return {"weir_s": round(w, 3), "make_j2_s": round(m, 3), "ratio": round(w / m, 2), "target": "<= 3"}


def bench_chain200(weir, reps):
    n = 200
    delays = []
    for _ in range(reps):
        tmp = tempfile.mkdtemp(prefix="weir-bench-")
        env = env_for(tmp)
        with open(os.path.join(env["WEIR_CORE__DAGS_FOLDER"], "chain.yaml"), "w") as f:
            f.write("dag: chain\ntasks:\n")
            for i in range(n):
                needs = f", needs: [t{i-1}]" if i else ""
                f.write(f"  t{i}: {{run: shell.run{needs}, with: {{command: 'true'}}}}\n")
        subprocess.run([weir, "dags", "test", "chain", "2026-01-01"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs = json.loads(subprocess.run([weir, "runs", "list", "--json"], env=env, check=True,
                                         capture_output=True, text=True).stdout)["dag_runs"]
        show = json.loads(subprocess.run([weir, "runs", "show", "chain", runs[0]["dag_run_id"], "--json"],
                                         env=env, check=True, capture_output=True, text=True).stdout)
        tis = {t["task_id"]: t for t in show["task_instances"]}
        from datetime import datetime
        def ts(s):
            return datetime.fromisoformat(s).timestamp()
        for i in range(1, n):
            delays.append(ts(tis[f"t{i}"]["start_date"]) - ts(tis[f"t{i-1}"]["end_date"]))
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median(delays) * 1000
    return {"median_hop_ms": round(med, 2), "p90_hop_ms": round(sorted(delays)[int(len(delays) * 0.9)] * 1000, 2),
            "target": "< 10 ms"}


def bench_parse1000(weir, reps):
    n = 1000
    rows = []
    for _ in range(reps):
        tmp = tempfile.mkdtemp(prefix="weir-bench-")
        env = env_for(tmp)
        env["WEIR_CORE__LOG_LEVEL"] = "info"
        d = env["WEIR_CORE__DAGS_FOLDER"]
        for i in range(n):
            with open(os.path.join(d, f"dag{i:04d}.yaml"), "w") as f:
                f.write(f"dag: dag{i}\nschedule: '{i % 60} * * * *'\nstart_date: 2026-01-01\n"
                        "tags: [bench]\nparams:\n  p: {type: string, default: x}\ntasks:\n"
                        "  a: {run: shell.run, with: {command: 'echo {{ ds }}'}}\n"
                        "  b: {run: shell.run, needs: [a], retries: 2, with: {command: 'echo b'}}\n"
                        "  c: {run: shell.run, needs: [a, b], trigger_rule: all_done, with: {command: 'true'}}\n")
        t_total = timed([weir, "dags", "list"], env=env)  # first sync: every DAG is new
        files = [os.path.join(d, f) for f in sorted(os.listdir(d))]
        t_cat = timed(["cat", *files])
        rows.append((t_total, t_cat))
        shutil.rmtree(tmp, ignore_errors=True)
    t = statistics.median(r[0] for r in rows)
    c = statistics.median(r[1] for r in rows)
    return {"weir_dags_list_s": round(t, 3), "cat_s": round(c, 4), "target": "< 1 s"}


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(parts[11]) + int(parts[12])) / ticks
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return cpu, rss


def bench_idle100(weir, reps):
    tmp = tempfile.mkdtemp(prefix="weir-bench-")
    env = env_for(tmp)
    env["WEIR_CORE__LOG_LEVEL"] = "info"
    d = env["WEIR_CORE__DAGS_FOLDER"]
    for i in range(100):
        with open(os.path.join(d, f"dag{i:03d}.yaml"), "w") as f:
            f.write(f"dag: idle{i}\nschedule: '0 0 1 1 *'\nstart_date: 2026-01-01\ntasks:\n"
                    "  a: {run: shell.run, with: {command: 'true'}}\n")
    log = open(os.path.join(tmp, "log"), "w")
    p = subprocess.Popen([weir, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(3)  # start-up: sync 100 DAGs, plan cron
        cpu0, _ = proc_stat(p.pid)
        time.sleep(10)
        cpu1, rss = proc_stat(p.pid)
    finally:
        p.terminate()
        p.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)
    return {"rss_mib": round(rss / 1024, 1), "cpu_10s_idle_s": round(cpu1 - cpu0, 3),
            "target": "rss < 20 MiB, cpu < 0.1 s"}


BENCHES = {"tasks1000": bench_tasks1000, "chain200": bench_chain200, "parse1000": bench_parse1000,
           "idle100": bench_idle100}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weir", default="build/weir")
    ap.add_argument("--only", default=",".join(BENCHES))
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    weir = os.path.abspath(a.weir)
    results = {}
    for name in a.only.split(","):
        results[name] = BENCHES[name](weir, a.reps)
        print(f"{name:10s} {json.dumps(results[name])}", flush=True)


if __name__ == "__main__":
    main()
