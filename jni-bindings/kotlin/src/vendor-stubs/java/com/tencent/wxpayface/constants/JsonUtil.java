package com.tencent.wxpayface.constants;

/** JSON helpers, a new Gson per call (VENDOR-API §1). */
@SuppressWarnings("rawtypes")
public class JsonUtil {
    public JsonUtil() {
        throw new RuntimeException("Stub!");
    }

    public static String toJson(Object o) {
        throw new RuntimeException("Stub!");
    }

    public static String toJsonString(Object o) {
        throw new RuntimeException("Stub!");
    }

    public static Object fromJson(String json, Class type) {
        throw new RuntimeException("Stub!");
    }
}
