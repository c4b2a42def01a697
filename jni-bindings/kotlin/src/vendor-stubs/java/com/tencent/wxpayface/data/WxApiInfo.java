package com.tencent.wxpayface.data;

import android.view.SurfaceView;
import com.tencent.wxpayface.IWxPayfaceCallback;
import java.util.Map;

/** The pending-call record of the library's one slot (VENDOR-API §1, §3.3). */
@SuppressWarnings("rawtypes")
public class WxApiInfo {
    public String mFunctionName;
    public SurfaceView mSurfaceView;
    public IWxPayfaceCallback mSpecialCallback;
    public Map mInfo;

    public WxApiInfo(String functionName, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public WxApiInfo(String functionName, Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public WxApiInfo(String functionName, SurfaceView surfaceView, Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }
}
