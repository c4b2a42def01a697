package com.tencent.wxpayface;

import android.os.IBinder;
import android.os.IInterface;
import android.os.Parcel;
import android.os.RemoteException;
import java.util.Map;

/** FAKE of the vendor library: the remote's callback interface (VENDOR-API §1). */
@SuppressWarnings("rawtypes")
public interface IWxPayFaceCallbackAIDL extends IInterface {
    void response(Map info) throws RemoteException;

    /** The AIDL stub: a real {@link android.os.Binder} (Robolectric's shadows on the host). */
    public static abstract class Stub extends android.os.Binder implements IWxPayFaceCallbackAIDL {
        static final String DESCRIPTOR = "com.tencent.wxpayface.IWxPayFaceCallbackAIDL";

        public Stub() {
            attachInterface(this, DESCRIPTOR);
        }

        public static IWxPayFaceCallbackAIDL asInterface(IBinder obj) {
            if (obj == null) return null;
            IInterface local = obj.queryLocalInterface(DESCRIPTOR);
            return local instanceof IWxPayFaceCallbackAIDL ? (IWxPayFaceCallbackAIDL) local : null;
        }

        @Override
        public IBinder asBinder() {
            return this;
        }

        @Override
        public boolean onTransact(int code, Parcel data, Parcel reply, int flags) throws RemoteException {
            if (code == 1) {
                data.enforceInterface(DESCRIPTOR);
                response(data.readHashMap(getClass().getClassLoader()));
                if (reply != null) reply.writeNoException();
                return true;
            }
            return super.onTransact(code, data, reply, flags);
        }
    }
}
