#!/usr/bin/env bash
# Installs the Debian 12 packages hdb-bridge needs to build, test and run its demo (idempotent).
# Runs apt-get only when something is missing; re-runs itself with sudo when not root.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libwebsockets-dev libssl-dev libsimdjson-dev libspdlog-dev libyaml-cpp-dev libsystemd-dev doctest-dev
    python3 socat curl ca-certificates
    clang libclang-rt-14-dev valgrind
    lintian debootstrap systemd-container zstd    # the .deb and the real-systemd test
    podman buildah runc fuse-overlayfs uidmap catatonit    # the Dockerfile test (built and run without Docker)
)

# HarperDB 4.7 needs Node >= 18 (Debian 12's nodejs is 18.19); keep a newer one already on PATH.
node_major() {
    local v
    v="$(node --version 2>/dev/null || true)"
    v="${v#v}"
    echo "${v%%.*}"
}
major="$(node_major)"
if [[ -z "$major" || "$major" -lt 18 ]] || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    [[ "$status" == "installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps: all Debian packages present"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null; then
        exec sudo -n -- bash "${BASH_SOURCE[0]}" "$@"
    fi
    echo "deps: missing ${missing[*]}; run this script as root (no sudo here)" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
