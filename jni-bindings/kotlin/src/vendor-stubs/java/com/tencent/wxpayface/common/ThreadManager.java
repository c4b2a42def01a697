package com.tencent.wxpayface.common;

/** The library's named threads (VENDOR-API §1): NormalThread, DispatchApiThread. */
public class ThreadManager {
    public static final int HIGHEST_THREAD_PRIORITY = -19;
    public static final String NormalThread = "NormalThread";
    public static final String DispatchApiThread = "DispatchApiThread";

    public ThreadManager() {
        throw new RuntimeException("Stub!");
    }

    public static ThreadManager getInstance() {
        throw new RuntimeException("Stub!");
    }

    public void postTaskOnSingleThread(Runnable r) {
        throw new RuntimeException("Stub!");
    }

    public void postTaskOnSingleThreadDelay(Runnable r, long delayMs) {
        throw new RuntimeException("Stub!");
    }

    public WxpayHandlerThread getHandlerThread(String name) {
        throw new RuntimeException("Stub!");
    }

    public WxpayHandlerThread getHandlerThread(String name, boolean daemon) {
        throw new RuntimeException("Stub!");
    }
}
