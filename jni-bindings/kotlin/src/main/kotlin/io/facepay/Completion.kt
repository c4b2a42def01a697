package io.facepay

import java.util.concurrent.CancellationException
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionException
import java.util.concurrent.ExecutionException
import java.util.concurrent.Executor
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference
import kotlin.coroutines.ContinuationInterceptor
import kotlin.coroutines.CoroutineContext
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.ExecutorCoroutineDispatcher
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.MutableStateFlow

/**
 * The completion of one asynchronous native (`Native.Engine_*Async`): Rust calls [done] once
 * (code 0 and the result's JSON, or the `FacePayException` code and message) and [flowStarted]
 * as soon as a pay flow has its id, both on the thread that finished the step — usually the
 * engine's own (`facepay-engine`, a daemon), sometimes the caller's inside the native call. That
 * thread must never be held up by app code (SPEC T1.1: the engine answers every call within its
 * deadline), so what runs here only enqueues: an answer the caller still spins for is stored for
 * it ([Answer]: no wake-up at all), a suspended continuation is resumed on its own dispatcher (the
 * one wake-up of the call), a future's waiting `get()` is unparked, and anything that could run
 * app code in place goes to [Completions]. [cancel] stops the flow (SPEC T7.7) — at once if the id
 * is known, else when it arrives — so a cancelled coroutine or future never leaves a flow running
 * to its timeout.
 */
@CalledFromNative
internal class NativeCompletion(
    private val stopFlow: (Long) -> Unit,
    private val onDone: (Result<String>) -> Unit,
) {
    private var flowId = 0L
    private var cancelled = false

    @CalledFromNative
    fun done(code: Int, payload: String) {
        onDone(if (code == 0) Result.success(payload) else Result.failure(FacePayException(code, payload)))
    }

    @CalledFromNative
    fun flowStarted(id: Long) {
        val stop = synchronized(this) {
            flowId = id
            cancelled
        }
        if (stop) stopFlow(id)
    }

    fun cancel() {
        val id = synchronized(this) {
            cancelled = true
            flowId
        }
        if (id != 0L) stopFlow(id)
    }

    companion object {
        fun <T> forFuture(stopFlow: (Long) -> Unit, parse: (String) -> T): Pair<NativeCompletion, FacePayFuture<T>> {
            val f = FacePayFuture(parse)
            val c = NativeCompletion(stopFlow) { r -> f.answered(r) }
            f.onCancel = { c.cancel() }
            return Pair(c, f)
        }
    }
}

/**
 * Whether the caller of one operation spins for its answer before suspending (issue 13: the
 * `suspend` path within 50 µs of Rust alone). A dispatcher wake-up costs tens of microseconds on
 * a virtual CPU, while the engine answers a quick operation (a preview change, a gate command, a
 * simulated pay flow) within tens of microseconds; the blocking natives and [FacePayFuture.get]
 * spin for the same reason. The spin is bounded by [SPIN_NANOS], never happens on a single CPU
 * (the spinning caller would only keep the engine from answering), and stops for an operation
 * whose answers miss it: at once after one slower than [SLOW_NANOS] (a recognition, a pay flow
 * at a real terminal: seconds), or after [MISSES] in a row slower than the spin (an operation
 * that takes a few hundred microseconds would otherwise spin and then suspend on every call). A
 * successful answer within the spin starts it again; a failure (a refusal comes quickly) does
 * not. The cost, on whatever thread calls — the main thread too — is at most [SPIN_NANOS] of CPU
 * per call of an operation that has lately been quick, far under a frame; a coroutine cancelled
 * during the spin sees its cancellation when the spin ends (and keeps an answer that came in it).
 */
internal class SpinGate {
    /** Answers in a row that missed the spin; [MISSES] (or more) stops the spinning. */
    @Volatile private var misses = 0

    /** Spins for [answer] if the operation is quick; null if no answer came within the spin. */
    fun spin(answer: Answer): Result<String>? {
        if (!MULTI_CORE || misses >= MISSES) return answer.take()
        val until = System.nanoTime() + SPIN_NANOS
        while (true) {
            answer.take()?.let { return it }
            if (System.nanoTime() - until >= 0) return null
        }
    }

    /** Records how long the engine took to answer (spun for or not) and whether it succeeded. */
    fun answered(nanos: Long, ok: Boolean) {
        val m = when {
            nanos > SLOW_NANOS -> MISSES
            !ok -> return
            nanos <= SPIN_NANOS -> 0
            else -> minOf(misses + 1, MISSES)
        }
        if (misses != m) misses = m
    }

