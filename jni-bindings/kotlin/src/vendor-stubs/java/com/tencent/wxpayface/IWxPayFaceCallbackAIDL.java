package com.tencent.wxpayface;

import android.os.IBinder;
import android.os.IInterface;
import android.os.Parcel;
import android.os.RemoteException;
import java.util.Map;

/** The remote's callback interface (VENDOR-API §1): one two-way transaction, code 1. */
@SuppressWarnings("rawtypes")
public interface IWxPayFaceCallbackAIDL extends IInterface {
    void response(Map info) throws RemoteException;

    /** The AIDL stub: descriptor {@code com.tencent.wxpayface.IWxPayFaceCallbackAIDL}. */
    public static abstract class Stub extends android.os.Binder implements IWxPayFaceCallbackAIDL {
        public Stub() {
            throw new RuntimeException("Stub!");
        }

        public static IWxPayFaceCallbackAIDL asInterface(IBinder obj) {
            throw new RuntimeException("Stub!");
        }

        @Override
        public IBinder asBinder() {
            throw new RuntimeException("Stub!");
        }

        @Override
        public boolean onTransact(int code, Parcel data, Parcel reply, int flags) throws RemoteException {
            throw new RuntimeException("Stub!");
        }
    }
}
