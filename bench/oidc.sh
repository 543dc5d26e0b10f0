#!/usr/bin/env bash
# Token endpoint: client_credentials and refresh_token grants per second, on SQLite and on
# PostgreSQL, against the machine's RS256 signing ceiling and against oidc-provider (npm, OpenID
# Certified), in one run (targets: at least 3x oidc-provider, at least 60 % of the ceiling).
#
#   bench/oidc.sh        # ROUNDS=5 DURATION=6 CONNECTIONS=16 CHAINS=16
#   ASSAY_BENCH_PG_URL=postgres://... bench/oidc.sh    # an existing, empty PostgreSQL database
#
# Servers, all started once and left running, each on its own fixed free port:
#   engine-sqlite  the release engine, SQLite in a temp dir;
#   engine-pg      the release engine on PostgreSQL (a throwaway cluster: initdb --auth=trust,
#                  fsync=off, in the temp dir, unless ASSAY_BENCH_PG_URL is set);
#   oidc-provider  bench/node/oidc_provider.mjs: one node process, its in-memory adapter, RS256
#                  RSA-2048 for access and ID tokens, JWT access tokens, refresh rotation.
# Each server gets one confidential client (client_secret_basic) and CHAINS refresh tokens, each
# from its own authorization-code flow (PKCE; a user logs in and consents once).
#
# Each round, back to back so that the machine's noise falls on all of them alike (the order
# of the servers is reversed every other round):
#   ceiling   runtime/examples/sign_ceiling: RS256 signatures/s on nproc threads (aws-lc-rs,
#             RSA-2048, a 630-byte signing input), DURATION seconds. A client_credentials
#             answer carries one signature (the access token), a refresh_token answer two (a new
#             access token and a new ID token), so the ceilings are sigs/s and sigs/s / 2;
#   client_credentials   wrk -t1 -cCONNECTIONS, POST grant_type=client_credentials&scope=profile
#             with HTTP Basic, on each server; answers other than 200 fail the run;
#   refresh_token        bench/node/loadgen.mjs: CHAINS keep-alive connections, each chain
#             sending its latest refresh token and taking the new one from the answer (tokens
#             rotate: none is sent twice); answers other than 200 with three tokens fail the run.
# Figures per round: req/s, server CPU per request (from /proc/PID/stat; for engine-pg also the
# PostgreSQL processes' CPU) and the load generator's CPU. The headline ratios are medians of the
# per-round ratios. The whole run takes about 4 minutes after the build (ROUNDS=5, DURATION=6).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-6}
CONNECTIONS=${CONNECTIONS:-16}
CHAINS=${CHAINS:-16}
NODE_DIR=$BENCH_DIR/node
ADMIN_KEY=sk_bench_admin_key_0123456789abcdef
EMAIL=bench@example.com
PASSWORD='correct horse battery staple'
CLK_TCK=$(getconf CLK_TCK)

build_release
CEILING=$CARGO_TARGET_DIR/release/examples/sign_ceiling
if [ "${SKIP_BUILD:-0}" != 1 ] || [ ! -x "$CEILING" ]; then
    echo "# (cd $REPO && cargo build --release --example sign_ceiling)" >&2
    (cd "$REPO" && cargo build --release --example sign_ceiling) >&2 || die "building sign_ceiling failed"
fi
ensure_wrk
command -v node >/dev/null || die "node (>= 20) is needed for oidc-provider and the load generator"
[ "$(node -p 'process.versions.node.split(".")[0] >= 20')" = true ] || die "node >= 20 is needed, found $(node --version)"
if [ ! -f "$NODE_DIR/node_modules/oidc-provider/package.json" ]; then
    echo "# (cd $NODE_DIR && npm ci)" >&2
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund) >&2 || die "npm ci in bench/node failed"
fi
machine_info
echo "node:    $(node --version), oidc-provider $(node -p "require('$NODE_DIR/node_modules/oidc-provider/package.json').version"), wrk $(wrk -v 2>&1 | awk 'NR == 1 {print $2}')"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) before the run"
echo "command: ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS CHAINS=$CHAINS bench/oidc.sh"
echo

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- PostgreSQL: ASSAY_BENCH_PG_URL, or a throwaway cluster (as tests/run starts one)