    companion object {
        /**
         * 100 µs: twice the blocking natives' spin (`facepay::terminal::blocking::SPIN`), since
         * resuming a suspended coroutine costs more than unparking a thread — the engine's thread
         * pays for the unpark (about 20 µs measured on a virtual CPU), then the dispatcher's
         * thread wakes and runs the continuation (30 to 50 µs more, `scripts/bench-jni`).
         */
        const val SPIN_NANOS = 100_000L

        /** An answer slower than this (10 spins) stops the spinning at once. */
        const val SLOW_NANOS = 10 * SPIN_NANOS

        /** Answers in a row slower than the spin that stop the spinning. */
        const val MISSES = 4

        private val MULTI_CORE = Runtime.getRuntime().availableProcessors() > 1
    }
}

/**
 * The answer of one `suspend` call: taken by the caller on its own thread if it comes while the
 * caller spins ([SpinGate]) — no suspension, no dispatcher wake-up — or else it resumes the
 * suspended coroutine. Completed on the thread that finished the call (usually the engine's): a
 * continuation is resumed in place only when that merely enqueues it on its dispatcher
 * ([Completions.resumeEnqueues]), never running the app's code on the engine's thread.
 */
internal class Answer(private val gate: SpinGate) {
    private class Done(val r: Result<String>)

    /** null: not answered yet; [Done]: answered; a continuation: the caller suspended. */
    private val state = AtomicReference<Any?>(null)
    private val started = System.nanoTime()

    fun answered(r: Result<String>) {
        gate.answered(System.nanoTime() - started, r.isSuccess)
        @Suppress("UNCHECKED_CAST")
        val cont = state.getAndSet(Done(r)) as? CancellableContinuation<String> ?: return
        if (Completions.resumeEnqueues(cont.context)) {
            cont.resumeWith(r)
        } else {
            Completions.executor.execute { cont.resumeWith(r) }
        }
    }

    fun take(): Result<String>? = (state.get() as? Done)?.r

    /** In `suspendCancellableCoroutine`: parks [cont] here, or resumes it at once if answered. */
    fun suspendOn(cont: CancellableContinuation<String>) {
        if (!state.compareAndSet(null, cont)) cont.resumeWith(take()!!)
    }
}

/**
 * Where the completion of an asynchronous call goes when the thread that finished it (the
 * engine's) must not run it in place: one facepay daemon thread, `facepay-completions`, started on
 * first use. It completes every [FacePayFuture] (so their dependent stages run there) and resumes
 * coroutines whose dispatcher would run them in place.
 */
internal object Completions {
    val executor: Executor by lazy {
        Executors.newSingleThreadExecutor { r -> Thread(r, "facepay-completions").apply { isDaemon = true } }
    }

    /**
     * Whether resuming a continuation of [context] from the engine's thread only enqueues it: the
     * built-in dispatchers (Default, IO, Main, `runBlocking`'s event loop, test dispatchers) do.
     * Not so — and so resumed on [executor] instead — `Dispatchers.Unconfined` and any dispatcher
     * that says no dispatch is needed (they would run the coroutine on the engine's thread), a
     * context without a dispatcher, and dispatchers over an app's `Executor` (its `execute` may run
     * the task in place, as `CallerRunsPolicy` does). Stricter than needed for most apps: such an
     * app pays one more thread hand-off, never a blocked engine. A custom `CoroutineDispatcher`
     * whose `dispatch` runs the task in place is not detectable; do not use one with facepay.
     */
    fun resumeEnqueues(context: CoroutineContext): Boolean {
        val d = context[ContinuationInterceptor] as? CoroutineDispatcher ?: return false
        if (d === Dispatchers.Unconfined) return false
        if (d is ExecutorCoroutineDispatcher && d !== Dispatchers.Default && d !== Dispatchers.IO) return false
        return try {
            d.isDispatchNeeded(context)
        } catch (e: Exception) {
            false
        }
    }
}

/**
 * A `CompletableFuture` of a facepay operation: [cancel] also stops the flow it belongs to
 * (T7.7), like cancelling the coroutine of the `suspend` variant. A thread waiting in [get] or
 * [join] is woken straight from the engine's thread the moment the answer arrives (and parses it
 * itself); the future as a `CompletionStage` completes on the thread waiting in `get()` or
 * `join()` if one is, else on facepay's `facepay-completions` thread, never on the engine's:
 * dependent stages added with `thenApply` & co. run there (or on the thread that added them, once
 * complete), so a slow stage delays that waiter or other futures' stages — use the
 * `…Async(fn, executor)` forms for slow work — but never the engine, its events or another
 * future's `get()`.
 */
class FacePayFuture<T> internal constructor(private val parse: (String) -> T) : CompletableFuture<T>() {
    @Volatile internal var onCancel: (() -> Unit)? = null

