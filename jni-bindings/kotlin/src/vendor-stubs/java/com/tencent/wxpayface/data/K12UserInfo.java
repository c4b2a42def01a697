package com.tencent.wxpayface.data;

import android.os.Parcel;

/** The K12 user the library builds with Gson (VENDOR-API §6); no CREATOR of its own. */
@Deprecated
public class K12UserInfo extends UserInfo {
    protected K12UserInfo(Parcel in) {
        super(in);
        throw new RuntimeException("Stub!");
    }

    @Override
    public String toString() {
        throw new RuntimeException("Stub!");
    }
}
