#!/usr/bin/env bash
# Prints the path of a cached minimal Debian 12 root (a tar.zst), building it on first use.
#
# Used by the tests that need a clean Debian 12 to install the .deb into (the systemd test boots it
# with systemd-nspawn) and as the base image of the Docker test (imported into podman). The root is
# debootstrap --variant=minbase plus systemd and the runtime libraries hdb-bridge links against, so
# `dpkg -i` of our .deb works in it without a network. Building takes ~1 min; later calls print the path.
#
#   packaging/scripts/base-rootfs.sh              # -> /var/cache/hdb-bridge-test/bookworm-<hash>.tar.zst
#   HDB_BRIDGE_ROOTFS_CACHE=/elsewhere base-rootfs.sh
set -euo pipefail

cache="${HDB_BRIDGE_ROOTFS_CACHE:-/var/cache/hdb-bridge-test}"
suite=bookworm
# systemd to boot it; procps for /bin/kill (ExecReload=); the rest are hdb-bridge's shared libraries.
packages=(systemd systemd-sysv dbus procps libnss-systemd
          libwebsockets17 libyaml-cpp0.7 libspdlog1.10 libsimdjson14 libfmt9 libssl3 libsystemd0 libstdc++6)

# The first deb mirror of the host's apt sources (deb822 or one-line format).
mirror() {
    local m
    m="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)"
    [[ -n "$m" ]] || m="$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
                          awk '{print $2}' | grep -v security | head -1 || true)"
    echo "${m:-http://deb.debian.org/debian}"
}

key="$(printf '%s\n' "$suite" "${packages[@]}" | sha256sum | cut -c1-12)"
out="$cache/$suite-$key.tar.zst"
if [[ -s "$out" ]]; then
    echo "$out"
    exit 0
fi

[[ "$(id -u)" -eq 0 ]] || { echo "base-rootfs: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "base-rootfs: install debootstrap" >&2; exit 1; }
mkdir -p "$cache"
# One builder at a time; the others wait, then find the file.
exec 9>"$cache/.lock"
timeout 900 flock 9
if [[ -s "$out" ]]; then
    echo "$out"
    exit 0
fi

work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf --one-file-system "$work"' EXIT
include="$(IFS=,; echo "${packages[*]}")"
echo "base-rootfs: debootstrap $suite into $work (about a minute)" >&2
timeout 540 debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$(mirror)" >"$work/log" 2>&1 || {
    tail -20 "$work/log" >&2
    exit 1
}
# Nothing host-specific or cached in the image.
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* "$work/root/etc/machine-id"
: >"$work/root/etc/machine-id"
tar --numeric-owner -C "$work/root" -cf - . | zstd -q -T2 -o "$work/root.tar.zst"
mv "$work/root.tar.zst" "$out"
echo "$out"
