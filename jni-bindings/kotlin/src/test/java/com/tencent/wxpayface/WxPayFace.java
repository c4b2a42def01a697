package com.tencent.wxpayface;

import android.content.ComponentName;
import android.content.Context;
import android.content.Intent;
import android.content.pm.ResolveInfo;
import android.os.Handler;
import android.os.HandlerThread;
import android.os.Looper;
import android.os.RemoteException;
import android.view.Surface;
import android.view.SurfaceHolder;
import android.view.SurfaceView;
import com.tencent.wxpayface.data.DataUtil;
import com.tencent.wxpayface.log.WxLog;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * FAKE of the vendor library's client side (test scope; it replaces the compile-only stubs on
 * the test class path, with the same public members — {@code VendorSurfaceTest} proves it).
 * It behaves as VENDOR-API §2–§8 describe the real one, for SPEC T9: the connection check on
 * the caller's thread; ONE pending slot while not connected (a second call overwrites the
 * first, whose callback never answers); the 10 s timeout armed at most once per instance, on
 * the Looper of the thread that armed it ({@code new Handler()}: a thread without a Looper
 * throws, the public method logs it, the call stays in the slot), answering FAIL 620/621 and
 * keeping the call, which is replayed at the reconnect (the late answer); the init callback
 * answered once, never after a reconnect (the library re-initialises the service with its own
 * no-op callback); the auto re-preload with {@code lastRequestInfo} 2 s after a disconnect,
 * through the same slot; dispatches serialised on {@code DispatchApiThread}; maps never
 * copied; {@code setCameraPreview} answering once per send, again on every
 * {@code surfaceChanged}; the startVerify / finish wrappers turning the remote's JSON into
 * {@code K12UserInfo} with Gson. The remote service is {@link FakeFaceService}; its answers
 * come on binder threads without a Looper. Time is {@link FakeFaceService}'s manual clock.
 */
