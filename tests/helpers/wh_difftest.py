#!/usr/bin/env python3
"""tests/helpers/wh_difftest.py - differential test of the warehouse against SQLite.

Generates deterministic data, loads it into a fresh warehouse (through COPY FROM CSV and
INSERT ... VALUES, driven by the wh_driver helper) and into SQLite, runs the same queries in
both and compares the rows: in order when the query's ORDER BY fixes it, as multisets
otherwise; floats to 9 significant digits. Queries whose dialects differ carry a SQLite
variant. Also checks that unsupported or invalid SQL fails with an error (never rows).
Usage: wh_difftest.py --driver PATH --workdir DIR [--rows N]
"""
import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import subprocess
import sys

WORDS = ["alpha", "Beta", "gamma", "delta", "Epsilon", "zeta", "eta", "theta", "iota",
         "kappa", "lambda", "mu", "a_b", "x%y", ""]

# (weir SQL, SQLite SQL or None for the same text, ordered?)
QUERIES = [
    ("SELECT id, g, s, x FROM t1 WHERE id < 50", None, False),
    ("SELECT count(*) FROM t1", None, False),
    ("SELECT count(*), count(g), count(s), count(x) FROM t1", None, False),
    ("SELECT id FROM t1 WHERE g = 3 AND x > 10", None, False),
    ("SELECT id FROM t1 WHERE g = 3 OR s IS NULL", None, False),
    ("SELECT id FROM t1 WHERE NOT (g > 4)", None, False),
    ("SELECT id FROM t1 WHERE g IS NULL", None, False),
    ("SELECT id FROM t1 WHERE g IS NOT NULL AND x IS NULL", None, False),
    ("SELECT id, g + 1, g * 2 - id, id / 7, id % 7, -id / 3, -id % 3 FROM t1", None, False),
    ("SELECT id, x * 2.5, x / 3, x + g FROM t1 WHERE x IS NOT NULL", None, False),
    ("SELECT id, (g > 5) AND (x > 50), (g > 5) OR (x > 50), NOT (g > 5) FROM t1", None, False),
    ("SELECT id, CASE WHEN g < 3 THEN 'low' WHEN g < 7 THEN 'mid' ELSE 'high' END FROM t1",
     None, False),
    ("SELECT id, CASE g WHEN 1 THEN 'one' WHEN 2 THEN 'two' END FROM t1", None, False),
    ("SELECT id, CASE WHEN g = 0 THEN 0 ELSE 100 / g END FROM t1", None, False),
    ("SELECT id, coalesce(s, 'none'), coalesce(g, x, -1) FROM t1", None, False),
    ("SELECT id, nullif(g, 3) FROM t1", None, False),
    ("SELECT id FROM t1 WHERE g IN (1, 3, 5)", None, False),
    ("SELECT id FROM t1 WHERE g NOT IN (1, 3, 5)", None, False),
    ("SELECT id FROM t1 WHERE g IN (1, NULL)", None, False),
    ("SELECT id FROM t1 WHERE g NOT IN (1, NULL)", None, False),
    ("SELECT id FROM t1 WHERE s IN ('alpha', 'Beta')", None, False),
    ("SELECT id FROM t1 WHERE x BETWEEN 10 AND 20", None, False),
    ("SELECT id FROM t1 WHERE g NOT BETWEEN 2 AND 7", None, False),
    ("SELECT id, s FROM t1 WHERE s LIKE 'a%'", None, False),
    ("SELECT id, s FROM t1 WHERE s LIKE '%ta'", None, False),
    ("SELECT id, s FROM t1 WHERE s LIKE '_e%'", None, False),
    ("SELECT id, s FROM t1 WHERE s NOT LIKE '%a%'", None, False),
    ("SELECT id, s FROM t1 WHERE s LIKE 'a\\_b'", "SELECT id, s FROM t1 WHERE s LIKE 'a\\_b' ESCAPE '\\'", False),
    ("SELECT id, lower(s), upper(s), length(s) FROM t1", None, False),
    ("SELECT id, substr(s, 2, 3), substr(s, 2), replace(s, 'a', 'A') FROM t1", None, False),
    ("SELECT id, s || '-' || g, trim('  ' || s || ' ') FROM t1", None, False),
    ("SELECT id, abs(g - 5), round(x), abs(x) FROM t1 WHERE x - floor(x) <> 0.5", None, False),
    ("SELECT g, count(*), sum(id), min(id), max(id) FROM t1 GROUP BY g", None, False),
    ("SELECT g, avg(x), sum(x), min(x), max(x), count(x) FROM t1 GROUP BY g", None, False),
    ("SELECT s, count(*) FROM t1 GROUP BY s", None, False),
    ("SELECT g, s, count(*) FROM t1 GROUP BY g, s", None, False),
    ("SELECT g % 3, count(*) FROM t1 GROUP BY g % 3", None, False),
    ("SELECT g, count(*) AS c FROM t1 GROUP BY 1 HAVING count(*) > 150", None, False),
    ("SELECT g, count(DISTINCT s), count(DISTINCT x) FROM t1 GROUP BY g", None, False),
    ("SELECT count(DISTINCT g), sum(DISTINCT g) FROM t1", None, False),
    ("SELECT min(s), max(s), min(d), max(d), min(ts), max(ts) FROM t1", None, False),
    ("SELECT g, sum(n), avg(n), max(n) FROM t1 GROUP BY g", None, False),
    ("SELECT count(*), sum(v), avg(v), min(v), max(v) FROM e", None, False),
    ("SELECT v, count(*) FROM e GROUP BY v", None, False),
    ("SELECT id, g FROM t1 ORDER BY g NULLS FIRST, id DESC", None, True),
    ("SELECT id, g FROM t1 ORDER BY g DESC NULLS LAST, id", None, True),
    ("SELECT id, x FROM t1 ORDER BY x NULLS LAST, id LIMIT 20", None, True),
    ("SELECT id, s FROM t1 ORDER BY s NULLS FIRST, id LIMIT 15 OFFSET 30", None, True),
    ("SELECT id FROM t1 ORDER BY id LIMIT 0", None, True),
    ("SELECT id FROM t1 ORDER BY id OFFSET 1995", "SELECT id FROM t1 ORDER BY id LIMIT -1 OFFSET 1995", True),
    ("SELECT DISTINCT g FROM t1", None, False),
    ("SELECT DISTINCT g, s FROM t1", None, False),
    ("SELECT DISTINCT g FROM t1 ORDER BY g NULLS LAST", None, True),
    ("SELECT t1.id, t2.name FROM t1 JOIN t2 ON t1.g = t2.g WHERE t1.id < 300", None, False),
    ("SELECT t1.id, t2.name FROM t1 LEFT JOIN t2 ON t1.g = t2.g WHERE t1.id < 300", None, False),
    ("SELECT t1.id, t2.id FROM t1 JOIN t2 ON t1.g = t2.g AND t2.id > t1.id", None, False),
    ("SELECT t1.id, t2.id FROM t1 LEFT JOIN t2 ON t1.g = t2.g AND t2.name LIKE 'n1%' WHERE t1.id < 100",
     None, False),
    ("SELECT a.id, b.id FROM t2 a JOIN t2 b ON a.id < b.id", None, False),
    ("SELECT count(*) FROM t2 a CROSS JOIN t2 b", None, False),
    ("SELECT count(*) FROM t2 a, t2 b WHERE a.g = b.g", None, False),
    ("SELECT t2.name, count(t1.id), sum(t1.x) FROM t2 LEFT JOIN t1 ON t1.g = t2.g GROUP BY t2.name",
     None, False),
    ("SELECT id, name FROM t1 JOIN t2 USING (id)", None, False),
    ("SELECT t1.id FROM t1 LEFT JOIN e ON t1.id = e.id WHERE e.id IS NULL AND t1.id < 10",
     None, False),
    ("SELECT q.g, q.c FROM (SELECT g, count(*) AS c FROM t1 GROUP BY g) AS q WHERE q.c > 100",
     None, False),
    ("WITH a AS (SELECT g, max(x) AS m FROM t1 GROUP BY g), b AS (SELECT g, m * 2 AS m2 FROM a) "
     "SELECT g, m2 FROM b WHERE m2 > 150", None, False),
    ("WITH t2 AS (SELECT 1 AS id) SELECT count(*) FROM t2", None, False),
    ("SELECT g FROM t1 WHERE id < 5 UNION SELECT g FROM t2", None, False),
    ("SELECT g FROM t1 WHERE id < 5 UNION ALL SELECT g FROM t2", None, False),
    ("SELECT g FROM t1 INTERSECT SELECT g FROM t2", None, False),
    ("SELECT g, s FROM t1 EXCEPT SELECT g, s FROM t1 WHERE id > 100", None, False),
    ("SELECT g FROM t2 EXCEPT SELECT g FROM t1 WHERE g < 5", None, False),
    ("SELECT id, 'x' AS k FROM t2 UNION ALL SELECT id, s FROM t1 WHERE id < 10 ORDER BY 1, 2",
     None, True),
    ("SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, NULL)) AS v(k, w)",
     "SELECT * FROM (SELECT 1 AS k, 'a' AS w UNION ALL SELECT 2, 'b' UNION ALL SELECT 3, NULL)",
     False),
    ("SELECT id FROM t1 WHERE d >= '2024-06-01' AND d < '2024-07-01'", None, False),
    ("SELECT id, d FROM t1 WHERE d = DATE '2024-03-15'", "SELECT id, d FROM t1 WHERE d = '2024-03-15'",
     False),
    ("SELECT id FROM t1 WHERE ts > '2024-06-01 12:00:00'", None, False),
    ("SELECT extract(year FROM d), extract(month FROM d), count(*) FROM t1 GROUP BY 1, 2",
     "SELECT CAST(strftime('%Y', d) AS INT), CAST(strftime('%m', d) AS INT), count(*) FROM t1 GROUP BY 1, 2",
     False),
    ("SELECT date_trunc('month', ts), count(*) FROM t1 GROUP BY 1",
     "SELECT strftime('%Y-%m-01 00:00:00', ts), count(*) FROM t1 GROUP BY 1", False),
    ("SELECT id, d + 7, d - 1 FROM t1 WHERE id < 20",
     "SELECT id, date(d, '+7 days'), date(d, '-1 days') FROM t1 WHERE id < 20", False),
    ("SELECT id, CAST(g AS text) || 'x', CAST(x AS int), CAST('42' AS integer) + g FROM t1 "
     "WHERE x - floor(x) <> 0.5",
     "SELECT id, CAST(g AS text) || 'x', CAST(round(x) AS int), 42 + g FROM t1 "
     "WHERE x - floor(x) <> 0.5", False),
    ("SELECT id, d + interval '3 days', ts - interval '90 minutes' FROM t1 WHERE id < 40",
     "SELECT id, datetime(d, '+3 days'), datetime(ts, '-90 minutes') FROM t1 WHERE id < 40", False),
    ("SELECT count(*) FROM t1 WHERE ts >= timestamp '2024-06-01 00:00:00' - interval '1 week'",
     "SELECT count(*) FROM t1 WHERE ts >= datetime('2024-06-01 00:00:00', '-7 days')", False),
    ("SELECT id, b, NOT b FROM t1 WHERE b", None, False),
    ("SELECT b, count(*) FROM t1 GROUP BY b", None, False),
    ("SELECT id, greatest(g, 5), least(g, 5) FROM t1 WHERE g IS NOT NULL",
     "SELECT id, max(g, 5), min(g, 5) FROM t1 WHERE g IS NOT NULL", False),
    ("SELECT 1, 'a', NULL, 2.5, 7 / 2, 7.0 / 2", None, False),
    ("SELECT id FROM t1 WHERE id IN (SELECT id * 3 FROM t2)", None, False),
    ("SELECT id FROM t1 WHERE g NOT IN (SELECT g FROM t2 WHERE id < 6)", None, False),
    ("SELECT id FROM t1 WHERE g NOT IN (SELECT g FROM t2)", None, False),
    ("SELECT id FROM t1 WHERE g IN (SELECT g FROM t2 WHERE g IS NOT NULL) AND id < 100", None, False),
    ("SELECT id FROM t2 WHERE EXISTS (SELECT 1 FROM t1 WHERE g = 7)", None, False),
    ("SELECT id FROM t2 WHERE NOT EXISTS (SELECT 1 FROM e)", None, False),
    ("SELECT id, (SELECT max(x) FROM t1) - x FROM t1 WHERE x > (SELECT avg(x) FROM t1)", None, False),
    ("SELECT (SELECT v FROM e), (SELECT count(*) FROM e)", None, False),
    # correlated subqueries (run once per distinct value of the outer columns they use)
    ("SELECT id FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.g = t1.g AND t2.id > 30)", None, False),
    ("SELECT id FROM t1 WHERE NOT EXISTS (SELECT 1 FROM t2 WHERE t2.g = t1.g)", None, False),
    ("SELECT id FROM t2 WHERE NOT EXISTS (SELECT 1 FROM t1 WHERE t1.g = t2.g AND t1.x > 90)", None, False),
    ("SELECT id FROM t2 WHERE g IN (SELECT g FROM t1 WHERE t1.id % 40 = t2.id AND t1.id < 400)",
     None, False),
    ("SELECT id FROM t2 WHERE id NOT IN (SELECT t1.g FROM t1 WHERE t1.id % 40 = t2.id AND t1.id < 400)",
     None, False),
    ("SELECT id, id IN (SELECT t1.g FROM t1 WHERE t1.id % 40 = t2.id AND t1.id < 200) FROM t2",
     None, False),
    ("SELECT id, (SELECT max(t2.id) FROM t2 WHERE t2.id < t1.id) FROM t1", None, False),
    ("SELECT id, (SELECT count(*) FROM t2 WHERE t2.g = t1.g), (SELECT name FROM t2 WHERE t2.id = t1.id) "
     "FROM t1 WHERE id < 100", None, False),
    ("SELECT id FROM t1 WHERE x > (SELECT avg(b.x) FROM t1 b WHERE b.g = t1.g)", None, False),
    ("SELECT name FROM t2 WHERE (SELECT count(*) FROM t1 WHERE t1.g = t2.g AND x > 50) > 60", None, False),
    ("SELECT id, (SELECT max(v) FROM e WHERE e.id = t2.id), "
     "CASE WHEN EXISTS (SELECT 1 FROM e WHERE e.id = t2.id) THEN 1 ELSE 0 END, "
     "id NOT IN (SELECT v FROM e WHERE e.id = t2.id) FROM t2", None, False),
    ("SELECT id FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.g = t1.g AND t2.id = t1.id % 40)",
     None, False),
    ("SELECT id FROM t2 WHERE EXISTS (SELECT 1 FROM t1 WHERE t1.g = t2.g AND t1.id < 500 AND "
     "EXISTS (SELECT 1 FROM t2 b WHERE b.id = t1.id AND b.g = t2.g))", None, False),
    ("SELECT id, (SELECT count(*) + t2.id FROM t1 WHERE t1.g = t2.g) FROM t2", None, False),
    ("SELECT id, CASE WHEN g IS NULL THEN -1 ELSE (SELECT min(t1.id) FROM t1 WHERE t1.g = t2.g) END "
     "FROM t2", None, False),
    ("SELECT id, (SELECT min(s) FROM t1 WHERE t1.g = t2.g AND t1.s > t2.name) FROM t2", None, False),
    ("SELECT id, (SELECT count(*) FROM t1 WHERE t1.g = t2.g HAVING count(*) > t2.id * 10) FROM t2",
     None, False),
    ("SELECT id, (SELECT x FROM (SELECT t1.x FROM t1 WHERE t1.id = t2.id) s) FROM t2", None, False),
    ("SELECT id FROM t2 a WHERE EXISTS (SELECT 1 FROM t2 b WHERE b.g = a.g AND id > a.id + 20)",
     None, False),
    ("SELECT id FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.g = t1.g AND t2.id > 35) ORDER BY id LIMIT 5",
     None, True),
    ("SELECT id, (SELECT max(id) FROM t2 WHERE t2.g = t1.g) AS m FROM t1 ORDER BY m DESC NULLS FIRST, id "
     "LIMIT 40", None, True),
    # granule pruning on a multi-granule table (t3: k ascending, d ascending, v random)
    ("SELECT count(*), sum(k) FROM t3 WHERE k < 100", None, False),
    ("SELECT k, v FROM t3 WHERE k = 12345", None, False),
    ("SELECT count(*) FROM t3 WHERE k BETWEEN 8000 AND 16500", None, False),
    ("SELECT count(*) FROM t3 WHERE 30000 <= k AND k < 30010 AND v > 50", None, False),
    ("SELECT count(*), min(k), max(k) FROM t3 WHERE d >= '2024-03-01' AND d < '2024-03-08'",
     None, False),
    ("SELECT count(*) FROM t3 WHERE v > 99.9 OR k = 5", None, False),
    ("SELECT count(*) FROM t3 WHERE v >= 99.99", None, False),
    ("SELECT count(*) FROM t3 WHERE k > 39999.5", None, False),
    ("SELECT count(*) FROM t3 WHERE k = -1", None, False),
    ("SELECT count(*) FROM t3 WHERE n IS NULL AND k < 20000", None, False),
    ("SELECT count(*) FROM t3 WHERE n > 10", None, False),
    # late materialization: ORDER BY columns + small LIMIT over a multi-granule table
    ("SELECT k, d, v, n FROM t3 ORDER BY v DESC, k LIMIT 7", None, True),
    ("SELECT k * 2, d FROM t3 WHERE n IS NOT NULL ORDER BY n NULLS FIRST, v LIMIT 5 OFFSET 3",
     None, True),
    ("SELECT t.k, t.v FROM t3 AS t WHERE t.k % 1000 = 7 ORDER BY t.v, t.k DESC LIMIT 4", None, True),
    ("SELECT v AS k, k AS v FROM t3 ORDER BY k DESC LIMIT 3", None, True),
    ("SELECT * FROM t3 ORDER BY d DESC, k LIMIT 2", None, True),
    # top-N that skips granules by the first key's min/max (NULL placement matters)
    ("SELECT k, n FROM t3 ORDER BY k DESC LIMIT 5", None, True),
    ("SELECT k, n FROM t3 ORDER BY n DESC NULLS FIRST, k LIMIT 6", None, True),
    ("SELECT k, n FROM t3 ORDER BY n NULLS LAST, k DESC LIMIT 9", None, True),
    ("SELECT k, n FROM t3 ORDER BY n DESC NULLS LAST, k LIMIT 5", None, True),
    ("SELECT k, n FROM t3 ORDER BY n NULLS FIRST, k LIMIT 3", None, True),
    ("SELECT k, d FROM t3 ORDER BY d, k DESC LIMIT 4 OFFSET 2", None, True),
    # grouping, filters and projections big enough to run on several threads
    ("SELECT n, count(*), sum(k), min(v) FROM t3 GROUP BY n ORDER BY n NULLS FIRST", None, True),
    ("SELECT d, count(*), max(k) FROM t3 WHERE k % 3 <> 1 GROUP BY d ORDER BY d", None, True),
    ("SELECT n % 7, count(DISTINCT d), count(*) FROM t3 GROUP BY 1 ORDER BY 1 NULLS LAST",
     None, True),
    ("SELECT k * 2 + 1, v * 2, upper('x' || n) FROM t3 WHERE v > 30 ORDER BY k", None, True),
    ("SELECT id, row_number() OVER (PARTITION BY g ORDER BY x DESC NULLS LAST, id) FROM t1",
     None, False),
    ("SELECT id, rank() OVER (PARTITION BY g ORDER BY s NULLS FIRST), "
     "dense_rank() OVER (ORDER BY g NULLS LAST) FROM t1", None, False),
    ("SELECT id, lag(x) OVER (PARTITION BY g ORDER BY id), lead(id, 2, -1) OVER (ORDER BY id) "
     "FROM t1", None, False),
    ("SELECT id, sum(x) OVER (PARTITION BY g), count(*) OVER (PARTITION BY s), "
     "avg(x) OVER (PARTITION BY g ORDER BY id), max(id) OVER () FROM t1", None, False),
    ("SELECT g, count(*), rank() OVER (ORDER BY count(*) DESC, g NULLS LAST) FROM t1 GROUP BY g",
     None, False),
    ("SELECT count(*) FROM t1 WHERE s = ''", None, False),
    ("SELECT id FROM t1 WHERE x > 99.5 OR x < 0.5", None, False),
    # dictionary-encoded text (t4: two parts with their own dictionaries, 1-, 2- and 4-byte
    # codes; t5: a dictionary part and a plain one): filters, expressions and grouping once
    # per entry, joins probing once per entry, NULLs and the empty string
    ("SELECT count(*) FROM t4 WHERE s = 'alpha'", None, False),
    ("SELECT count(*) FROM t4 WHERE s <> 'alpha'", None, False),
    ("SELECT count(*) FROM t4 WHERE s IN ('Beta', 'x%y', '')", None, False),
    ("SELECT count(*) FROM t4 WHERE s LIKE '%a%'", None, False),
    ("SELECT count(*) FROM t4 WHERE s NOT LIKE 'a%'", None, False),
    ("SELECT count(*) FROM t4 WHERE s IS NULL", None, False),
    ("SELECT count(*) FROM t4 WHERE coalesce(s, 'none') = 'none'", None, False),
    ("SELECT k, s FROM t4 WHERE s = '' AND k < 3000", None, False),
    ("SELECT count(*), sum(k) FROM t4 WHERE c = 'c17' OR c = 'c1234'", None, False),
    ("SELECT count(*) FROM t4 WHERE w LIKE '%-4242'", None, False),
    ("SELECT s, count(*), sum(k) FROM t4 GROUP BY s", None, False),
    ("SELECT c, count(*) FROM t4 GROUP BY c ORDER BY count(*) DESC, c LIMIT 5", None, True),
    ("SELECT lower(s), count(*) FROM t4 GROUP BY 1", None, False),
    ("SELECT k, upper(s), length(c) FROM t4 WHERE k % 1000 = 7", None, False),
    ("SELECT s, count(DISTINCT c), count(DISTINCT w) FROM t4 GROUP BY s", None, False),
    ("SELECT count(DISTINCT w), count(DISTINCT s) FROM t4", None, False),
    ("SELECT w, count(*) FROM t4 GROUP BY w ORDER BY count(*) DESC, w LIMIT 3", None, True),
    ("SELECT s, count(*) FROM t5 GROUP BY s", None, False),
    ("SELECT count(*) FROM t5 WHERE s LIKE '%ta%'", None, False),
    ("SELECT d.cat, count(*), sum(t4.k) FROM t4 JOIN dim d ON t4.s = d.s GROUP BY d.cat",
     None, False),
    ("SELECT d.cat, count(*), count(t4.k) FROM t4 LEFT JOIN dim d ON t4.s = d.s "
     "GROUP BY d.cat", None, False),
    ("SELECT d.s, d.cat, count(t4.k) FROM t4 RIGHT JOIN dim d ON t4.s = d.s GROUP BY d.s, d.cat",
     "SELECT d.s, d.cat, count(t4.k) FROM dim d LEFT JOIN t4 ON t4.s = d.s GROUP BY d.s, d.cat",
     False),
    ("SELECT t4.k, d.cat FROM t4 JOIN dim d ON t4.s = d.s AND t4.k % 10 = d.n WHERE t4.k < 5000",
     None, False),
    ("SELECT d.cat, count(*) FROM t4 JOIN dim d ON t4.s = d.s WHERE d.n > 2 GROUP BY d.cat",
     None, False),
    ("SELECT a.k, b.k FROM t4 a JOIN t4 b ON a.w = b.w WHERE a.k < 300", None, False),
    ("SELECT s, count(*) FROM t7 GROUP BY s", None, False),
    ("SELECT count(*) FROM t7 WHERE s = 'alpha'", None, False),
    ("SELECT t7.s FROM t7 JOIN dim ON t7.s = dim.s", None, False),
    # full sorts and windows large enough to run on several threads
    ("SELECT k, c FROM t4 ORDER BY c DESC, s NULLS FIRST, k",
     "SELECT k, c FROM t4 ORDER BY c DESC NULLS FIRST, s NULLS FIRST, k", True),
    ("SELECT k, p FROM t4 ORDER BY p NULLS FIRST, k DESC", None, True),
    ("SELECT k, row_number() OVER (PARTITION BY s ORDER BY p DESC NULLS LAST, k) FROM t4",
     None, False),
    # top-N: granule-pruned first key, ties, NULLS FIRST / LAST, fewer values than LIMIT
    ("SELECT k, p FROM t4 ORDER BY p DESC, k LIMIT 7",
     "SELECT k, p FROM t4 ORDER BY p DESC NULLS FIRST, k LIMIT 7", True),
    ("SELECT k, p FROM t4 ORDER BY p DESC NULLS LAST, k LIMIT 7", None, True),
    ("SELECT k, p, s FROM t4 ORDER BY p, k DESC LIMIT 5",
     "SELECT k, p, s FROM t4 ORDER BY p NULLS LAST, k DESC LIMIT 5", True),
    ("SELECT k, p FROM t4 ORDER BY p NULLS FIRST, k LIMIT 9000", None, True),
    ("SELECT k, p FROM t4 ORDER BY p DESC NULLS FIRST, k LIMIT 12000", None, True),
    ("SELECT k, s, p FROM t4 ORDER BY p DESC NULLS LAST, s, k LIMIT 10",
     "SELECT k, s, p FROM t4 ORDER BY p DESC NULLS LAST, s NULLS LAST, k LIMIT 10", True),
    ("SELECT p FROM t4 ORDER BY p DESC NULLS LAST LIMIT 3", None, True),
    ("SELECT k, p FROM t4 ORDER BY p, k LIMIT 3 OFFSET 4",
     "SELECT k, p FROM t4 ORDER BY p NULLS LAST, k LIMIT 3 OFFSET 4", True),
    ("SELECT k, p FROM t8 ORDER BY p, k LIMIT 100",
     "SELECT k, p FROM t8 ORDER BY p NULLS LAST, k LIMIT 100", True),
    ("SELECT k, p FROM t8 ORDER BY p DESC, k LIMIT 100",
     "SELECT k, p FROM t8 ORDER BY p DESC NULLS FIRST, k LIMIT 100", True),
    ("SELECT k, p FROM t8 ORDER BY p DESC NULLS LAST, k DESC LIMIT 4", None, True),
    ("SELECT a, s FROM t7 ORDER BY a LIMIT 3", None, True),
]

