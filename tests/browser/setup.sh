#!/bin/sh
# tests/browser/setup.sh - ctest fixture browser.setup: installs playwright-core from the
# lock file into DEST/node_modules (under the build folder, never the source tree) and checks
# that Debian's chromium is there. An install whose lock file is unchanged is kept, so
# repeated runs need no network.
# Usage: setup.sh SRC_DIR DEST_DIR
set -eu
src=$1
dest=$2
browser=${WEIR_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$browser" ]; then
  echo "browser.setup: '$browser' not found: install Debian's chromium (apt-get install chromium; make test does)" >&2
  exit 1
fi
command -v npm >/dev/null || { echo "browser.setup: npm not found (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dest"
if [ -f "$dest/node_modules/playwright-core/package.json" ] && [ -f "$dest/.installed-lock.json" ] \
   && cmp -s "$src/package-lock.json" "$dest/.installed-lock.json"; then
  echo "browser.setup: playwright-core already installed in $dest"
  exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dest/"
npm ci --prefix "$dest" --no-audit --no-fund --loglevel=error
cp "$src/package-lock.json" "$dest/.installed-lock.json"
echo "browser.setup: installed playwright-core in $dest; browser: $("$browser" --version 2>/dev/null || echo "$browser")"