    /** The raw answer, completed on the engine's thread; only [get] and [join] wait on it. */
    private val answer = CompletableFuture<String>()

    /** Threads in [get] or [join] now: one of them completes this future itself. */
    private val waiters = AtomicInteger()

    /**
     * On the thread that finished the call: wakes waiters and, if none waits (they complete this
     * future themselves on their way out), hands the stage completion to `facepay-completions`.
     * A waiter leaves only after it counted itself out and looked at [answer] again, so one of
     * the two always completes this future.
     */
    internal fun answered(r: Result<String>) {
        r.fold({ answer.complete(it) }, { answer.completeExceptionally(it) })
        if (!isDone && waiters.get() == 0) Completions.executor.execute { publish() }
    }

    /** Completes this future from [answer] (once it has one) on the calling thread. */
    private fun publish() {
        if (isDone || !answer.isDone) return
        val json = try {
            answer.join()
        } catch (e: CancellationException) {
            return // this future was completed or cancelled by its user first
        } catch (e: CompletionException) {
            super.completeExceptionally(e.cause ?: e)
            return
        }
        try {
            super.complete(parse(json))
        } catch (e: Exception) {
            super.completeExceptionally(e)
        }
    }

    /**
     * Waits for the answer (not for the completions thread), then completes from it. Spins for up
     * to [SPIN_NANOS] first, as the blocking natives do: the engine often answers within tens of
     * microseconds, and a parked thread's wake-up costs as much again on a virtual CPU.
     */
    private inline fun awaitAnswer(wait: () -> Unit) {
        if (isDone) return
        waiters.incrementAndGet()
        try {
            if (!answer.isDone) {
                val until = System.nanoTime() + SPIN_NANOS
                while (!answer.isDone && System.nanoTime() < until) {
                    // a volatile read per turn; Thread.onSpinWait needs API 33
                }
            }
            wait()
        } catch (e: ExecutionException) {
            // publish() completes this future with the cause
        } catch (e: CompletionException) {
        } catch (e: CancellationException) {
        } finally {
            // Also when the wait times out or is interrupted: an answer that came meanwhile saw
            // this thread counted and handed nothing off, so this thread completes the future.
            waiters.decrementAndGet()
            publish()
        }
    }

    override fun get(): T {
        awaitAnswer { answer.get() }
        return super.get()
    }

    override fun get(timeout: Long, unit: TimeUnit): T {
        awaitAnswer { answer.get(timeout, unit) }
        return super.get(0, TimeUnit.NANOSECONDS)
    }

    override fun join(): T {
        awaitAnswer { answer.join() }
        return super.join()
    }

    override fun complete(value: T): Boolean = super.complete(value).also { if (it) answer.cancel(false) }

    override fun completeExceptionally(ex: Throwable): Boolean =
        super.completeExceptionally(ex).also { if (it) answer.cancel(false) }

    override fun cancel(mayInterruptIfRunning: Boolean): Boolean {
        val r = super.cancel(mayInterruptIfRunning)
        if (r) {
            answer.cancel(false) // wakes a waiting get()
            onCancel?.invoke()
        }
        return r
    }

    private companion object {
        /**
         * The `suspend` calls' spin ([SpinGate.SPIN_NANOS], 100 µs) rather than the blocking
         * natives' 50 µs: a future's answer comes the same way as a coroutine's (the flow runs on
         * the engine's thread, which then pays for the unpark), and a thread in `get()` is
         * blocked anyway, so spinning longer costs only CPU.
         */
        const val SPIN_NANOS = SpinGate.SPIN_NANOS
    }
}

/**
 * Receives the engine's events and health pushes (JSON) on the engine's callback thread and
 * never blocks it: events go into [events] with `tryEmit` (its buffer drops the oldest for a
 * collector that fell behind: see `FacePay.events`), the health into a `StateFlow`.
 */
@CalledFromNative
internal class EventSink(
    val events: MutableSharedFlow<FacePayEvent>,
    val health: MutableStateFlow<Health>,
) {
    private var seq = 0L

    @CalledFromNative
    fun onEvent(json: String) {
        val ev = try {
            FacePayEvent.parse(json)
        } catch (e: Exception) {
            System.err.println("facepay: an engine event could not be read: ${e.message}")
            return
        }
        ev.seq = ++seq
        events.tryEmit(ev)
    }

    @CalledFromNative
    fun onHealth(json: String) {
        try {
            health.value = Health.parse(json)
        } catch (e: Exception) {
            System.err.println("facepay: a health snapshot could not be read: ${e.message}")
        }
    }
}
