package com.tencent.wxpayface;

import android.content.Context;
import android.content.Intent;
import android.view.SurfaceView;
import com.tencent.wxpayface.log.WxLog;
import java.util.Map;

/** The library's entry (VENDOR-API §1, §2.2): every public member, no behaviour. */
@SuppressWarnings("rawtypes")
public class WxPayFace {
    public static final String TAG = "WxPayFace";
    public static final String KEY_PROXY = "proxy";
    public static final String API_SET_PROXY = "setProxy";
    public static final String API_ENABLE_FIRE_WALL = "enableFirewall";
    public static final String API_DISABLE_FIRE_WALL = "disableFirewall";
    public static final String API_PRELOAD_SDKENV = "preloadSdkEnv";
    public static final String API_GET_SDK_INFO = "getSdkInfo";
    public static final String API_MANUAL_UPDATE_FACEDATAS = "manualUpdateFaceDatas";
    public static final String API_START_FACE_VERIFY = "startFaceVerify";
    public static final String API_STOP_FACE_VERIFY = "stopFaceVerify";
    public static final String API_STOP_CAMERA = "stopCamera";
    public static final String API_SET_CAMERA_PREVIEW = "setCameraPreview";
    public static final String API_REMOVE_CAMERA_PREVIEW = "removeCameaPreview";
    public static final String API_FINISH_FACE_VERIFY = "finishFaceVerify";
    public static final String API_GET_FACE_PAY_CREDENTIAL = "getFacePayCredential";
    public static final String API_CLEAR_FACEDATAS = "clearFaceDatas";
    public static final String API_START_CODE_SCANNER = "startCodeScanner";
    public static final String API_STOP_CODE_SCANNER = "stopCodeScanner";
    public static final String API_GET_USER_INFO = "getUserInfo";
    public static final String API_REPORT_MCH_ACTION = "reportMCHAction";
    public static final String API_GOTO_FACTORY_PAGE = "goToFactoryPage";
    public static final String API_GOTO_CAMERA_PREVIEW_PAGE = "goToCameraPreviewPage";
    public static final String API_GOTO_SETTING_PAGE = "goToSettingPage";
    public static final String RETURN_CODE = "return_code";
    public static final String KEY_RET_COMMON_ERROR_CODE = "err_code";
    public static final String RETURN_MSG = "return_msg";
    public static final String RETURN_SUCCESS = "SUCCESS";
    public static final String RETURN_FAIL = "FAIL";
    public static final String AAR_VERSION_NAME = "2.32.300.0";
    /** Set in the static initialiser: {@code Integer} objects, not compile-time constants. */
    public static final Integer ERR_FACE_APP_CONNECT_SERVICE_NOT_INIT;
    public static final Integer ERR_FACE_APP_CONNECT_SERVICE_INITING;

    static {
        ERR_FACE_APP_CONNECT_SERVICE_NOT_INIT = Integer.valueOf(271378620);
        ERR_FACE_APP_CONNECT_SERVICE_INITING = Integer.valueOf(271378621);
    }

    public WxPayFace() {
        throw new RuntimeException("Stub!");
    }

    public static WxPayFace getInstance() {
        throw new RuntimeException("Stub!");
    }

    public void initWxpayface(Context context, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void initWxpayface(Context context, Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void getWxpayfaceRawdata(IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void disableFirewall(IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public synchronized void setCameraPreview(SurfaceView view, Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public synchronized void setCameraPreview(SurfaceView view, Map info, IWxPayfaceCallback callback, boolean manualHandle) {
        throw new RuntimeException("Stub!");
    }

    public synchronized void removeCameraView(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    @Deprecated
    public void reportMchAction(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void callApiWithApiName(String apiName, Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void releaseWxpayface(Context context) {
        throw new RuntimeException("Stub!");
    }

    public void setLog(WxLog log) {
        throw new RuntimeException("Stub!");
    }

    public static void handleWxPayfaceCallback(String api, String retCode, String msg, IWxPayFaceCallbackAIDL callback) {
        throw new RuntimeException("Stub!");
    }

    public static Intent createExplicitFromImplicitIntent(Context context, Intent implicitIntent) {
        throw new RuntimeException("Stub!");
    }

    public void preloadSdkEnv(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void getSdkInfo(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void getUserInfo(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void goToFactoryPage(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void goToCameraPreviewPage(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void goToSettingPage(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void enableFirewall(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void manualUpdateFaceDatas(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void startVerify(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void stopVerify(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void stopCamera(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void finishFaceVerify(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void getFacePayCredential(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void clearFaceDatas(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void startCodeScanner(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }

    public void stopCodeScanner(Map info, IWxPayfaceCallback callback) {
        throw new RuntimeException("Stub!");
    }
}