PG_BIN=
PG_DIR=
PG_PID=
_pg_as() {
    if [ "$(id -u)" = 0 ]; then (cd "$PG_DIR" && runuser -u postgres -- "$@"); else "$@"; fi
}
_oidc_cleanup() {
    if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
        _pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    _bench_cleanup
}
trap _oidc_cleanup EXIT

if [ -n "${ASSAY_BENCH_PG_URL:-}" ]; then
    PG_URL=$ASSAY_BENCH_PG_URL
    echo "postgres: ASSAY_BENCH_PG_URL (its server's CPU is not counted)"
else
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || PG_BIN=$(dirname "$(command -v initdb || echo /nonexistent/initdb)")
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL not found (no initdb); install it or set ASSAY_BENCH_PG_URL"
    PG_DIR=$BENCH_TMP/pg
    mkdir -p "$PG_DIR"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to run the server as"
        chmod 711 "$BENCH_TMP"
        chown postgres: "$PG_DIR"
    fi
    _pg_as "$PG_BIN/initdb" --auth=trust -U postgres -E UTF8 --no-locale -D "$PG_DIR/data" >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    pg_port=$(free_port)
    _pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" \
        -o "-p $pg_port -k '$PG_DIR' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" -w start >/dev/null \
        || { tail -20 "$PG_DIR/postgres.log" >&2; die "PostgreSQL did not start"; }
    PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
    PG_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
    echo "postgres: throwaway cluster $("$PG_BIN/postgres" --version | grep -oE '[0-9]+\.[0-9]+' | head -1) on 127.0.0.1:$pg_port (fsync=off), postmaster pid $PG_PID"
fi

# ---- the servers

# engine_config DIR PORT BACKEND_TOML
engine_config() {
    mkdir -p "$1"
    cat >"$1/engine.toml" <<EOF
auto_enable_modules = ["auth"]

[server]
bind_addr = "127.0.0.1:$2"
public_url = "http://127.0.0.1:$2"
shutdown_grace_secs = 2

[backend]
$3

[auth]
admin_api_keys = ["$ADMIN_KEY"]

[flows]
dir = "$BENCH_DIR/flows"

[log]
level = "warn"
EOF
}

