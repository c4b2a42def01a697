package com.tencent.wxpayface.data;

import android.view.Surface;

/** The last preview surface sent (VENDOR-API §1, §7.2). */
public class WxSurfaceInfo {
    public Surface surface;
    public int width;
    public int height;

    public WxSurfaceInfo(Surface surface, int width, int height) {
        throw new RuntimeException("Stub!");
    }

    @Override
    public boolean equals(Object o) {
        throw new RuntimeException("Stub!");
    }

    @Override
    public int hashCode() {
        throw new RuntimeException("Stub!");
    }
}
