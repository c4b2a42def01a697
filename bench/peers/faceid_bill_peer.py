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
    q = """SELECT COUNT(*) FROM (SELECT t.biz_token, t.charge_count AS cc,
              COALESCE(SUM(d.is_need_charge = 1), 0) AS nc,
              COALESCE(SUM(d.error_code IN (%s)), 0) AS ec
           FROM tokens t LEFT JOIN details d ON d.biz_token = t.biz_token AND d.bill_date = t.bill_date
           WHERE t.bill_date = ? GROUP BY t.biz_token) WHERE COALESCE(cc, 0) != nc OR nc != ec""" % ",".join("?" * len(CHARGED))
    mismatches = con.execute(q, CHARGED + (date,)).fetchone()[0]
    check_s = time.perf_counter() - t1
    con.close()
    print(json.dumps({"peer": "tencentcloud-sdk-python-faceid", "details": n, "pages": pages, "pull_s": pull_s,
                      "check_s": check_s, "wall_s": pull_s + check_s, "r6_mismatches": mismatches}))


if __name__ == "__main__":
    main()
