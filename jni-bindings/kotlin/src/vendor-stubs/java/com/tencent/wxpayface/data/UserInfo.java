package com.tencent.wxpayface.data;

import android.os.Parcel;
import android.os.Parcelable;
import java.util.List;

/**
 * A user (VENDOR-API §6): five private String fields Gson fills by name, no public
 * constructor; valid means {@code "FS_NORMAL".equals(status)}.
 */
public class UserInfo implements Parcelable {
    public static final Parcelable.Creator<UserInfo> CREATOR = null;

    protected UserInfo(Parcel in) {
        throw new RuntimeException("Stub!");
    }

    public String getUserId() {
        throw new RuntimeException("Stub!");
    }

    public void setUserId(String userId) {
        throw new RuntimeException("Stub!");
    }

    public String getOutUserId() {
        throw new RuntimeException("Stub!");
    }

    public String getUserName() {
        throw new RuntimeException("Stub!");
    }

    public String getUserInfo() {
        throw new RuntimeException("Stub!");
    }

    public String getStatus() {
        throw new RuntimeException("Stub!");
    }

    public boolean isValidUser() {
        throw new RuntimeException("Stub!");
    }

    public static boolean isUserInfoValid(List<UserInfo> users) {
        throw new RuntimeException("Stub!");
    }

    @Override
    public int describeContents() {
        throw new RuntimeException("Stub!");
    }

    @Override
    public void writeToParcel(Parcel dest, int flags) {
        throw new RuntimeException("Stub!");
    }

    @Override
    public String toString() {
        throw new RuntimeException("Stub!");
    }
}
