#!/bin/sh
# tests/unit/check_plugin_exports.sh DIR - fails unless every weir_*.so in DIR exports
# exactly one defined dynamic symbol, weir_plugin_init (STYLE.md: plugins build with
# -fvisibility=hidden and never leak internal symbols into the host's namespace).
set -eu
dir=${1:?usage: check_plugin_exports.sh PLUGIN_DIR}
n=0
status=0
for so in "$dir"/weir_*.so; do
    [ -e "$so" ] || continue
    n=$((n + 1))
    syms=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWGSiu]$/ {print $3}' | sort)
    if [ "$syms" != "weir_plugin_init" ]; then
        echo "$so: exports more than weir_plugin_init:" >&2
        echo "$syms" | sed 's/^/  /' >&2
        status=1
    fi
done
if [ "$n" -eq 0 ]; then
    echo "no plugins found in $dir" >&2
    exit 1
fi
echo "$n plugin(s) checked"
exit $status
