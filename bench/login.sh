#!/usr/bin/env bash
# Password logins per second against the machine's Argon2id ceiling, in one run (target: logins
# reach at least 90% of the ceiling), and session-checked requests per second.
#
#   bench/login.sh        # ROUNDS=3 DURATION=10 CONNECTIONS=8
#
# Each round measures, back to back so machine noise hits both alike:
#   ceiling  runtime/examples/argon2_ceiling: hashes/s on nproc threads, the engine's parameters
#            (Argon2id m=19456 KiB, t=2, p=1) and a 32-byte pepper;
#   login    wrk POSTing the real /auth/login form (CSRF cookie and token, the right password)
#            to a release engine on SQLite: each answer is a 303 with a new session, i.e. a
#            full Argon2id verify, a session row, an audit row and a throttle reset.
# Then, once: GET /auth/welcome with a session cookie (session lookup + template render), and
# GET /healthz on the same engine for scale.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}

build_release
echo "# (cd $REPO && cargo build --release --example argon2_ceiling)" >&2
(cd "$REPO" && cargo build --release --example argon2_ceiling) >&2 || die "building argon2_ceiling failed"
CEILING=$CARGO_TARGET_DIR/release/examples/argon2_ceiling
ensure_wrk
machine_info
echo "command: ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS bench/login.sh"
echo

dir=$BENCH_TMP/login
write_config "$dir" auth
EMAIL=bench@example.com
PASSWORD='correct horse battery staple'
(cd "$dir" && "$BIN" users create --config "$dir/engine.toml" --email "$EMAIL" --password-stdin <<<"$PASSWORD") >/dev/null \
    || die "users create failed"
start_engine "$dir"
echo "engine pid $ENGINE_PID at $ENGINE_URL"

# One browser's CSRF cookie and token; every benchmark request reuses them (they stay valid).
jar=$dir/jar
page=$(curl -s -c "$jar" "$ENGINE_URL/auth/login")
TOKEN=$(grep -o 'name="csrf_token" value="[^"]*"' <<<"$page" | head -1 | sed 's/.*value="//; s/"$//')
CSRF_COOKIE=$(awk '$6 == "assay_csrf" {print $7}' "$jar")
[ -n "$TOKEN" ] && [ -n "$CSRF_COOKIE" ] || die "no CSRF token on /auth/login"
BODY="csrf_token=$TOKEN&email=$(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1]))' "$EMAIL")&password=$(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1]))' "$PASSWORD")"
code=$(curl -s -o /dev/null -w '%{http_code}' -b "assay_csrf=$CSRF_COOKIE" -H 'content-type: application/x-www-form-urlencoded' --data "$BODY" "$ENGINE_URL/auth/login")
[ "$code" = 303 ] || die "a login answered $code, not 303"

# wrk: POST the form; count answers other than 303 (wrk's own count treats 303 as an error).
cat >"$dir/login.lua" <<LUA
wrk.method = "POST"
wrk.body = "$BODY"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = "assay_csrf=$CSRF_COOKIE"
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init() bad = 0 end
function response(status) if status ~= 303 then bad = bad + 1 end end
function done()
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write("not303 ", n, "\n")
end
LUA

# login_rate SECONDS: logins/s (303 answers only).
login_rate() {
    local out
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$1s" -s "$dir/login.lua" "$ENGINE_URL/auth/login")
    local bad
    bad=$(awk '/^not303/ {print $2}' <<<"$out")
    [ "${bad:-1}" = 0 ] || { echo "$out" >&2; die "$bad logins did not answer 303"; }
    awk '/Requests\/sec/ {print $2}' <<<"$out"
}

ceiling_rate() {
    "$CEILING" "$(nproc)" "$1" | sed -E 's/.* = ([0-9.]+) hashes\/s/\1/'
}

echo "warm-up"
login_rate 2 >/dev/null
ceiling_rate 2 >/dev/null

printf '\n%-6s %14s %14s %8s\n' round "ceiling h/s" "logins/s" ratio
ratios=()
for round in $(seq "$ROUNDS"); do
    c=$(ceiling_rate "$DURATION")
    l=$(login_rate "$DURATION")
    r=$(awk -v l="$l" -v c="$c" 'BEGIN { printf "%.1f", 100 * l / c }')
    ratios+=("$r")
    printf '%-6s %14.1f %14.1f %7s%%\n' "$round" "$c" "$l" "$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR] = $1} END { print a[int((NR + 1) / 2)] }')
echo "RESULT login_vs_argon2_ceiling_pct $median (target >= 90)"

# Session-checked pages: a logged-in browser's cookie on GET /auth/welcome.
SESSION=$(curl -s -o /dev/null -D - -b "assay_csrf=$CSRF_COOKIE" -H 'content-type: application/x-www-form-urlencoded' --data "$BODY" "$ENGINE_URL/auth/login" \
    | awk -F'[=;]' 'tolower($1) ~ /^set-cookie: assay_session$/ {print $2}')
[ -n "$SESSION" ] || die "no session cookie"
[ "$(curl -s -o /dev/null -w '%{http_code}' -b "assay_session=$SESSION" "$ENGINE_URL/auth/welcome")" = 200 ] || die "/auth/welcome did not answer 200 with the session"
echo
for path in /auth/welcome /healthz; do
    out=$(wrk -t1 -c16 -d"${DURATION}s" -H "Cookie: assay_session=$SESSION" "$ENGINE_URL$path")
    grep -q 'Non-2xx' <<<"$out" && { echo "$out" >&2; die "$path: non-2xx under load"; }
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    printf '%-16s %10.0f req/s\n' "$path" "$rps"
    [ "$path" = /auth/welcome ] && echo "RESULT session_checked_rps $rps"
done
