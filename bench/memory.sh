#!/usr/bin/env bash
# Idle resident memory of a serving engine (target: under 30 MB), from /proc/PID/status.
#
#   bench/memory.sh             # REQUESTS=1000 IDLE=3 BURST=10; SKIP_BUILD=1 to reuse the binary
#
# Phases, each followed by IDLE seconds of idleness before reading VmRSS:
#   1. after start (SQLite in a fresh temp dir, bench flows loaded, auth module on);
#   2. after REQUESTS sequential keep-alive requests cycling /healthz, /readyz, /bench/lua
#      (Lua, JSON) and /auth/hello (Lua + template);          <- the figure held to the target
#   3. after a BURST-second wrk load of /bench/lua with 16 connections (for information).
# VmHWM is the peak RSS so far; RssAnon is heap and stacks, RssFile mapped file pages (the binary).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REQUESTS=${REQUESTS:-1000}
IDLE=${IDLE:-3}
BURST=${BURST:-10}

build_release
ensure_wrk
machine_info
echo "command: REQUESTS=$REQUESTS IDLE=$IDLE BURST=$BURST bench/memory.sh"
echo

dir=$BENCH_TMP/memory
write_config "$dir" auth
start_engine "$dir"
echo "engine pid $ENGINE_PID at $ENGINE_URL"

report() {
    local label=$1 key=$2 rss hwm anon file threads
    rss=$(status_kib "$ENGINE_PID" VmRSS)
    hwm=$(status_kib "$ENGINE_PID" VmHWM)
    anon=$(status_kib "$ENGINE_PID" RssAnon)
    file=$(status_kib "$ENGINE_PID" RssFile)
    threads=$(awk '$1 == "Threads:" {print $2}' "/proc/$ENGINE_PID/status")
    printf '  %-34s VmRSS %6d KiB (%5.1f MB)  VmHWM %6d KiB  RssAnon %6d KiB  RssFile %6d KiB  threads %s\n' \
        "$label" "$rss" "$(echo "$rss" | awk '{print $1*1024/1e6}')" "$hwm" "$anon" "$file" "$threads"
    RESULTS+=("${key}_kib=$rss")
}
RESULTS=()

sleep "$IDLE"
report "idle after start:" rss_start

python3 "$BENCH_DIR/lib/requests.py" "$ENGINE_URL" "$REQUESTS" /healthz /readyz /bench/lua '/auth/hello?name=bench' | sed 's/^/  /'
sleep "$IDLE"
report "idle after $REQUESTS requests:" rss_after_requests

wrk -t1 -c16 -d"${BURST}s" "$ENGINE_URL/bench/lua" | awk '/Requests\/sec/ {print "  wrk burst: " $0}'
sleep "$IDLE"
report "idle after ${BURST}s wrk burst (c16):" rss_after_burst

stop_engine
echo "RESULT ${RESULTS[*]}"
