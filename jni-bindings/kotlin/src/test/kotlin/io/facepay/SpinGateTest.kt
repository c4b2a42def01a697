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
import org.junit.Assume.assumeTrue
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

    /** Whether [gate] spins now: it does if a call with no answer lasts the whole spin. */
    private fun spins(gate: SpinGate): Boolean {
        val t0 = System.nanoTime()
        assertNull(gate.spin(Answer(gate)))
        return System.nanoTime() - t0 >= SpinGate.SPIN_NANOS
    }

    @Test fun a_slow_answer_stops_the_spinning_and_a_quick_success_starts_it_again() {
        assumeTrue("a single CPU never spins", Runtime.getRuntime().availableProcessors() > 1)
        val gate = SpinGate()
        assertTrue(spins(gate))
        gate.answered(SpinGate.SLOW_NANOS + 1, ok = true) // a recognition: seconds
        assertFalse(spins(gate))
        // Closed, an answer already there is still taken.
        val there = Answer(gate).also { it.answered(Result.success("x")) }
        assertEquals("x", gate.spin(there)?.getOrThrow())
        // `there` succeeded at once: the operation is quick again.
        assertTrue(spins(gate))
    }

    @Test fun answers_that_keep_missing_the_spin_stop_it_and_a_quick_refusal_does_not_start_it() {
        assumeTrue("a single CPU never spins", Runtime.getRuntime().availableProcessors() > 1)
        val gate = SpinGate()
        val missed = SpinGate.SPIN_NANOS * 3 // a few hundred µs: spinning would only add to it
        repeat(SpinGate.MISSES - 1) { gate.answered(missed, ok = true) }
        assertTrue("MISSES - 1 misses do not stop it yet", spins(gate))
        gate.answered(missed, ok = true)
        assertFalse(spins(gate))
        gate.answered(1_000, ok = false) // FLOW_BUSY comes back at once: says nothing of a pay
        assertFalse(spins(gate))
        gate.answered(1_000, ok = true)
        assertTrue(spins(gate))
        // One miss after a quick answer is not enough to stop it.
        gate.answered(missed, ok = true)
        assertTrue(spins(gate))
    }

    @Test fun on_dispatchers_default_the_answer_resumes_on_the_dispatcher() = runBlocking(Dispatchers.Default) {
        val a = Answer(SpinGate())
        val r = async(start = CoroutineStart.UNDISPATCHED) { suspendCancellableCoroutine<String> { a.suspendOn(it) } }
        yield()
        Thread { a.answered(Result.success("v")) }.apply { start() }.join()
        assertEquals("v", r.await())
    }
}
