#!/usr/bin/env bash
# Requests/second of a Lua route against the Rust route /healthz on the same server
# (target: Lua at least 60% of Rust).
#
#   bench/lua_vs_rust.sh        # ROUNDS=5 DURATION=10 CONNECTIONS=16 THREADS=1 WARMUP=2
#
# One engine (SQLite in a temp dir, [log] level = "warn", flows from bench/flows, auth module
# on). Routes, each measured with `wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s`, in turn
# within every round so that machine noise hits all of them alike:
#   rust   GET /healthz            Rust handler, JSON body
#   lua    GET /bench/lua          bench/flows/bench.lua: http.json({status = "ok"})
#   hello  GET /auth/hello?name=.. bundled flow rendering templates/hello.html (information)
# The ratio is computed per round (Lua rate / Rust rate of the same round); the summary gives
# the median of the rounds. wrk and the engine share the machine's cores, so the script also
# reads the engine's own CPU time (/proc/PID/stat) around each wrk run and reports engine CPU
# microseconds per request: a cost figure that does not depend on wrk's share of the cores.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-2}

build_release
ensure_wrk
machine_info
echo "wrk:     $(wrk --version 2>&1 | head -1 | cut -c1-40)"
echo "command: ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS THREADS=$THREADS bench/lua_vs_rust.sh"
echo

dir=$BENCH_TMP/lua_vs_rust
write_config "$dir" auth
start_engine "$dir"
echo "engine pid $ENGINE_PID at $ENGINE_URL"

declare -A ROUTE=([rust]=/healthz [lua]=/bench/lua [hello]='/auth/hello?name=bench')
ORDER=(rust lua hello)
for name in "${ORDER[@]}"; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$ENGINE_URL${ROUTE[$name]}")" = 200 ] \
        || die "$ENGINE_URL${ROUTE[$name]} does not answer 200"
done

CLK_TCK=$(getconf CLK_TCK)
# cpu_ticks: user + system CPU time of the engine so far, in clock ticks.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$ENGINE_PID/stat"
}

# run_wrk NAME SECONDS: prints "rps avg_latency_ms p99_latency_ms engine_cpu_us_per_request"
# for one route. The CPU figure is the engine's own user+system time (from /proc/PID/stat)
# over the requests wrk completed: the server's cost per request, whatever wrk's share.
run_wrk() {
    local out t0 t1
    t0=$(cpu_ticks)
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2s" --latency "$ENGINE_URL${ROUTE[$1]}")
    t1=$(cpu_ticks)
    if grep -q 'Non-2xx' <<<"$out"; then
        echo "$out" >&2
        die "$1: non-2xx responses under load"
    fi
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 }
        / requests in / { n = $1 }
        $1 == "Latency" && avg == "" { avg = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        END { printf "%s %.3f %.3f %.2f\n", rps, avg, p99, (t1 - t0) / hz * 1e6 / n }' \
        t0="$t0" t1="$t1" hz="$CLK_TCK" <<<"$out"
}

echo "warm-up: ${WARMUP}s per route"
for name in "${ORDER[@]}"; do run_wrk "$name" "$WARMUP" >/dev/null; done

results=$BENCH_TMP/lua_vs_rust.txt
: >"$results"
printf '\n%-6s %-6s %-24s %10s %8s %8s %16s\n' round route path "req/s" "avg ms" "p99 ms" "engine CPU µs/req"
for round in $(seq "$ROUNDS"); do
    for name in "${ORDER[@]}"; do
        read -r rps avg p99 cpu < <(run_wrk "$name" "$DURATION")
        printf '%-6s %-6s %-24s %10.0f %8.3f %8.3f %16.1f\n' "$round" "$name" "${ROUTE[$name]}" "$rps" "$avg" "$p99" "$cpu"
        echo "$round $name $rps $cpu" >>"$results"
    done
done
stop_engine

python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by, cpu = {}, {}
for rnd, name, rps, us in rows:
    by.setdefault(int(rnd), {})[name] = float(rps)
    cpu.setdefault(name, []).append(float(us))
rounds = sorted(by)
med = {n: statistics.median(by[r][n] for r in rounds) for n in ("rust", "lua", "hello")}
mcpu = {n: statistics.median(v) for n, v in cpu.items()}
lua_ratio = [by[r]["lua"] / by[r]["rust"] for r in rounds]
hello_ratio = [by[r]["hello"] / by[r]["rust"] for r in rounds]
print()
print("median req/s: rust %.0f, lua %.0f, hello (template) %.0f" % (med["rust"], med["lua"], med["hello"]))
print("Lua/Rust per round: " + ", ".join("%.1f%%" % (100 * x) for x in lua_ratio)
      + "; median %.1f%%" % (100 * statistics.median(lua_ratio)))
print("hello/Rust per round: " + ", ".join("%.1f%%" % (100 * x) for x in hello_ratio)
      + "; median %.1f%%" % (100 * statistics.median(hello_ratio)))
print("engine CPU per request (median): rust %.1f µs, lua %.1f µs, hello %.1f µs" % (
    mcpu["rust"], mcpu["lua"], mcpu["hello"]))
print("Lua/Rust rate implied by engine CPU alone (no client on the same cores): %.1f%%" % (
    100 * mcpu["rust"] / mcpu["lua"]))
print("RESULT rust_cpu_us=%.1f lua_cpu_us=%.1f hello_cpu_us=%.1f lua_over_rust_cpu_pct=%.1f" % (
    mcpu["rust"], mcpu["lua"], mcpu["hello"], 100 * mcpu["rust"] / mcpu["lua"]))
print("RESULT rust_rps=%.0f lua_rps=%.0f hello_rps=%.0f lua_over_rust_pct=%.1f hello_over_rust_pct=%.1f" % (
    med["rust"], med["lua"], med["hello"], 100 * statistics.median(lua_ratio), 100 * statistics.median(hello_ratio)))
EOF
