#!/bin/bash
# bench/gharchive_flatten.sh - how fast gharchive.fetch turns a GH Archive hour file into
# flattened rows: gzip -> lines -> rows (NDJSON), on one core, against the floor of
# `zcat FILE | wc -l` on the same file. The issue's target: >= 200,000 events/s.
#
#   bench/gharchive_flatten.sh [--events N] [--runs R] [--jansson] [--workdir DIR]
#
# Generates FILE once (tests/helpers/gharchive_gen.py, from the real sample events), builds
# the driver tests/helpers/ghflat_bench.c with the plugin's own ghflat.c at -O2 (whatever
# the CMake build type), and reports the best of R runs. --jansson also times the jansson
# reference flattener (slow; for comparison). Rows are written to a file in DIR, as the
# plugin writes them, not to /dev/null.
#
# Both wall and CPU time (user + sys of every process, zcat and wc included) are shown;
# events/s are computed from CPU time, since the target is "on one core" and wall time on
# a shared machine mostly measures the neighbours.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
events=200000
runs=3
jansson=0
work=${TMPDIR:-/tmp}/weir-bench-gharchive
while [ $# -gt 0 ]; do
    case $1 in
    --events) events=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --jansson) jansson=1; shift ;;
    --workdir) work=$2; shift 2 ;;
    *) echo "usage: $0 [--events N] [--runs R] [--jansson] [--workdir DIR]" >&2; exit 2 ;;
    esac
done
mkdir -p "$work"
file=$work/hour-$events.json.gz
if [ ! -s "$file" ]; then
    echo "generating $file ($events events)..."
    python3 "$repo/tests/helpers/gharchive_gen.py" --hour 2026-01-02T03 --events "$events" "$file"
fi
cc=${CC:-cc}
drv=$work/ghflat_bench
# shellcheck disable=SC2046
$cc -std=gnu11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$repo/plugins/gharchive" \
    $(pkg-config --cflags jansson zlib) -o "$drv" \
    "$repo/tests/helpers/ghflat_bench.c" "$repo/plugins/gharchive/ghflat.c" \
    $(pkg-config --libs jansson zlib)

gz_bytes=$(stat -c %s "$file")
raw_bytes=$(zcat "$file" | wc -c)

# best_of CMD: the best wall and CPU seconds ("WALL CPU") of R runs of a shell command.
best_of() {
    local best_w= best_c= i=0 out w u sy c
    while [ $i -lt "$runs" ]; do
        out=$( { TIMEFORMAT='%R %U %S'; time sh -c "$1" >/dev/null; } 2>&1 | tail -1)
        read -r w u sy <<<"$out"
        c=$(echo "$u + $sy" | bc -l)
        if [ -z "$best_w" ] || [ "$(echo "$w < $best_w" | bc -l)" = 1 ]; then best_w=$w; fi
        if [ -z "$best_c" ] || [ "$(echo "$c < $best_c" | bc -l)" = 1 ]; then best_c=$c; fi
        i=$((i + 1))
    done
    echo "$best_w $best_c"
}

read -r floor_w floor <<<"$(best_of "zcat '$file' | wc -l")"
read -r ours_w ours <<<"$(best_of "'$drv' '$file' '$work/rows.ndjson'")"
line=$("$drv" "$file" "$work/rows.ndjson")
rows=$(wc -l < "$work/rows.ndjson")
[ "$rows" -eq "$events" ] || { echo "expected $events rows, got $rows" >&2; exit 1; }

echo "file:        $file ($events events, $gz_bytes bytes gzip, $raw_bytes bytes NDJSON)"
echo "cpu:         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores visible)"
printf 'floor:       zcat | wc -l   cpu %.3f s  wall %.3f s  %8.0f events/s (cpu)\n' \
    "$floor" "$floor_w" "$(echo "$events / $floor" | bc -l)"
printf 'gharchive:   gzip -> rows   cpu %.3f s  wall %.3f s  %8.0f events/s (cpu)  %.2fx the floor'"'"'s cpu time\n' \
    "$ours" "$ours_w" "$(echo "$events / $ours" | bc -l)" "$(echo "$ours / $floor" | bc -l)"
echo "driver:      $line"
if [ "$jansson" = 1 ]; then
    read -r j_w j <<<"$(best_of "'$drv' '$file' '$work/rows-jansson.ndjson' --jansson")"
    printf 'jansson ref: gzip -> rows   cpu %.3f s  wall %.3f s  %8.0f events/s (cpu)\n' \
        "$j" "$j_w" "$(echo "$events / $j" | bc -l)"
fi
target=200000
ok=$(echo "$events / $ours >= $target" | bc -l)
if [ "$ok" = 1 ]; then echo "target:      >= $target events/s: met"; else echo "target:      >= $target events/s: NOT met"; fi
