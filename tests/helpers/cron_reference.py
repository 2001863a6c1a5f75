#!/usr/bin/env python3
"""tests/helpers/cron_reference.py - independent reference check of weir's cron (core/cron.c).

Generates seeded random cron expressions (valid and invalid) and start instants in UTC,
Europe/Amsterdam and America/New_York (many near DST transitions), asks the `cronprobe`
helper for the next and previous fire times in one batch, and compares them with a
reference written from docs/cron.md alone, with Python's stdlib: a regex parser, and an
evaluator that visits every local calendar day and every matching minute of it, and asks
zoneinfo (fold=0 / fold=1) whether that wall time exists, repeats or was skipped.

Usage: cron_reference.py --probe PATH [--cases N] [--seed S]
"""
import argparse
import datetime as dt
import random
import re
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

HORIZON = 3653 * 86400  # docs/cron.md: "10 years" = 3653 days
ZONES = ["UTC", "Europe/Amsterdam", "America/New_York"]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
PRESETS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (low, high, names or None); day-of-week admits 7 for Sunday.
FIELDS = [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 7, DAYS)]


class Bad(Exception):
    pass


# ---------------------------------------------------------------- parsing

def value(text, lo, hi, names):
    if text.isdigit():
        v = int(text)
    elif names and len(text) == 3 and text.lower() in names:
        v = names.index(text.lower()) + lo
    else:
        raise Bad(text)
    if not lo <= v <= hi:
        raise Bad(text)
    return v


def parse_field(text, lo, hi, names):
    out = set()
    for part in text.split(","):
        m = re.fullmatch(r"\*(?:/([0-9]+))?", part)
        if m:
            a, b, step = lo, hi, m.group(1)
        else:
            m = re.fullmatch(r"([A-Za-z]+|[0-9]+)(?:-([A-Za-z]+|[0-9]+)(?:/([0-9]+))?)?", part)
            if not m:
                raise Bad(part)  # includes "5/15": a step needs a range
            a = value(m.group(1), lo, hi, names)
            b = value(m.group(2), lo, hi, names) if m.group(2) else a
            step = m.group(3)
            if b < a:
                raise Bad(part)
        step = int(step) if step is not None else 1
        if step < 1 or step > 1000:
            raise Bad(part)
        out.update(range(a, b + 1, step))
    return out


def parse(expr):
    s = expr.strip(" \t")
    if s.startswith("@"):
        if s.lower() not in PRESETS:
            raise Bad(s)
        s = PRESETS[s.lower()]
    parts = re.split(r"[ \t]+", s)
    if len(parts) != 5 or any(ch for ch in s if ord(ch) < 32 and ch != "\t"):
        raise Bad(s)
    sets = [parse_field(p, *f) for p, f in zip(parts, FIELDS)]
    dow = {d % 7 for d in sets[4]}
    return {
        "min": sets[0], "hour": sets[1], "dom": sets[2], "mon": sets[3], "dow": dow,
        "wild": parts[0][0] == "*" or parts[1][0] == "*",
        "and": parts[2][0] == "*" or parts[4][0] == "*",
    }


# ---------------------------------------------------------------- evaluation

def day_matches(c, d):
    if d.month not in c["mon"]:
        return False
    a = d.day in c["dom"]
    b = (d.isoweekday() % 7) in c["dow"]
    return (a and b) if c["and"] else (a or b)


def offset(z, t):
    return dt.datetime.fromtimestamp(t, z).utcoffset()


def gap_end(z, u1, u0):
    """Smallest second t in (u1, u0] whose offset differs from the offset at u1."""
    before = offset(z, u1)
    lo, hi = u1, u0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offset(z, mid) == before:
            lo = mid
        else:
            hi = mid
    return hi


STATS = {"gap": 0, "repeat": 0}


