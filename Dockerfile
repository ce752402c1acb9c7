# hdb-bridge as a sidecar container: HarperDB changes as NDJSON on Unix sockets in a shared volume.
# docs/docker.md shows a compose file, the config and password, the healthcheck and how to build:
#
#   docker buildx build --build-context frames=../shared/frames -t hdb-bridge .
#
# (`frames`: the captured HarperDB frames some unit tests read; the build stage runs the unit tests.)

# --- build: compile, then run the tests that need no HarperDB ------------------------------------------
# The compilers and -dev packages: a stage of its own (`--target build-deps` gives it a name to keep
# in a build cache), before any source, so a rebuild after a code change starts after it.
FROM debian:bookworm-slim AS build-deps
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        build-essential cmake pkg-config python3 ccache \
        libwebsockets-dev libssl-dev libsimdjson-dev libspdlog-dev libyaml-cpp-dev libsystemd-dev doctest-dev \
 && rm -rf /var/lib/apt/lists/*

FROM build-deps AS build
# Parallel compile jobs (default: every CPU).
ARG JOBS=
COPY --from=frames . /src/shared/frames
COPY . /src/hdb-bridge
WORKDIR /src/hdb-bridge
# ccache in a build cache mount: a rebuild after a change compiles only what the change touched.
RUN --mount=type=cache,target=/ccache,id=hdb-bridge-ccache \
    export CCACHE_DIR=/ccache CCACHE_MAXSIZE=500M \
 && cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHDB_BRIDGE_WERROR=ON -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
 && cmake --build /build -j"${JOBS:-$(nproc)}" \
 && { ccache --show-stats | grep -E 'Hits|Misses' || true; }
# The unit tests and the config checker's 55 broken configs; the tests against HarperDB need one running.
RUN ctest --test-dir /build --output-on-failure --timeout 300 -R '^(unit|integration\.test_config_cli)$'
RUN strip --strip-debug -o /hdb-bridge /build/daemon/hdb-bridge

# --- runtime: the binary, its shared libraries, curl for the healthcheck ---------------------------------
FROM debian:bookworm-slim
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libwebsockets17 libyaml-cpp0.7 libspdlog1.10 libsimdjson14 libfmt9 libssl3 libsystemd0 \
        ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
# A fixed uid/gid, so a host directory bound to /run/hdb-bridge can be given to it (chown 10101:10101)
# and a consumer container can join the group.
RUN groupadd --gid 10101 hdb-bridge \
 && useradd --uid 10101 --gid 10101 --no-create-home --home-dir /var/lib/hdb-bridge \
        --shell /usr/sbin/nologin hdb-bridge \
 && install -d -o hdb-bridge -g hdb-bridge -m 0750 /var/lib/hdb-bridge \
 && install -d -o hdb-bridge -g hdb-bridge -m 0770 /run/hdb-bridge \
 && install -d -m 0755 /etc/hdb-bridge
COPY --from=build /hdb-bridge /usr/bin/hdb-bridge
COPY config/hdb-bridge.yaml /etc/hdb-bridge/hdb-bridge.yaml

# Checkpoints (the daemon takes STATE_DIRECTORY as systemd would pass it); sockets for the consumers.
ENV STATE_DIRECTORY=/var/lib/hdb-bridge
VOLUME ["/var/lib/hdb-bridge", "/run/hdb-bridge"]
USER 10101:10101
# Needs `metrics: {listen: 127.0.0.1:9464}` in the config; HDB_BRIDGE_HEALTHZ moves it.
ENV HDB_BRIDGE_HEALTHZ=http://127.0.0.1:9464/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD curl --fail --silent --show-error --max-time 4 --output /dev/null "$HDB_BRIDGE_HEALTHZ" || exit 1
# SIGTERM closes the subscriptions, flushes the sinks and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/hdb-bridge"]
CMD ["--config", "/etc/hdb-bridge/hdb-bridge.yaml"]
