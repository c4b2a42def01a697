package io.facepay

import android.content.Context
import android.os.Looper
import java.io.File
import java.util.concurrent.CompletableFuture
import java.util.concurrent.locks.ReentrantReadWriteLock
import kotlin.concurrent.read
import kotlin.concurrent.write
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.channels.BufferOverflow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharedFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asSharedFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.launch
import kotlinx.coroutines.suspendCancellableCoroutine

/**
 * The facepay terminal SDK: one instance per app (SPEC T2), created by [init] in
 * `Application#onCreate` with the application context and an explicit driver. It starts
 * initialising in the background at once (T2.3) and keeps the service for the life of the app
 * (T2.2). Kotlin calls the `suspend` functions — they wait on a completion from Rust, never on a
 * blocked thread (a quick answer is spun for, at most 100 µs: [SpinGate]), and cancelling the
 * coroutine of a flow stops the flow (T7.7) — and collects
 * [events] and [health], both pushed by the engine. Java calls the `…Future` variants (a
 * [FacePayFuture]; `cancel` stops the flow too) and [addEventListener]. The `…Blocking` variants
 * block the calling thread: never call them on the main thread (such calls are counted and logged). [close] is idempotent, waits for calls in
 * progress, and any call after it throws `IllegalStateException`.
 */
