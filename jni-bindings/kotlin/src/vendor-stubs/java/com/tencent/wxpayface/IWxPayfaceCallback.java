package com.tencent.wxpayface;

/** The app's callback: subclassed anonymously; {@code response(Map)} stays abstract (VENDOR-API §1). */
public abstract class IWxPayfaceCallback extends IWxPayFaceCallbackAIDL.Stub {
    public IWxPayfaceCallback() {
        throw new RuntimeException("Stub!");
    }
}
