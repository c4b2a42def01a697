package io.facepay.vendor

import android.content.Intent
import android.content.pm.ResolveInfo
import android.content.pm.ServiceInfo
import com.tencent.wxpayface.FakeFaceService
import com.tencent.wxpayface.IWxPayfaceCallback
import com.tencent.wxpayface.WxPayFace
import com.tencent.wxpayface.data.K12UserInfo
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config

/**
 * The fake of the vendor library behaves as VENDOR-API §3–§6 say (SPEC T9, T3.6), driven
 * directly: otherwise the adapter tests' "0 calls without authinfo, 0 overwrites" would prove
 * nothing. Waits for answers give up after 10 s of real time; no test sleeps for behaviour.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [34])
class FakeLibraryTest {
    private lateinit var fake: FakeFaceService
    private val app get() = RuntimeEnvironment.getApplication()
    private val face get() = WxPayFace.getInstance()

    /** A callback recording its answers. */
    private class Rec : IWxPayfaceCallback() {
        val got = LinkedBlockingQueue<Map<Any?, Any?>>()
        override fun response(info: MutableMap<Any?, Any?>?) {
            got.add(HashMap(info ?: emptyMap()))
        }
        fun next(): Map<Any?, Any?> = got.poll(10, TimeUnit.SECONDS) ?: throw AssertionError("no answer within 10 s")
    }

    @Before fun setUp() {
        fake = FakeFaceService.reset()
        val ri = ResolveInfo().apply {
            serviceInfo = ServiceInfo().apply {
                packageName = "com.tencent.wxpayface"
                name = "com.tencent.wxpayface.FaceService"
            }
        }
        shadowOf(app.packageManager).addResolveInfoForIntent(Intent("com.tencent.faceservice"), ri)
    }

    private fun authed(org: String = "org-canteen-1", authinfo: String? = "ai-1") = java.util.HashMap<Any?, Any?>().apply {
        put("appid", "wx-app")
        put("mch_id", "1900000100")
        put("mch_name", "n")
        put("organization_id", org)
        if (authinfo != null) put("authinfo", authinfo)
    }

    private fun initAndRawdata() {
        val init = Rec()
        face.initWxpayface(app, init)
        assertEquals("SUCCESS", init.next()["return_code"])
        val raw = Rec()
        face.getWxpayfaceRawdata(raw)
        assertEquals("SUCCESS", raw.next()["return_code"])
    }

    @Test fun t3_6_after_rawdata_a_call_without_authinfo_or_for_another_organisation_answers_fail() {
        initAndRawdata()
        for (bad in listOf(authed(authinfo = null), authed(org = "org-other"))) {
            val r = Rec()
            face.preloadSdkEnv(bad, r)
            val a = r.next()
            assertEquals("FAIL", a["return_code"])
            assertEquals("机构id不匹配", a["return_msg"])
        }
        assertEquals(1, fake.callsWithoutAuthinfo.get())
        assertEquals(1, fake.orgMismatches.get())
        val ok = Rec()
        face.preloadSdkEnv(authed(), ok)
        assertEquals("SUCCESS", ok.next()["return_code"])
    }

    @Test fun t9_one_pending_slot_a_second_call_overwrites_the_first_which_never_answers() {
        initAndRawdata()
        fake.kill()
        val first = Rec()
        val second = Rec()
        face.getSdkInfo(authed(), first)
        face.getSdkInfo(authed(), second)
        assertEquals(1, fake.appCallOverwrites.get())
        fake.start()
        assertEquals("FAIL", second.next()["return_code"]) // the restarted service wants the sequence first
        face.manualUpdateFaceDatas(authed(), Rec())
        val again = Rec()
        face.getSdkInfo(authed(), again)
        assertEquals("SUCCESS", again.next()["return_code"])
        assertNull("the overwritten call never answers", first.got.poll())
    }

    @Test fun t9_the_timeout_answers_fail_621_keeps_the_call_and_the_late_answer_follows() {
        initAndRawdata()
        fake.refuseBeforeSequence = false
        fake.kill() // the first connectService: arms the 10 s timeout on this thread's Looper
        val r = Rec()
        face.getSdkInfo(authed(), r)
        fake.advance(9_999)
        assertNull(r.got.poll())
        fake.advance(1)
        val fail = r.next()
        assertEquals("FAIL", fail["return_code"])
        assertEquals(Integer.valueOf(271378621), fail["err_code"]) // a bind is in flight
        assertEquals("getSdkInfo", fake.pendingName()) // kept
        fake.start()
        assertEquals("SUCCESS", r.next()["return_code"]) // the replay's real answer
        assertEquals(1, fake.lateAnswers.get())
        // Armed once per library lifetime: a second outage never answers FAIL.
        fake.kill()
        val r2 = Rec()
        face.getSdkInfo(authed(), r2)
        fake.advance(60_000)
        assertNull(r2.got.poll())
    }

    @Test fun t9_the_init_callback_answers_once_never_after_a_reconnect() {
        val init = Rec()
        face.initWxpayface(app, init)
        assertEquals("SUCCESS", init.next()["return_code"])
        fake.kill()
        fake.start()
        val deadline = System.nanoTime() + 10_000_000_000L
        while (fake.libraryInits.get() == 0) {
            check(System.nanoTime() < deadline) { "the library never re-initialised the service" }
            Thread.sleep(1)
        }
        assertNull(init.got.poll())
        assertEquals(1, fake.appInitAnswers.get())
    }

    @Test fun t9_from_a_thread_without_a_looper_the_reconnect_never_starts() {
        initAndRawdata()
        val r = Rec()
        val t = Thread {
            fake.kill() // onServiceDisconnected here: `new Handler()` throws, logged, no rebind
            face.getSdkInfo(authed(), r)
        }
        t.start()
        t.join()
        assertEquals("getSdkInfo", fake.pendingName()) // stays in the slot
        fake.advance(60_000) // no timeout was armed
        fake.start() // no bind was made: nothing connects
        assertNull(r.got.poll(200, TimeUnit.MILLISECONDS))
        assertEquals(0, fake.timeoutFails.get())
    }

    @Test fun t7_10_users_come_as_gson_built_k12userinfo_with_a_string_status_on_threads_without_a_looper() {
        initAndRawdata()
        face.manualUpdateFaceDatas(authed(), Rec())
        fake.user = FakeFaceService.User("u-9", "out-9", "FS_NORMAL", false, null)
        val r = Rec()
        face.startVerify(authed(), r)
        assertEquals("FIRST_FRAME_CALLBACK", r.next()["return_code"])
        val ok = r.next()
        assertEquals(false, ok["need_ext_verify"])
        val users = ok["user_info_list"] as List<*>
        val u = users.single() as K12UserInfo
        assertEquals("u-9", u.userId)
        assertEquals("FS_NORMAL", u.status)
        assertTrue(u.isValidUser)
        assertEquals(0, fake.answersOnLooperThreads.get())
    }
}
