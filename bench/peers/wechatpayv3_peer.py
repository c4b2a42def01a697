#!/usr/bin/env python3
"""Peer client: the third-party `wechatpayv3` SDK (PyPI) against the facepay mock WeChat Pay.

Modes:
  interop  -- B1 tokens, B3 authinfo, B5 transaction and order query with the SDK's own
              signing and verification (public-key or certificates mode, from backend.json).
              Prints one JSON line and exits non-zero on any failure.
  bench    -- N signed-and-verified B5 deductions with C threads; prints
              {"peer": "wechatpayv3", "deductions_per_s": ...}.

Usage: wechatpayv3_peer.py interop|bench --dir FIXTURE_DIR [--n N] [--concurrency C]
FIXTURE_DIR is what `facepay mock wechatpay --dir` writes (TEST keys, backend.json).
"""
import argparse
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.type import RequestType


def client(d):
    cfg = json.load(open(os.path.join(d, "backend.json")))
    key = open(cfg["merchant_key_file"]).read()
    key = key[key.index("-----BEGIN"):]
    kw = {}
    if cfg["platform"]["mode"] == "public_key":
        kw = dict(public_key=open(cfg["platform"]["public_key_file"]).read(), public_key_id=cfg["platform"]["public_key_id"])
        apiv3 = "unused-in-public-key-mode-000000"
    else:
        apiv3 = cfg["platform"]["apiv3_key"]
    # The SDK has no base-URL option and its constructor may already download
    # certificates: point its gateway at the mock for the whole process.
    import wechatpayv3.core as core
    core.Core._gate_way = property(lambda self: cfg["base_url"], lambda self, v: None)
    w = WeChatPay(wechatpay_type=WeChatPayType.NATIVE, mchid=cfg["mch_id"], private_key=key,
                  cert_serial_no=cfg["merchant_serial_no"], appid=cfg["sp_appid"], apiv3_key=apiv3,
                  partner_mode=True, timeout=(5, 10), **kw)
    return w, cfg


def deduct(w, cfg, code, amount=100):
    body = {
        "auth_code": code, "sp_appid": cfg["sp_appid"], "sp_mchid": cfg["mch_id"], "sub_mchid": cfg["sub_mchid"],
        "amount": {"total": amount, "currency": "CNY"}, "scene_info": {"device_ip": "127.0.0.1"},
        "description": "peer", "attach": "peer-" + code,
        "out_trade_no": "PY" + uuid.uuid4().hex[:24], "business": {"business_product_id": 2, "business_scene_id": 3},
    }
    code_, text = w._core.request("/v3/offlineface/transactions", method=RequestType.POST, data=body)
    if code_ != 200:
        raise RuntimeError(f"transaction HTTP {code_}: {text}")
    return body["out_trade_no"], json.loads(text)


def interop(d):
    w, cfg = client(d)
    org = cfg["organizations"][0]
    out = {"peer": "wechatpayv3", "mode": cfg["platform"]["mode"]}
    c, t = w._core.request("/v3/offlinefacemch/tokens", method=RequestType.POST,
                           data={"scene": "WEBSESSION", "web_init_data": {"out_user_id": "ou1", "organization_id": org}})
    assert c == 200 and json.loads(t)["token"], (c, t)
    c, t = w._core.request("/v3/offlineface/authinfo", method=RequestType.POST,
                           data={"sp_appid": cfg["sp_appid"], "sub_mchid": cfg["sub_mchid"], "device_id": "d1",
                                 "raw_data": "raw", "organization_id": org})
    assert c == 200 and json.loads(t)["authinfo"], (c, t)
    no, tx = deduct(w, cfg, "peer-code-" + uuid.uuid4().hex[:8])
    assert tx["trade_state"] == "SUCCESS", tx
    q = f"/v3/offlineface/transactions/out-trade-no/{no}?sp_mchid={cfg['mch_id']}&sub_mchid={cfg['sub_mchid']}&business_product_id=2"
    c, t = w._core.request(q)
    assert c == 200 and json.loads(t)["trade_state"] == "SUCCESS", (c, t)
    out.update(ok=True, calls=4)
    print(json.dumps(out))


def bench(d, n, conc):
    w, cfg = client(d)
    deduct(w, cfg, "warm-" + uuid.uuid4().hex)
    cpu0 = time.process_time()  # this process's user + system CPU, every thread
    t0 = time.perf_counter()
    with ThreadPoolExecutor(conc) as ex:
        list(ex.map(lambda i: deduct(w, cfg, "pyb-" + uuid.uuid4().hex), range(n)))
    dt = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(json.dumps({"peer": "wechatpayv3", "deductions": n, "concurrency": conc, "seconds": round(dt, 3),
                      "deductions_per_s": round(n / dt, 1),
                      "client_cpu_us_per_deduction": round(cpu * 1e6 / n, 1)}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["interop", "bench"])
    p.add_argument("--dir", required=True)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    a = p.parse_args()
    try:
        interop(a.dir) if a.mode == "interop" else bench(a.dir, a.n, a.concurrency)
    except Exception as e:  # one line, non-zero exit
        print(json.dumps({"peer": "wechatpayv3", "ok": False, "error": str(e)[:300]}))
        sys.exit(1)
