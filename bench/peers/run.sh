#!/usr/bin/env bash
# The same workload — signed-and-verified B5 deductions, concurrency 16 — run by facepay
# and by three peer SDKs (wechatpayv3 from PyPI, wechatpay-axios-plugin from npm, the
# official wechatpay-java from Maven Central) against ONE mock WeChat Pay process on
# 127.0.0.1, then the ratios: of throughput, and of each client's own CPU time per
# deduction (each client reads its process CPU clock over its timed phase; the mock's
# CPU per deduction is read from /proc around each run). Usage:
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

# The mock's own CPU time (user + system, clock ticks) before and after each client's run:
# every deduction costs it one RSA verification and one RSA signature whoever sends it.
TCK=$(getconf CLK_TCK)
mock_ticks() { awk '{ print $14 + $15 }' "/proc/$MOCK/stat"; }
run_peer() { # NAME FALLBACK_JSON CMD...
  local name=$1 fallback=$2 before out after
  shift 2
  before=$(mock_ticks)
  out=$("$@") || out=$fallback
  after=$(mock_ticks)
  printf '%s\t%s\n' "$out" "$(( after - before ))"
}
ours=$(run_peer facepay '{"peer":"facepay","deductions_per_s":0}' "$BIN" bench wechatpay --json --config "$DIR/backend.json" --deductions "$N" --concurrency "$C")
py=$(run_peer wechatpayv3 '{"peer":"wechatpayv3","deductions_per_s":0}' bench/peers/.venv/bin/python bench/peers/wechatpayv3_peer.py bench --dir "$DIR" --n "$N" --concurrency "$C")
js=$(run_peer axios '{"peer":"wechatpay-axios-plugin","deductions_per_s":0}' node bench/peers/node/wechatpay_axios_peer.js bench --dir "$DIR" --n "$N" --concurrency "$C")
jv=$(run_peer java '{"peer":"wechatpay-java","deductions_per_s":0}' java -cp "$JAVA_CP" io.facepay.peer.Peer bench --dir "$DIR" --n "$N" --concurrency "$C")

python3 - "$N" "$TCK" "$ours" "$py" "$js" "$jv" <<'PY'
import json, sys
n, tck = int(sys.argv[1]), int(sys.argv[2])
def parse(a):
    line, ticks = a.rsplit("\t", 1)
    r = json.loads(line)
    # The facepay run's mock ticks also cover its one warm-up deduction: n + 1 deductions.
    r["mock_cpu_us_per_deduction"] = int(ticks) * 1e6 / tck / (n + 1)
    return r
ours, *peers = (parse(a) for a in sys.argv[3:])
r, rc = ours["deductions_per_s"], ours.get("client_cpu_us_per_deduction")
print(f"facepay                 {r:10.1f} deductions/s  client CPU {rc or 0:7.0f} us/deduction  mock CPU {ours['mock_cpu_us_per_deduction']:5.0f} us"
      f"  (sign {ours.get('sign_us', 0):.0f} us; {ours.get('signs_per_s', 0):.0f}/s vs openssl speed {ours.get('openssl_signs_per_s')}/s, ratio {ours.get('sign_ratio_vs_openssl')})")
best = 0.0
best_cpu = None
for p in peers:
    v = p.get("deductions_per_s", 0) or 0
    c = p.get("client_cpu_us_per_deduction")
    best = max(best, v)
    if c and (best_cpu is None or c < best_cpu):
        best_cpu = c
    print(f"{p['peer']:<24}{v:10.1f} deductions/s  client CPU {c or 0:7.0f} us/deduction  mock CPU {p['mock_cpu_us_per_deduction']:5.0f} us"
          f"  facepay/peer = {r / v if v else float('inf'):.2f}x throughput, {c / rc if c and rc else float('nan'):.2f}x client CPU")
print(json.dumps({"facepay": r, "peers": {p["peer"]: p.get("deductions_per_s") for p in peers},
                  "ratio_vs_best_peer": round(r / best, 2) if best else None, "target": ">= 2.0",
                  "client_cpu_us_per_deduction": {"facepay": rc, **{p["peer"]: p.get("client_cpu_us_per_deduction") for p in peers}},
                  "client_cpu_ratio_vs_best_peer": round(best_cpu / rc, 2) if best_cpu and rc else None}))
PY
