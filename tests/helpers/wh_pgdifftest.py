#!/usr/bin/env python3
"""tests/helpers/wh_pgdifftest.py - differential test of the warehouse against PostgreSQL,
for what SQLite has no equivalent of: interval values and arithmetic, age(), to_char(),
justify_*(), extract from intervals, and CREATE TABLE ... WITH (order_by, partition_by).

Loads the same generated rows into a fresh warehouse (through wh_driver) and into a
PostgreSQL database (through psql, URL from --pg-url or the file named by
$WEIR_TEST_PG_URL_FILE), runs every query in both and compares the rows as PostgreSQL
prints them (numbers compared as numbers). Usage:
  wh_pgdifftest.py --driver PATH --workdir DIR [--pg-url URL] [--threads N]
"""
import argparse
import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys

# (SQL, ordered?) - the same text runs in both engines.
QUERIES = [
    ("SELECT interval '1 day', interval '36 hours', interval '-1 day 2 hours', "
     "interval '1 year 2 mons 3 days 04:05:06.5', interval '0 seconds', interval '2 weeks'", True),
    ("SELECT interval '1.5 years', interval '-90 minutes', interval '1 mon -1 day 01:00'", True),
    ("SELECT id, ts - ts2 FROM ev ORDER BY id", True),
    ("SELECT id, age(ts, ts2), age(ts2, ts) FROM ev ORDER BY id", True),
    ("SELECT id, ts + (ts - ts2), ts2 - interval '1 mon 2 days 03:00', ts + interval '1 year' "
     "FROM ev ORDER BY id", True),
    ("SELECT id, extract(epoch from ts - ts2), extract(day from ts - ts2), "
     "extract(hour from ts - ts2), extract(minute from ts - ts2) FROM ev ORDER BY id", True),
    ("SELECT id, extract(year from age(ts, ts2)), extract(month from age(ts, ts2)), "
     "date_part('day', age(ts, ts2)) FROM ev ORDER BY id", True),
    ("SELECT id FROM ev WHERE ts - ts2 > interval '30 days' ORDER BY id", True),
    ("SELECT id, ts - ts2 FROM ev WHERE ts2 IS NOT NULL ORDER BY ts - ts2 DESC, id LIMIT 7", True),
    ("SELECT (ts - ts2) * 2, (ts - ts2) / 4, 3 * (ts - ts2), -(ts - ts2) FROM ev ORDER BY id", True),
    ("SELECT id, (ts - ts2) + interval '1 hour', (ts - ts2) - interval '1 mon' FROM ev "
     "ORDER BY id", True),
    ("SELECT id, justify_hours(ts - ts2), justify_days(ts - ts2), justify_interval(ts - ts2) "
     "FROM ev ORDER BY id", True),
    ("SELECT date_trunc('day', ts) - date_trunc('day', ts2) AS d, count(*) FROM ev "
     "GROUP BY 1 ORDER BY 1 NULLS FIRST", True),
    ("SELECT count(DISTINCT ts - ts2), count(ts - ts2) FROM ev", True),
    ("SELECT coalesce(ts - ts2, interval '0'), CASE WHEN id % 2 = 0 THEN ts - ts2 END, "
     "nullif(ts - ts2, interval '0') FROM ev ORDER BY id", True),
    ("SELECT CAST(ts - ts2 AS text), CAST('1 week 2 days' AS interval), "
     "'3 hours'::interval + ts FROM ev ORDER BY id", True),
    ("SELECT id, to_char(ts, 'YYYY-MM-DD HH24:MI:SS'), to_char(ts, 'Mon DD, YYYY HH12:MI AM'), "
     "to_char(ts, 'Day Month FMDD'), to_char(ts, 'FMDay FMMonth dy mon DY MON') FROM ev "
     "ORDER BY id", True),
    ("SELECT id, to_char(ts, 'IYYY-IW ID DDD Q WW D CC YY YYY Y'), to_char(ts, 'HH HH12 MS US'), "
     "to_char(ts, '\"week\" IW \"of\" YYYY'), to_char(d, 'DD/MM/YYYY') FROM ev ORDER BY id", True),
    ("SELECT id, to_char(ts - ts2, 'HH24:MI:SS'), to_char(ts - ts2, 'DD \"days\" HH24 \"h\"') "
     "FROM ev ORDER BY id", True),
    ("SELECT to_char(date_trunc('month', ts), 'YYYY-MM') AS m, count(*) FROM ev "
     "GROUP BY 1 ORDER BY 1", True),
    ("SELECT id, age(d, ts2) FROM ev ORDER BY id", True),
    ("SELECT interval '1 day' = interval '24 hours', interval '1 mon' > interval '29 days', "
     "interval '2 hours' < '3 hours'", True),
    # CREATE TABLE with a sort key and a partition expression
    ("SELECT k, v, p FROM sorted ORDER BY k, v", True),
    ("SELECT p, count(*), min(k), max(k) FROM sorted GROUP BY p ORDER BY p", True),
    ("SELECT k, v FROM sorted WHERE k BETWEEN 100 AND 120 ORDER BY k, v", True),
    ("SELECT count(*), sum(k) FROM sorted WHERE p = 3", True),
]