# Must fail with an error (unsupported or invalid), never return rows.
ERRORS = [
    "SELECT nosuch FROM t1",
    "SELECT * FROM nosuch",
    "SELECT id, count(*) FROM t1",
    "SELECT g, id FROM t1 GROUP BY g",
    "SELECT id FROM t1 WHERE count(*) > 1",
    "SELECT 1 / 0",
    "SELECT id FROM t1 WHERE row_number() OVER (ORDER BY id) > 1",
    "SELECT sum(x) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t1",
    "SELECT id FROM t1 WHERE id = (SELECT id FROM t2)",
    "SELECT id FROM t1 WHERE id IN (SELECT id, g FROM t2)",
    "SELECT g FROM t1 GROUP BY ROLLUP (g)",
    "SELECT CAST('abc' AS integer)",
    "SELECT 'a' + 1",
    "SELEC 1",
    "INSERT INTO t2 VALUES (1, 2, 'a', 4)",
    "INSERT INTO t2 VALUES (1, 2, 'much too long for varchar 10')",
    "INSERT INTO t1 (id, n) VALUES (1, 123456789.5)",
    "CREATE TABLE t2 (a int)",
    "SELECT DISTINCT ON (g) g FROM t1",
    "SELECT id FROM t1 t JOIN t2 t ON true",
    "SET nosuch = 1",
    "SELECT id, (SELECT t2.id FROM t2 WHERE t2.g = t1.g) FROM t1",
    "SELECT id, (SELECT sum(t1.x) FROM t2) FROM t1",
    "SELECT id, (SELECT sum((SELECT t1.x)) FROM t2) FROM t1",
    "SELECT g, (SELECT count(*) FROM t2 WHERE t2.g = t1.g) FROM t1 GROUP BY g",
    "SELECT id FROM t1 WHERE g IN (SELECT g, id FROM t2 WHERE t2.id = t1.id)",
    "SELECT sum(interval '1 day') FROM t1",
    "SELECT interval '1 day' + 1",
    "SELECT interval 'soon'",
    "SELECT to_char(1.5, '9.9')",
    "CREATE TABLE bad_iv (i interval)",
    "CREATE TABLE bad_iv2 AS SELECT interval '1 day' AS i",
    "CREATE TABLE bad_o (a int) WITH (order_by = 'nosuch')",
    "CREATE TABLE bad_o (a int) WITH (fillfactor = 70)",
    "CREATE TABLE bad_o (a int) WITH (partition_by = 'count(a)')",
    "CREATE TABLE bad_o (a int) WITH (partition_by = '(SELECT 1)')",
    "CREATE TABLE bad_o (a int) WITH (partition_by = 'a, a')",
    "SET threads = 'many'",
]


