#!/usr/bin/env bash
# Runs the hot-path group N times (default 5) and prints the README's table: each ratio
# is taken within one run, the table shows the median over runs (this VM is noisy).
#   benches/run.sh [N]            files in the system temp folder
#   MHM_BENCH_DIR=/dev/shm benches/run.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}
out=$(mktemp -d)
for i in $(seq 1 "$n"); do
  cargo bench --bench hot_path >/dev/null 2>"$out/stderr$i"
  cp -r target/criterion "$out/run$i"
done
python3 benches/ratios.py "$out"/run*
echo
echo "What the rotating LogFiles cases did (last run):"
grep -h "rotations" "$out/stderr$n" || true
rm -rf "$out"
