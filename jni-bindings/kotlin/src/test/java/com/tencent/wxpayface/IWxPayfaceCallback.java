package com.tencent.wxpayface;

/** FAKE of the vendor library: the app's callback, {@code response(Map)} abstract (VENDOR-API §1). */
public abstract class IWxPayfaceCallback extends IWxPayFaceCallbackAIDL.Stub {
    public IWxPayfaceCallback() {
        super();
    }
}
