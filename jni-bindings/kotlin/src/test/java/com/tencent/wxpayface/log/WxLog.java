package com.tencent.wxpayface.log;

/** FAKE of the vendor library: its log sink (VENDOR-API §1). */
public interface WxLog {
    void d(String tag, String msg);

    void i(String tag, String msg);

    void e(String tag, String msg);

    void e(String tag, String msg, Throwable t);
}
