"""tests/helpers/replay_server.py - a local stand-in for Open-Meteo and GH Archive, for the
weather and gharchive tests. Python 3 standard library only.

    python3 replay_server.py [--port 0]      prints "PORT <n>" once it listens on 127.0.0.1

Open-Meteo: GET .../v1/forecast?latitude=a,b&longitude=a,b&hourly=v1,v2[&forecast_days=N]
answers as the live API does (one object, or an array for several places), shaped like
the recorded response in fixtures/open-meteo/forecast-example.json, with deterministic
values; an unknown variable gets HTTP 400 {"error":true,"reason":...}. Under a path
segment `recorded` it answers the recorded response itself, byte for byte, whatever the
query (one place; its variables use the older spellings such as windspeed_10m).

GH Archive: GET .../YYYY-MM-DD-H.json.gz answers a generated hour file (gharchive_gen.py),
100 events unless a path segment says n-<events>.

Faults are switched by a path segment before the resource, so a test puts them in the
connection's URI (http://127.0.0.1:PORT/f-429x2-t1 becomes the base URL):
    f-<mode>x<count>-<tag>   the first <count> requests under this segment fail by <mode>:
        429     HTTP 429 with Retry-After: 1
        500     HTTP 500
        404     HTTP 404 (an hour not published yet)
        400     HTTP 400 with Open-Meteo's error JSON
        trunc   HTTP 200, the body cut in half (Content-Length of the half)
        cut     HTTP 200, full Content-Length announced, connection closed halfway
        slow    sleeps 5 s before answering
    Then requests succeed. <tag> only makes the segment (and its counter) unique.
GET /__log returns the requests seen so far as JSON [{"path", "status"}].
"""
import argparse
import datetime as dt
import json
import math
import os
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gharchive_gen  # noqa: E402

FIXTURE_PATHS = [
    os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "open-meteo", "forecast-example.json"),
]
# today's names -> the recording's older spellings
ALIASES = {"wind_speed_10m": "windspeed_10m", "weather_code": "weathercode",
           "relative_humidity_2m": "relativehumidity_2m", "wind_direction_10m": "winddirection_10m",
           "cloud_cover": "cloudcover", "dew_point_2m": "dewpoint_2m"}

LOCK = threading.Lock()
COUNTS = {}
LOG = []
GZ_CACHE = {}


def load_recording():
    for p in FIXTURE_PATHS:
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                return p, json.load(f)
    raise FileNotFoundError("forecast-example.json not found")


RECORDING_PATH, RECORDING = load_recording()


