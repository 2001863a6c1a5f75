#!/usr/bin/env python3
"""tests/helpers/flaky_proxy.py - an HTTP proxy that fails, then recovers.

    flaky_proxy.py UPSTREAM_URL [--fail N] [--status 503] [--mode status|drop]

Listens on 127.0.0.1 at a port of the OS's choice and prints "PORT <n>" on stdout. The
first N requests get `--status` with an S3-style XML error (mode status) or a closed
connection without a response (mode drop); later requests are forwarded to UPSTREAM_URL
byte for byte, Host header included, so SigV4 signatures made for the proxy's address
still verify upstream. Stops on SIGTERM or when stdin closes.
"""
import argparse
import http.client
import http.server
import sys
import threading
import urllib.parse

args = None
lock = threading.Lock()
seen = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        sys.stderr.write("flaky_proxy: " + (fmt % a) + "\n")

    def _handle(self):
        global seen
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with lock:
            seen += 1
            failing = seen <= args.fail
        if failing:
            if args.mode == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            x = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable'
                 b'</Code><Message>flaky_proxy: failing on purpose</Message></Error>')
            self.send_response(args.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(x)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(x)
            return
        up = urllib.parse.urlsplit(args.upstream)
        c = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() in ("expect", "connection", "keep-alive", "transfer-encoding"):
                continue
            c.putheader(k, v)
        c.endheaders(body)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", r.getheader("Content-Length", "0")
                         if self.command == "HEAD" else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        c.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("upstream")
    p.add_argument("--fail", type=int, default=0)
    p.add_argument("--status", type=int, default=503)
    p.add_argument("--mode", choices=["status", "drop"], default="status")
    args = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        sys.stdin.read()  # until the test closes our stdin (or dies)
    except KeyboardInterrupt:
        pass
    srv.shutdown()


if __name__ == "__main__":
    main()
