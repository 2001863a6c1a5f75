#!/bin/bash
# tests/helpers/s3_fixture.sh - the ctest fixture "s3": a SigV4-verifying S3 test server
# (../shared/tools/s3peer, s3rver behind a strict front) on a free loopback port.
#   s3_fixture.sh start S3PEER_SH DIR   starts it with data in DIR/data and writes the
#                                       eval-able lines S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY,
#                                       S3_SECRET_KEY... to DIR/env (and the port to DIR/port)
#   s3_fixture.sh stop S3PEER_SH DIR    stops it and removes DIR/data
# The keys are not s3rver's defaults, and the secret holds '/' and '+', so tests prove
# that signing and URI decoding are right.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: s3_fixture.sh start|stop S3PEER_SH DIR" >&2; exit 2; }
cmd=$1 peer=$2 dir=$3
[ -x "$peer" ] || { echo "s3_fixture.sh: '$peer' not found (shared/ must sit beside the repo)" >&2; exit 1; }
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-WEIRTESTKEY}
export S3_SECRET_KEY=${S3_SECRET_KEY:-weir/test+Secret0}
export S3_REGION=${S3_REGION:-us-east-1}
# s3rver 3.7.1 encrypts ListObjectsV2 continuation tokens with DES, which Node >= 17
# (OpenSSL 3) only offers through the legacy provider: without it every truncated listing
# is a 500 InternalError.
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--openssl-legacy-provider"

case $cmd in
start)
    if [ -f "$dir/port" ]; then "$peer" stop "$(cat "$dir/port")" >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    mkdir -p "$dir"
    # s3peer binds the port itself: a port taken between our pick and its start is retried.
    for _ in $(seq 1 20); do
        port=$((20000 + RANDOM % 40000))
        if out=$("$peer" start "$port" "$dir/data" 2>"$dir/start.log"); then
            echo "$out" > "$dir/env.tmp"
            echo "$port" > "$dir/port"
            mv "$dir/env.tmp" "$dir/env"
            cat "$dir/env"
            exit 0
        fi
        "$peer" stop "$port" >/dev/null 2>&1 || true
    done
    cat "$dir/start.log" >&2
    echo "s3_fixture.sh: could not start s3peer" >&2
    exit 1
    ;;
stop)
    if [ -f "$dir/port" ]; then "$peer" stop "$(cat "$dir/port")"; fi
    rm -rf "$dir/data" "$dir/port" "$dir/env"
    ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
