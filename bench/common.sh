# Shared by the bench/*.sh scripts (sourced, not run). Provides:
#   build_release            cargo build --release -p assay-runtime (skipped when SKIP_BUILD=1)
#   machine_info             date, nproc, CPU model, kernel, rustc version
#   write_config DIR [auth]  DIR/engine.toml: port 0, SQLite in DIR/data, bench flows, log warn
#   start_engine DIR         serves with DIR/engine.toml; sets ENGINE_PID and ENGINE_URL
#   stop_engine              SIGTERM, then SIGKILL after 10 s
#   ensure_wrk               installs wrk with apt-get when missing
# Everything lives under one temp dir ($BENCH_TMP) that the EXIT trap removes, after killing
# every process this script started (by PID).

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/assay-target}
BIN=$CARGO_TARGET_DIR/release/assay-engine
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/assay-bench.XXXXXX")
_BENCH_PIDS=()
ENGINE_PID=
ENGINE_URL=

die() {
    echo "error: $*" >&2
    exit 1
}

_bench_cleanup() {
    local pid
    for pid in "${_BENCH_PIDS[@]+"${_BENCH_PIDS[@]}"}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$BENCH_TMP"
}
trap _bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_release() {
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        echo "# building: (cd $REPO && CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release -p assay-runtime)" >&2
        (cd "$REPO" && cargo build --release -p assay-runtime) >&2 || die "release build failed"
    fi
    [ -x "$BIN" ] || die "$BIN not found (build first or unset SKIP_BUILD)"
}

machine_info() {
    echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "host:    nproc=$(nproc), CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
    echo "kernel:  $(uname -sr)"
    echo "rustc:   $(rustc --version 2>/dev/null || echo unknown)"
    echo "commit:  $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO" diff --quiet HEAD -- runtime 2>/dev/null || echo ' (runtime/ has uncommitted changes)')"
}

# write_config DIR [auth]: the benchmark configuration. `auth` also enables the auth module so
# that the bundled /auth/hello flow (a template render) is served.
write_config() {
    local dir=$1 modules=""
    [ "${2:-}" = auth ] && modules='auto_enable_modules = ["auth"]'
    mkdir -p "$dir"
    cat >"$dir/engine.toml" <<EOF
$modules

[server]
bind_addr = "127.0.0.1:0"
shutdown_grace_secs = 2

[backend]
type = "sqlite"
data_dir = "$dir/data"

[flows]
dir = "$BENCH_DIR/flows"

[log]
level = "warn"
EOF
}

# start_engine DIR: runs `assay-engine serve --config DIR/engine.toml` in DIR, waits for the
# "listening on" line and for /readyz to answer 200.
start_engine() {
    local dir=$1 line=
    (cd "$dir" && exec "$BIN" serve --config "$dir/engine.toml") >"$dir/stdout" 2>"$dir/stderr" &
    ENGINE_PID=$!
    _BENCH_PIDS+=("$ENGINE_PID")
    for _ in $(seq 3000); do
        line=$(grep -m1 -o 'listening on http://[^ ]*' "$dir/stdout" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$ENGINE_PID" 2>/dev/null || { cat "$dir/stderr" >&2; die "the engine exited during start"; }
        sleep 0.01
    done
    [ -n "$line" ] || die "the engine did not announce its address within 30 s"
    ENGINE_URL=${line#listening on }
    for _ in $(seq 1000); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$ENGINE_URL/readyz" || true)" = 200 ] && return 0
        sleep 0.01
    done
    die "$ENGINE_URL/readyz never answered 200"
}

stop_engine() {
    [ -n "$ENGINE_PID" ] || return 0
    kill -TERM "$ENGINE_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$ENGINE_PID" 2>/dev/null || true
    wait "$ENGINE_PID" 2>/dev/null || true
    ENGINE_PID=
}

# status_kib PID FIELD: a field of /proc/PID/status in KiB (VmRSS, VmHWM, ...).
status_kib() {
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}

ensure_wrk() {
    command -v wrk >/dev/null && return 0
    echo "# wrk missing: installing it with apt-get" >&2
    local sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq wrk >&2 || die "cannot install wrk; install it and rerun"
    command -v wrk >/dev/null || die "wrk still missing"
}
