package io.facepay

import kotlin.coroutines.EmptyCoroutineContext
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.suspendCancellableCoroutine
import kotlinx.coroutines.yield
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * The answer of a `suspend` call (issue 13): taken on the caller's thread when it comes while the
 * caller spins, or resuming the suspended coroutine when it comes later — exactly once either way,
 * failures included — and the spin stops for an operation whose answers are slow (a recognition
 * takes seconds: its caller must not spin on every call) and resumes once one is quick again.
 */
class SpinGateTest {
    @Test fun an_answer_that_came_during_the_spin_is_taken_without_suspending() {
        val gate = SpinGate()
        val a = Answer(gate)
        a.answered(Result.success("{\"ok\":1}"))
        assertEquals("{\"ok\":1}", gate.spin(a)?.getOrThrow())
    }

    @Test fun no_answer_within_the_spin_gives_null_and_a_later_one_resumes_the_coroutine() = runBlocking {
        val gate = SpinGate()
        val a = Answer(gate)
        assertNull(gate.spin(a))
        val waiting = async(EmptyCoroutineContext, start = CoroutineStart.UNDISPATCHED) {
            suspendCancellableCoroutine<String> { a.suspendOn(it) }
        }
        assertFalse(waiting.isCompleted)
        Thread { a.answered(Result.success("late")) }.apply { start() }.join()
        assertEquals("late", waiting.await())
    }

    @Test fun an_answer_between_the_spin_and_the_suspension_resumes_at_once() = runBlocking {
        val a = Answer(SpinGate())
        a.answered(Result.failure(FacePayException(FacePayException.FLOW_CANCELLED, "stopped")))
        val e = runCatching { suspendCancellableCoroutine<String> { a.suspendOn(it) } }.exceptionOrNull()
        assertTrue("the failure itself: $e", e is FacePayException && e.code == FacePayException.FLOW_CANCELLED)
    }

    @Test fun a_slow_answer_stops_the_spinning_and_a_quick_one_starts_it_again() {
        val gate = SpinGate()
        gate.answeredIn(SpinGate.SLOW_NANOS + 1)
        // Closed: the caller looks once and suspends; an answer already there is still taken.
        val pending = Answer(gate)
        val t0 = System.nanoTime()
        assertNull(gate.spin(pending))
        val looked = System.nanoTime() - t0
        val there = Answer(gate).also { it.answered(Result.success("x")) }
        assertEquals("x", gate.spin(there)?.getOrThrow())
        // `there` answered at once: quick, so the next call spins again (it waits out the spin).
        val next = Answer(gate)
        val t1 = System.nanoTime()
        assertNull(gate.spin(next))
        val spun = System.nanoTime() - t1
        println("closed gate: looked for %.1f us; open gate: spun for %.1f us".format(looked / 1e3, spun / 1e3))
        assertTrue("an open gate spins for the whole budget", spun >= SpinGate.SPIN_NANOS)
    }

    @Test fun on_dispatchers_default_the_answer_resumes_on_the_dispatcher() = runBlocking(Dispatchers.Default) {
        val a = Answer(SpinGate())
        val r = async(start = CoroutineStart.UNDISPATCHED) { suspendCancellableCoroutine<String> { a.suspendOn(it) } }
        yield()
        Thread { a.answered(Result.success("v")) }.apply { start() }.join()
        assertEquals("v", r.await())
    }
}
