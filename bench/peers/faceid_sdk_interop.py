#!/usr/bin/env python3
"""Third-party interop check: the official tencentcloud-sdk-python-faceid, with its own
TC3 signing, talks to our mock FaceID server (`facepay mock faceid`).

Usage: faceid_sdk_interop.py ENDPOINT_HOST:PORT DATE EXPECTED_DETAILS
Exits non-zero on any failure. Credentials: the mock's test pair unless
TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY are set. With FACEPAY_MOCK_TEMP=ID:KEY:TOKEN
(the mock started with the same --temp-credential) the SDK's temporary credentials
(X-TC-Token) are checked too.
"""
import os
import sys

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.faceid.v20180301 import faceid_client, models


def make_client(endpoint, secret_id, secret_key, token=None):
    hp = HttpProfile(protocol="http", endpoint=endpoint, reqTimeout=30)
    cp = ClientProfile()
    cp.httpProfile = hp
    return faceid_client.FaceidClient(credential.Credential(secret_id, secret_key, token), "", cp)


def main():
    endpoint, date, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sid = os.environ.get("TENCENTCLOUD_SECRET_ID") or "AKIDfacepaymock"
    skey = os.environ.get("TENCENTCLOUD_SECRET_KEY") or "facepay-mock-secret-key"
    client = make_client(endpoint, sid, skey)

    # A multi-page bill, page by page, exactly as the vendor's own doc loops (R5).
    cursor, pages, details, charged, charge_count, cursors = 0, 0, 0, 0, 0, set()
    seen = set()
    while True:
        req = models.GetWeChatBillDetailsRequest()
        req.Date, req.Cursor = date, cursor
        resp = client.GetWeChatBillDetails(req)
        pages += 1
        for bill in resp.WeChatBillDetails or []:
            charge_count += bill.ChargeCount or 0
            for d in bill.ChargeDetails or []:
                details += 1
                if d.IsNeedCharge is True:
                    charged += 1
                key = (bill.BizToken, d.Seq if d.Seq is not None else "~null%d" % details)
                assert key not in seen, "duplicate detail %r" % (key,)
                seen.add(key)
        if not resp.HasNextPage:
            break
        assert resp.NextCursor not in cursors, "cursor loop"
        cursors.add(resp.NextCursor)
        cursor = resp.NextCursor
    assert pages > 1, "expected a multi-page bill, got %d page(s)" % pages
    assert details == expected, "expected %d details, got %d" % (expected, details)
    assert charge_count == charged, "R6: sum of ChargeCount %d != IsNeedCharge %d" % (charge_count, charged)

    # DetectAuth + GetDetectInfoEnhanced (R1, R2).
    req = models.DetectAuthRequest()
    req.RuleId, req.Extra = "1", "interop-order-1"
    token = client.DetectAuth(req).BizToken
    assert token, "DetectAuth returned no BizToken"
    req = models.GetDetectInfoEnhancedRequest()
    req.BizToken, req.RuleId, req.InfoType = token, "1", "1"
    info = client.GetDetectInfoEnhanced(req)
    assert info.Text is not None, "GetDetectInfoEnhanced returned no Text"
    assert info.Text.Extra == "interop-order-1", "Text.Extra is the DetectAuth Extra: %r" % info.Text.Extra

    # The documented errors reach the SDK as its own exception codes.
    def expect_error(fn, code):
        try:
            fn()
        except TencentCloudSDKException as e:
            assert e.get_code() == code, "expected %s, got %s" % (code, e.get_code())
            return
        raise AssertionError("expected %s, got success" % code)

    bad = make_client(endpoint, sid, skey + "x")
    req = models.GetWeChatBillDetailsRequest()
    req.Date, req.Cursor = date, 0
    expect_error(lambda: bad.GetWeChatBillDetails(req), "AuthFailure.SignatureFailure")
    req = models.GetWeChatBillDetailsRequest()
    req.Date, req.Cursor, req.RuleId = date, 0, "no-such-rule"
    expect_error(lambda: client.GetWeChatBillDetails(req), "InvalidParameterValue.RuleIdNotExist")
    # The documented code of a bad Date and of a bad Cursor.
    req = models.GetWeChatBillDetailsRequest()
    req.Date, req.Cursor = date.replace("-", "/"), 0
    expect_error(lambda: client.GetWeChatBillDetails(req), "InvalidParameter")
    req = models.GetWeChatBillDetailsRequest()
    req.Date, req.Cursor = date, 12345
    expect_error(lambda: client.GetWeChatBillDetails(req), "InvalidParameter")

    temp = os.environ.get("FACEPAY_MOCK_TEMP")
    if temp:
        tid, tkey, ttok = temp.split(":", 2)
        req = models.GetWeChatBillDetailsRequest()
        req.Date, req.Cursor = date, 0
        assert make_client(endpoint, tid, tkey, ttok).GetWeChatBillDetails(req).HasNextPage is not None
        expect_error(lambda: make_client(endpoint, tid, tkey).GetWeChatBillDetails(req), "AuthFailure.TokenFailure")
        expect_error(lambda: make_client(endpoint, tid, tkey, ttok + "x").GetWeChatBillDetails(req),
                     "AuthFailure.TokenFailure")

    print("interop ok: tencentcloud-sdk-python-faceid pulled %d pages, %d details, %d charges; "
          "DetectAuth/GetDetectInfoEnhanced with Extra ok; AuthFailure.SignatureFailure, RuleIdNotExist, "
          "InvalidParameter seen%s"
          % (pages, details, charge_count, "; temporary credentials (X-TC-Token) ok" if temp else ""))


if __name__ == "__main__":
    main()