def fires_on(c, z, d):
    """All fire instants (whole seconds) contributed by local date d."""
    out = []
    if not day_matches(c, d):
        return out
    for h in sorted(c["hour"]):
        for m in sorted(c["min"]):
            naive = dt.datetime(d.year, d.month, d.day, h, m)
            u0 = int(naive.replace(tzinfo=z, fold=0).timestamp())
            u1 = int(naive.replace(tzinfo=z, fold=1).timestamp())
            if u0 == u1:
                out.append(u0)
            elif u0 < u1:  # repeated wall time
                STATS["repeat"] += 1
                out.append(u0)
                if c["wild"]:
                    out.append(u1)
            elif not c["wild"]:  # skipped wall time
                STATS["gap"] += 1
                out.append(gap_end(z, u1, u0))
    return out


def local_date(z, t):
    return dt.datetime.fromtimestamp(t, z).date()


def reference(c, zone, from_us, count):
    """The |count| fire times after (count > 0) or before (count < 0) from_us, each one
    searched within the 10-year horizon of the one before it, as cronprobe chains calls."""
    z = ZoneInfo(zone)
    step = dt.timedelta(days=1 if count > 0 else -1)
    if count > 0:
        edge = from_us // 1_000_000 + 1  # first candidate second
        inside = lambda t, ref: ref <= t < ref + HORIZON
    else:
        edge = (from_us - 1) // 1_000_000  # last candidate second
        inside = lambda t, ref: ref - HORIZON < t <= ref
    d = local_date(z, edge) - 2 * step
    found, extra, reach = set(), None, edge
    while True:
        for t in fires_on(c, z, d):
            if (t >= edge if count > 0 else t <= edge):
                found.add(t)
                reach = max(reach, t) if count > 0 else min(reach, t)
        if extra is None and len(found) >= abs(count):
            extra = d + 2 * step
        if extra is not None and d == extra:
            break
        # no chain reaches past the farthest fire time found + the horizon
        bound = reach + HORIZON if count > 0 else reach - HORIZON
        if (d - local_date(z, bound)) * (1 if count > 0 else -1) > dt.timedelta(days=2):
            break
        d += step
    out, ref = [], edge
    for t in sorted(found, reverse=count < 0):
        if len(out) == abs(count) or not inside(t, ref):
            break
        out.append(t)
        ref = t + 1 if count > 0 else t - 1
    return out


