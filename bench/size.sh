#!/usr/bin/env bash
# Size of the stripped release binary (target: under 15 MB). The release profile in Cargo.toml
# already sets lto = "fat", codegen-units = 1, strip = true, opt-level = 3.
#
#   bench/size.sh               # SKIP_BUILD=1 to reuse the release binary
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_release
machine_info
echo "command: bench/size.sh"
echo
bytes=$(stat -c %s "$BIN")
if command -v file >/dev/null; then
    kind=$(file -b "$BIN" | tr ',' '\n' | grep -E 'stripped' | sed 's/^ *//')
elif command -v readelf >/dev/null; then
    readelf -S "$BIN" | grep -q '\.symtab' && kind="not stripped" || kind="stripped"
else
    kind="(cannot tell: neither file nor readelf installed)"
fi
echo "binary:  $BIN ($kind)"
awk -v b="$bytes" 'BEGIN { printf "size:    %d bytes = %.2f MB = %.2f MiB\n", b, b / 1e6, b / 1048576 }'
echo "RESULT binary_bytes=$bytes"
