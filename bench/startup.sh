#!/usr/bin/env bash
# Cold start to the first /readyz 200 on SQLite (target: under 200 ms).
#
#   bench/startup.sh            # RUNS=20 by default; SKIP_BUILD=1 to reuse the release binary
#
# Fresh: each run gets a new, empty data dir (so it creates the databases, runs every
# migration and writes the admin key). Existing: every run reuses one data dir that an
# untimed first start migrated. "Cold" is a cold process; the binary is in the page cache.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RUNS=${RUNS:-20}

build_release
machine_info
echo "binary:  $BIN"
echo "command: RUNS=$RUNS bench/startup.sh"
echo
python3 "$BENCH_DIR/lib/startup.py" "$BIN" "$BENCH_TMP" --mode fresh --runs "$RUNS"
echo
python3 "$BENCH_DIR/lib/startup.py" "$BIN" "$BENCH_TMP" --mode existing --runs "$RUNS"