def fmt(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_from(us):
    sec, frac = divmod(us, 1_000_000)
    s = dt.datetime.fromtimestamp(sec, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return s + (".%06d" % frac if frac else "") + "Z"


# ---------------------------------------------------------------- generation

def gen_value(rng, fi):
    lo, hi, names = FIELDS[fi]
    hot = {0: [0, 15, 30, 45, 59], 1: [0, 1, 2, 3, 23], 2: [1, 15, 28, 29, 30, 31], 3: [2, 3, 10, 11],
           4: [0, 1, 6, 7]}[fi]
    v = rng.choice(hot) if rng.random() < 0.5 else rng.randint(lo, hi)
    if names and rng.random() < 0.3 and v - lo < len(names):
        n = names[v - lo]
        return rng.choice([n, n.upper(), n.capitalize()])
    return str(v)


def gen_part(rng, fi):
    lo, hi, _ = FIELDS[fi]
    r = rng.random()
    if r < 0.25:
        return "*"
    if r < 0.4:
        return "*/%d" % rng.choice([1, 2, 3, 5, 7, 10, 15, 20, 30, rng.randint(1, hi + 1)])
    if r < 0.7:
        return gen_value(rng, fi)
    a = rng.randint(lo, hi)
    b = rng.randint(a, hi)
    s = "%d-%d" % (a, b)
    if rng.random() < 0.4:
        s += "/%d" % rng.randint(1, max(1, b - a + 1))
    return s


def gen_field(rng, fi):
    n = 1 if rng.random() < 0.7 else rng.randint(2, 3)
    return ",".join(gen_part(rng, fi) for _ in range(n))


def gen_invalid(rng):
    f = [gen_field(rng, i) for i in range(5)]
    i = rng.randrange(5)
    lo, hi, names = FIELDS[i]
    f[i] = rng.choice([
        "%d/%d" % (rng.randint(lo, hi), rng.randint(1, 9)), str(hi + 1), "%d-%d" % (hi, lo),
        "*/0", "1,", ",1", "xyz", "*-3", "1-", "-1", "*/", "1--2", "janu", "?", "L", "1#2",
    ])
    if rng.random() < 0.15:
        return " ".join(f[:rng.choice([3, 4, 6])] if rng.random() < 0.5 else f + ["*"])
    return " ".join(f)


def gen_expr(rng):
    r = rng.random()
    if r < 0.04:
        return rng.choice(list(PRESETS)).upper() if rng.random() < 0.2 else rng.choice(list(PRESETS))
    if r < 0.12:
        return gen_invalid(rng)
    f = [gen_field(rng, i) for i in range(5)]
    if rng.random() < 0.5:
        f[3] = "*"
    if rng.random() < 0.3:
        f[2], f[4] = ("*", f[4]) if rng.random() < 0.5 else (f[2], "*")
    sep = " " if rng.random() < 0.9 else "  "  # no tabs: they separate cronprobe input
    return sep.join(f)


def gen_from(rng, zone):
    year = rng.randint(1995, 2036)
    r = rng.random()
    if r < 0.5:
        # around the EU (last Sunday of March / October) and US (2nd Sunday of March, 1st of
        # November) transitions
        month, day = rng.choice([(3, rng.randint(7, 31)), (10, rng.randint(20, 31)),
                                 (11, rng.randint(1, 8)), (4, rng.randint(1, 6))])
        base = dt.datetime(year, month, day, tzinfo=dt.timezone.utc)
        t = int(base.timestamp()) + rng.randint(-30, 30) * 3600 + rng.choice([0, 0, 60 * rng.randint(0, 59), rng.randint(0, 3599)])
    else:
        t = int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp()) + rng.randint(0, 366 * 86400)
        if rng.random() < 0.5:
            t -= t % 60
    us = t * 1_000_000
    if rng.random() < 0.1:
        us += rng.randint(1, 999_999)
    return us


_TRANSITIONS = {}


def transitions(zone, year):
    """Instants (seconds) in `year` where the zone's UTC offset changes, found by scanning
    hour by hour and bisecting (independent of the C zone code)."""
    key = (zone, year)
    if key not in _TRANSITIONS:
        z = ZoneInfo(zone)
        t = int(dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc).timestamp())
        end = int(dt.datetime(year + 1, 1, 1, tzinfo=dt.timezone.utc).timestamp())
        out, prev = [], offset(z, t)
        while t < end:
            nxt = t + 3600
            o = offset(z, nxt)
            if o != prev:
                out.append(gap_end(z, t, nxt))
                prev = o
            t = nxt
        _TRANSITIONS[key] = out
    return _TRANSITIONS[key]


def gen_dst_case(rng):
    """An expression and start instant aimed at a DST transition: a fire time on the
    transition's local day in or next to the skipped or repeated hour."""
    while True:
        zone = rng.choice(ZONES[1:])
        year = rng.randint(1996, 2036)
        if transitions(zone, year):
            break
    t = rng.choice(transitions(zone, year))
    z = ZoneInfo(zone)
    local = dt.datetime.fromtimestamp(t, z)
    mins = rng.choice(["0", "30", "0,30", "59", "*/15", "*", "15-45/15", str(rng.randint(0, 59))])
    hours = rng.choice(["1", "2", "3", "1,2", "2,3", "1-3", "*", "*/2", "0-4", "2-3/1"])
    r = rng.random()
    if r < 0.5:
        days = "* * *"
    elif r < 0.7:
        days = "%d %d *" % (local.day, local.month)
    elif r < 0.85:
        days = "* * %s" % DAYS[local.isoweekday() % 7]
    else:
        days = "%d * %d" % (rng.randint(1, 28), local.isoweekday() % 7)
    from_us = (t - rng.randint(0, 2 * 86400)) * 1_000_000
    if rng.random() < 0.3:
        from_us = (t + rng.randint(-3, 3) * 1800) * 1_000_000
    if rng.random() < 0.5:
        from_us = (t + rng.randint(0, 2 * 86400)) * 1_000_000  # for cron_prev
    return "%s %s %s" % (mins, hours, days), zone, from_us


