package com.tencent.wxpayface.log;

/** The library's log sink (VENDOR-API §1). */
public interface WxLog {
    void d(String tag, String msg);

    void i(String tag, String msg);

    void e(String tag, String msg);

    void e(String tag, String msg, Throwable t);
}