# admin_post URL PATH JSON: the answer's body; fails unless 200 or 201.
admin_post() {
    local out code
    out=$(curl -s -w '\n%{http_code}' -H "Authorization: Bearer $ADMIN_KEY" -H 'content-type: application/json' --data "$3" "$1$2")
    code=${out##*$'\n'}
    [ "$code" = 200 ] || [ "$code" = 201 ] || die "POST $2 answered $code: ${out%$'\n'*}"
    printf '%s\n' "${out%$'\n'*}"
}

json_field() { python3 -c 'import json, sys; print(json.loads(sys.stdin.read())[sys.argv[1]])' "$1"; }

declare -A URL PID CID CSECRET TOKEN_PATH AUTHZ_PATH
SERVERS=(engine-sqlite engine-pg oidc-provider)

for name in engine-sqlite engine-pg; do
    dir=$BENCH_TMP/$name
    port=$(free_port)
    if [ "$name" = engine-sqlite ]; then
        engine_config "$dir" "$port" "type = \"sqlite\"
data_dir = \"$dir/data\""
    else
        engine_config "$dir" "$port" "type = \"postgres\"
url = \"$PG_URL\"
data_dir = \"$dir/data\""
    fi
    start_engine "$dir"
    URL[$name]=$ENGINE_URL
    PID[$name]=$ENGINE_PID
    TOKEN_PATH[$name]=/auth/token
    AUTHZ_PATH[$name]=/auth/authorize
    admin_post "$ENGINE_URL" /auth/admin/auth/users "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" >/dev/null
    client=$(admin_post "$ENGINE_URL" /auth/admin/auth/oidc-clients '{"name":"bench","grant_types":["client_credentials","refresh_token","authorization_code"],"redirect_uris":["http://127.0.0.1:1/cb"],"default_scopes":["openid","profile","email","offline_access"],"token_endpoint_auth_method":"client_secret_basic"}')
    CID[$name]=$(json_field client_id <<<"$client")
    CSECRET[$name]=$(json_field client_secret <<<"$client")
    echo "$name: pid $ENGINE_PID at $ENGINE_URL, client ${CID[$name]}"
done
ENGINE_PID= # stop_engine is not used: the EXIT trap stops every server

name=oidc-provider
dir=$BENCH_TMP/$name
mkdir -p "$dir"
port=$(free_port)
CID[$name]=bench
CSECRET[$name]=cs_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
(cd "$NODE_DIR" && NODE_ENV=production PORT=$port CLIENT_ID=${CID[$name]} CLIENT_SECRET=${CSECRET[$name]} exec node oidc_provider.mjs) \
    >"$dir/stdout" 2>"$dir/stderr" &
PID[$name]=$!
_BENCH_PIDS+=("${PID[$name]}")
URL[$name]=http://127.0.0.1:$port
TOKEN_PATH[$name]=/token
AUTHZ_PATH[$name]=/auth
for _ in $(seq 1000); do
    grep -q '^listening on' "$dir/stdout" 2>/dev/null && break
    kill -0 "${PID[$name]}" 2>/dev/null || { cat "$dir/stderr" >&2; die "oidc-provider exited during start"; }
    sleep 0.01
done
grep -q '^listening on' "$dir/stdout" || die "oidc-provider did not start within 10 s"
echo "$name: pid ${PID[$name]} at ${URL[$name]} (node, NODE_ENV=production, in-memory adapter)"

# gen NAME MODE ARGS...: bench/node/loadgen.mjs against server NAME.
gen() {
    local n=$1
    shift
    CLIENT_ID=${CID[$n]} CLIENT_SECRET=${CSECRET[$n]} TOKEN_PATH=${TOKEN_PATH[$n]} AUTHORIZE_PATH=${AUTHZ_PATH[$n]} \
        EMAIL=$EMAIL PASSWORD=$PASSWORD FLOW_PROMPT=$([ "$n" = oidc-provider ] && echo consent) \
        node "$NODE_DIR/loadgen.mjs" "$1" "${URL[$n]}" "${@:2}"
}

# One answer of each grant per server: the tokens are there, and the JWTs are RS256.
for n in "${SERVERS[@]}"; do
    gen "$n" setup "$BENCH_TMP/tokens-$n.json" "$CHAINS" >/dev/null || die "$n: the code flows failed"
    cc=$(curl -s -u "${CID[$n]}:${CSECRET[$n]}" --data 'grant_type=client_credentials&scope=profile' "${URL[$n]}${TOKEN_PATH[$n]}")
    first=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[0])' "$BENCH_TMP/tokens-$n.json")
    rt=$(curl -s -u "${CID[$n]}:${CSECRET[$n]}" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$first" "${URL[$n]}${TOKEN_PATH[$n]}")
    python3 - "$n" "$cc" "$rt" "$BENCH_TMP/tokens-$n.json" <<'PY' || die "$1: unexpected token answers"
import base64, json, sys
name, cc, rt, tokens_file = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
def jws(t):
    h, c, s = t.split(".")
    dec = lambda p: json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    return dec(h), dec(c), len(t)
def show(label, t):
    h, c, n = jws(t)
    assert h["alg"] == "RS256", h
    print(f"  {label}: {n} chars, header {json.dumps(h)}, claims {sorted(c)}")
print(f"{name}: client_credentials answer {sorted(cc)}")
show("access_token", cc["access_token"])
print(f"{name}: refresh_token answer {sorted(rt)}")
show("access_token", rt["access_token"])
show("id_token", rt["id_token"])
assert rt["refresh_token"], "no new refresh token"
tokens = json.load(open(tokens_file))
tokens[0] = rt["refresh_token"]
json.dump(tokens, open(tokens_file, "w"))
PY
done
echo

# ---- measurements

ticks() { # ticks PID...: utime + stime of the processes, in clock ticks
    local p t=0
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
    done
    echo "$t"
}
# pg_ticks: CPU of the PostgreSQL server: the postmaster's own and that of its reaped children
# (cutime + cstime), plus its live children (backends, autovacuum, ...).
pg_ticks() {
    local t
    t=$(awk '{sub(/.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$PG_PID/stat")
    echo $((t + $(ticks $(ps -o pid= --ppid "$PG_PID"))))
}

cat >"$BENCH_TMP/cc.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=profile"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init() bad = 0 end
function response(status) if status ~= 200 then bad = bad + 1 end end
function done()
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write("not200 ", n, "\n")
end
LUA

RECORDS=$BENCH_TMP/records
: >"$RECORDS"

# measure ROUND GRANT NAME SECONDS: one measurement; appends a record and prints a row.
measure() {
    local round=$1 grant=$2 n=$3 secs=$4 pids pg0 pg1 t0 t1 out rps p50 p99 gen_cpu requests
    pids=${PID[$n]}
    t0=$(ticks "$pids")
    pg0=0
    [ "$n" = engine-pg ] && [ -n "$PG_PID" ] && pg0=$(pg_ticks)
    if [ "$grant" = client_credentials ]; then
        local basic
        basic=$(printf '%s:%s' "${CID[$n]}" "${CSECRET[$n]}" | base64 -w0)
        out=$( { TIMEFORMAT='cpu %U %S'; time wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --latency -s "$BENCH_TMP/cc.lua" \
            -H "Authorization: Basic $basic" "${URL[$n]}${TOKEN_PATH[$n]}"; } 2>&1)
        local bad
        bad=$(awk '/^not200/ {print $2}' <<<"$out")
        [ "${bad:-1}" = 0 ] || { echo "$out" >&2; die "$n: $bad client_credentials answers were not 200"; }
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
        p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
        gen_cpu=$(awk -v s="$secs" '/^cpu / {printf "%.0f", 100 * ($2 + $3) / s}' <<<"$out")
    else
        out=$(gen "$n" refresh "$BENCH_TMP/tokens-$n.json" "$secs") || die "$n: the refresh load failed"
        read -r rps requests p50 p99 gen_cpu errors < <(python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(j["rps"], j["ok"], str(j["p50_ms"]) + "ms", str(j["p99_ms"]) + "ms", round(j["cpu_pct"]), j["errors"])' "$out")
        [ "$errors" = 0 ] || die "$n: $errors refresh answers failed: $out"
    fi
    t1=$(ticks "$pids")
    pg1=0
    [ "$n" = engine-pg ] && [ -n "$PG_PID" ] && pg1=$(pg_ticks)
    local cpu_us pg_us=-
    cpu_us=$(awk -v a="$t0" -v b="$t1" -v n="$requests" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", 1e6 * (b - a) / hz / n }')
    [ "$n" = engine-pg ] && [ -n "$PG_PID" ] && pg_us=$(awk -v a="$pg0" -v b="$pg1" -v n="$requests" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", 1e6 * (b - a) / hz / n }')
    [ "$round" = warm ] && return 0
    echo "$round $grant $n $rps $cpu_us $pg_us" >>"$RECORDS"
    printf '%-5s %-18s %-14s %9.1f %9s %9s %9s %8s %7s%%\n' "$round" "$grant" "$n" "$rps" "$p50" "$p99" "$cpu_us" "$pg_us" "$gen_cpu"
}

ceiling() { # ceiling ROUND SECONDS
    local out s us
    out=$("$CEILING" "$(nproc)" "$2")
    s=$(sed -E 's/.* = ([0-9.]+) signatures\/s/\1/' <<<"$out")
    us=$(sed -E 's/.*, cpu ([0-9?]+) us\/signature.*/\1/' <<<"$out")
    [ "$1" = warm ] && return 0
    echo "$1 ceiling sign $s $us" >>"$RECORDS"
    printf '%-5s %-18s %-14s %9.1f   signatures/s on %s threads (%s µs CPU each): ceilings client_credentials %.1f, refresh_token %.1f\n' \
        "$1" ceiling sign_ceiling "$s" "$(nproc)" "$us" "$s" "$(awk -v s="$s" 'BEGIN { print s / 2 }')"
}

echo "warm-up (2 s each)"
ceiling warm 2
for n in "${SERVERS[@]}"; do
    measure warm client_credentials "$n" 2
    measure warm refresh_token "$n" 2
done

echo
printf '%-5s %-18s %-14s %9s %9s %9s %9s %8s %8s\n' round grant server "req/s" p50 p99 "srv µs/r" "pg µs/r" "gen CPU"
for round in $(seq "$ROUNDS"); do
    ceiling "$round" "$DURATION"
    order=("${SERVERS[@]}")
    [ $((round % 2)) = 0 ] && order=(oidc-provider engine-pg engine-sqlite)
    for grant in client_credentials refresh_token; do
        for n in "${order[@]}"; do
            measure "$round" "$grant" "$n" "$DURATION"
        done
    done
done
echo "(srv µs/r: the server process's user+system CPU per answer; pg µs/r: the PostgreSQL processes'"
echo " CPU per answer of engine-pg; gen CPU: the load generator's CPU over the run, 100% = one core)"

echo
out=$(gen engine-sqlite get 16 "$DURATION")
echo "load generator alone (loadgen.mjs get, 16 connections, GET /healthz on engine-sqlite): $(python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print("%.0f req/s at %.0f%% of a core" % (j["rps"], j["cpu_pct"]))' "$out")"

echo
python3 - "$RECORDS" <<'PY'
import statistics, sys
rec = [l.split() for l in open(sys.argv[1])]
rounds = sorted({int(r[0]) for r in rec})
ceil = {int(r[0]): float(r[3]) for r in rec if r[1] == "ceiling"}
sig_us = {int(r[0]): float(r[4]) for r in rec if r[1] == "ceiling"}
rate = {(int(r[0]), r[1], r[2]): float(r[3]) for r in rec if r[1] != "ceiling"}
srv_us = {(int(r[0]), r[1], r[2]): float(r[4]) for r in rec if r[1] != "ceiling"}
pg_us = {(int(r[0]), r[1], r[2]): float(r[5]) for r in rec if r[1] != "ceiling" and r[5] != "-"}
sigs = {"client_credentials": 1, "refresh_token": 2}
med = statistics.median
results = []
print("median over %d rounds; ratios are medians of the per-round ratios (per-round values in brackets)" % len(rounds))
for backend, name in (("SQLite", "engine-sqlite"), ("PostgreSQL", "engine-pg")):
    print(f"\n{backend}")
    print("| grant | engine req/s | oidc-provider req/s | engine / oidc-provider | ceiling req/s | engine / ceiling |")
    print("|---|---|---|---|---|---|")
    for g in ("client_credentials", "refresh_token"):
        e = [rate[(r, g, name)] for r in rounds]
        o = [rate[(r, g, "oidc-provider")] for r in rounds]
        c = [ceil[r] / sigs[g] for r in rounds]
        vs_op = [rate[(r, g, name)] / rate[(r, g, "oidc-provider")] for r in rounds]
        vs_c = [100 * rate[(r, g, name)] / (ceil[r] / sigs[g]) for r in rounds]
        print(f"| {g} | {med(e):.0f} | {med(o):.0f} | {med(vs_op):.2f}x ({', '.join(f'{x:.2f}' for x in vs_op)}) | {med(c):.0f} | {med(vs_c):.1f} % ({', '.join(f'{x:.1f}' for x in vs_c)}) |")
        key = f"oidc_{g}_{'sqlite' if name == 'engine-sqlite' else 'postgres'}"
        results.append(f"RESULT {key}_vs_oidc_provider {med(vs_op):.2f} (target >= 3)")
        results.append(f"RESULT {key}_vs_sign_ceiling_pct {med(vs_c):.1f} (target >= 60)")
print("\nserver CPU per answer (median µs) and the share of it that the signatures alone cost")
print("(signatures per answer x sign_ceiling's CPU per signature, same round)")
print("| grant | engine-sqlite | engine-pg (engine + PostgreSQL processes) | oidc-provider |")
print("|---|---|---|---|")
for g in ("client_credentials", "refresh_token"):
    cells = []
    for n in ("engine-sqlite", "engine-pg", "oidc-provider"):
        us = med([srv_us[(r, g, n)] for r in rounds])
        share = med([100 * sigs[g] * sig_us[r] / srv_us[(r, g, n)] for r in rounds])
        pg = [pg_us[(r, g, n)] for r in rounds if (r, g, n) in pg_us]
        cells.append(f"{us:.0f} µs{f' + {med(pg):.0f} µs' if pg else ''}, signing {share:.0f} %")
    print(f"| {g} | " + " | ".join(cells) + " |")
print()
print("\n".join(results))
PY
