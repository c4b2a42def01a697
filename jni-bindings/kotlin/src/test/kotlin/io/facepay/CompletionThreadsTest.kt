package io.facepay

import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import kotlin.coroutines.CoroutineContext
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * Where the asynchronous API completes (issue 13): the engine's thread finishes a call and
 * resumes the coroutine on its own dispatcher (one wake-up, no facepay thread in between), is a
 * daemon (a host JVM still exits), and never runs app code: a future's dependent stages and an
 * `Unconfined` coroutine run on `facepay-completions`, so a stage that blocks stalls neither the
 * engine nor a `get()` (SPEC T1.1: every call answers within its deadline; T7.7 stop from any thread).
 */
class CompletionThreadsTest {
    private var fp: FacePay? = null

    @After fun tearDown() {
        fp?.close()
    }

    private fun open(d: FaceServiceDriver, id: String): FacePay = FacePay.initHost(Configs.sim(id), d).also { fp = it; Ready.await(it) }

    /** Dispatches to Default, noting the thread that resumed the coroutine. */
    private class NotingDispatcher : CoroutineDispatcher() {
        val from = CopyOnWriteArrayList<String>()
        override fun dispatch(context: CoroutineContext, block: Runnable) {
            from.add(Thread.currentThread().name)
            Dispatchers.Default.dispatch(context, block)
        }
    }

    @Test fun a_coroutine_is_resumed_by_the_engine_thread_itself_which_is_a_daemon() = runBlocking {
        val f = open(FakeDriver(), "threads-resume")
        val d = NotingDispatcher()
        withContext(d) {
            repeat(20) {
                assertTrue(f.pay(100, null, "1234").idempotencyKey.isNotEmpty())
            }
        }
        // The first entry is withContext's own dispatch; each pay's resume follows. None comes
        // through the event thread; a resume from the caller's thread happens only when the whole
        // call finished within its native call.
        val resumes = d.from.drop(1)
        assertTrue("resumed from ${resumes.toSet()}", resumes.none { it == "facepay-callbacks" })
        assertTrue("resumed from ${resumes.toSet()}", resumes.any { it == "facepay-engine" })
        val engineThreads = Thread.getAllStackTraces().keys.filter { it.name == "facepay-engine" }
        assertFalse(engineThreads.isEmpty())
        assertTrue("the attached engine thread is a daemon", engineThreads.all { it.isDaemon })
    }

    @Test fun an_unconfined_coroutine_never_resumes_on_the_engine_thread() = runBlocking {
        val f = open(FakeDriver(), "threads-unconfined")
        repeat(5) {
            val resumedOn = withContext(Dispatchers.Unconfined) {
                f.pay(100, null, "1234")
                Thread.currentThread().name
            }
            // (kotlinx's debug mode appends " @coroutine#n" to a thread's name while it runs one)
            assertEquals("facepay-completions", resumedOn.substringBefore(" @"))
        }
    }

    /** Starts a flow whose recognition [d] holds, once its startVerify has reached the driver. */
    private fun heldFlow(f: FacePay, d: ScriptedDriver): Long {
        d.verifyStarted = CountDownLatch(1)
        val flow = f.startFlowBlocking(100)
        assertTrue(d.verifyStarted.await(60, TimeUnit.SECONDS))
        return flow
    }

    /** A thread named [name] waiting in `wait.get()`; its outcome (an exception or "value") goes to the result. */
    private fun waiterIn(wait: java.util.concurrent.CompletableFuture<*>, name: String): Pair<Thread, AtomicReference<Any?>> {
        val got = AtomicReference<Any?>()
        val waiter = Thread({ got.set(runCatching { wait.get() }.exceptionOrNull() ?: "value") }, name).apply { start() }
        Waits.until("the waiter waits") { waiter.state == Thread.State.WAITING }
        return Pair(waiter, got)
    }

    @Test fun a_blocking_future_stage_runs_on_facepay_completions_and_stalls_neither_engine_nor_get() {
        val d = ScriptedDriver().apply { holdRecognition.set(true) }
        val f = open(d, "threads-future")
        val flow = heldFlow(f, d)
        // Pending for sure (the recognition is held), so the stage is registered before completion.
        val wait = f.waitRecognitionFuture(flow)
        val gate = CountDownLatch(1)
        val stageThread = AtomicReference<String>()
        val slow = wait.handle { _, e ->
            stageThread.set(Thread.currentThread().name)
            gate.await()
            e
        }
        f.stopBlocking(flow) // the engine answers the wait (cancelled) from its thread
        Waits.until("the stage runs") { stageThread.get() != null }
        assertEquals("facepay-completions", stageThread.get().substringBefore(" @"))
        // While that stage blocks facepay-completions: the engine answers, a suspend call
        // resumes, and a future's get() returns (it waits for the answer, not for the stage thread).
        d.holdRecognition.set(false)
        assertTrue(f.payBlocking(100, null, "1234").idempotencyKey.isNotEmpty())
        runBlocking { assertTrue(f.pay(100, null, "1234").idempotencyKey.isNotEmpty()) }
        val got = f.payFuture(100, null, "1234")
        assertTrue(got.get(60, TimeUnit.SECONDS).idempotencyKey.isNotEmpty())
        assertTrue(got.isDone)
        gate.countDown()
        val e = slow.get(60, TimeUnit.SECONDS)
        assertTrue("the wait failed with the flow's stop: $e", e?.cause is FacePayException || e is FacePayException)
    }

    @Test fun a_future_completed_or_cancelled_by_its_user_wakes_a_waiting_get() {
        val d = ScriptedDriver().apply { holdRecognition.set(true) }
        val f = open(d, "threads-user-complete")
        val wait = f.waitRecognitionFuture(heldFlow(f, d))
        val (waiter, got) = waiterIn(wait, "app-waiter")
        assertTrue(wait.cancel(true)) // T7.7: stops the flow too
        waiter.join(60_000)
        assertFalse(waiter.isAlive)
        assertTrue("get() threw ${got.get()}", got.get() is java.util.concurrent.CancellationException)
    }

    @Test fun a_thread_waiting_in_get_completes_the_future_itself_and_no_answer_is_lost() {
        val d = ScriptedDriver().apply { holdRecognition.set(true) }
        val f = open(d, "threads-waiter")
        repeat(3) { round ->
            val flow = heldFlow(f, d)
            val wait = f.waitRecognitionFuture(flow)
            val stageThread = AtomicReference<String>()
            val staged = wait.handle { _, e -> stageThread.set(Thread.currentThread().name); e }
            val (waiter, got) = waiterIn(wait, "app-waiter-$round")
            f.stopBlocking(flow) // the engine answers the wait (cancelled) while get() waits
            waiter.join(60_000)
            assertFalse(waiter.isAlive)
            assertTrue("get() threw ${got.get()}", got.get() is java.util.concurrent.ExecutionException)
            staged.get(60, TimeUnit.SECONDS)
            // The waiter completed the future on its way out: its stage ran there, not on a
            // hand-off to facepay-completions (one thread fewer woken per answered get()).
            assertEquals("app-waiter-$round", stageThread.get().substringBefore(" @"))
        }
    }
}
