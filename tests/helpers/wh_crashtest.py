#!/usr/bin/env python3
"""tests/helpers/wh_crashtest.py - kill -9 the warehouse in the middle of writes, reopen, check.

Repeatedly starts wh_driver on one database with a large COPY (one big part), a burst of
small INSERTs (which trigger automatic part merges), or transactions that change two
tables together (which must stay in step), kills it with SIGKILL after a random
delay, then reopens the database and checks that every table is exactly as before or after
each statement (row count and sum are consistent with whole statements) and that every
column file reads back without a checksum error.
Usage: wh_crashtest.py --driver PATH --workdir DIR [--rounds N]
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time


def run(driver, db, stmts, timeout=120):
    p = subprocess.run([driver, db], input="\n".join(stmts) + "\n", capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit("driver failed: %s" % p.stderr[-2000:])
    return [json.loads(l) for l in p.stdout.splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rounds", type=int, default=15)
    a = ap.parse_args()
    rnd = random.Random(7)
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    db = os.path.join(a.workdir, "db")
    rows = 150000
    csv = os.path.join(a.workdir, "big.csv")
    with open(csv, "w") as f:
        for k in range(rows):
            f.write("%d,name-%d,%d.5\n" % (k, k % 977, k % 1000))
    big_sum = rows * (rows - 1) // 2
    out = run(a.driver, db, ["CREATE TABLE big (k bigint, s text, v double precision)",
                             "CREATE TABLE small (k bigint)",
                             "CREATE TABLE tx_big (k bigint, s text, v double precision)",
                             "CREATE TABLE tx_small (k bigint)"])
    assert all(o["ok"] for o in out), out
    fails = 0
    for i in range(a.rounds):
        if i % 3 == 0:
            stmts = ["COPY big FROM '%s' WITH (FORMAT csv)" % csv] * 3
        elif i % 3 == 1:
            stmts = ["INSERT INTO small VALUES (1), (1), (1)"] * 40
        else:  # a transaction over two tables: both change or neither
            stmts = ["BEGIN; INSERT INTO tx_small VALUES (1), (1), (1); "
                     "COPY tx_big FROM '%s' WITH (FORMAT csv); COMMIT" % csv] * 3
        p = subprocess.Popen([a.driver, db], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, text=True)
        p.stdin.write("\n".join(stmts) + "\n")
        p.stdin.flush()
        time.sleep(rnd.uniform(0.0, 0.7))
        p.send_signal(signal.SIGKILL)
        p.wait()
        res = run(a.driver, db, ["SELECT count(*), sum(k) FROM big",
                                 "SELECT count(*), sum(k) FROM small",
                                 "SELECT count(DISTINCT s), max(v) FROM big",
                                 "SELECT (SELECT count(*) FROM tx_big), (SELECT count(*) FROM tx_small)"])
        for o in res:
            if not o["ok"]:
                print("round %d: %s" % (i, o["error"]))
                fails += 1
        if not all(o["ok"] for o in res):
            continue
        (bc, bs), (sc, ss), _ = res[0]["rows"][0], res[1]["rows"][0], res[2]["rows"][0]
        tb, ts = res[3]["rows"][0]
        if tb % rows or ts != 3 * (tb // rows):
            print("round %d: transaction not atomic: tx_big %s rows, tx_small %s" % (i, tb, ts))
            fails += 1
        if bc % rows or (bs or 0) != big_sum * (bc // rows):
            print("round %d: big has %s rows, sum %s: not whole statements" % (i, bc, bs))
            fails += 1
        if sc % 3 or (ss or 0) != sc:
            print("round %d: small has %s rows, sum %s: not whole statements" % (i, sc, ss))
            fails += 1
    leftovers = [n for n in os.listdir(os.path.join(db, "public", "big")) if n.endswith(".tmp")]
    print("%d rounds, %d failures, big=%s small=%s tx_big=%s tx_small=%s" %
          (a.rounds, fails, bc, sc, tb, ts))
    return 1 if fails or leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
