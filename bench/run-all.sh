#!/usr/bin/env bash
# Runs every benchmark once, in one go, and keeps the full output in a log.
#
#   bench/run-all.sh [LOGFILE]   # default log: ${TMPDIR:-/tmp}/assay-bench-<UTC time>.log
#
# Builds first (the release binary and the lua_pool and sign_ceiling examples) so that no
# compilation overlaps a measurement, then: size, startup, memory, Lua vs Rust (wrk), password
# logins, the OIDC token endpoint, Lua state micro-benchmark.
# Knobs of the individual scripts (RUNS, ROUNDS, DURATION, ...) pass through the environment.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
LOG=${1:-${TMPDIR:-/tmp}/assay-bench-$(date -u +%Y%m%dT%H%M%SZ).log}

main() {
    echo "== machine"
    machine_info
    echo
    echo "== build"
    build_release
    echo "# (cd $REPO && CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release --example lua_pool --example sign_ceiling)" >&2
    (cd "$REPO" && cargo build --release --example lua_pool --example sign_ceiling) >&2 || die "building the lua_pool and sign_ceiling examples failed"
    ensure_wrk
    export SKIP_BUILD=1
    local s
    for s in size startup memory lua_vs_rust login oidc; do
        echo
        echo "== bench/$s.sh"
        "$BENCH_DIR/$s.sh"
    done
    echo
    echo "== cargo run --release --example lua_pool"
    (cd "$REPO" && cargo run -q --release --example lua_pool)
    echo
    echo "== summary"
    grep -h '^RESULT ' "$LOG" || true
}

main 2>&1 | tee "$LOG"
echo "log: $LOG"
