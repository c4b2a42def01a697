package com.tencent.wxpayface;

import android.os.Handler;
import android.os.Looper;
import android.os.Parcelable;
import com.google.gson.Gson;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * FAKE (test scope, not part of the vendor's API): the out-of-process face service behind the
 * fake {@link WxPayFace}, the manual clock of the library's timers, and the knobs and
 * counters the JVM tests use (SPEC T3.6, T7.10, T9). The remote answers on binder threads
 * without a Looper. Where VENDOR-API §11 leaves the remote's behaviour open it is stricter:
 * every call after rawdata needs the authed map ({@code appid}, {@code mch_id},
 * {@code mch_name}, {@code organization_id} = its own organisation, a non-empty
 * {@code authinfo}) or answers FAIL "机构id不匹配" (the real service's message for a mismatched
 * organisation; its code is not known, {@link #ERR_ORG_MISMATCH} is the fake's); after a
 * restart the service re-initialised by the library alone refuses getSdkInfo, verification,
 * finish and credential with 620 until {@code manualUpdateFaceDatas} ran again (as the Rust
 * simulator); {@code startFaceVerify} needs a feature update since init (T4.4); finish needs
 * the recognised session and, when the user needs auxiliary verification, their phone;
 * the credential needs the finished user's {@code user_id} (String), {@code recog_mode}
 * (Integer, 1 exactly when a phone was entered), {@code total_fee} (String of fen) and a
 * user whose status is {@code FS_NORMAL}. A map value that {@code Parcel.writeMap} could not
 * carry is dropped as the library drops it (never answered).
 */
@SuppressWarnings({"rawtypes", "unchecked"})
public final class FakeFaceService {
    /** The fake's code for "机构id不匹配" (the real code is not known). */
    public static final int ERR_ORG_MISMATCH = 990_000_005;
    public static final int ERR_NO_USER = 271378532;
    public static final int ERR_USER_STATUS = 271378533;
    public static final int ERR_NO_USER_INFO = 271378595;

    /** An enrolled user; {@code phone} is asked when {@code needExtVerify}. */
    public static final class User {
        public final String userId;
        public final String outUserId;
        public final String status;
        public final boolean needExtVerify;
        public final String phone;

        public User(String userId, String outUserId, String status, boolean needExtVerify, String phone) {
            this.userId = userId;
            this.outUserId = outUserId;
            this.status = status;
            this.needExtVerify = needExtVerify;
            this.phone = phone;
        }
    }

    private static volatile FakeFaceService current = new FakeFaceService();

    public static FakeFaceService get() {
        return current;
    }

    /** A new service and a new library instance (its once-per-lifetime timeout re-armable). */
    public static FakeFaceService reset() {
        FakeFaceService old = current;
        current = new FakeFaceService();
        WxPayFace.resetForTest();
        old.binder.shutdownNow();
        return current;
    }

    // ---- knobs ----
    public volatile String organizationId = "org-canteen-1";
    public volatile User user = new User("u-1", "out-1", "FS_NORMAL", false, null);
    /** The face in front of the camera is recognised at once; false: only FIRST_FRAME_CALLBACK. */
    public volatile boolean recognise = true;
    public volatile boolean surfaceValid = true;
    /** See the class comment; a test may lift it to get a late SUCCESS for a replayed call. */
    public volatile boolean refuseBeforeSequence = true;

    // ---- counters ----
    public final AtomicInteger appInitAnswers = new AtomicInteger();
    public final AtomicInteger libraryInits = new AtomicInteger();
    public final AtomicInteger libraryRepreloads = new AtomicInteger();
    public final AtomicInteger callsWithoutAuthinfo = new AtomicInteger();
    public final AtomicInteger orgMismatches = new AtomicInteger();
    /** An app call in the slot overwritten by another app call: its callback never answers. */
    public final AtomicInteger appCallOverwrites = new AtomicInteger();
    /** An app call displaced by the library's own re-preload, or the reverse. */
    public final AtomicInteger libraryOverwrites = new AtomicInteger();
    public final AtomicInteger timeoutFails = new AtomicInteger();
    /** Answers to a callback that had already been answered FAIL by the timeout. */
    public final AtomicInteger lateAnswers = new AtomicInteger();
    public final AtomicInteger previewAnswers = new AtomicInteger();
    public final AtomicInteger credentials = new AtomicInteger();
    public final AtomicInteger refusedCredentials = new AtomicInteger();
    public final AtomicInteger orderViolations = new AtomicInteger();
    public final AtomicInteger notInitialisedAnswers = new AtomicInteger();
    public final AtomicInteger dropped = new AtomicInteger();
    /** Calls per API name that reached the remote. */
    public final Map<String, AtomicInteger> calls = new ConcurrentHashMap<>();
    /** A copy of the last map each API reached the remote with. */
    public final Map<String, Map<Object, Object>> lastMaps = new ConcurrentHashMap<>();
    /** What happened, in order (slot entries, timeouts, replays, remote calls): for failure messages. */
    public final java.util.concurrent.ConcurrentLinkedQueue<String> events = new java.util.concurrent.ConcurrentLinkedQueue<>();
    /** The thread each answer went out on had no Looper (VENDOR-API §4). */
    public final AtomicInteger answersOnLooperThreads = new AtomicInteger();

    private final ExecutorService binder = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "binder:fake");
        t.setDaemon(true);
        return t;
    });
    private final Set<Object> failed = ConcurrentHashMap.newKeySet();

    // ---- the remote's state (guarded by this) ----
    private boolean up = true;
    private WxPayFace bindWaiting;
    private WxPayFace bound;
    private boolean initialised;
    private boolean rawdataIssued;
    private boolean updatedSinceInit;
    private boolean needsSequence;
    private long lastUpdateWallMs;
    private User recognised;
    private User finished;
    private boolean finishedWithPhone;
    private int tokens;

    // ---- the manual clock of the library's timers ----
    private final AtomicLong nowMs = new AtomicLong();
    private final PriorityQueue<long[]> due = new PriorityQueue<>((a, b) -> Long.compare(a[0], b[0]));
    private final Map<Long, Object[]> timers = new HashMap<>();
    private long timerSeq;

    synchronized void schedule(long delayMs, Looper looper, Runnable r) {
        long id = ++timerSeq;
        due.add(new long[] {nowMs.get() + delayMs, id});
        timers.put(id, new Object[] {looper, r});
    }

    /**
     * Moves the library's clock on (its 10 s timeout, its 2 s re-preload check): each timer
     * due runs on its Looper, at once when that is the caller's own (Robolectric's main
     * Looper is the test thread's).
     */
    public void advance(long ms) {
        long target = nowMs.get() + ms;
        while (true) {
            Object[] t;
            synchronized (this) {
                long[] next = due.peek();
                if (next == null || next[0] > target) break;
                due.poll();
                nowMs.set(next[0]);
                t = timers.remove(next[1]);
            }
            Looper l = (Looper) t[0];
            Runnable r = (Runnable) t[1];
            if (l == Looper.myLooper()) {
                r.run();
            } else {
                // Waits until it ran on its thread, so timers keep their order.
                java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
                new Handler(l).post(() -> {
                    try {
                        r.run();
                    } finally {
                        done.countDown();
                    }
                });
                try {
                    if (!done.await(60, java.util.concurrent.TimeUnit.SECONDS)) {
                        throw new IllegalStateException("a library timer did not run within a minute");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(e);
                }
            }
        }
        nowMs.set(target);
    }

    // ---- life of the service ----

    synchronized boolean isUp() {
        return up;
    }

    /** The service dies (an OTA upgrade): its state is gone, calls in it never answer. */
    public void kill() {
        WxPayFace lib;
        synchronized (this) {
            up = false;
            initialised = false;
            updatedSinceInit = false;
            recognised = null;
            finished = null;
            lib = bound;
            bound = null;
        }
        if (lib != null) lib.onServiceDisconnected();
    }

    /** The service is back: a bind in flight connects. */
    public void start() {
        WxPayFace lib;
        synchronized (this) {
            up = true;
            needsSequence = refuseBeforeSequence;
            lib = bindWaiting;
            bindWaiting = null;
            if (lib != null) bound = lib;
        }
        if (lib != null) lib.onServiceConnected();
    }

    void bind(WxPayFace lib) {
        boolean now;
        synchronized (this) {
            now = up && bound != lib;
            if (up) bound = lib;
            else bindWaiting = lib;
        }
        if (now) lib.onServiceConnected();
    }

    synchronized void aidlRelease(WxPayFace lib) {
        if (bound == lib && up) {
            initialised = false;
            updatedSinceInit = false;
            recognised = null;
            finished = null;
            bound = null;
        }
    }

    void aidlInit(IWxPayfaceCallback cb, boolean appCallback) {
        synchronized (this) {
            if (!up) return;
            initialised = true;
            updatedSinceInit = false;
            if (appCallback) appInitAnswers.incrementAndGet();
            else libraryInits.incrementAndGet();
        }
        deliver(cb, answer("SUCCESS", null, "SUCCESS"));
    }

    void libraryRepreload() {
        libraryRepreloads.incrementAndGet();
    }

    void timeoutFailed(String name, IWxPayfaceCallback cb) {
        timeoutFails.incrementAndGet();
        events.add("timeout FAIL " + name);
        failed.add(cb);
    }

    void event(String e) {
        events.add(e);
    }

    /**
     * A call in the slot was overwritten. Counted as an app overwrite only when an app call
     * whose callback had not been answered yet is lost (one the timeout answered FAIL is not).
     */
    void overwritten(String name, IWxPayfaceCallback oldCb, boolean oldInternal, String by, boolean newInternal) {
        events.add("slot: " + by + " overwrites " + name);
        if (oldInternal || newInternal) libraryOverwrites.incrementAndGet();
        else if (oldCb != null && !failed.contains(oldCb)) appCallOverwrites.incrementAndGet();
    }

    /** Seen by tests: the name of the call waiting in the library's slot, or null. */
    public String pendingName() {
        try {
            java.lang.reflect.Field f = WxPayFace.class.getDeclaredField("slot");
            f.setAccessible(true);
            Object p = f.get(WxPayFace.getInstance());
            if (p == null) return null;
            java.lang.reflect.Field n = p.getClass().getDeclaredField("name");
            n.setAccessible(true);
            return (String) n.get(p);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("the fake library's slot", e);
        }
    }

    public int calls(String api) {
        AtomicInteger n = calls.get(api);
        return n == null ? 0 : n.get();
    }

    // ---- the remote's answers ----

    static Map answer(String code, Integer err, String msg) {
        Map m = new HashMap();
        m.put("return_code", code);
        if (err != null) m.put("err_code", err);
        if (msg != null) m.put("return_msg", msg);
        return m;
    }

    private void deliver(IWxPayFaceCallbackAIDL cb, Map m) {
        if (cb == null) return;
        Object who = cb instanceof WxPayFace.Wrapped ? ((WxPayFace.Wrapped) cb).inner : cb;
        binder.execute(() -> {
            if (Looper.myLooper() != null) answersOnLooperThreads.incrementAndGet();
            if (failed.contains(who)) lateAnswers.incrementAndGet();
            WxPayFace.reply(cb, m);
        });
    }

    void rawdata(IWxPayfaceCallback cb) {
        Map m;
        synchronized (this) {
            if (!up) return;
            count("getWxpayfaceRawdata", null);
            if (!initialised) {
                m = notInitialised();
            } else {
                rawdataIssued = true;
                m = answer("SUCCESS", null, null);
                m.put("rawdata", "fake-rawdata-" + organizationId);
            }
        }
        deliver(cb, m);
    }

    private Map notInitialised() {
        notInitialisedAnswers.incrementAndGet();
        return answer("FAIL", WxPayFace.ERR_FACE_APP_CONNECT_SERVICE_NOT_INIT, "刷脸服务未初始化");
    }

    private void count(String api, Map info) {
        events.add("remote " + api);
        calls.computeIfAbsent(api, k -> new AtomicInteger()).incrementAndGet();
        if (info != null) lastMaps.put(api, new HashMap<Object, Object>(info));
    }

    /** The authed map (SPEC T3.6): null when it is complete and for this organisation. */
    private Map authed(Map info) {
        if (!rawdataIssued) return null;
        Object org = info.get("organization_id");
        Object auth = info.get("authinfo");
        boolean complete = auth instanceof String && !((String) auth).isEmpty() && org instanceof String
                && nonEmpty(info.get("appid")) && nonEmpty(info.get("mch_id")) && nonEmpty(info.get("mch_name"));
        if (!complete) callsWithoutAuthinfo.incrementAndGet();
        else if (!organizationId.equals(org)) orgMismatches.incrementAndGet();
        else return null;
        return answer("FAIL", ERR_ORG_MISMATCH, "机构id不匹配");
    }

    private static boolean nonEmpty(Object v) {
        return v instanceof String && !((String) v).isEmpty();
    }

    private static boolean parcelable(Map info) {
        for (Object v : info.values()) {
            if (!(v == null || v instanceof String || v instanceof Integer || v instanceof Long || v instanceof Boolean
                    || v instanceof Float || v instanceof Double || v instanceof Parcelable || v instanceof Serializable)) {
                return false;
            }
        }
        return true;
    }

    /** {@code dispatchBindApi} on DispatchApiThread (a two-way call: the remote queues the answers). */
    void dispatchBindApi(WxPayFace lib, String api, Map info, IWxPayfaceCallback cb) {
        List<Map> out = new ArrayList<>();
        synchronized (this) {
            if (!up || bound != lib || !parcelable(info)) {
                dropped.incrementAndGet(); // DeadObjectException or a marshalling failure: only logged
                return;
            }
            count(api, info);
            Map refused = initialised ? authed(info) : notInitialised();
            if (refused != null) {
                out.add(refused);
            } else {
                answerApi(api, info, out);
            }
        }
        for (Map m : out) deliver(cb, m);
    }

    private boolean sequenceMissing(List<Map> out) {
        if (needsSequence) {
            out.add(notInitialised());
            return true;
        }
        return false;
    }

    private void answerApi(String api, Map info, List<Map> out) {
        switch (api) {
            case "preloadSdkEnv":
            case "stopFaceVerify":
            case "stopCamera":
            case "removeCameaPreview":
                out.add(answer("SUCCESS", null, null));
                return;
            case "manualUpdateFaceDatas":
                updatedSinceInit = true;
                needsSequence = false;
                lastUpdateWallMs = System.currentTimeMillis() + nowMs.get();
                out.add(answer("SUCCESS", null, null));
                return;
            case "getSdkInfo": {
                if (sequenceMissing(out)) return;
                Map m = answer("SUCCESS", null, null);
                m.put("sdk_version", "2.32.300-fake");
                m.put("face_feature_version", "1");
                m.put("user_info_dbcount", Integer.valueOf(1));
                m.put("user_info_memcount", Integer.valueOf(1));
                m.put("offline_pay_info_dbcount", Integer.valueOf(0));
                m.put("user_info_total_count", Integer.valueOf(1));
                if (lastUpdateWallMs > 0) m.put("last_update_data_time", Long.valueOf(lastUpdateWallMs));
                out.add(m);
                return;
            }
            case "setCameraPreview":
                previewAnswers.incrementAndGet();
                out.add(answer("SUCCESS", null, null));
                return;
            case "startFaceVerify":
                startVerify(out);
                return;
            case "finishFaceVerify":
                finish(info, out);
                return;
            case "getFacePayCredential":
                credential(info, out);
                return;
            default:
                out.add(answer("FAIL", null, "fake: " + api + " is not modelled"));
        }
    }

    private void startVerify(List<Map> out) {
        if (sequenceMissing(out)) return;
        if (!updatedSinceInit) {
            orderViolations.incrementAndGet();
            out.add(answer("FAIL", ERR_NO_USER_INFO, "fake: features not updated since init (T4.4)"));
            return;
        }
        finished = null;
        recognised = null;
        out.add(answer("FIRST_FRAME_CALLBACK", null, null));
        if (!recognise) return;
        User u = user;
        recognised = u;
        Map m = answer("SUCCESS", null, null);
        m.put("need_ext_verify", Boolean.valueOf(u.needExtVerify));
        m.put("best_face_rect_left", Float.valueOf(10f));
        m.put("best_face_rect_right", Float.valueOf(110f));
        m.put("best_face_rect_top", Float.valueOf(20f));
        m.put("best_face_rect_bottom", Float.valueOf(150f));
        m.put("user_info_list", "[" + userJson(u) + "]");
        out.add(m);
    }

    private static String userJson(User u) {
        Map<String, String> j = new HashMap<>();
        j.put("userId", u.userId);
        j.put("outUserId", u.outUserId);
        j.put("userName", "fake-name");
        j.put("userInfo", "{}");
        j.put("status", u.status);
        return new Gson().toJson(j);
    }

    private void finish(Map info, List<Map> out) {
        if (sequenceMissing(out)) return;
        User u = recognised;
        if (u == null) {
            orderViolations.incrementAndGet();
            out.add(answer("FAIL", ERR_NO_USER, "无满足条件用户返回"));
            return;
        }
        Object phone = info.get("user_phone");
        if (u.needExtVerify && !(phone instanceof String && phone.equals(u.phone))) {
            out.add(answer("FAIL", ERR_NO_USER, "无满足条件用户返回"));
            return;
        }
        finished = u;
        finishedWithPhone = phone instanceof String;
        Map m = answer("SUCCESS", null, null);
        m.put("user_info", userJson(u));
        out.add(m);
    }

    private void credential(Map info, List<Map> out) {
        if (sequenceMissing(out)) return;
        User u = finished;
        Object userId = info.get("user_id");
        Object mode = info.get("recog_mode");
        Object fee = info.get("total_fee");
        if (u == null || !u.userId.equals(userId)) {
            orderViolations.incrementAndGet();
            out.add(answer("FAIL", ERR_NO_USER_INFO, "无对应用户信息"));
            return;
        }
        boolean feeOk = fee instanceof String && ((String) fee).matches("[1-9][0-9]*");
        boolean modeOk = mode instanceof Integer && ((Integer) mode) == (finishedWithPhone ? 1 : 0);
        if (!feeOk || !modeOk) {
            orderViolations.incrementAndGet();
            out.add(answer("FAIL", null, "fake: recog_mode must be an Integer 0/1, total_fee a String of fen"));
            return;
        }
        if (!"FS_NORMAL".equals(u.status)) {
            refusedCredentials.incrementAndGet();
            out.add(answer("FAIL", ERR_USER_STATUS, "用户状态异常"));
            return;
        }
        finished = null;
        credentials.incrementAndGet();
        Map m = answer("SUCCESS", null, null);
        m.put("face_token", "fake-token-" + (++tokens));
        out.add(m);
    }
}
