#!/bin/bash
# Installs the reference peer's one dependency, the `ws` package (pinned), into .deps/bench-node.
set -euo pipefail
cd "$(dirname "$0")/../.."
WS_VERSION=8.23.0
dest=.deps/bench-node
if [ "$(node -p "require('./$dest/node_modules/ws/package.json').version" 2>/dev/null)" = "$WS_VERSION" ]; then
  exit 0
fi
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --no-save "ws@$WS_VERSION"
