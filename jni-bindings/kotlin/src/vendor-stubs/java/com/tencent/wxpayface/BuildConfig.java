package com.tencent.wxpayface;

/** The AAR's build constants (VENDOR-API §1). */
public final class BuildConfig {
    public static final boolean DEBUG = false;
    public static final String APPLICATION_ID = "com.tencent.wxpayface";
    public static final String BUILD_TYPE = "release";
    public static final String FLAVOR = "";
    public static final int VERSION_CODE = 0;
    public static final String VERSION_NAME = "2.32.300";

    public BuildConfig() {
        throw new RuntimeException("Stub!");
    }
}
