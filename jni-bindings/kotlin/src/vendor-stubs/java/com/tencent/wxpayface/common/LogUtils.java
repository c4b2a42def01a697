package com.tencent.wxpayface.common;

import com.tencent.wxpayface.log.WxLog;

/** The library's logging front (VENDOR-API §1): android.util.Log by default, null = silent. */
public class LogUtils {
    public LogUtils() {
        throw new RuntimeException("Stub!");
    }

    public static void setLogImpl(WxLog log) {
        throw new RuntimeException("Stub!");
    }

    public static void d(String tag, String msg) {
        throw new RuntimeException("Stub!");
    }

    public static void i(String tag, String msg) {
        throw new RuntimeException("Stub!");
    }

    public static void e(String tag, String msg) {
        throw new RuntimeException("Stub!");
    }

    public static void e(String tag, String msg, Throwable t) {
        throw new RuntimeException("Stub!");
    }
}
