"""tests/helpers/gharchive_gen.py - generates GH Archive hour files from the real sample
events in ../shared/fixtures/gharchive (beside the repository, as CI has it),
for the replay server, the e2e tests and bench/gharchive_flatten.sh.

Events keep the samples' shapes (CreateEvent, PushEvent, IssueCommentEvent with org,
WatchEvent, ForkEvent) with ids, actors, repositories and created_at varied
deterministically from (hour, index), so the same call always yields the same bytes.
Some commit messages carry non-ASCII text, quotes and backslashes, to exercise escaping.

    python3 gharchive_gen.py --hour 2026-01-02T03 --events 200000 OUT.json.gz
"""
import argparse
import copy
import datetime as dt
import gzip
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE_PATHS = [
    os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "gharchive", "sample-events.ndjson"),
]

# Roughly GH Archive's mix: pushes dominate.
WEIGHTS = {"PushEvent": 50, "CreateEvent": 14, "WatchEvent": 12, "IssueCommentEvent": 14,
           "ForkEvent": 10}
MESSAGES = ["Fix main header height on mobile", "Füge Übersetzung hinzu ☃",
            'Quote "this" and a back\\slash', "日本語のコミットメッセージ", "tab\there"]


def load_samples():
    for p in SAMPLE_PATHS:
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
    raise FileNotFoundError("sample-events.ndjson not found in " + ", ".join(SAMPLE_PATHS))


def hour_start(hour):
    """'2026-01-02T03' or '2026-01-02-3' -> aware datetime."""
    h = hour.replace("T", "-")
    d, hh = h.rsplit("-", 1)
    return dt.datetime.strptime(d, "%Y-%m-%d").replace(hour=int(hh), tzinfo=dt.timezone.utc)


def events(hour, n, seed=1):
    """Yields n event dicts for the hour starting at `hour` (see hour_start)."""
    samples = load_samples()
    by_type = {}
    for s in samples:
        by_type.setdefault(s["type"], []).append(s)
    types = [t for t in WEIGHTS if t in by_type]
    weights = [WEIGHTS[t] for t in types]
    start = hour_start(hour)
    rng = random.Random(f"{seed}:{start.isoformat()}")
    base_id = int(start.timestamp()) * 1000
    for i in range(n):
        t = rng.choices(types, weights)[0]
        e = copy.deepcopy(rng.choice(by_type[t]))
        e["id"] = str(base_id + i)
        uid = 1000 + rng.randrange(50000)
        e["actor"]["id"] = uid
        e["actor"]["login"] = f"user{uid}"
        rid = 100000 + rng.randrange(2000)
        e["repo"]["id"] = rid
        e["repo"]["name"] = f"org{rid % 97}/repo{rid}"
        if "org" in e:
            e["org"]["login"] = f"org{rid % 97}"
        sec = i * 3600 // max(n, 1)
        e["created_at"] = (start + dt.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if t == "PushEvent":
            for c in e["payload"].get("commits", []):
                c["message"] = MESSAGES[i % len(MESSAGES)]
        yield e


def ndjson_bytes(hour, n, seed=1):
    return b"".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                    for e in events(hour, n, seed))


def gz_bytes(hour, n, seed=1):
    # mtime=0: the same input always compresses to the same bytes
    return gzip.compress(ndjson_bytes(hour, n, seed), compresslevel=6, mtime=0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hour", default="2026-01-02T03")
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out")
    a = ap.parse_args()
    data = gz_bytes(a.hour, a.events, a.seed)
    with open(a.out + ".tmp", "wb") as f:
        f.write(data)
    os.rename(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