def forecast_for(lat, lon, variables, days):
    rec_hourly = RECORDING["hourly"]
    hours = days * 24
    start = dt.datetime(2026, 10, 3)
    hourly = {"time": [(start + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M") for h in range(hours)]}
    units = {"time": "iso8601"}
    for v in variables:
        src = rec_hourly.get(v) or rec_hourly.get(ALIASES.get(v, ""))
        units[v] = RECORDING["hourly_units"].get(v) or RECORDING["hourly_units"].get(ALIASES.get(v, ""), "")
        vals = []
        for h in range(hours):
            b = src[h % len(src)] if src else 0.0
            # a deterministic daily swing and a per-place offset on the recording's values
            x = b + round(3 * math.sin(2 * math.pi * h / 24) + (lat - 52) * 0.5, 1)
            if v == "precipitation":
                x = round(max(0.0, 0.4 * math.sin(h / 5 + lon)), 1)
            vals.append(round(x, 1))
        hourly[v] = vals
    return {
        "latitude": round(lat * 40) / 40, "longitude": round(lon * 40) / 40,
        "generationtime_ms": 0.05, "utc_offset_seconds": 0, "timezone": "GMT",
        "timezone_abbreviation": "GMT", "elevation": 10.0,
        "hourly_units": units, "hourly": hourly,
    }


KNOWN_VARS = set(RECORDING["hourly"]) | set(ALIASES)


def parse_faults(path):
    """Returns (mode or None, remaining path segments, events per file)."""
    segs = [s for s in path.split("/") if s]
    mode = None
    n_events = 100
    rest = []
    for s in segs:
        if s == "recorded":
            mode = mode or "recorded"
            continue
        m = re.fullmatch(r"f-([a-z0-9]+)x(\d+)(?:-[A-Za-z0-9_.]+)?", s)
        if m:
            with LOCK:
                used = COUNTS.get(s, 0)
                if used < int(m.group(2)):
                    COUNTS[s] = used + 1
                    mode = m.group(1)
            continue
        m = re.fullmatch(r"n-(\d+)", s)
        if m:
            n_events = int(m.group(1))
            continue
        rest.append(s)
    return mode, rest, n_events


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def record(self, status):
        with LOCK:
            LOG.append({"path": self.path, "status": status})

    def send(self, status, body, ctype="application/json", headers=None, cut=False):
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__log":
            with LOCK:
                body = json.dumps(LOG).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        mode, segs, n_events = parse_faults(url.path)
        if mode == "slow":
            time.sleep(5)
            mode = None
        if mode == "429":
            return self.send(429, b'{"error":true,"reason":"Too many requests"}',
                             headers={"Retry-After": "1"})
        if mode in ("500", "503"):
            return self.send(int(mode), b"<html>internal error</html>", "text/html")
        if mode == "404":
            return self.send(404, b"<html>not found</html>", "text/html")
        if mode == "400":
            return self.send(400, b'{"error":true,"reason":"Latitude must be in range of -90 to 90\xc2\xb0. Given: 91.0."}')
        if segs[-2:] == ["v1", "forecast"] and mode == "recorded":
            with open(RECORDING_PATH, "rb") as f:
                status, body = 200, f.read()
        elif segs[-2:] == ["v1", "forecast"]:
            status, body = self.forecast(urllib.parse.parse_qs(url.query))
        elif segs and re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{1,2}\.json\.gz", segs[-1]):
            status, body = self.hour_file(segs[-1], n_events)
        else:
            status, body = 404, b'{"error":true,"reason":"not found"}'
        ctype = "application/gzip" if body[:2] == b"\x1f\x8b" else "application/json"
        if status == 200 and mode == "trunc":
            body = body[: len(body) // 2]
        self.send(status, body, ctype, cut=(status == 200 and mode == "cut"))

    def forecast(self, q):
        try:
            lats = [float(x) for x in q["latitude"][0].split(",")]
            lons = [float(x) for x in q["longitude"][0].split(",")]
        except (KeyError, ValueError):
            return 400, b'{"error":true,"reason":"Parameter latitude and longitude required"}'
        if len(lats) != len(lons):
            return 400, b'{"error":true,"reason":"Parameter latitude and longitude must have the same number of elements"}'
        if any(abs(x) > 90 for x in lats):
            return 400, json.dumps({"error": True, "reason": "Latitude must be in range of -90 to 90°."}).encode()
        variables = [v for v in q.get("hourly", [""])[0].split(",") if v]
        for v in variables:
            if v not in KNOWN_VARS:
                return 400, json.dumps({"error": True, "reason": f"Cannot initialize WeatherVariable from invalid String value {v} for key hourly"}).encode()
        days = int(q.get("forecast_days", ["7"])[0])
        out = [forecast_for(a, o, variables, days) for a, o in zip(lats, lons)]
        doc = out[0] if len(out) == 1 else out
        return 200, json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    def hour_file(self, name, n_events):
        m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})-(\d{1,2})\.json\.gz", name)
        key = (name, n_events)
        with LOCK:
            data = GZ_CACHE.get(key)
        if data is None:
            data = gharchive_gen.gz_bytes(f"{m.group(1)}T{int(m.group(2)):02d}", n_events)
            with LOCK:
                GZ_CACHE[key] = data
        return 200, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