@SuppressWarnings({"rawtypes", "unchecked", "deprecation"})
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
    public static final Integer ERR_FACE_APP_CONNECT_SERVICE_NOT_INIT;
    public static final Integer ERR_FACE_APP_CONNECT_SERVICE_INITING;

    static {
        ERR_FACE_APP_CONNECT_SERVICE_NOT_INIT = Integer.valueOf(271378620);
        ERR_FACE_APP_CONNECT_SERVICE_INITING = Integer.valueOf(271378621);
    }

    /** VENDOR-API §3.3: the only names a pending call may have and still be replayed. */
    private static final Set<String> REPLAYABLE = new HashSet<>(Arrays.asList(
            "getWxpayfaceRawdata", "preloadSdkEnv", "getSdkInfo", "manualUpdateFaceDatas", "startFaceVerify",
            "stopFaceVerify", "stopCamera", "setCameraPreview", "removeCameaPreview", "finishFaceVerify",
            "getFacePayCredential", "clearFaceDatas", "startCodeScanner", "stopCodeScanner", "getUserInfo",
            "goToFactoryPage", "goToCameraPreviewPage", "goToSettingPage", "enableFirewall", "disableFirewall",
            "reportMCHAction"));

    private static volatile WxPayFace instance;

    /** The pending-call record (the library's {@code WxApiInfo}). */
    private static final class Pending {
        final String name;
        final SurfaceView view;
        final Map info;
        final IWxPayfaceCallback cb;
        final boolean internal;

        Pending(String name, SurfaceView view, Map info, IWxPayfaceCallback cb, boolean internal) {
            this.name = name;
            this.view = view;
            this.info = info;
            this.cb = cb;
            this.internal = internal;
        }
    }

    private final FakeFaceService remote = FakeFaceService.get();
    private volatile boolean connected;
    private volatile boolean connecting;
    private volatile Pending slot;
    /** The OverTimeHandler's Looper: set once, never reset (VENDOR-API §3.4). */
    private Looper timeoutLooper;
    private volatile boolean timeoutQueued;
    private IWxPayfaceCallback initCallback;
    private Context context;
    private Map proxyMap;
    private volatile Map lastRequestInfo;
    private volatile boolean sdkStarted;
    private volatile boolean needPreloadEnv;
    private int preloadCountAfterConnected;
    private HandlerThread dispatchThread;
    private Handler dispatch;
    private SurfaceHolder.Callback holderCallback;
    private SurfaceView holderView;
    private WxLog log;

    public WxPayFace() {}

    public static WxPayFace getInstance() {
        if (instance == null) {
            synchronized (WxPayFace.class) {
                if (instance == null) instance = new WxPayFace();
            }
        }
        return instance;
    }

    static void resetForTest() {
        synchronized (WxPayFace.class) {
            WxPayFace old = instance;
            instance = null;
            if (old != null && old.dispatchThread != null) old.dispatchThread.quitSafely();
        }
    }

    private synchronized Handler dispatch() {
        if (dispatch == null) {
            dispatchThread = new HandlerThread("DispatchApiThread");
            dispatchThread.start();
            dispatch = new Handler(dispatchThread.getLooper());
        }
        return dispatch;
    }

    private void logE(String msg, Throwable t) {
        if (log != null) log.e(TAG, msg, t);
    }

    /** {@code bd.pingBinder() && mIsServiceConnected}. */
    private boolean isConnected() {
        return connected && remote.isUp();
    }

    // ---- init and the connection (VENDOR-API §3) ----

    public void initWxpayface(Context context, IWxPayfaceCallback callback) {
        initWxpayface(context, null, callback);
    }

    public void initWxpayface(Context context, Map info, IWxPayfaceCallback callback) {
        dispatch().post(() -> realInit(context, info, callback));
    }

    private void realInit(Context ctx, Map info, IWxPayfaceCallback cb) {
        if (ctx == null) return; // logged only; the callback never answers
        if (info != null) info.put("aar_version", AAR_VERSION_NAME);
        if (isConnected()) {
            if (info != null) {
                remote.dispatchBindApi(this, API_SET_PROXY, info, cb);
            } else {
                reply(cb, FakeFaceService.answer("SUCCESS", null, "SUCCESS"));
            }
            return;
        }
        release(ctx, false);
        proxyMap = info;
        context = ctx;
        bindFaceService(ctx);
        // An earlier init callback not yet answered is dropped.
        initCallback = cb;
    }

    private synchronized void bindFaceService(Context ctx) {
        if (ctx == null) return;
        Intent explicit = createExplicitFromImplicitIntent(ctx, new Intent("com.tencent.faceservice"));
        if (explicit == null) return; // "bindFaceService failed!": the bind silently never happens
        connecting = true;
        remote.bind(this);
    }

    /** {@code onServiceConnected} (the main thread on a device). */
    void onServiceConnected() {
        connected = true;
        connecting = false;
        timeoutQueued = false;
        dispatch().post(this::handleServiceConnected);
    }

    private void handleServiceConnected() {
        IWxPayfaceCallback cb = initCallback;
        remote.aidlInit(cb != null ? cb : new NoopCallback(), cb != null);
        initCallback = null;
        Pending p = slot;
        slot = null;
        if (p != null) remote.event("replay " + p.name);
        if (p != null && REPLAYABLE.contains(p.name)) replay(p);
    }

    private void replay(Pending p) {
        switch (p.name) {
            case "getWxpayfaceRawdata":
                getWxpayfaceRawdata(p.cb);
                break;
            case "setCameraPreview":
                setCameraPreview(p.view, p.info, p.cb);
                break;
            case "startFaceVerify":
                startVerify(p.info, p.cb);
                break;
            case "finishFaceVerify":
                finishFaceVerify(p.info, p.cb);
                break;
            case "removeCameaPreview":
                removeCameraView(p.info, p.cb);
                break;
            default:
                disp(p.name, p.info, p.cb, p.internal);
        }
    }

    /** {@code onServiceDisconnected}: rebinds at once, arms the timeout the first time, re-preloads later. */
    void onServiceDisconnected() {
        connected = false;
        connecting = false;
        needPreloadEnv = sdkStarted;
        if (needPreloadEnv) preloadCountAfterConnected = 0;
        try {
            connectService();
        } catch (RuntimeException e) {
            logE("connectService", e);
        }
        startCheckPreloadTask();
    }

    private void connectService() {
        if (isConnected()) return;
        if (timeoutLooper == null) {
            Looper l = Looper.myLooper();
            if (l == null) {
                // What `new Handler()` throws on a thread without a Looper (VENDOR-API §3.4).
                throw new RuntimeException("Can't create handler inside thread " + Thread.currentThread()
                        + " that has not called Looper.prepare()");
            }
            timeoutLooper = l;
            timeoutQueued = true;
            remote.schedule(10_000, l, this::onTimeout);
        }
        bindFaceService(context);
    }

    /** RETRY_CONNECT_OVER_TIME: answers the slot's callback FAIL and keeps the call. */
    private void onTimeout() {
        if (!timeoutQueued) return;
        timeoutQueued = false;
        Pending p = slot;
        if (p == null || p.cb == null) return;
        Map m = connecting
                ? FakeFaceService.answer("FAIL", ERR_FACE_APP_CONNECT_SERVICE_INITING, "刷脸服务初始化中")
                : FakeFaceService.answer("FAIL", ERR_FACE_APP_CONNECT_SERVICE_NOT_INIT, "刷脸服务未初始化");
        remote.timeoutFailed(p.name, p.cb);
        reply(p.cb, m);
    }

    private void startCheckPreloadTask() {
        remote.schedule(2_000, dispatch().getLooper(), this::checkPreload);
    }

    private void checkPreload() {
        if (!needPreloadEnv || preloadCountAfterConnected >= 5) return;
        preloadCountAfterConnected++;
        Map last = lastRequestInfo;
        if (last == null || !last.containsKey("authinfo")) return;
        remote.libraryRepreload();
        IWxPayfaceCallback internal = new IWxPayfaceCallback() {
            @Override
            public void response(Map info) {
                if (info != null && "SUCCESS".equals(info.get("return_code"))) {
                    needPreloadEnv = false;
                    return;
                }
                Object err = info == null ? null : info.get("err_code");
                if (err == ERR_FACE_APP_CONNECT_SERVICE_INITING || err == ERR_FACE_APP_CONNECT_SERVICE_NOT_INIT) {
                    preloadCountAfterConnected = 0;
                }
                startCheckPreloadTask();
            }
        };
        disp(API_PRELOAD_SDKENV, last, internal, true);
    }

    private void toSlot(Pending p) {
        Pending old = slot;
        slot = p;
        if (old != null) remote.overwritten(old.name, old.cb, old.internal, p.name, p.internal);
        else remote.event("slot: " + p.name);
    }

    // ---- the common path (VENDOR-API §2.1) ----

    private void disp(String api, Map info, IWxPayfaceCallback cb, boolean internal) {
        try {
            if (!isConnected()) {
                toSlot(new Pending(api, null, info, cb, internal));
                connectService();
                return;
            }
            info.put("aar_version", AAR_VERSION_NAME);
            post(api, info, cb);
        } catch (RuntimeException e) {
            logE(api, e); // caught and logged: the call silently does nothing
        }
    }

    private void post(String api, Map info, IWxPayfaceCallback cb) {
        dispatch().post(() -> {
            if (info.containsKey("authinfo")) lastRequestInfo = info; // the same reference
            sdkStarted = true;
            info.put("aar_version", AAR_VERSION_NAME);
            remote.dispatchBindApi(this, api, info, wrap(api, cb));
        });
    }

    /** The startVerify and finish wrappers (VENDOR-API §5.1); the slot keeps the app's callback. */
    private static IWxPayfaceCallback wrap(String api, IWxPayfaceCallback cb) {
        if (cb == null) return null;
        if (API_START_FACE_VERIFY.equals(api)) {
            return new Wrapped(cb) {
                @Override
                public void response(Map m) throws RemoteException {
                    if (m != null && m.containsKey("user_info_list")) {
                        List users = DataUtil.covertJsonArrayToK12Users((String) m.get("user_info_list"));
                        if (users == null || users.isEmpty()) m.remove("user_info_list");
                        else m.put("user_info_list", users);
                    }
                    inner.response(m);
                }
            };
        }
        if (API_FINISH_FACE_VERIFY.equals(api)) {
            return new Wrapped(cb) {
                @Override
                public void response(Map m) throws RemoteException {
                    if (m != null && m.containsKey("user_info")) {
                        Object u = DataUtil.covertJsonToK12User((String) m.get("user_info"));
                        if (u == null) m.remove("user_info");
                        else m.put("user_info", u);
                    }
                    inner.response(m);
                }
            };
        }
        return cb;
    }

    static void reply(IWxPayFaceCallbackAIDL cb, Map m) {
        if (cb == null) return;
        try {
            cb.response(m);
        } catch (RemoteException e) {
            // only logged
        }
    }

    public void getWxpayfaceRawdata(IWxPayfaceCallback callback) {
        try {
            if (!isConnected()) {
                toSlot(new Pending("getWxpayfaceRawdata", null, null, callback, false));
                connectService();
                return;
            }
            remote.rawdata(callback); // the caller's thread, not posted
        } catch (RuntimeException e) {
            logE("getWxpayfaceRawdata", e);
        }
    }

    public void preloadSdkEnv(Map info, IWxPayfaceCallback callback) {
        disp(API_PRELOAD_SDKENV, info, callback, false);
    }

    public void getSdkInfo(Map info, IWxPayfaceCallback callback) {
        disp(API_GET_SDK_INFO, info, callback, false);
    }

    public void getUserInfo(Map info, IWxPayfaceCallback callback) {
        disp(API_GET_USER_INFO, info, callback, false);
    }

    public void goToFactoryPage(Map info, IWxPayfaceCallback callback) {
        disp(API_GOTO_FACTORY_PAGE, info, callback, false);
    }

    public void goToCameraPreviewPage(Map info, IWxPayfaceCallback callback) {
        disp(API_GOTO_CAMERA_PREVIEW_PAGE, info, callback, false);
    }

    public void goToSettingPage(Map info, IWxPayfaceCallback callback) {
        disp(API_GOTO_SETTING_PAGE, info, callback, false);
    }

    public void enableFirewall(Map info, IWxPayfaceCallback callback) {
        try {
            if (!isConnected()) {
                toSlot(new Pending(API_ENABLE_FIRE_WALL, null, info, callback, false));
                connectService();
                return;
            }
            info.put("aar_version", AAR_VERSION_NAME);
            remote.dispatchBindApi(this, API_ENABLE_FIRE_WALL, info, callback);
        } catch (Throwable t) {
            logE(API_ENABLE_FIRE_WALL, t);
        }
    }

    public void disableFirewall(IWxPayfaceCallback callback) {
        try {
            remote.dispatchBindApi(this, API_DISABLE_FIRE_WALL, new HashMap(), callback);
        } catch (RuntimeException e) {
            logE(API_DISABLE_FIRE_WALL, e);
        }
    }

    public void manualUpdateFaceDatas(Map info, IWxPayfaceCallback callback) {
        disp(API_MANUAL_UPDATE_FACEDATAS, info, callback, false);
    }

    /** The callback is wrapped at dispatch: {@code user_info_list} becomes {@code ArrayList<K12UserInfo>}. */
    public void startVerify(Map info, IWxPayfaceCallback callback) {
        disp(API_START_FACE_VERIFY, info, callback, false);
    }

    public void stopVerify(Map info, IWxPayfaceCallback callback) {
        disp(API_STOP_FACE_VERIFY, info, callback, false);
    }

    public void stopCamera(Map info, IWxPayfaceCallback callback) {
        disp(API_STOP_CAMERA, info, callback, false);
    }

    // ---- the preview (VENDOR-API §7) ----

    public synchronized void setCameraPreview(SurfaceView view, Map info, IWxPayfaceCallback callback) {
        setCameraPreview(view, info, callback, false);
    }

    /** Not wrapped in try/catch: exceptions reach the caller. */
    public synchronized void setCameraPreview(SurfaceView view, Map info, IWxPayfaceCallback callback, boolean manualHandle) {
        if (!isConnected()) {
            toSlot(new Pending(API_SET_CAMERA_PREVIEW, view, info, callback, false));
            connectService();
            return;
        }
        unregisterHolder();
        if (view == null || view.getHolder() == null || info == null) {
            reply(callback, FakeFaceService.answer("ERROR", null, "传参的surfaceview宽高值不能为空"));
            return;
        }
        Surface surface = surfaceOf(view.getHolder());
        if (manualHandle || remote.surfaceValid) send(view, info, callback, surface);
        if (manualHandle) return;
        if (info.containsKey("authinfo")) lastRequestInfo = info;
        holderView = view;
        holderCallback = new SurfaceHolder.Callback() {
            @Override
            public void surfaceCreated(SurfaceHolder holder) {}

            @Override
            public void surfaceChanged(SurfaceHolder holder, int format, int w, int h) {
                Map last = lastRequestInfo;
                Surface s = surfaceOf(holder);
                if (s != null && remote.surfaceValid) send(view, last != null ? last : info, callback, s);
            }

            @Override
            public void surfaceDestroyed(SurfaceHolder holder) {
                Map last = lastRequestInfo;
                removeCameraView(last != null ? last : info, null);
            }
        };
        view.getHolder().addCallback(holderCallback);
    }

    /**
     * The holder's Surface. Robolectric's fake holder has none; a device has one by
     * {@code surfaceChanged}: the host stands in a new one (whether it is valid is
     * {@link FakeFaceService#surfaceValid}).
     */
    private static Surface surfaceOf(SurfaceHolder holder) {
        Surface s = holder.getSurface();
        return s != null ? s : new Surface();
    }

    private void send(SurfaceView view, Map info, IWxPayfaceCallback callback, Surface surface) {
        if (info == null || surface == null) return;
        info.put("callback_surface", surface);
        info.put("callback_surface_width", Integer.valueOf(view.getWidth()));
        info.put("callback_surface_height", Integer.valueOf(view.getHeight()));
        disp(API_SET_CAMERA_PREVIEW, info, callback, false);
    }

    private synchronized void unregisterHolder() {
        if (holderView != null && holderCallback != null) holderView.getHolder().removeCallback(holderCallback);
        holderView = null;
        holderCallback = null;
    }

    public synchronized void removeCameraView(Map info, IWxPayfaceCallback callback) {
        unregisterHolder();
        disp(API_REMOVE_CAMERA_PREVIEW, info, callback, false);
    }

    @Deprecated
    public void reportMchAction(Map info, IWxPayfaceCallback callback) {
        disp(API_REPORT_MCH_ACTION, info, callback, false);
    }

    /** The callback is wrapped at dispatch: {@code user_info} becomes a {@code K12UserInfo}. */
    public void finishFaceVerify(Map info, IWxPayfaceCallback callback) {
        disp(API_FINISH_FACE_VERIFY, info, callback, false);
    }

    public void getFacePayCredential(Map info, IWxPayfaceCallback callback) {
        disp(API_GET_FACE_PAY_CREDENTIAL, info, callback, false);
    }

    public void clearFaceDatas(Map info, IWxPayfaceCallback callback) {
        disp(API_CLEAR_FACEDATAS, info, callback, false);
    }

    public void startCodeScanner(Map info, IWxPayfaceCallback callback) {
        disp(API_START_CODE_SCANNER, info, callback, false);
    }

    public void stopCodeScanner(Map info, IWxPayfaceCallback callback) {
        disp(API_STOP_CODE_SCANNER, info, callback, false);
    }

    public void callApiWithApiName(String apiName, Map info, IWxPayfaceCallback callback) {
        disp(apiName, info, callback, false);
    }

    // ---- release (VENDOR-API §8) ----

    public void releaseWxpayface(Context context) {
        if (context == null) return;
        release(context, true);
    }

    private void release(Context ctx, boolean isPublic) {
        dispatch().removeCallbacksAndMessages(null);
        remote.aidlRelease(this);
        if (isPublic) {
            sdkStarted = false;
            lastRequestInfo = null;
        }
        unregisterHolder();
        connected = false;
        connecting = false;
        initCallback = null;
    }

    public void setLog(WxLog log) {
        this.log = log;
    }

    public static void handleWxPayfaceCallback(String api, String retCode, String msg, IWxPayFaceCallbackAIDL callback) {
        Map m = new HashMap();
        m.put("return_code", retCode);
        m.put("return_msg", msg);
        reply(callback, m);
    }

    public static Intent createExplicitFromImplicitIntent(Context context, Intent implicitIntent) {
        List<ResolveInfo> found = context.getPackageManager().queryIntentServices(implicitIntent, 0);
        if (found == null || found.size() != 1) return null;
        ResolveInfo r = found.get(0);
        Intent explicit = new Intent(implicitIntent);
        explicit.setComponent(new ComponentName(r.serviceInfo.packageName, r.serviceInfo.name));
        return explicit;
    }

    /** A wrapper callback around the app's (the library's anonymous wrappers). */
    abstract static class Wrapped extends IWxPayfaceCallback {
        final IWxPayfaceCallback inner;

        Wrapped(IWxPayfaceCallback inner) {
            this.inner = inner;
        }
    }

    /** The library's own init callback after a reconnect: it only logs. */
    static final class NoopCallback extends IWxPayfaceCallback {
        @Override
        public void response(Map info) {}
    }
}