def check_zones(probe, rng):
    """tz_offset_at against zoneinfo for every zone installed, at random instants from 1850
    to 2200 (beyond 2037 the TZif footer's POSIX rule decides). Returns the mismatches."""
    import zoneinfo
    names = sorted(n for n in zoneinfo.available_timezones()
                   if not n.startswith(("right/", "posix/")) and n not in ("Factory", "localtime"))
    lines, want = [], []
    lo = int(dt.datetime(1850, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    hi = int(dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    for n in names:
        z = ZoneInfo(n)
        for _ in range(20):
            t = rng.randint(lo, hi)
            lines.append("%s\t%s\n" % (n, fmt(t)))
            want.append("ok %d" % int(offset(z, t).total_seconds()))
    res = subprocess.run([probe, "offsets"], input="".join(lines), capture_output=True,
                         text=True, check=False)
    got = res.stdout.splitlines()
    bad = 0
    for line, w, g in zip(lines, want, got + [""] * len(lines)):
        if w != g:
            bad += 1
            if bad <= 10:
                print("ZONE MISMATCH %s: zoneinfo %s, cronprobe %s" % (line.strip(), w, g))
    print("%d zones, %d instants: %d offset mismatches" % (len(names), len(lines), bad))
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=20260329)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    cases = []
    for _ in range(args.cases):
        if rng.random() < 0.3:
            expr, zone, from_us = gen_dst_case(rng)
        else:
            expr = gen_expr(rng)
            zone = rng.choice(ZONES)
            from_us = gen_from(rng, zone)
        count = rng.choice([1, 2, 3, 4])
        cases.append((expr, zone, from_us, count))
        cases.append((expr, zone, from_us, -count))

    t0 = time.monotonic()
    inp = "".join("%s\t%s\t%s\t%d\n" % (e, z, fmt_from(f), n) for e, z, f, n in cases)
    res = subprocess.run([args.probe], input=inp, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        print("cronprobe failed (%d): %s" % (res.returncode, res.stderr), file=sys.stderr)
        return 1
    got = res.stdout.splitlines()
    if len(got) != len(cases):
        print("cronprobe printed %d lines for %d cases" % (len(got), len(cases)), file=sys.stderr)
        return 1
    t1 = time.monotonic()

    failures = 0
    counts = {"error": 0, "ok": 0, "empty": 0}
    for (expr, zone, from_us, count), line in zip(cases, got):
        try:
            c = parse(expr)
        except Bad:
            counts["error"] += 1
            if not line.startswith("error "):
                failures += 1
                print("MISMATCH %r: reference rejects it, cronprobe says %r" % (expr, line))
            continue
        if not line.startswith("ok"):
            failures += 1
            print("MISMATCH %r: reference accepts it, cronprobe says %r" % (expr, line))
            continue
        want = "ok" + "".join(" " + fmt(t) for t in reference(c, zone, from_us, count))
        counts["ok"] += 1
        counts["empty"] += want == "ok"
        if want != line:
            failures += 1
            print("MISMATCH %r zone=%s from=%s count=%d\n  want: %s\n  got:  %s"
                  % (expr, zone, fmt_from(from_us), count, want, line))
        if failures > 30:
            break
    t2 = time.monotonic()
    failures += check_zones(args.probe, rng)
    print("%d cases (%d parse errors, %d evaluated, %d with no fire time; %d skipped and %d "
          "repeated wall times met): %d mismatches; cronprobe %.1fs, reference %.1fs"
          % (len(cases), counts["error"], counts["ok"], counts["empty"], STATS["gap"],
             STATS["repeat"], failures, t1 - t0, t2 - t1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
