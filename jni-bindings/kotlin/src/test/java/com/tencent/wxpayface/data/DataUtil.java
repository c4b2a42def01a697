package com.tencent.wxpayface.data;

import com.google.gson.Gson;
import java.util.ArrayList;
import org.json.JSONArray;
import org.json.JSONException;

/**
 * FAKE of the vendor library: JSON to users as VENDOR-API §5.1 says the library does it
 * (org.json for the array, a plain {@code new Gson()} per element; only JSONException is
 * caught in the array forms, so a Gson syntax error propagates; the single forms catch all).
 */
@SuppressWarnings("deprecation")
public class DataUtil {
    public static ArrayList<K12UserInfo> covertJsonArrayToK12Users(String json) {
        ArrayList<K12UserInfo> out = new ArrayList<>();
        try {
            JSONArray a = new JSONArray(json);
            for (int i = 0; i < a.length(); i++) {
                out.add(new Gson().fromJson(a.getString(i), K12UserInfo.class));
            }
        } catch (JSONException e) {
            return out; // the partial list
        }
        return out;
    }

    public static K12UserInfo covertJsonToK12User(String json) {
        try {
            return new Gson().fromJson(json, K12UserInfo.class);
        } catch (Exception e) {
            return null;
        }
    }

    public static ArrayList<UserInfo> covertJsonArrayToUsers(String json) {
        ArrayList<UserInfo> out = new ArrayList<>();
        try {
            JSONArray a = new JSONArray(json);
            for (int i = 0; i < a.length(); i++) {
                out.add(new Gson().fromJson(a.getString(i), UserInfo.class));
            }
        } catch (JSONException e) {
            return out;
        }
        return out;
    }

    public static UserInfo covertJsonToUser(String json) {
        try {
            return new Gson().fromJson(json, UserInfo.class);
        } catch (Exception e) {
            return null;
        }
    }
}
