package io.facepay

import android.content.Context
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.locks.ReentrantReadWriteLock
import kotlin.concurrent.read
import kotlin.concurrent.write
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.withContext

/**
 * The facepay terminal SDK: one instance per app (T2), created by [init] in
 * `Application#onCreate` with the application context. It starts initialising in the background
 * at once (T2.3) and keeps the service for the life of the app (T2.2). Kotlin users call the
 * `suspend` functions and collect [health]; Java users call the `…Async` variants. [close] is
 * idempotent; any call after it throws `IllegalStateException`.
 */
class FacePay private constructor(
    val config: FacePayConfig,
    private var engine: Long,
    private var sim: Long,
    private val bridge: DriverBridge?,
) : AutoCloseable {
    private val lock = ReentrantReadWriteLock()
    private val _health = MutableStateFlow(Health.UNKNOWN)
    private val executor: ExecutorService = Executors.newCachedThreadPool { r ->
        Thread(r, "facepay-call").apply { isDaemon = true }
    }

    /** The latest health snapshot; refreshed after every call and by [refreshHealth]. */
    val health: StateFlow<Health> = _health.asStateFlow()

    private inline fun <T> call(block: (Long) -> T): T = lock.read {
        val h = engine
        check(h != 0L) { "FacePay is closed: call FacePay.init again" }
        try {
            block(h)
        } finally {
            _health.value = Health.parse(Native.Engine_health(h))
        }
    }

    /** Reads the engine's health now. */
    fun refreshHealth(): Health = lock.read {
        val h = engine
        check(h != 0L) { "FacePay is closed: call FacePay.init again" }
        Health.parse(Native.Engine_health(h)).also { _health.value = it }
    }

    // Blocking calls (any thread but the main thread).
    fun initBlocking() = call { Native.Engine_init(it) }
    fun startFlowBlocking(amountFen: Long, outTradeNo: String? = null): Long = call { Native.Engine_startFlow(it, amountFen, outTradeNo) }
    fun waitRecognitionBlocking(flowId: Long): Recognition = call {
        val r = Native.Engine_waitRecognition(it, flowId)
        Recognition(r[0], r[1], r[2] == "true")
    }
    fun extVerifyBlocking(flowId: Long, phone: String) = call { Native.Engine_extVerify(it, flowId, phone) }
    fun finishBlocking(flowId: Long): String = call { Native.Engine_finish(it, flowId) }
    fun credentialBlocking(flowId: Long): String = call { Native.Engine_credential(it, flowId) }
    fun stopBlocking(flowId: Long) = call { Native.Engine_stop(it, flowId) }
    fun payBlocking(amountFen: Long, outTradeNo: String? = null, extVerifyPhone: String? = null): Paid = call {
        val r = Native.Engine_pay(it, amountFen, outTradeNo, extVerifyPhone)
        Paid(r[0].toLong(), r[1], r[2])
    }
    fun startGateBlocking() = call { Native.Engine_startGate(it) }
    fun stopGateBlocking() = call { Native.Engine_stopGate(it) }
    fun surfaceChangedBlocking(surfaceId: Long, width: Int, height: Int) =
        call { Native.Engine_surfaceChanged(it, surfaceId, width, height) }
    fun surfaceDestroyedBlocking() = call { Native.Engine_surfaceDestroyed(it) }
    /** T2.2: last resort only; nothing reconnects until [init] runs again. */
    fun releaseBlocking() = call { Native.Engine_release(it) }

    // Kotlin coroutines.
    suspend fun awaitReady() = withContext(Dispatchers.IO) { initBlocking() }
    suspend fun startFlow(amountFen: Long, outTradeNo: String? = null) = withContext(Dispatchers.IO) { startFlowBlocking(amountFen, outTradeNo) }
    suspend fun waitRecognition(flowId: Long) = withContext(Dispatchers.IO) { waitRecognitionBlocking(flowId) }
    suspend fun extVerify(flowId: Long, phone: String) = withContext(Dispatchers.IO) { extVerifyBlocking(flowId, phone) }
    suspend fun finish(flowId: Long) = withContext(Dispatchers.IO) { finishBlocking(flowId) }
    suspend fun credential(flowId: Long) = withContext(Dispatchers.IO) { credentialBlocking(flowId) }
    suspend fun stop(flowId: Long) = withContext(Dispatchers.IO) { stopBlocking(flowId) }
    suspend fun pay(amountFen: Long, outTradeNo: String? = null, extVerifyPhone: String? = null) =
        withContext(Dispatchers.IO) { payBlocking(amountFen, outTradeNo, extVerifyPhone) }

    // Java callbacks (run on a facepay thread; post to the main thread yourself).
    fun payAsync(amountFen: Long, outTradeNo: String?, extVerifyPhone: String?, cb: ResultCallback<Paid>) =
        async(cb) { payBlocking(amountFen, outTradeNo, extVerifyPhone) }
    fun initAsync(cb: ResultCallback<Unit>) = async(cb) { initBlocking() }
    fun stopAsync(flowId: Long, cb: ResultCallback<Unit>) = async(cb) { stopBlocking(flowId) }

    private fun <T> async(cb: ResultCallback<T>, block: () -> T) {
        executor.execute {
            val r = runCatching(block)
            r.fold({ cb.onSuccess(it) }, { cb.onError(it) })
        }
    }

    /** Stops the engine; idempotent. Waits for calls in progress. */
    override fun close() {
        lock.write {
            val e = engine
            if (e == 0L) return
            engine = 0
            try {
                Native.Engine_close(e)
            } finally {
                if (bridge != null) {
                    val d = bridge.handle
                    bridge.handle = 0
                    if (d != 0L) Native.Driver_close(d)
                }
                if (sim != 0L) {
                    Native.Sim_close(sim)
                    sim = 0
                }
                executor.shutdown()
                synchronized(Companion) { if (instance === this) instance = null }
            }
        }
    }

    val isClosed: Boolean get() = lock.read { engine == 0L }

    companion object {
        @Volatile private var instance: FacePay? = null
        @Volatile private var appContext: Context? = null

        /** The application context given to [init] (the vendor adapter needs it). */
        @JvmStatic fun applicationContext(): Context? = appContext

        /**
         * T2: call once in `Application#onCreate`. A second call with the same config returns the
         * same instance (T2.1); with a different config it throws `IllegalStateException`.
         * [driver] defaults to the simulator; on a device pass the vendor adapter.
         */
        @JvmStatic
        @JvmOverloads
        fun init(context: Context, config: FacePayConfig, driver: FaceServiceDriver = SimulatedFaceDriver()): FacePay {
            appContext = context.applicationContext ?: context
            return initHost(config, driver)
        }

        /** The same as [init] without an Android context: host JVM tools and tests. */
        @JvmStatic
        fun initHost(config: FacePayConfig, driver: FaceServiceDriver): FacePay = synchronized(this) {
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
            var driverHandle = 0L
            if (driver is SimulatedFaceDriver) {
                sim = Native.Sim_create(driver.seed)
            } else {
                bridge = DriverBridge(driver)
                driverHandle = Native.Driver_create(bridge)
                bridge.handle = driverHandle
            }
            try {
                val engine = Native.Engine_create(config.toJson(), config.simulatedBackend, sim, driverHandle)
                return FacePay(config, engine, sim, bridge)
            } catch (t: Throwable) {
                if (sim != 0L) Native.Sim_close(sim)
                if (driverHandle != 0L) {
                    bridge?.handle = 0
                    Native.Driver_close(driverHandle)
                }
                throw t
            }
        }
    }
}
