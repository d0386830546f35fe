#!/usr/bin/env bash
# Compares mhm-sidecar with the reference tools on the same generated data, in one run:
#   backup create  vs  zip -r -6        (Info-ZIP)
#   logs archive   vs  gzip -6
#   backup verify  vs  unzip -t
# and peak memory of backup create (GNU time -v, when present).
#
# Usage: sidecar/benches/compare.sh [USER_DATA_MB] [LOG_MB] [SMALL_FILES_MB]
#   defaults: 200 100 120. SMALL_FILES_MB of the user data is in ~10 KB JSON files, the rest
#   in four large files; keep it fixed to compare data sizes at the same file count.
# Needs: zip, unzip, gzip, python3 (apt-get install zip unzip). Builds the release binary.
set -euo pipefail
USER_MB=${1:-200}
LOG_MB=${2:-100}
SMALL_MB=${3:-120}
here=$(cd "$(dirname "$0")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
for tool in zip unzip gzip python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install zip unzip gzip python3)" >&2; exit 2; }
done
(cd "$here" && cargo build --release -q -p mhm-sidecar)
bin=$CARGO_TARGET_DIR/release/mhm-sidecar
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/data/users" "$root/logs/backups"

# SMALL_MB in many small JSON files, the rest in a few large ones; text-like
# content that compresses about 3:1, like real user data and logs.
python3 - "$root" "$USER_MB" "$LOG_MB" "$SMALL_MB" <<'PY'
import json, os, random, sys
root, user_mb, log_mb, small_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(7)
words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rnd.randint(3, 9))) for _ in range(5000)]
def text(n):
    out, size = [], 0
    while size < n:
        line = ' '.join(rnd.choice(words) for _ in range(12)) + ' %d\n' % rnd.randint(0, 10**9)
        out.append(line); size += len(line)
    return ''.join(out)
small_total = min(small_mb, user_mb) * 1024 * 1024
users, written, i = 200, 0, 0
index = {}
while written < small_total:
    uid = 'user%03d' % (i % users)
    d = os.path.join(root, 'data', 'users', uid)
    os.makedirs(d, exist_ok=True)
    index[uid] = {'name': uid}
    body = json.dumps({'id': i, 'notes': text(rnd.randint(1000, 12000))})
    with open(os.path.join(d, 'item_%05d.json' % i), 'w') as f:
        f.write(body)
    written += len(body); i += 1
large = user_mb * 1024 * 1024 - written
for k in range(4):
    with open(os.path.join(root, 'data', 'users', 'user%03d' % k, 'big_%d.txt' % k), 'w') as f:
        left = large // 4
        while left > 0:
            chunk = text(min(left, 4 << 20)); f.write(chunk); left -= len(chunk)
with open(os.path.join(root, 'data', 'user_index.json'), 'w') as f:
    json.dump(index, f)
per = log_mb * 1024 * 1024 // 10
for d in range(10):
    with open(os.path.join(root, 'logs', 'backups', 'app.log.2026-01-%02d' % (d + 1)), 'w') as f:
        left = per
        while left > 0:
            chunk = text(min(left, 4 << 20)); f.write(chunk); left -= len(chunk)
PY
echo "data: $(du -sm "$root/data/users" | cut -f1) MB user data in $(find "$root/data/users" -type f | wc -l) files; $(du -sm "$root/logs" | cut -f1) MB logs" >&2
sync

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }

# Warm the page cache for both.
find "$root/data/users" -type f -exec cat {} + >/dev/null

t_zip=$(cd "$root/data" && secs zip -r -6 -q "$work/ref.zip" users user_index.json)
t_ours=$(secs "$bin" --root "$root" backup create --name bench)
echo "backup create: mhm-sidecar ${t_ours}s, zip -r -6 ${t_zip}s, ratio $(ratio "$t_ours" "$t_zip")"
echo "  sizes: ours $(stat -c %s "$root/data/backups/bench.zip") bytes, zip $(stat -c %s "$work/ref.zip") bytes"

t_verify=$(secs "$bin" --root "$root" backup verify bench)
t_unzip=$(secs unzip -tq "$root/data/backups/bench.zip")
echo "backup verify: mhm-sidecar ${t_verify}s, unzip -t ${t_unzip}s, ratio $(ratio "$t_verify" "$t_unzip")"

# logs archive: all ten copies are older than 7 days and younger than 30 at --now.
cp -r "$root/logs/backups" "$work/gzip-copy"
t_gzip=$(secs gzip -6 "$work"/gzip-copy/*)
t_arch=$(secs "$bin" --root "$root" --now 2026-01-20T03:00:00Z logs archive)
echo "logs archive:  mhm-sidecar ${t_arch}s, gzip -6 ${t_gzip}s, ratio $(ratio "$t_arch" "$t_gzip")"

if [ -x /usr/bin/time ]; then
  rm -f "$root/data/backups/mem.zip"
  /usr/bin/time -v -o "$work/time.txt" "$bin" --root "$root" backup create --name mem >/dev/null 2>&1
  peak=$(awk -F: '/Maximum resident/ {gsub(/[ \t]/,"",$2); print $2}' "$work/time.txt")
  echo "backup create peak RSS: ${peak} KiB for ${USER_MB} MB of user data in $(find "$root/data/users" -type f | wc -l) files"
  /usr/bin/time -v -o "$work/time.txt" "$bin" --root "$root" backup verify mem >/dev/null 2>&1
  peak=$(awk -F: '/Maximum resident/ {gsub(/[ \t]/,"",$2); print $2}' "$work/time.txt")
  echo "backup verify peak RSS: ${peak} KiB"
fi
