#!/usr/bin/env bash
# README command 2 (and CI through .ci/run): install what is missing, build build/ (warnings are
# errors), build-asan/ (ASan+UBSan) and build-fuzz/ (libFuzzer), run every ctest test in each (and the
# integration tests in build/ once more under valgrind), print "N passed, N failed".
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
jobs="${HDB_BRIDGE_JOBS:-2}"

phase() { printf '\n=== %s (%(%H:%M:%S)T)\n' "$1" -1; }

phase "dependencies"
bash packaging/scripts/deps.sh
bash packaging/scripts/harperdb4-install.sh >/dev/null
bash packaging/scripts/harperdb3-install.sh >/dev/null

phase "build/ (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHDB_BRIDGE_WERROR=ON -DHDB_BRIDGE_VALGRIND_TESTS=ON
cmake --build build -j"$jobs"

phase "build-asan/ (ASan+UBSan)"
# No -Werror here: build/ already enforces it, and GCC 12 under -fsanitize reports false
# -Wmaybe-uninitialized warnings inside libstdc++ (std::regex, std::function).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHDB_BRIDGE_SANITIZE=ON -DHDB_BRIDGE_WERROR=OFF
cmake --build build-asan -j"$jobs"

passed=0
failed=0
status=0
# Runs ctest in one build tree (extra args: env assignments, then ctest options after --), adds its
# counts to the totals.
run_ctest() {
    local dir="$1" log summary
    shift
    local envs=() opts=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    opts=("$@")
    phase "ctest --test-dir $dir ${opts[*]}"
    log="$(mktemp)"
    if ! env "${envs[@]}" ctest --test-dir "$dir" --output-on-failure --no-tests=error "${opts[@]}" 2>&1 | tee "$log"; then
        status=1
    fi
    # "100% tests passed, 0 tests failed out of 15"
    summary="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 || true)"
    rm -f "$log"
    if [[ "$summary" =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
        failed=$((failed + BASH_REMATCH[1]))
        passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
    else
        echo "test.sh: no ctest summary from $dir" >&2
        failed=$((failed + 1))
        status=1
    fi
}

run_ctest build -- -LE valgrind
run_ctest build-asan \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The integration suite once more with every hdb-bridge under valgrind --leak-check=full (tests/lib/hdb.py,
# HDB_BRIDGE_VALGRIND=1): no memory error, no definite or indirect leak at any exit. See docs/robustness.md.
run_ctest build -- -L valgrind

# libFuzzer targets (tests/fuzz): clang, its own tree, each target for a bounded run (about 4 min for
# the build and five 40 s runs on 2 cores); the corpus kept in build-fuzz/ grows from run to run.
phase "build-fuzz/ (clang, libFuzzer+ASan+UBSan)"
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHDB_BRIDGE_FUZZ=ON \
    -DHDB_BRIDGE_WERROR=OFF -DHDB_BRIDGE_FUZZ_SECONDS="${HDB_BRIDGE_FUZZ_SECONDS:-40}"
cmake --build build-fuzz -j"$jobs"
run_ctest build-fuzz

phase "summary (build/, build-asan/ and build-fuzz/)"
echo "$passed passed, $failed failed"
[[ "$failed" -eq 0 ]] || status=1
exit "$status"
