package io.facepay

import java.util.Collections
import java.util.concurrent.ConcurrentHashMap
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The engine's events and health reach Kotlin by themselves (SPEC T1.4, T4.3, T7, T7.8, T8): a
 * scripted run — a heartbeat left unanswered (disconnect, reconnect), features that go stale and
 * fresh, a restart window around now (planned, restart now), a payment (flow ended, queued,
 * final), a preview of the wrong aspect (bound, aspect), a gate (recognised) — delivers every
 * kind it provokes (the kinds it cannot provoke here are parsed from Rust's samples in
 * `SchemaTest`), each once and in order, and `health` follows with
 * no call made.
 */
class EventsTest {
    private var fp: FacePay? = null

    @After fun tearDown() {
        fp?.close()
    }

    private fun scriptedConfig(id: String): FacePayConfig {
        // T8: a restart window around the current local hour (UTC+8), so the plan and the advice both come.
        val hour = (((System.currentTimeMillis() / 3_600_000) + 8) % 24).toInt()
        return Configs.sim(id).copy(
            timing = Configs.FAST_TIMING.copy(featureCheckEvery = Configs.ms(100), featureStaleAfter = Configs.ms(250)),
            restartWindowHours = Pair(hour, (hour + 1) % 24),
        )
    }

    @Test fun every_event_kind_of_a_scripted_run_is_delivered_once_in_order() = runBlocking {
        val d = ScriptedDriver()
        val f = FacePay.initHost(scriptedConfig("events-1"), d).also { fp = it }
        val seen = ConcurrentHashMap<String, FacePayEvent>()
        val seqs = Collections.synchronizedList(ArrayList<Long>())
        val collector = launch(Dispatchers.Default) {
            f.events.collect {
                seen.putIfAbsent(it.javaClass.simpleName, it)
                seqs.add(it.seq)
            }
        }
        fun waitKind(vararg kinds: String) = Waits.until("events ${kinds.toList()} (seen ${seen.keys})") { kinds.all { seen.containsKey(it) } }

        f.awaitReady()
        waitKind("StateChanged", "RestartPlanned", "RestartNow", "AuthInfoRefreshed", "FeaturesUpdated")
        val paid = f.pay(100, null, "1234")
        waitKind("FlowEnded", "PaymentQueued", "PaymentFinal")
        // T6: a 4:3 surface binds, with the aspect warning (T6.4); T1.3: a gate recognises.
        f.surfaceChanged(1, 640, 480)
        waitKind("PreviewBound", "PreviewAspect")
        f.startGate()
        waitKind("GateRecognised")
        f.stopGate()
        // T4.3: the library reports no update for longer than feature_stale_after; the
        // reconnect's update (T4.1) makes the features fresh again.
        d.lastUpdateMs = System.currentTimeMillis() - 86_400_000L
        waitKind("FeaturesStale")
        d.silentChecks.set(1)
        waitKind("ServiceDisconnected", "ServiceReconnected", "FeaturesFresh")
        collector.cancelAndJoin()

        val ended = seen["FlowEnded"] as FacePayEvent.FlowEnded
        assertEquals(paid.flowId, ended.flowId)
        assertEquals(Outcome.Credential, ended.outcome)
        assertEquals(paid.idempotencyKey, (seen["PaymentQueued"] as FacePayEvent.PaymentQueued).idempotencyKey)
        val fin = seen["PaymentFinal"] as FacePayEvent.PaymentFinal
        assertEquals(paid.idempotencyKey, fin.idempotencyKey)
        assertEquals(PaymentState.PAID, fin.state)
        assertTrue((seen["RestartPlanned"] as FacePayEvent.RestartPlanned).atUnixMs > 0)
        assertTrue((seen["ServiceDisconnected"] as FacePayEvent.ServiceDisconnected).reason.isNotEmpty())
        // Numbered from 1, no gap, none twice (the collector never fell behind the buffer).
        val s = synchronized(seqs) { seqs.toList() }
        assertEquals((1L..s.size).toList(), s)
    }

    @Test fun health_is_pushed_with_no_call_made() = runBlocking {
        val d = ScriptedDriver()
        // No call at all: the engine initialises by itself (T2.3) and pushes every change.
        val f = FacePay.initHost(scriptedConfig("health-1"), d).also { fp = it }
        val ready = withTimeout(60_000) {
            f.health.first { it.state == ServiceState.READY && it.featuresReady && it.authinfoValidForMs != null }
        }
        assertTrue(ready.initCalls >= 1)
        d.silentChecks.set(1)
        val back = withTimeout(60_000) { f.health.first { it.disconnects >= 1 && it.reconnects >= 1 && it.state == ServiceState.READY } }
        assertTrue("init again after the loss (T1.2)", back.initCalls >= 2)
        assertTrue(back.nextRestartUnixMs != null)
    }

    @Test fun a_java_listener_gets_the_same_events_until_closed() {
        val f = FacePay.initHost(Configs.sim("listener-1"), ScriptedDriver()).also { fp = it }
        val got = Collections.synchronizedList(ArrayList<FacePayEvent>())
        val handle = f.addEventListener { got.add(it) }
        Ready.await(f)
        val paid = f.payBlocking(100, null, "1234")
        Waits.until("the listener saw the payment final") {
            synchronized(got) { got.any { it is FacePayEvent.PaymentFinal && it.idempotencyKey == paid.idempotencyKey } }
        }
        handle.close()
        val n = got.size
        f.payBlocking(100, null, "1234")
        Waits.until("the second payment is final") { f.refreshHealth().paymentsFinal.values.sum() >= 2 }
        assertEquals("no event after the listener was closed", n, got.size)
    }

    @Test fun the_events_of_the_last_flow_before_close_still_reach_kotlin() {
        val f = FacePay.initHost(Configs.sim("events-close"), SimulatedFaceDriver(3)).also { fp = it }
        Ready.await(f)
        // The first flow's events are pushed at once; the second's come within the pump's batch
        // interval after them, so they may still be queued in Rust when close() runs right away:
        // the pump pushes what is queued before it ends.
        f.payBlocking(100)
        val last = f.payBlocking(100)
        f.close()
        val seen = f.events.replayCache
        assertTrue("FlowEnded of the last flow in $seen", seen.any { it is FacePayEvent.FlowEnded && it.flowId == last.flowId })
        assertTrue("PaymentQueued of the last flow", seen.any { it is FacePayEvent.PaymentQueued && it.flowId == last.flowId })
        assertEquals("each event once", seen.map { it.seq }.distinct().size, seen.size)
    }
}
