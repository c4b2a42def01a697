package com.tencent.wxpayface;

import android.os.IBinder;
import android.os.IInterface;
import android.os.Parcel;
import android.os.RemoteException;
import java.util.Map;

/**
 * The remote service interface, transactions 1–15 in this order (VENDOR-API §1); the library
 * uses 1, 2, 7 and 15 only. The callback parameters are typed {@link IWxPayFaceCallbackAIDL}
 * (what AIDL generates for a callback interface; VENDOR-API does not spell the parameter types).
 */
@SuppressWarnings("rawtypes")
public interface IWxPayFaceAIDL extends IInterface {
    void initWxpayface(IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void getWxpayfaceRawdata(IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void getWxpayfaceCode(Map info, IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void updateWxpayfacePayResult(Map info, IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void reportInfo(Map info, IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void reportOrder(Map info, IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void releaseWxpayface() throws RemoteException;
    void getWxpayfaceUserInfo(Map info, IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void stopWxpayface(Map info, IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void updateWxpayfaceBannerState(Map info, IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void ttsSpeak(String text) throws RemoteException;
    void startCodeScanner(IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void stopCodeScanner() throws RemoteException;
    void getWxpayAuth(Map info, IWxPayFaceCallbackAIDL cb) throws RemoteException;
    void dispatchBindApi(String api, Map info, IWxPayFaceCallbackAIDL cb) throws RemoteException;

    /** The AIDL stub: descriptor {@code com.tencent.wxpayface.IWxPayFaceAIDL}. */
    public static abstract class Stub extends android.os.Binder implements IWxPayFaceAIDL {
        public Stub() {
            throw new RuntimeException("Stub!");
        }

        public static IWxPayFaceAIDL asInterface(IBinder obj) {
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
