package com.tencent.wxpayface.common;

import android.os.Handler;
import android.os.Looper;

/** A HandlerThread with its Handler (VENDOR-API §1). */
public class WxpayHandlerThread {
    public WxpayHandlerThread(String name, int priority) {
        throw new RuntimeException("Stub!");
    }

    public Looper getThreadLooper() {
        throw new RuntimeException("Stub!");
    }

    public Handler getHandler() {
        throw new RuntimeException("Stub!");
    }

    public boolean isAlive() {
        throw new RuntimeException("Stub!");
    }

    public void setDaemon(boolean daemon) {
        throw new RuntimeException("Stub!");
    }

    public void start() {
        throw new RuntimeException("Stub!");
    }
}
