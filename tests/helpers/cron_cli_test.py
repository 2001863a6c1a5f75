#!/usr/bin/env python3
"""tests/helpers/cron_cli_test.py - `weir cron next` (cli/cron.c) through the cronprobe
helper, which links cli/cron.c and runs it for `cronprobe cron ...`: output, exit codes
(cli/cli.h) and error messages.

Usage: cron_cli_test.py --probe PATH
"""
import argparse
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    probe = ap.parse_args().probe
    failures = 0

    def check(args, code, out=None, err=None):
        nonlocal failures
        r = subprocess.run([probe, "cron"] + args, capture_output=True, text=True, check=False)
        problems = []
        if r.returncode != code:
            problems.append("exit %d, want %d" % (r.returncode, code))
        if out is not None and r.stdout != out:
            problems.append("stdout %r, want %r" % (r.stdout, out))
        if err is not None and err not in r.stderr:
            problems.append("stderr %r lacks %r" % (r.stderr, err))
        if problems:
            failures += 1
            print("FAIL weir cron %s: %s" % (" ".join(args), "; ".join(problems)))

    ams = ["--tz", "Europe/Amsterdam"]
    check(["next", "30 2 * * *"] + ams + ["--from", "2026-03-28T00:00:00Z", "--count", "3"], 0,
          "2026-03-28T01:30:00Z\n2026-03-29T01:00:00Z\n2026-03-30T00:30:00Z\n")
    # the five fields as separate arguments; options before the expression; --opt=value
    check(["next", "--count=2", "--tz=America/New_York", "--from", "2026-11-01T00:00:00Z",
           "30", "1", "*", "*", "*"], 0, "2026-11-01T05:30:00Z\n2026-11-02T06:30:00Z\n")
    # default count is 5; a --from without offset is local time in --tz
    check(["next", "@daily", "--from", "2026-01-01T12:00"] + ams, 0,
          "".join("2026-01-%02dT23:00:00Z\n" % d for d in range(1, 6)))
    check(["next", "0 0 * * *", "--from", "2026-01-01"], 0,
          "".join("2026-01-%02dT00:00:00Z\n" % d for d in range(2, 7)))
    # no --from: now; just count the lines
    r = subprocess.run([probe, "cron", "next", "* * * * *", "--count", "3"], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0 or len(r.stdout.splitlines()) != 3:
        failures += 1
        print("FAIL weir cron next '* * * * *' --count 3: %r" % (r,))
    check(["next", "0 0 30 2 *", "--from", "2026-01-01T00:00:00Z"], 1, "",
           "weir: cron '0 0 30 2 *' does not fire within 10 years")
    check(["next", "61 * * * *"], 2, "",
          "weir: cron '61 * * * *': minute field: 61 is out of range 0-59")
    check(["next", "5/15 * * * *"], 2, "", "minute field: a step needs a range")
    check(["next", "* * * *"], 2, "", "expected 5 fields")
    check(["next", "* * * * *", "--tz", "Mars/Base"], 2, "", "weir: unknown time zone 'Mars/Base'")
    check(["next", "* * * * *", "--tz", "../../etc/passwd"], 2, "", "weir: invalid time zone")
    check(["next", "* * * * *", "--from", "yesterday"], 2, "", "weir: --from: invalid time 'yesterday'")
    check(["next", "* * * * *", "--count", "0"], 2, "", "weir: invalid --count '0'")
    check(["next", "* * * * *", "--count", "1001"], 2, "", "weir: invalid --count '1001'")
    check(["next", "* * * * *", "--count", "3x"], 2, "", "weir: invalid --count '3x'")
    check(["next", "* * * * *", "--count"], 2, "", "weir: missing value for '--count'")
    check(["next", "* * * * *", "--bogus"], 2, "", "weir: unknown option '--bogus'")
    check(["next"], 2, "", "weir: missing cron expression")
    check([], 2, "", "weir: missing subcommand")
    check(["prev", "* * * * *"], 2, "", "weir: unknown cron subcommand 'prev'")
    check(["--help"], 0, None)
    check(["next", "--help"], 0, None)

    print("cron cli: %d failures" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
