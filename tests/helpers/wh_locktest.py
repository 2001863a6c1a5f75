#!/usr/bin/env python3
"""tests/helpers/wh_locktest.py - several processes on one warehouse folder at once.

Each process is a wh_driver (one database handle, statements from stdin). Checks:
1. concurrent writers and readers: 4 processes insert numbered batches into one table (every
   fifth batch as a two-statement transaction), one runs OPTIMIZE TABLE in a loop (the inserts
   also trigger automatic merges), one reads in a loop on its open handle and one opens a
   fresh process for every read. The final table holds every batch exactly once (row count,
   sums); every read saw whole batches only (count = batches x batch size, sums agree) and
   never fewer than the read before it; every statement succeeded.
2. a writer killed with SIGKILL in the middle of a stream of inserts, while another process
   writes: the other goes on, and the table holds whole batches only.
3. a lock held longer than lock_timeout: statements in another process fail after about
   that long with "database is locked by another process" (code unavailable); opening the
   database does not wait. Then the holder, inside a transaction with an unpublished part
   written, is killed with SIGKILL: the kernel drops its lock, the waiting process writes
   at once, the killed transaction left no rows and no part folder behind.
Usage: wh_locktest.py --driver PATH --workdir DIR
"""
import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

B = 40          # rows per batch
WRITERS = 4
BATCHES = 25    # per writer


