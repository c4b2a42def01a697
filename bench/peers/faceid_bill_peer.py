#!/usr/bin/env python3
"""Peer benchmark: the same daily-bill pull as `facepay bench recon`, done with the official
tencentcloud-sdk-python-faceid into SQLite (one transaction and one executemany per page,
the same (BizToken, Seq) key), then the same R6 three-way check in SQL.

Usage: faceid_bill_peer.py HOST:PORT DATE DB_FILE   -> prints one JSON line.
"""
import json
import os
import sqlite3
import sys
import time

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.faceid.v20180301 import faceid_client, models

CHARGED = ("0", "1002", "2006", "2016")


def main():
    endpoint, date, db = sys.argv[1], sys.argv[2], sys.argv[3]
    sid = os.environ.get("TENCENTCLOUD_SECRET_ID") or "AKIDfacepaymock"
    skey = os.environ.get("TENCENTCLOUD_SECRET_KEY") or "facepay-mock-secret-key"
    cp = ClientProfile()
    cp.httpProfile = HttpProfile(protocol="http", endpoint=endpoint, reqTimeout=60, keepAlive=True)
    client = faceid_client.FaceidClient(credential.Credential(sid, skey), "", cp)
    if os.path.exists(db):
        os.remove(db)
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("""CREATE TABLE details (biz_token TEXT NOT NULL, seq_key TEXT NOT NULL, bill_date TEXT NOT NULL,
        rule_id TEXT, seq TEXT, req_time_ms INTEGER, sim TEXT, is_need_charge INTEGER, charge_type TEXT,
        error_code TEXT, error_message TEXT, UNIQUE (biz_token, seq_key))""")
    con.execute("CREATE INDEX details_day ON details (bill_date)")
    con.execute("""CREATE TABLE tokens (bill_date TEXT NOT NULL, biz_token TEXT NOT NULL, rule_id TEXT,
        charge_count INTEGER, PRIMARY KEY (bill_date, biz_token))""")
    con.execute("CREATE TABLE state (bill_date TEXT PRIMARY KEY, next_cursor INTEGER, complete INTEGER)")
    t0 = time.perf_counter()
    cursor, pages, n = 0, 0, 0
    while True:
        req = models.GetWeChatBillDetailsRequest()
        req.Date, req.Cursor = date, cursor
        resp = client.GetWeChatBillDetails(req)
        rows, toks = [], []
        for b in resp.WeChatBillDetails or []:
            toks.append((date, b.BizToken, b.RuleId, b.ChargeCount))
            for i, d in enumerate(b.ChargeDetails or []):
                rt = int(d.ReqTime) if d.ReqTime and d.ReqTime.isdigit() else None
                rows.append((b.BizToken, d.Seq or "~null%d" % i, date, b.RuleId, d.Seq, rt, d.Sim,
                             d.IsNeedCharge, d.ChargeType, d.ErrorCode, d.ErrorMessage))
        with con:
            con.executemany("INSERT OR IGNORE INTO tokens VALUES (?,?,?,?)", toks)
            con.executemany("INSERT OR IGNORE INTO details VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            con.execute("INSERT OR REPLACE INTO state VALUES (?,?,?)",
                        (date, resp.NextCursor or 0, 0 if resp.HasNextPage else 1))
        pages += 1
        n += len(rows)
        if not resp.HasNextPage:
            break
        cursor = resp.NextCursor
    pull_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    # The same R6 three-way check as facepay: one pass over the day's details.
    counts = {}
    for tok, cc in con.execute("SELECT biz_token, charge_count FROM tokens WHERE bill_date = ?", (date,)):
        counts[tok] = [cc or 0, 0, 0]
    for tok, flag, code in con.execute(
            "SELECT biz_token, is_need_charge, error_code FROM details WHERE bill_date = ?", (date,)):
        c = counts.setdefault(tok, [0, 0, 0])
        if flag == 1:
            c[1] += 1
        if code in CHARGED:
            c[2] += 1
    mismatches = sum(1 for cc, nc, ec in counts.values() if cc != nc or nc != ec)
    check_s = time.perf_counter() - t1
    con.close()
    print(json.dumps({"peer": "tencentcloud-sdk-python-faceid", "details": n, "pages": pages, "pull_s": pull_s,
                      "check_s": check_s, "wall_s": pull_s + check_s, "r6_mismatches": mismatches}))


if __name__ == "__main__":
    main()
