package com.tencent.wxpayface.data;

import java.util.ArrayList;

/** JSON to users with Gson (VENDOR-API §1, §5.1); "covert" is the library's spelling. */
public class DataUtil {
    public DataUtil() {
        throw new RuntimeException("Stub!");
    }

    public static ArrayList<K12UserInfo> covertJsonArrayToK12Users(String json) {
        throw new RuntimeException("Stub!");
    }

    public static K12UserInfo covertJsonToK12User(String json) {
        throw new RuntimeException("Stub!");
    }

    public static ArrayList<UserInfo> covertJsonArrayToUsers(String json) {
        throw new RuntimeException("Stub!");
    }

    public static UserInfo covertJsonToUser(String json) {
        throw new RuntimeException("Stub!");
    }
}