class FacePay private constructor(
    val config: FacePayConfig,
    private var engine: Long,
    private var sim: Long,
    private val bridge: DriverBridge?,
    private val sink: EventSink,
) : AutoCloseable {
    private val lock = ReentrantReadWriteLock()
    private val listenerScope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

    /**
     * The engine's events, as they happen (T1.4, T4.3, T3, T7, T8; under a burst — flow after
     * flow — they come in batches, at most 1 ms late), from the engine's first: a new
     * collector first gets the last [EVENT_REPLAY] (so one started right after [init] still sees
     * the start-up: state changes, the restart plan). Overflow policy: beyond those the buffer
     * holds [EVENT_BUFFER] events; a collector that falls further behind loses the oldest ones
     * (the engine is never blocked), which it sees as a gap in [FacePayEvent.seq]. No event is
     * delivered twice. Counters in [health] never miss one.
     */
    val events: SharedFlow<FacePayEvent> = sink.events.asSharedFlow()

    /** The latest health snapshot, pushed by the engine whenever it changes (no call needed; a burst of changes within 20 ms is one push). */
    val health: StateFlow<Health> = sink.health.asStateFlow()

    /**
     * Java: [listener] receives every event in order on a facepay background thread (post to the
     * main thread yourself) until the returned handle is closed. A listener that throws is
     * skipped for that event; the same overflow policy as [events] applies.
     */
    fun addEventListener(listener: FacePayEventListener): AutoCloseable {
        val job = listenerScope.launch(start = CoroutineStart.UNDISPATCHED) {
            events.collect { ev ->
                try {
                    listener.onEvent(ev)
                } catch (e: Exception) {
                    System.err.println("facepay: an event listener threw ${e.javaClass.name}")
                }
            }
        }
        return AutoCloseable { job.cancel() }
    }

    private inline fun <T> call(block: (Long) -> T): T = lock.read {
        val h = engine
        check(h != 0L) { "FacePay is closed: call FacePay.init again" }
        block(h)
    }

    private fun blocking(what: String) {
        val main = try {
            Looper.getMainLooper()?.let { it.thread === Thread.currentThread() } ?: false
        } catch (e: Throwable) {
            false // a host JVM without the Android runtime
        }
        if (main) {
            // Counted (tests prove the binder and the sample never do it) and logged, not refused:
            // StrictMode's stance. Use the suspend or Future variant on the main thread.
            mainThreadBlockingCalls.incrementAndGet()
            System.err.println("facepay: $what called on the main thread: it blocks until the engine answers")
        }
    }

    /** Stops [flowId] if the engine is still open; never waits for [close] (it may run now). */
    private fun stopFlowQuietly(flowId: Long) {
        val r = lock.readLock()
        if (!r.tryLock()) return // closing: the engine ends every flow itself
        try {
            if (engine != 0L) Native.Engine_cancelFlow(engine, flowId)
        } catch (e: RuntimeException) {
            // The flow ended already.
        } finally {
            r.unlock()
        }
    }

    private val stop: (Long) -> Unit = { stopFlowQuietly(it) }

    /**
     * Starts the operation and takes its answer: spun for on this thread when it is quick
     * ([SpinGate]), else the coroutine suspends until the engine's thread resumes it. A coroutine
     * cancelled before the call starts nothing; cancelled while suspended, it stops the flow (T7.7).
     */
    private suspend fun <T> await(gate: SpinGate, parse: (String) -> T, start: (Long, NativeCompletion) -> Unit): T {
        currentCoroutineContext().ensureActive()
        val answer = Answer(gate)
        val c = NativeCompletion(stop, answer::answered)
        call { start(it, c) }
        val r = gate.spin(answer) ?: return parse(
            suspendCancellableCoroutine { cont ->
                cont.invokeOnCancellation { c.cancel() }
                answer.suspendOn(cont)
            },
        )
        // Parsed here, in the coroutine, not on the engine's thread that completed it.
        return parse(r.getOrThrow())
    }

    // One per operation: whether its answer is quick enough to spin for (see SpinGate).
    private val initSpin = SpinGate()
    private val startFlowSpin = SpinGate()
    private val recognitionSpin = SpinGate()
    private val extVerifySpin = SpinGate()
    private val finishSpin = SpinGate()
    private val credentialSpin = SpinGate()
    private val stopSpin = SpinGate()
    private val paySpin = SpinGate()
    private val gateSpin = SpinGate()
    private val surfaceSpin = SpinGate()
    private val releaseSpin = SpinGate()

    private fun <T> future(parse: (String) -> T, start: (Long, NativeCompletion) -> Unit): FacePayFuture<T> {
        // A bad argument or a closed SDK throws here, at once (as the suspend variant does).
        val (c, f) = NativeCompletion.forFuture(stop, parse)
        call { start(it, c) }
        return f
    }

    /** Reads the engine's health now (it is also pushed to [health]). */
    fun refreshHealth(): Health = call { Health.parse(Native.Engine_health(it)) }

    // Kotlin coroutines: no thread is blocked; cancelling a flow's coroutine stops the flow (T7.7).
    suspend fun awaitReady() = await(initSpin, ::unit) { h, c -> Native.Engine_initAsync(h, c) }
    suspend fun startFlow(amountFen: Long, outTradeNo: String? = null): Long =
        await(startFlowSpin, String::toLong) { h, c -> Native.Engine_startFlowAsync(h, amountFen, outTradeNo, c) }
    suspend fun waitRecognition(flowId: Long): Recognition =
        await(recognitionSpin, Recognition::parse) { h, c -> c.flowStarted(flowId); Native.Engine_waitRecognitionAsync(h, flowId, c) }
    suspend fun extVerify(flowId: Long, phone: String) = await(extVerifySpin, ::unit) { h, c -> Native.Engine_extVerifyAsync(h, flowId, phone, c) }
    suspend fun finish(flowId: Long): String = await(finishSpin, ::userId) { h, c -> Native.Engine_finishAsync(h, flowId, c) }
    suspend fun credential(flowId: Long): String = await(credentialSpin, ::key) { h, c -> Native.Engine_credentialAsync(h, flowId, c) }
    suspend fun stop(flowId: Long) = await(stopSpin, ::unit) { h, c -> Native.Engine_stopAsync(h, flowId, c) }
    /** A whole payment (T7 order). Cancel the coroutine to stop it: the flow ends `Cancelled`. */
    suspend fun pay(amountFen: Long, outTradeNo: String? = null, extVerifyPhone: String? = null): Paid =
        await(paySpin, Paid::parse) { h, c -> Native.Engine_payAsync(h, amountFen, outTradeNo, extVerifyPhone, c) }
    suspend fun startGate() = await(gateSpin, ::unit) { h, c -> Native.Engine_startGateAsync(h, c) }
    suspend fun stopGate() = await(gateSpin, ::unit) { h, c -> Native.Engine_stopGateAsync(h, c) }
    suspend fun surfaceChanged(surfaceId: Long, width: Int, height: Int) =
        await(surfaceSpin, ::unit) { h, c -> Native.Engine_surfaceChangedAsync(h, surfaceId, width, height, c) }
    suspend fun surfaceDestroyed() = await(surfaceSpin, ::unit) { h, c -> Native.Engine_surfaceDestroyedAsync(h, c) }
    /** T2.2: last resort only; nothing reconnects until [init] runs again. */
    suspend fun release() = await(releaseSpin, ::unit) { h, c -> Native.Engine_releaseAsync(h, c) }

    // Java futures: the same operations; `cancel(true)` on a flow's future stops the flow (T7.7).
    fun initFuture(): CompletableFuture<Unit> = future(::unit) { h, c -> Native.Engine_initAsync(h, c) }
    fun startFlowFuture(amountFen: Long, outTradeNo: String?): CompletableFuture<Long> =
        future(String::toLong) { h, c -> Native.Engine_startFlowAsync(h, amountFen, outTradeNo, c) }
    fun waitRecognitionFuture(flowId: Long): CompletableFuture<Recognition> =
        future(Recognition::parse) { h, c -> c.flowStarted(flowId); Native.Engine_waitRecognitionAsync(h, flowId, c) }
    fun extVerifyFuture(flowId: Long, phone: String): CompletableFuture<Unit> =
        future(::unit) { h, c -> Native.Engine_extVerifyAsync(h, flowId, phone, c) }
    fun finishFuture(flowId: Long): CompletableFuture<String> = future(::userId) { h, c -> Native.Engine_finishAsync(h, flowId, c) }
    fun credentialFuture(flowId: Long): CompletableFuture<String> = future(::key) { h, c -> Native.Engine_credentialAsync(h, flowId, c) }
    fun stopFuture(flowId: Long): CompletableFuture<Unit> = future(::unit) { h, c -> Native.Engine_stopAsync(h, flowId, c) }
    fun payFuture(amountFen: Long, outTradeNo: String?, extVerifyPhone: String?): CompletableFuture<Paid> =
        future(Paid::parse) { h, c -> Native.Engine_payAsync(h, amountFen, outTradeNo, extVerifyPhone, c) }
    fun startGateFuture(): CompletableFuture<Unit> = future(::unit) { h, c -> Native.Engine_startGateAsync(h, c) }
    fun stopGateFuture(): CompletableFuture<Unit> = future(::unit) { h, c -> Native.Engine_stopGateAsync(h, c) }
    fun surfaceChangedFuture(surfaceId: Long, width: Int, height: Int): CompletableFuture<Unit> =
        future(::unit) { h, c -> Native.Engine_surfaceChangedAsync(h, surfaceId, width, height, c) }
    fun surfaceDestroyedFuture(): CompletableFuture<Unit> = future(::unit) { h, c -> Native.Engine_surfaceDestroyedAsync(h, c) }
    fun releaseFuture(): CompletableFuture<Unit> = future(::unit) { h, c -> Native.Engine_releaseAsync(h, c) }

    // Blocking calls (a worker thread, benchmarks): never on the main thread.
    fun initBlocking() = call { blocking("initBlocking"); Native.Engine_init(it) }
    fun startFlowBlocking(amountFen: Long, outTradeNo: String? = null): Long =
        call { blocking("startFlowBlocking"); Native.Engine_startFlow(it, amountFen, outTradeNo) }
    fun waitRecognitionBlocking(flowId: Long): Recognition =
        call { blocking("waitRecognitionBlocking"); Recognition.parse(Native.Engine_waitRecognition(it, flowId)) }
    fun extVerifyBlocking(flowId: Long, phone: String) = call { blocking("extVerifyBlocking"); Native.Engine_extVerify(it, flowId, phone) }
    fun finishBlocking(flowId: Long): String = call { blocking("finishBlocking"); Native.Engine_finish(it, flowId) }
    fun credentialBlocking(flowId: Long): String = call { blocking("credentialBlocking"); Native.Engine_credential(it, flowId) }
    fun stopBlocking(flowId: Long) = call { blocking("stopBlocking"); Native.Engine_stop(it, flowId) }
    fun payBlocking(amountFen: Long, outTradeNo: String? = null, extVerifyPhone: String? = null): Paid =
        call { blocking("payBlocking"); Paid.parse(Native.Engine_pay(it, amountFen, outTradeNo, extVerifyPhone)) }
    fun startGateBlocking() = call { blocking("startGateBlocking"); Native.Engine_startGate(it) }
    fun stopGateBlocking() = call { blocking("stopGateBlocking"); Native.Engine_stopGate(it) }
    fun surfaceChangedBlocking(surfaceId: Long, width: Int, height: Int) =
        call { blocking("surfaceChangedBlocking"); Native.Engine_surfaceChanged(it, surfaceId, width, height) }
    fun surfaceDestroyedBlocking() = call { blocking("surfaceDestroyedBlocking"); Native.Engine_surfaceDestroyed(it) }
    fun releaseBlocking() = call { blocking("releaseBlocking"); Native.Engine_release(it) }

    /** Stops the engine; idempotent. Waits for calls in progress; pending futures fail with CLOSED. */
    override fun close() {
        lock.write {
            val e = engine
            if (e == 0L) return
            engine = 0
            try {
                Native.Engine_close(e)
            } finally {
                bridge?.close()
                if (sim != 0L) {
                    Native.Sim_close(sim)
                    sim = 0
                }
                listenerScope.cancel()
                synchronized(Companion) { if (instance === this) instance = null }
            }
        }
    }

    val isClosed: Boolean get() = lock.read { engine == 0L }

    companion object {
        /** `…Blocking` calls made on the Android main thread since load (tests assert none). */
        internal val mainThreadBlockingCalls = java.util.concurrent.atomic.AtomicInteger()

        /** Events buffered for a slow collector before the oldest is dropped (see [events]). */
        const val EVENT_BUFFER = 1024

        /** Events a new collector gets from before it started (see [events]). */
        const val EVENT_REPLAY = 64

        @Volatile private var instance: FacePay? = null
        @Volatile private var appContext: Context? = null

        private fun unit(@Suppress("UNUSED_PARAMETER") json: String) = Unit
        private fun userId(json: String) = org.json.JSONObject(json).getString("user_id")
        private fun key(json: String) = org.json.JSONObject(json).getString("idempotency_key")

        /** The application context given to [init] (the vendor adapter needs it). */
        @JvmStatic fun applicationContext(): Context? = appContext

        /**
         * T2: call once in `Application#onCreate`. [driver] is required: `WxPayFaceDriver(context)`
         * on a terminal, `SimulatedFaceDriver()` on an emulator. Without a store path the store is
         * `noBackupFilesDir/facepay/terminal.db` (owner-only; Auto Backup never copies it), so
         * queued payments and the authinfo survive a crash or restart (T3.3, T7.8). A second call
         * with the same config returns the same instance (T2.1); with another it throws.
         */
        @JvmStatic
        fun init(context: Context, config: FacePayConfig, driver: FaceServiceDriver): FacePay {
            val app = context.applicationContext ?: context
            val resolved = if (config.storePath == null && !config.memoryStore) {
                config.withDefaultStore(File(File(app.noBackupFilesDir, "facepay"), "terminal.db").absolutePath)
            } else {
                config
            }
            appContext = app
            return initHost(resolved, driver)
        }

        /**
         * The same as [init] without an Android context (host JVM tools and tests): the config
         * names its store (a file, or `memoryStore`).
         */
        @JvmStatic
        fun initHost(config: FacePayConfig, driver: FaceServiceDriver): FacePay = synchronized(this) {
            require(config.storePath != null || config.memoryStore) {
                "storePath: set an absolute file path, or memoryStore = true (initHost has no Android context)"
            }
            instance?.let {
                check(it.config == config) { "FacePay is already initialised with a different config: close() it first" }
                return it
            }
            open(config, driver).also { instance = it }
        }

        /** The current instance, or null before [init] / after [close]. */
        @JvmStatic fun current(): FacePay? = instance

        private fun open(config: FacePayConfig, driver: FaceServiceDriver): FacePay {
            var sim = 0L
            var bridge: DriverBridge? = null
            if (driver is SimulatedFaceDriver) {
                sim = Native.Sim_create(driver.seed)
            } else {
                bridge = DriverBridge(driver).also { it.open() }
            }
            val sink = EventSink(
                MutableSharedFlow(replay = EVENT_REPLAY, extraBufferCapacity = EVENT_BUFFER, onBufferOverflow = BufferOverflow.DROP_OLDEST),
                MutableStateFlow(Health.UNKNOWN),
            )
            try {
                val engine = Native.Engine_create(config.toJson(), config.simulatedBackend, sim, bridge?.handleForCreate() ?: 0L, sink)
                return FacePay(config, engine, sim, bridge, sink)
            } catch (t: Throwable) {
                if (sim != 0L) Native.Sim_close(sim)
                bridge?.close()
                throw t
            }
        }
    }
}
