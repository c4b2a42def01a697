package io.facepay

import java.util.concurrent.CompletableFuture
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.MutableStateFlow

/**
 * The completion of one asynchronous native (`Native.Engine_*Async`): Rust calls [done] once,
 * on the engine's callback thread (code 0 and the result's JSON, or the `FacePayException`
 * code and message), and [flowStarted] as soon as a pay flow has its id. [cancel] stops that
 * flow (SPEC T7.7) — at once if the id is known, else when it arrives — so a cancelled
 * coroutine or future never leaves a flow running to its timeout.
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
        fun <T> forContinuation(cont: CancellableContinuation<T>, stopFlow: (Long) -> Unit, parse: (String) -> T): NativeCompletion {
            val c = NativeCompletion(stopFlow) { r ->
                r.fold(
                    { json ->
                        val v = runCatching { parse(json) }
                        v.fold({ cont.resume(it) }, { cont.resumeWithException(it) })
                    },
                    { cont.resumeWithException(it) },
                )
            }
            cont.invokeOnCancellation { c.cancel() }
            return c
        }

        fun <T> forFuture(stopFlow: (Long) -> Unit, parse: (String) -> T): Pair<NativeCompletion, FacePayFuture<T>> {
            val f = FacePayFuture<T>()
            val c = NativeCompletion(stopFlow) { r ->
                r.fold({ json -> runCatching { parse(json) }.fold({ f.complete(it) }, { f.completeExceptionally(it) }) }, {
                    f.completeExceptionally(it)
                })
            }
            f.onCancel = { c.cancel() }
            return Pair(c, f)
        }
    }
}

/**
 * A `CompletableFuture` of a facepay operation: [cancel] also stops the flow it belongs to
 * (T7.7), like cancelling the coroutine of the `suspend` variant. It completes on the engine's
 * callback thread: dependent stages added with `thenApply` & co. run there, so keep them short
 * (or use the `…Async(fn, executor)` forms) — a slow stage delays the next completions and
 * events, never the engine.
 */
class FacePayFuture<T> internal constructor() : CompletableFuture<T>() {
    @Volatile internal var onCancel: (() -> Unit)? = null

    override fun cancel(mayInterruptIfRunning: Boolean): Boolean {
        val r = super.cancel(mayInterruptIfRunning)
        if (r) onCancel?.invoke()
        return r
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
