package com.tencent.wxpayface.data;

import android.os.Parcel;
import android.os.Parcelable;
import java.util.List;

/**
 * FAKE of the vendor library (test scope, replaces the stubs): a user as VENDOR-API §6
 * describes it. Five private String fields that Gson fills by name, no public constructor
 * (instances come from Gson or a Parcel), valid only when {@code status} is
 * {@code "FS_NORMAL"} (SPEC T7.10).
 */
public class UserInfo implements Parcelable {
    private String userId;
    private String outUserId;
    private String userName;
    private String userInfo;
    private String status;

    public static final Parcelable.Creator<UserInfo> CREATOR = new Parcelable.Creator<UserInfo>() {
        @Override
        public UserInfo createFromParcel(Parcel in) {
            return new UserInfo(in);
        }

        @Override
        public UserInfo[] newArray(int size) {
            return new UserInfo[size];
        }
    };

    protected UserInfo(Parcel in) {
        userId = in.readString();
        outUserId = in.readString();
        userName = in.readString();
        userInfo = in.readString();
        status = in.readString();
    }

    public String getUserId() {
        return userId;
    }

    public void setUserId(String userId) {
        this.userId = userId;
    }

    public String getOutUserId() {
        return outUserId;
    }

    public String getUserName() {
        return userName;
    }

    public String getUserInfo() {
        return userInfo;
    }

    public String getStatus() {
        return status;
    }

    public boolean isValidUser() {
        return "FS_NORMAL".equals(status);
    }

    public static boolean isUserInfoValid(List<UserInfo> users) {
        if (users == null) return false;
        for (UserInfo u : users) {
            if (u != null && u.isValidUser()) return true;
        }
        return false;
    }

    @Override
    public int describeContents() {
        return 0;
    }

    @Override
    public void writeToParcel(Parcel dest, int flags) {
        dest.writeString(userId);
        dest.writeString(outUserId);
        dest.writeString(userName);
        dest.writeString(userInfo);
        dest.writeString(status);
    }

    @Override
    public String toString() {
        // The fake masks the name (the real one prints it): no personal data in test logs.
        return "OfflineUserInfo{userId='" + userId + "', outUserId='" + outUserId + "', userName='***', userInfo='***', status='" + status + "'}";
    }
}
