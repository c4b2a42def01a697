#!/usr/bin/env bash
# Bench: facepay vs tencentcloud-sdk-python-faceid pulling, storing and checking the same
# generated bill day (default 1,000,000 ChargeDetails, 2,000 per page) from one standalone
# mock FaceID server (release build, 127.0.0.1, rate limit off). Prints both JSON lines and
# the ratio. Usage: bench/peers/run-recon-bench.sh [DETAILS] [PAGE_DETAILS]
set -euo pipefail
cd "$(dirname "$0")/../.."
details=${1:-1000000}
page=${2:-2000}
venv=bench/peers/.venv
if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import tencentcloud.faceid' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tencentcloud-sdk-python-faceid
fi
cargo build --release --all-features --bin facepay
bin=target/release/facepay
unset TENCENTCLOUD_SECRET_ID TENCENTCLOUD_SECRET_KEY
log=$(mktemp)
"$bin" mock faceid --port 0 --details "$details" --page-details "$page" --rate-limit 0 >"$log" 2>&1 &
mock_pid=$!
trap 'kill "$mock_pid" 2>/dev/null || true; rm -f "$log" /tmp/facepay-peer-bench.db*' EXIT
for _ in $(seq 1 100); do grep -q listening "$log" && break; sleep 0.1; done
url=$(awk '/listening/ {print $NF}' "$log")
day=$(date -u -d '-3 days' +%F)
echo "in-process mock:" >&2
"$bin" bench recon --json --details "$details" --page-details "$page"
echo "standalone mock at $url:" >&2
ours=$("$bin" bench recon --json --endpoint "$url" --date "$day")
echo "$ours"
peer=$("$venv/bin/python" bench/peers/faceid_bill_peer.py "${url#http://}" "$day" /tmp/facepay-peer-bench.db)
echo "$peer"
python3 - "$ours" "$peer" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert o["details"] == p["details"], (o["details"], p["details"])
print("facepay %.2f s, peer %.2f s: facepay is %.1fx faster" % (o["wall_s"], p["wall_s"], p["wall_s"] / o["wall_s"]))
PY
