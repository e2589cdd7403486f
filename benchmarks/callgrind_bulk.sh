#!/bin/sh
# Instructions per account of a fault-free bulk run, without and with a journal (callgrind).
# Usage: [MODES="without journal"] benchmarks/callgrind_bulk.sh [SMALL] [LARGE]   (from the root)
set -eu
small=${1:-300}
large=${2:-1300}
out=$(mktemp -d)
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1.$2" \
        .venv/bin/python -m benchmarks.callgrind_bulk "$2" "$1" >/dev/null 2>"$out/log.$1.$2"
    sed -n 's/.*Collected : //p' "$out/log.$1.$2"
}
for mode in ${MODES:-without journal normal}; do
    a=$(count "$mode" "$small")
    b=$(count "$mode" "$large")
    echo "$mode: $(( (b - a) / (large - small) )) instructions per account ($small: $a, $large: $b)"
done
rm -rf "$out"
