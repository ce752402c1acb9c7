#!/usr/bin/env bash
# run_fuzz.sh TARGET SECONDS CORPUS SEEDS DICT: one bounded libFuzzer run (ctest's fuzz.* tests).
# New inputs are kept in CORPUS; a crash leaves crash-<sha1> in CORPUS/../artifacts/ and fails.
set -euo pipefail
target="$1" seconds="$2" corpus="$3" seeds="$4" dict="$5"
artifacts="$(dirname "$corpus")/artifacts/"
mkdir -p "$corpus" "$artifacts"
# -timeout: one input taking this long is a hang; -rss_limit_mb: a blow-up is a finding too.
exec "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -dict="$dict" -artifact_prefix="$artifacts" "$corpus" "$seeds"
