package io.facepay.bench

import io.facepay.Configs
import io.facepay.FacePay
import io.facepay.FakeDriver
import io.facepay.FaceServiceDriver
import io.facepay.Ready
import io.facepay.SimulatedFaceDriver
import io.facepay.TestNative
import kotlin.coroutines.CoroutineContext
import kotlin.coroutines.EmptyCoroutineContext
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking

/**
 * `scripts/bench-jni`: the cost of the JNI boundary, measured, not asserted (targets printed
 * beside the figures): one round trip Java → Rust → Java (target p50 ≤ 1 µs), and a complete
 * pay flow driven from Kotlin against the Rust simulator compared with the same flow in Rust
 * alone (`facepay::sim::bench::flow`, target: ≤ 50 µs more at p50), through the blocking
 * natives, the `suspend` API and the Java futures.
 */
fun main(args: Array<String>) {
    val flows = args.getOrNull(0)?.toInt() ?: 20_000

    // One JNI round trip through run_ffi_safe.
    var sink = 0L
    repeat(2_000_000) { sink += TestNative.Debug_echo(it.toLong()) }
    val batch = 10_000
    val perCall = DoubleArray(300) {
        val t = System.nanoTime()
        for (i in 0 until batch) sink += TestNative.Debug_echo(i.toLong())
        (System.nanoTime() - t).toDouble() / batch
    }
    perCall.sort()

    fun flowP50(driver: FaceServiceDriver, device: String, how: String = "blocking"): Pair<Double, Double> {
        val f = FacePay.initHost(Configs.sim(device), driver)
        try {
            Ready.await(f)
            val pay: () -> Unit = when (how) {
                "blocking" -> { { f.payBlocking(100) } }
                "future" -> { { f.payFuture(100, null, null).get() } }
                else -> error(how)
            }
            repeat(flows / 10) { pay() }
            val v = LongArray(flows)
            for (i in 0 until flows) {
                val t = System.nanoTime()
                pay()
                v[i] = System.nanoTime() - t
            }
            v.sort()
            return Pair(v[flows / 2] / 1000.0, v[flows * 99 / 100] / 1000.0)
        } finally {
            f.close()
        }
    }
    val (simP50, simP99) = flowP50(SimulatedFaceDriver(7), "bench-sim")
    val (drvP50, drvP99) = flowP50(FakeDriver(), "bench-driver")
    val (futP50, futP99) = flowP50(SimulatedFaceDriver(7), "bench-future", "future")
    // The suspend API: one coroutine paying flow after flow (completion from Rust, no blocked
    // thread), on a thread of its own (`runBlocking`: the coroutine's thread is woken once per
    // call, as an app's main thread is by its Looper) and on Dispatchers.Default (an app's
    // background coroutine: a worker is woken once per call).
    fun suspendP50(device: String, context: CoroutineContext): Pair<Double, Double> {
        val f = FacePay.initHost(Configs.sim(device), SimulatedFaceDriver(7))
        try {
            Ready.await(f)
            return runBlocking(context) {
                repeat(flows / 10) { f.pay(100) }
                val v = LongArray(flows)
                for (i in 0 until flows) {
                    val t = System.nanoTime()
                    f.pay(100)
                    v[i] = System.nanoTime() - t
                }
                v.sort()
                Pair(v[flows / 2] / 1000.0, v[flows * 99 / 100] / 1000.0)
            }
        } finally {
            f.close()
        }
    }
    val (susP50, susP99) = suspendP50("bench-suspend", EmptyCoroutineContext)
    val (defP50, defP99) = suspendP50("bench-suspend-default", Dispatchers.Default)
    val rust = TestNative.Debug_benchRustFlow(flows.toLong())
    val threaded = TestNative.Debug_benchRustThreadedFlow(flows.toLong())
    println("jni round trip (Debug_echo): p50 %.1f ns, p90 %.1f ns per call (target p50 <= 1000 ns)".format(perCall[150], perCall[270]))
    println("flow from Kotlin, Rust simulator: p50 %.1f us, p99 %.1f us".format(simP50, simP99))
    println("flow in Rust alone (sim::bench::flow): p50 %.1f us, p99 %.1f us".format(rust[0], rust[1]))
    println("Kotlin overhead at p50: %.1f us (target <= 50 us)".format(simP50 - rust[0]))
    println("flow in Rust alone, engine on its own thread as behind JNI: p50 %.1f us, p99 %.1f us".format(threaded[0], threaded[1]))
    println("JNI + Kotlin share at p50 (vs the same threading in Rust): %.1f us".format(simP50 - threaded[0]))
    println("flow from Kotlin, suspend pay (completed from Rust): p50 %.1f us, p99 %.1f us; overhead vs Rust alone at p50 %.1f us (target <= 50 us)".format(susP50, susP99, susP50 - rust[0]))
    println("flow from Kotlin, suspend pay on Dispatchers.Default: p50 %.1f us, p99 %.1f us; overhead vs Rust alone at p50 %.1f us".format(defP50, defP99, defP50 - rust[0]))
    println("flow from Java, payFuture().get(): p50 %.1f us, p99 %.1f us; overhead vs Rust alone at p50 %.1f us".format(futP50, futP99, futP50 - rust[0]))
    println("flow from Kotlin through the JNI driver path (Kotlin fake driver): p50 %.1f us, p99 %.1f us".format(drvP50, drvP99))
    if (sink == 42L) println()
}
