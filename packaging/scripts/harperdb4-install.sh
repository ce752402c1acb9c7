#!/usr/bin/env bash
# Installs harperdb@4.7.29 from the npm registry into <repo>/.deps/harperdb-4.7.29/ (idempotent).
# The install goes into a temporary folder that is renamed only when complete, so an interrupted
# run is never mistaken for a finished one. Prints the prefix on stdout.
set -euo pipefail

version="4.7.29"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
prefix="${HDB4_PREFIX:-$repo/.deps/harperdb-$version}"
pkg="$prefix/node_modules/harperdb/package.json"

installed_version() {
    node -p 'require(process.argv[1]).version' "$1" 2>/dev/null || true
}

installed() { [[ -f "$pkg" && "$(installed_version "$pkg")" == "$version" ]]; }

if installed; then
    echo "$prefix"
    exit 0
fi

# One install at a time (demo.sh and test.sh may start together): wait, then look again.
mkdir -p "$(dirname "$prefix")"
exec 9>"$prefix.lock"
flock -w 900 9 || { echo "harperdb4-install: $prefix.lock is held by another install" >&2; exit 1; }
if installed; then
    echo "$prefix"
    exit 0
fi

command -v npm >/dev/null || { echo "harperdb4-install: npm not found (run packaging/scripts/deps.sh)" >&2; exit 1; }

tmp="$(mktemp -d "$prefix.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "harperdb4-install: npm install harperdb@$version into $prefix" >&2
start=$SECONDS
# --prefix with an empty package.json keeps npm from walking up to some other project.
echo '{"name":"hdb-bridge-deps","private":true}' >"$tmp/package.json"
npm install --prefix "$tmp" --no-audit --no-fund --no-update-notifier --loglevel=error \
    "harperdb@$version" </dev/null >&2
[[ "$(installed_version "$tmp/node_modules/harperdb/package.json")" == "$version" ]] || {
    echo "harperdb4-install: npm finished but harperdb $version is not in $tmp" >&2
    exit 1
}
rm -rf "$prefix"
mv "$tmp" "$prefix"
trap - EXIT
echo "harperdb4-install: done in $((SECONDS - start)) s" >&2
echo "$prefix"