SETUP_BOTH = [
    "CREATE TABLE ev (id integer, ts timestamp, ts2 timestamp, d date)",
]


def ts_lit(rnd):
    return "2023-%02d-%02d %02d:%02d:%02d" % (rnd.randint(1, 12), rnd.randint(1, 28),
                                               rnd.randint(0, 23), rnd.randint(0, 59),
                                               rnd.randint(0, 59))


def gen(rnd):
    rows = []
    for i in range(60):
        ts = ts_lit(rnd)
        ts2 = None if i % 11 == 5 else ts_lit(rnd)
        if i % 13 == 0 and ts2:
            ts2 = ts  # zero intervals
        if i % 7 == 3:
            ts = "2024-02-29 23:59:59.5"
        d = "2024-%02d-%02d" % (1 + i % 12, 1 + i % 28)
        rows.append((i, ts, ts2, d))
    return rows


def lit(v):
    return "NULL" if v is None else "'%s'" % v


def canon(v):
    if v is None or v == "":
        return ""
    return str(v)


def same_cell(a, b):
    a, b = canon(a), canon(b)
    if a == b:
        return True
    if {a, b} <= {"1", "t"} or {a, b} <= {"0", "f"}:
        return True
    try:
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))
    except ValueError:
        return False


def psql(url, sql):
    p = subprocess.run(["psql", url, "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        return None, p.stderr.strip()
    rows = list(csv.reader(io.StringIO(p.stdout)))
    return rows[1:], None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--pg-url")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    url = args.pg_url
    if not url and os.environ.get("WEIR_TEST_PG_URL_FILE"):
        with open(os.environ["WEIR_TEST_PG_URL_FILE"]) as f:
            url = f.read().strip()
    if not url:
        print("no PostgreSQL URL (--pg-url or WEIR_TEST_PG_URL_FILE)")
        return 1
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    rnd = random.Random(7)
    rows = gen(rnd)
    ins = "INSERT INTO ev VALUES " + ", ".join(
        "(%d, %s, %s, %s)" % (r[0], lit(r[1]), lit(r[2]), lit(r[3])) for r in rows)
    srows = [(rnd.randint(0, 400), rnd.randint(0, 9), None) for _ in range(3000)]
    srows = [(k, v, k % 5) for k, v, _ in srows]
    sins = ["INSERT INTO sorted VALUES " + ", ".join("(%d, %d, %d)" % r for r in srows[a:a + 1000])
            for a in range(0, len(srows), 1000)]
    pg_setup = ["DROP TABLE IF EXISTS ev", "DROP TABLE IF EXISTS sorted"] + SETUP_BOTH + [
        ins, "CREATE TABLE sorted (k integer, v integer, p integer)"] + sins
    for s in pg_setup:
        _, err = psql(url, s)
        if err:
            print("PG SETUP FAILED: %s\n  %s" % (s[:200], err))
            return 1
    wsetup = ["SET threads = %d" % args.threads] + SETUP_BOTH + [ins] + [
        "CREATE TABLE sorted (k integer, v integer, p integer) "
        "WITH (order_by = 'k, v', partition_by = 'p')"] + sins + [
        "OPTIMIZE TABLE sorted"]
    stmts = wsetup + [q for q, _ in QUERIES]
    db = os.path.join(args.workdir, "db")
    proc = subprocess.run([args.driver, db], input="\n".join(stmts) + "\n", capture_output=True,
                          text=True, timeout=300)
    outs = [json.loads(line) for line in proc.stdout.splitlines()]
    if proc.returncode != 0 or len(outs) != len(stmts):
        print("driver failed:", proc.returncode, proc.stderr[-3000:])
        return 1
    for s, o in zip(wsetup, outs):
        if not o["ok"]:
            print("SETUP FAILED: %s\n  %s" % (s[:200], o["error"]))
            return 1
    fails = 0
    for (q, ordered), o in zip(QUERIES, outs[len(wsetup):]):
        want, err = psql(url, q)
        if err:
            print("PG ERROR %s\n  %s" % (q, err))
            fails += 1
            continue
        if not o["ok"]:
            print("FAIL (error) %s\n  %s" % (q, o["error"]))
            fails += 1
            continue
        got = o["rows"]
        if not ordered:
            got = sorted(got, key=lambda r: [canon(v) for v in r])
            want = sorted(want, key=lambda r: [canon(v) for v in r])
        ok = len(got) == len(want) and all(
            len(a) == len(b) and all(same_cell(x, y) for x, y in zip(a, b))
            for a, b in zip(got, want))
        if not ok:
            fails += 1
            bad = next((k for k, (a, b) in enumerate(zip(got, want))
                        if not all(same_cell(x, y) for x, y in zip(a, b))), None)
            print("FAIL (rows) %s\n  rows weir %d, pg %d; first difference at %s\n  weir: %s\n"
                  "  pg  : %s" % (q, len(got), len(want), bad,
                                  got[bad] if bad is not None else got[:3],
                                  want[bad] if bad is not None else want[:3]))
    print("%d queries, %d failures" % (len(QUERIES), fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