def gen(rows, rnd):
    t1 = []
    for i in range(rows):
        g = rnd.randrange(10) if rnd.random() > 0.05 else None
        s = rnd.choice(WORDS) if rnd.random() > 0.1 else None
        x = round(rnd.uniform(0, 100), 3) if rnd.random() > 0.1 else None
        n = round(rnd.uniform(-1000, 1000), 2) if rnd.random() > 0.1 else None
        day = rnd.randrange(366)
        d = "2024-%02d-%02d" % (1 + day // 31 % 12, 1 + day % 28) if rnd.random() > 0.05 else None
        ts = ("2024-%02d-%02d %02d:%02d:%02d" % (1 + day // 31 % 12, 1 + day % 28,
                                                rnd.randrange(24), rnd.randrange(60),
                                                rnd.randrange(60))
              if rnd.random() > 0.05 else None)
        b = rnd.random() > 0.5 if rnd.random() > 0.05 else None
        t1.append((i, g, s, x, n, d, ts, b))
    t2 = [(i, i % 12 if i % 7 else None, "n%d" % i) for i in range(40)]
    return t1, t2


def csv_field(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        if v == "" or any(c in v for c in ',"\n'):
            return '"' + v.replace('"', '""') + '"'
        return v
    return repr(v)


def sql_lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def canon(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e15:
            return float(int(v))
        return float("%.9g" % v)
    if isinstance(v, int):
        return float(v)
    return v


def sort_key(row):
    return [(0, "") if v is None else (1, v) if isinstance(v, float) else (2, str(v))
            for v in row]


def close(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-8, abs_tol=1e-9)
    return a == b


def same(ra, rb, ordered):
    ra = [[canon(v) for v in r] for r in ra]
    rb = [[canon(v) for v in r] for r in rb]
    if not ordered:
        ra.sort(key=sort_key)
        rb.sort(key=sort_key)
    if len(ra) != len(rb):
        return False
    return all(len(x) == len(y) and all(close(p, q) for p, q in zip(x, y))
               for x, y in zip(ra, rb))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0,
                    help="SET threads = N first (0: the engine's default)")
    args = ap.parse_args()
    rnd = random.Random(42)
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    t1, t2 = gen(args.rows, rnd)
    csv_path = os.path.join(args.workdir, "t1.csv")
    with open(csv_path, "w") as f:
        f.write("id,g,s,x,n,d,ts,b\r\n")
        for r in t1:
            f.write(",".join(csv_field(v) for v in r) + "\r\n")

    lite = sqlite3.connect(":memory:")
    lite.execute("PRAGMA case_sensitive_like = ON")
    lite.execute("CREATE TABLE t1 (id INTEGER, g INTEGER, s TEXT, x REAL, n REAL, d TEXT, "
                 "ts TEXT, b INTEGER)")
    lite.executemany("INSERT INTO t1 VALUES (?,?,?,?,?,?,?,?)", t1)
    lite.execute("CREATE TABLE t2 (id INTEGER, g INTEGER, name TEXT)")
    lite.executemany("INSERT INTO t2 VALUES (?,?,?)", t2)
    lite.execute("CREATE TABLE e (id INTEGER, v INTEGER)")
    t3 = [(k, "2024-%02d-%02d" % (1 + k // 9000, 1 + k % 9000 // 340), round(rnd.uniform(0, 100), 4),
           (k % 50) if k >= 20000 else None) for k in range(40000)]
    lite.execute("CREATE TABLE t3 (k INTEGER, d TEXT, v REAL, n INTEGER)")
    lite.executemany("INSERT INTO t3 VALUES (?,?,?,?)", t3)
    # t4: dictionary-encoded text; s low cardinality with NULLs and '', c ~2,000 values,
    # w ~70,000 long values (4-byte codes); p an integer with ties and NULLs.
    t4 = []
    for k in range(140000):
        s_ = WORDS[(k * 7 + k // 13) % len(WORDS)] if k % 11 else None
        c = "c%d" % ((k * 37) % 2003) if k % 17 else None
        w = "a-long-common-prefix-for-the-wide-column-%d" % ((k * 13) % 70001)
        p_ = (k * 7919) % 997 if k % 13 else None
        t4.append((k, s_, c, w, p_))
    t4a, t4b = t4[:100000], t4[100000:]
    lite.execute("CREATE TABLE t4 (k INTEGER, s TEXT, c TEXT, w TEXT, p INTEGER)")
    lite.executemany("INSERT INTO t4 VALUES (?,?,?,?,?)", t4)
    t5extra = [(200000 + i, WORDS[i % len(WORDS)] if i % 3 else None, "c%d" % i, "w%d" % i, i)
               for i in range(20)]
    lite.execute("CREATE TABLE t5 (k INTEGER, s TEXT, c TEXT, w TEXT, p INTEGER)")
    lite.executemany("INSERT INTO t5 VALUES (?,?,?,?,?)", t4a + t5extra)
    dim = [("alpha", "greek", 1), ("alpha", "first", 2), ("Beta", "greek", 3), ("", "empty", 4),
           ("x%y", "odd", 5), ("gamma", "greek", 6), ("nosuch", "none", 7), ("mu", None, 8)]
    lite.execute("CREATE TABLE dim (s TEXT, cat TEXT, n INTEGER)")
    lite.executemany("INSERT INTO dim VALUES (?,?,?)", dim)
    lite.execute("CREATE TABLE t7 (a INTEGER, s TEXT)")
    t8 = [(k, (k * 31) % 7 if k in (5, 77, 4000, 12000, 19999) else None) for k in range(20000)]
    lite.execute("CREATE TABLE t8 (k INTEGER, p INTEGER)")
    lite.executemany("INSERT INTO t8 VALUES (?,?)", t8)
    t4_path = os.path.join(args.workdir, "t4.csv")
    with open(t4_path, "w") as f:
        f.write("k,s,c,w,p\n")
        for r in t4a:
            f.write(",".join(csv_field(v) for v in r) + "\n")
    t4b_path = os.path.join(args.workdir, "t4b.csv")
    with open(t4b_path, "w") as f:
        for r in t4b:
            f.write(",".join(csv_field(v) for v in r) + "\n")
    t8_path = os.path.join(args.workdir, "t8.csv")
    with open(t8_path, "w") as f:
        for r in t8:
            f.write(",".join(csv_field(v) for v in r) + "\n")
    t3_path = os.path.join(args.workdir, "t3.csv")
    with open(t3_path, "w") as f:
        for r in t3:
            f.write(",".join(csv_field(v) for v in r) + "\n")

    setup = [
        "SET threads = %d" % args.threads,
        "CREATE TABLE t1 (id integer, g integer, s text, x double precision, n numeric(10,2), "
        "d date, ts timestamp, b boolean)",
        "COPY t1 FROM '%s' WITH (FORMAT csv, HEADER true)" % csv_path,
        "CREATE TABLE t2 (id bigint, g smallint, name varchar(10))",
        "INSERT INTO t2 VALUES " + ", ".join("(%s)" % ", ".join(sql_lit(v) for v in r)
                                            for r in t2[:20]),
        "INSERT INTO t2 (id, g, name) SELECT * FROM (VALUES " +
        ", ".join("(%s)" % ", ".join(sql_lit(v) for v in r) for r in t2[20:]) + ") AS v",
        "CREATE TABLE e (id integer, v integer)",
        "CREATE TABLE t3 (k integer, d date, v double precision, n bigint)",
        "COPY t3 FROM '%s' WITH (FORMAT csv)" % t3_path,
        "CREATE TABLE t4 (k integer, s text, c text, w text, p integer)",
        "COPY t4 FROM '%s' WITH (FORMAT csv, HEADER true)" % t4_path,
        "CREATE TABLE t5 AS SELECT * FROM t4",
        "INSERT INTO t5 VALUES " + ", ".join("(%s)" % ", ".join(sql_lit(v) for v in r)
                                            for r in t5extra),
        "COPY t4 FROM '%s' WITH (FORMAT csv)" % t4b_path,
        "CREATE TABLE dim (s text, cat text, n integer)",
        "INSERT INTO dim VALUES " + ", ".join("(%s)" % ", ".join(sql_lit(v) for v in r)
                                             for r in dim),
        "CREATE TABLE t7 (a integer, s text)",
        "CREATE TABLE t8 (k integer, p integer)",
        "COPY t8 FROM '%s' WITH (FORMAT csv)" % t8_path,
    ]
    stmts = setup + [q for q, _, _ in QUERIES] + ERRORS
    db = os.path.join(args.workdir, "db")
    proc = subprocess.run([args.driver, db], input="\n".join(s.replace("\n", " ") for s in stmts)
                          + "\n", capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        print("driver failed:", proc.returncode, proc.stderr)
        return 1
    outs = [json.loads(line) for line in proc.stdout.splitlines()]
    if len(outs) != len(stmts):
        print("driver gave %d results for %d statements" % (len(outs), len(stmts)))
        print(proc.stderr[-3000:])
        return 1
    fails = 0
    for s, o in zip(setup, outs):
        if not o["ok"]:
            print("SETUP FAILED: %s\n  %s" % (s[:200], o["error"]))
            return 1
    outs = outs[len(setup):]
    for (q, lq, ordered), o in zip(QUERIES, outs):
        want = lite.execute(lq or q).fetchall()
        if not o["ok"]:
            print("FAIL (error) %s\n  %s" % (q, o["error"]))
            fails += 1
            continue
        if not same(o["rows"], want, ordered):
            fails += 1
            print("FAIL (rows) %s\n  weir  : %s\n  sqlite: %s" %
                  (q, o["rows"][:8], [list(r) for r in want[:8]]))
    for q, o in zip(ERRORS, outs[len(QUERIES):]):
        if o["ok"]:
            fails += 1
            print("FAIL (no error) %s -> %s" % (q, o["rows"][:3]))
    print("%d queries, %d error cases, %d failures" % (len(QUERIES), len(ERRORS), fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
