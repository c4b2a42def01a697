#!/usr/bin/env bash
# The same workload — signed-and-verified B5 deductions, concurrency 16 — run by facepay
# and by three peer SDKs (wechatpayv3 from PyPI, wechatpay-axios-plugin from npm, the
# official wechatpay-java from Maven Central) against ONE mock WeChat Pay process on
# 127.0.0.1, then the ratios. Usage:
#   bench/peers/run.sh [DEDUCTIONS]      (default 3000)
# Installs the peers on first use (bench/peers/.venv, bench/peers/node/node_modules,
# bench/peers/java/target).
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-3000}"
C=16
PORT="${MOCK_PORT:-18790}"

[ -x bench/peers/.venv/bin/python ] || { python3 -m venv bench/peers/.venv && bench/peers/.venv/bin/pip install -q wechatpayv3; }
[ -d bench/peers/node/node_modules ] || (cd bench/peers/node && npm install --no-audit --no-fund --silent)
[ -f bench/peers/java/target/classpath.txt ] || (cd bench/peers/java && mvn -B -q package)
JAVA_CP="bench/peers/java/target/wechatpay-java-peer-0.1.0.jar:$(cat bench/peers/java/target/classpath.txt)"
cargo build --release --features cli --bin facepay >/dev/null 2>&1 || cargo build --release --features cli --bin facepay
BIN=target/release/facepay

DIR="$(mktemp -d)"
"$BIN" mock wechatpay --port "$PORT" --dir "$DIR" >"$DIR/mock.log" 2>&1 &
MOCK=$!
trap 'kill "$MOCK" 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 50); do [ -f "$DIR/backend.json" ] && grep -q listening "$DIR/mock.log" && break; sleep 0.1; done

ours=$("$BIN" bench wechatpay --json --config "$DIR/backend.json" --deductions "$N" --concurrency "$C")
py=$(bench/peers/.venv/bin/python bench/peers/wechatpayv3_peer.py bench --dir "$DIR" --n "$N" --concurrency "$C" || echo '{"peer":"wechatpayv3","deductions_per_s":0}')
js=$(node bench/peers/node/wechatpay_axios_peer.js bench --dir "$DIR" --n "$N" --concurrency "$C" || echo '{"peer":"wechatpay-axios-plugin","deductions_per_s":0}')
jv=$(java -cp "$JAVA_CP" io.facepay.peer.Peer bench --dir "$DIR" --n "$N" --concurrency "$C" || echo '{"peer":"wechatpay-java","deductions_per_s":0}')

python3 - "$ours" "$py" "$js" "$jv" <<'PY'
import json, sys
ours, *peers = (json.loads(a) for a in sys.argv[1:])
r = ours["deductions_per_s"]
print(f"facepay                 {r:10.1f} deductions/s  (sign {ours['sign_us']:.0f} us; {ours['signs_per_s']:.0f}/s vs openssl speed {ours.get('openssl_signs_per_s')}/s, ratio {ours.get('sign_ratio_vs_openssl')})")
best = 0.0
for p in peers:
    v = p.get("deductions_per_s", 0) or 0
    best = max(best, v)
    print(f"{p['peer']:<24}{v:10.1f} deductions/s  facepay/peer = {r / v if v else float('inf'):.2f}x")
print(json.dumps({"facepay": r, "peers": {p["peer"]: p.get("deductions_per_s") for p in peers},
                  "ratio_vs_best_peer": round(r / best, 2) if best else None, "target": ">= 2.0"}))
PY
