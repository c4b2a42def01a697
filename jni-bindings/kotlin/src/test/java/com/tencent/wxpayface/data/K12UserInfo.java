package com.tencent.wxpayface.data;

import android.os.Parcel;

/**
 * FAKE of the vendor library: the K12 user the library builds with Gson from the remote's
 * JSON (VENDOR-API §5.1, §6); nothing else constructs it, and it has no CREATOR of its own.
 */
@Deprecated
public class K12UserInfo extends UserInfo {
    protected K12UserInfo(Parcel in) {
        super(in);
    }

    @Override
    public String toString() {
        return "K12" + super.toString().substring("Offline".length());
    }
}
