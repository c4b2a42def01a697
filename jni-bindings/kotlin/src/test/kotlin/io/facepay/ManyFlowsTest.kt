package io.facepay

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * 100,000 pay flows driven from Kotlin through the JNI driver path (every vendor call goes out
 * on the dispatch thread and comes back through Driver_answer) leave no growth in the JNI
 * global references the library holds; closing gives them all back. The build runs this with
 * -Xcheck:jni and fails on any JNI warning (local-ref overflow, unchecked exception).
 */
class ManyFlowsTest {
    @Test fun flows_100k_leave_no_global_ref_growth() {
        val before = TestNative.Debug_liveGlobalRefs()
        val f = FacePay.initHost(Configs.sim("many-1"), FakeDriver())
        try {
            Ready.await(f)
            val afterInit = TestNative.Debug_liveGlobalRefs()
            assertEquals(before + 2, afterInit) // the one driver bridge and the event sink
            val keys = HashSet<String>()
            // Half through the blocking natives, half through the suspend API (a completion
            // global reference per call, each released).
            repeat(50_000) {
                keys.add(f.payBlocking(100).idempotencyKey)
            }
            kotlinx.coroutines.runBlocking {
                repeat(50_000) { keys.add(f.pay(100).idempotencyKey) }
            }
            assertEquals(100_000, keys.size) // every flow paid, each its own payment
            // The last completion's reference is dropped on the engine's thread just after it
            // resumed the coroutine: let it settle (a wait, not a timed assertion; growth never settles).
            val settle = System.nanoTime() + 10_000_000_000L
            while (TestNative.Debug_liveGlobalRefs() != afterInit && System.nanoTime() < settle) Thread.sleep(1)
            assertEquals(afterInit, TestNative.Debug_liveGlobalRefs())
        } finally {
            f.close()
        }
        // The bridge's global ref is deleted on the (attached) dispatch thread.
        val deadline = System.nanoTime() + 60_000_000_000L
        while (TestNative.Debug_liveGlobalRefs() != before) {
            check(System.nanoTime() < deadline) { "global refs not released after close" }
            Thread.sleep(1)
        }
        assertTrue(TestNative.Debug_liveGlobalRefs() == before)
    }
}
