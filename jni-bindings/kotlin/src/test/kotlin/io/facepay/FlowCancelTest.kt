package io.facepay

import java.util.concurrent.CancellationException
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.job
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * SPEC T7.7 from Kotlin and Java: cancelling the coroutine (or the future) of a flow in the middle
 * stops the flow — it ends `Cancelled`, no credential call reaches the driver, and the engine takes
 * the next flow at once. The flow timeout is 30 s and the wait for the end gives up after 10 s, so
 * only the cancellation can end it in time (a hang guard, not a timed assertion; the measured time
 * is printed).
 */
class FlowCancelTest {
    private var fp: FacePay? = null

    @After fun tearDown() {
        fp?.close()
    }

    private fun open(d: ScriptedDriver, id: String): FacePay {
        val cfg = Configs.sim(id).copy(timing = Timing(flowTimeout = java.time.Duration.ofSeconds(30)))
        return FacePay.initHost(cfg, d).also { fp = it; Ready.await(it) }
    }

    @Test fun cancelling_the_coroutine_of_a_pay_flow_ends_it_cancelled_without_a_credential_call() = runBlocking {
        val d = ScriptedDriver().apply { holdRecognition.set(true) }
        val f = open(d, "cancel-kt")
        val ended = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
            f.events.first { it is FacePayEvent.FlowEnded } as FacePayEvent.FlowEnded
        }
        val payment = launch(Dispatchers.Default) { f.pay(100, null, "1234") }
        assertTrue("startVerify reached the driver", d.verifyStarted.await(60, TimeUnit.SECONDS))
        val t0 = System.nanoTime()
        payment.cancelAndJoin()
        val ev = withTimeout(10_000) { ended.await() }
        println("coroutine cancelled -> FlowEnded(Cancelled) in %.2f ms".format((System.nanoTime() - t0) / 1e6))
        assertEquals(Outcome.Cancelled, ev.outcome)
        assertEquals(0, d.credentialCalls.get())
        assertEquals("cancelled", f.refreshHealth().lastOutcome?.lowercase())
        // The next flow runs at once (no FLOW_BUSY until a timeout).
        d.holdRecognition.set(false)
        assertTrue(f.pay(100, null, "1234").idempotencyKey.isNotEmpty())
        assertEquals(1, d.credentialCalls.get())
    }

    @Test fun cancelling_a_java_future_of_a_pay_flow_stops_the_flow() = runBlocking {
        val d = ScriptedDriver().apply { holdRecognition.set(true) }
        val f = open(d, "cancel-java")
        val ended = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
            f.events.first { it is FacePayEvent.FlowEnded } as FacePayEvent.FlowEnded
        }
        val fut = f.payFuture(100, null, "1234")
        assertTrue(d.verifyStarted.await(60, TimeUnit.SECONDS))
        assertTrue(fut.cancel(true))
        val ev = withTimeout(10_000) { ended.await() }
        assertEquals(Outcome.Cancelled, ev.outcome)
        assertEquals(0, d.credentialCalls.get())
    }

    @Test fun cancelling_a_step_by_step_wait_stops_its_flow() = runBlocking {
        val d = ScriptedDriver().apply { holdRecognition.set(true) }
        val f = open(d, "cancel-steps")
        val ended = async(Dispatchers.Default, start = CoroutineStart.UNDISPATCHED) {
            f.events.first { it is FacePayEvent.FlowEnded } as FacePayEvent.FlowEnded
        }
        val flow = f.startFlow(100)
        assertTrue(d.verifyStarted.await(60, TimeUnit.SECONDS))
        // Undispatched: the wait is registered with the engine before `launch` returns, so the
        // cancellation below cancels a wait in progress (startVerify is reached by startFlow,
        // before a dispatched coroutine would even have begun its wait).
        val waiting = launch(start = CoroutineStart.UNDISPATCHED) { f.waitRecognition(flow) }
        waiting.cancelAndJoin()
        val ev = withTimeout(10_000) { ended.await() }
        assertEquals(flow, ev.flowId)
        assertEquals(Outcome.Cancelled, ev.outcome)
        val e = runCatching { f.credential(flow) }.exceptionOrNull()
        assertTrue("T7.5: no credential after a stop: $e", e is FacePayException)
        assertEquals(0, d.credentialCalls.get())
    }

    @Test fun a_coroutine_cancelled_before_it_pays_starts_no_flow() = runBlocking {
        val d = ScriptedDriver()
        val f = open(d, "cancel-before")
        val before = f.refreshHealth().flows.values.sum()
        val thrown = AtomicReference<Throwable?>()
        launch(start = CoroutineStart.UNDISPATCHED) {
            coroutineContext.job.cancel() // cancelled but still running: its next call sees it
            thrown.set(runCatching { f.pay(100, null, "1234") }.exceptionOrNull())
        }.join()
        assertTrue("pay threw ${thrown.get()}", thrown.get() is CancellationException)
        // The next flow runs at once, and it is the only flow the engine counted: the cancelled
        // coroutine's pay started none (not one that was then stopped).
        assertTrue(f.pay(100, null, "1234").idempotencyKey.isNotEmpty())
        // (A flow is counted as it ends, just after its payment is queued. A flow started and
        // stopped by the cancelled call would have ended, and been counted, before this one began.)
        Waits.until("the paid flow is counted") { f.refreshHealth().flows.values.sum() >= before + 1 }
        val flows = f.refreshHealth().flows
        assertEquals("no flow was cancelled: $flows", null, flows["cancelled"])
        assertEquals(before + 1, flows.values.sum())
        assertEquals(1, d.credentialCalls.get())
    }
}