class Driver:
    """A wh_driver process driven one statement at a time."""

    def __init__(self, driver, db):
        self.p = subprocess.Popen([driver, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)

    def run(self, sql):
        self.p.stdin.write(sql.replace("\n", " ") + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit("driver died: %s" % self.p.stderr.read()[-2000:])
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)
        self.p.stdout.close()
        self.p.stderr.close()

    def kill(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.p.stdin.close()
        self.p.stdout.close()
        self.p.stderr.close()


def batch_sql(bid, half=None):
    lo, hi = (0, B) if half is None else ((0, B // 2) if half == 0 else (B // 2, B))
    vals = ", ".join("(%d, %d, %d)" % (bid, r, bid * B + r) for r in range(lo, hi))
    return "INSERT INTO t VALUES %s" % vals


def batch_stmt(bid):
    if bid % 5 == 0:  # a transaction: both halves or neither
        return "BEGIN; %s; %s; COMMIT" % (batch_sql(bid, 0), batch_sql(bid, 1))
    return batch_sql(bid)


READ = "SELECT count(*), count(DISTINCT b), sum(k), sum(r) FROM t"


def check_read(o, what, last, problems):
    """A read must see whole batches only, never fewer than the previous read."""
    if not o["ok"]:
        problems.append("%s: %s" % (what, o["error"]))
        return last
    n, nb, sk, sr = o["rows"][0]
    sk, sr = sk or 0, sr or 0
    if n != nb * B or sr != nb * (B * (B - 1) // 2):
        problems.append("%s saw a partial batch: count %s, batches %s, sum(r) %s" % (what, n, nb, sr))
    if n < last:
        problems.append("%s went back from %d to %d rows" % (what, last, n))
    return n


def parts_on_disk(db):
    tdir = os.path.join(db, "public", "t")
    with open(os.path.join(tdir, "manifest.json")) as f:
        named = sorted("p%d" % p["id"] for p in json.load(f)["parts"])
    present = sorted(n for n in os.listdir(tdir) if n.startswith("p"))
    return named, present


def lock_header(db):
    with open(os.path.join(db, "LOCK"), "rb") as f:
        data = f.read(24)
    magic, gen, dirty = struct.unpack("<8sQQ", data)
    return magic, gen, dirty


def concurrent(a, db, problems):
    setup = Driver(a.driver, db)
    assert setup.run("CREATE TABLE t (b bigint, r bigint, k bigint)")["ok"]
    setup.close()
    done = threading.Event()
    reads = {"loop": 0, "fresh": 0, "optimize": 0}

    def writer(w):
        d = Driver(a.driver, db)
        for j in range(BATCHES):
            o = d.run(batch_stmt(w * 1000 + j + 1))
            if not o["ok"]:
                problems.append("writer %d batch %d: %s" % (w, j, o["error"]))
        d.close()

    def optimizer():
        d = Driver(a.driver, db)
        while not done.is_set():
            o = d.run("OPTIMIZE TABLE t")
            reads["optimize"] += 1
            if not o["ok"]:
                problems.append("optimize: %s" % o["error"])
            time.sleep(0.02)
        d.close()

    def reader():
        d = Driver(a.driver, db)
        last = 0
        while not done.is_set():
            last = check_read(d.run(READ), "reader", last, problems)
            reads["loop"] += 1
        d.close()

    def fresh_reader():
        last = 0
        while not done.is_set():
            p = subprocess.run([a.driver, db], input=READ + "\n", capture_output=True, text=True,
                               timeout=60)
            if p.returncode != 0:
                problems.append("fresh reader: %s" % p.stderr[-500:])
                continue
            last = check_read(json.loads(p.stdout), "fresh reader", last, problems)
            reads["fresh"] += 1

    ws = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    others = [threading.Thread(target=f) for f in (optimizer, reader, fresh_reader)]
    t0 = time.monotonic()
    for t in ws + others:
        t.start()
    for t in ws:
        t.join()
    done.set()
    for t in others:
        t.join()
    d = Driver(a.driver, db)
    o = d.run(READ)
    d.close()
    if not o["ok"]:
        problems.append("final read: %s" % o["error"])
        return
    n, nb, sk, sr = o["rows"][0]
    ids = [w * 1000 + j + 1 for w in range(WRITERS) for j in range(BATCHES)]
    want_k = sum(b * B * B + B * (B - 1) // 2 for b in ids)
    if (n, nb, sk) != (len(ids) * B, len(ids), want_k):
        problems.append("final table: count %s batches %s sum(k) %s, expected %s %s %s" %
                        (n, nb, sk, len(ids) * B, len(ids), want_k))
    named, present = parts_on_disk(db)
    if named != present:
        problems.append("part folders %s but the manifest names %s" % (present, named))
    if lock_header(db)[2] != 0:
        problems.append("LOCK still marked dirty after every writer finished")
    print("concurrent: %d batches from %d writers, %d loop reads, %d fresh reads, %d optimizes,"
          " %d parts, %.1f s" % (len(ids), WRITERS, reads["loop"], reads["fresh"],
                                 reads["optimize"], len(named), time.monotonic() - t0))
    if reads["loop"] < 1 or reads["optimize"] < 1:
        problems.append("readers or optimizer hardly ran: %s" % reads)


def killed_writer(a, db, problems):
    d = Driver(a.driver, db)
    assert d.run("CREATE TABLE t2 (b bigint, r bigint, k bigint)")["ok"]
    # The victim streams inserts; kill it mid-way, while the survivor is writing too.
    victim = subprocess.Popen([a.driver, db], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, text=True)
    victim.stdin.write("".join(batch_stmt(9000 + j).replace(" t ", " t2 ") + "\n"
                               for j in range(200)))
    victim.stdin.flush()
    for j in range(20):
        o = d.run(batch_stmt(5000 + j).replace(" t ", " t2 "))
        if not o["ok"]:
            problems.append("survivor batch %d: %s" % (j, o["error"]))
        if j == 5:
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            victim.stdin.close()
    o = d.run("SELECT count(*), count(DISTINCT b), sum(r), count(*) FILTER (WHERE b < 9000) FROM t2")
    d.close()
    if not o["ok"]:
        problems.append("read after kill -9 of a writer: %s" % o["error"])
        return
    n, nb, sr, mine = o["rows"][0]
    if n != nb * B or sr != nb * (B * (B - 1) // 2) or mine != 20 * B:
        problems.append("after kill -9 of a writer: count %s batches %s sum(r) %s survivor rows %s"
                        % (n, nb, sr, mine))
    print("killed writer: %d of its batches committed, survivor's 20 all there" % (nb - 20))


def lock_timeout(a, db, problems):
    waiter = Driver(a.driver, db)
    o = waiter.run("SET lock_timeout = 300")
    if not o["ok"]:
        problems.append("SET lock_timeout: %s" % o["error"])
        return
    holder = Driver(a.driver, db)
    o = holder.run("BEGIN; INSERT INTO t VALUES (777777, 0, 0)")
    assert o["ok"], o
    for sql in ("SELECT count(*) FROM t", "INSERT INTO t VALUES (424242, 1, 1)"):
        t0 = time.monotonic()
        o = waiter.run(sql)
        waited = time.monotonic() - t0
        if o["ok"] or o["code"] != "unavailable" or \
                "database is locked by another process" not in o["error"]:
            problems.append("'%s' while locked: %s" % (sql, o))
        if not 0.29 <= waited < 5:
            problems.append("'%s' gave up after %.2f s, lock_timeout is 0.3 s" % (sql, waited))
    # Opening never waits; the first statement does, with its own timeout.
    t0 = time.monotonic()
    p = subprocess.run([a.driver, db], input="SET lock_timeout = '100ms'\n" + READ + "\n",
                       capture_output=True, text=True, timeout=60)
    out = [json.loads(l) for l in p.stdout.splitlines()]
    if len(out) != 2 or out[1]["ok"] or "locked by another process" not in out[1]["error"] or \
            time.monotonic() - t0 > 5:
        problems.append("a new process while locked: %s %s" % (out, p.stderr[-300:]))
    print("lock timeout: '%s'" % o.get("error"))
    # kill -9 the holder inside its transaction: the kernel releases the lock.
    named_before, _ = parts_on_disk(db)
    holder.kill()
    t0 = time.monotonic()
    o = waiter.run("INSERT INTO t VALUES (424242, 1, 1)")
    if not o["ok"]:
        problems.append("insert after kill -9 of the lock holder: %s" % o["error"])
    if time.monotonic() - t0 > 5:
        problems.append("insert after kill -9 took %.1f s" % (time.monotonic() - t0))
    o = waiter.run("SELECT count(*) FILTER (WHERE b = 777777), count(*) FILTER (WHERE b = 424242) FROM t")
    if not o["ok"] or o["rows"][0] != [0, 1]:
        problems.append("the killed transaction's row is visible or the insert lost: %s" % o)
    waiter.close()
    named, present = parts_on_disk(db)
    if named != present:
        problems.append("after kill -9: part folders %s, manifest %s" % (present, named))
    if lock_header(db)[2] != 0:
        problems.append("LOCK still marked dirty")
    print("kill -9 of the holder: lock released, next insert took %.3f s" % (time.monotonic() - t0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    db = os.path.join(a.workdir, "db")
    problems = []
    concurrent(a, db, problems)
    killed_writer(a, db, problems)
    lock_timeout(a, db, problems)
    for p in problems:
        print("FAIL: %s" % p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
