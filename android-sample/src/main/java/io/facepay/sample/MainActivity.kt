package io.facepay.sample

import android.app.Activity
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.text.InputType
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import io.facepay.FacePay
import io.facepay.FacePayEvent
import io.facepay.FacePayException
import io.facepay.Health
import io.facepay.Outcome
import io.facepay.PreviewBinder
import java.util.concurrent.LinkedBlockingQueue
import kotlin.coroutines.CoroutineContext
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch

/**
 * The sample POS screen: one 3:4 preview (T6), an amount, pay and cancel, and a status panel fed
 * live by `FacePay.health` and `FacePay.events` (service state, feature age, authinfo expiry,
 * reconnects, next restart window (T8), last outcome, payments pending). Views are built in code
 * so the sample needs no resources. Its coroutines live in a scope tied to the activity: Pay runs
 * the flow in one coroutine (T7 order inside the SDK), Cancel cancels that coroutine and the SDK
 * stops the flow (T7.7); leaving the activity (rotation included) cancels it too, so no flow is
 * left running into a "flow busy". Nothing here blocks the main thread on a native call.
 */
class MainActivity : Activity() {
    lateinit var preview: Preview34SurfaceView
    lateinit var amount: EditText
    lateinit var phone: EditText
    lateinit var payButton: Button
    lateinit var cancelButton: Button
    lateinit var status: TextView

    /** Every finished payment's outcome, in order (tests read it). */
    val outcomes = LinkedBlockingQueue<String>()

    private val main = Handler(Looper.getMainLooper())
    private val mainDispatcher = object : CoroutineDispatcher() {
        override fun dispatch(context: CoroutineContext, block: Runnable) {
            main.post(block)
        }
    }
    private val scope = CoroutineScope(SupervisorJob() + mainDispatcher)
    private lateinit var facePay: FacePay
    private lateinit var binder: PreviewBinder
    private var payment: Job? = null
    private var health: Health = Health.UNKNOWN
    private var lastOutcome = "-"
    private var lastEvent = "-"

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        facePay = (application as SampleApp).facePay
        preview = Preview34SurfaceView(this)
        amount = EditText(this).apply { hint = "amount (fen)"; inputType = InputType.TYPE_CLASS_NUMBER }
        phone = EditText(this).apply { hint = "phone tail (if asked)"; inputType = InputType.TYPE_CLASS_PHONE }
        payButton = Button(this).apply { text = "Pay"; setOnClickListener { pay() } }
        cancelButton = Button(this).apply { text = "Cancel"; setOnClickListener { cancel() } }
        status = TextView(this)
        val root = LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(preview, LinearLayout.LayoutParams(480, 640))
            addView(amount)
            addView(phone)
            addView(payButton)
            addView(cancelButton)
            addView(status)
        }
        setContentView(root)
        binder = PreviewBinder(facePay)
        binder.attach(preview)
        health = facePay.health.value
        scope.launch { facePay.health.collect { health = it; renderStatus() } }
        scope.launch { facePay.events.collect { onEvent(it) } }
        renderStatus()
    }

    private fun onEvent(e: FacePayEvent) {
        lastEvent = e.javaClass.simpleName
        if (e is FacePayEvent.FlowEnded && e.outcome is Outcome.Cancelled) lastOutcome = "cancelled"
        renderStatus()
    }

    private fun pay() {
        val fen = amount.text.toString().toLongOrNull()
        if (fen == null || fen <= 0) {
            show("enter an amount in fen")
            outcomes.put("enter an amount in fen")
            return
        }
        if (payment?.isActive == true) return
        val tail = phone.text.toString().takeIf { it.isNotBlank() }
        payment = scope.launch {
            val outcome = try {
                facePay.pay(fen, null, tail)
                "paid"
            } catch (e: CancellationException) {
                outcomes.put("cancelled")
                throw e
            } catch (e: FacePayException) {
                "failed (${e.code})"
            } catch (e: IllegalStateException) {
                "failed (${e.message})"
            }
            show(outcome)
            outcomes.put(outcome)
        }
    }

    /** T7.7: cancels the payment's coroutine; the SDK stops the flow. */
    fun cancel() {
        payment?.cancel()
    }

    private fun show(outcome: String) {
        lastOutcome = outcome
        renderStatus()
    }

    fun renderStatus() {
        val h = health
        val featureAge = h.lastFeatureUpdateUnixMs?.let { "${(System.currentTimeMillis() - it) / 1000} s" } ?: "never"
        val expiry = h.authinfoValidForMs?.let { "${it / 1000} s" } ?: "none"
        val restart = h.nextRestartUnixMs?.let { "${(it - System.currentTimeMillis()) / 60_000} min" } ?: "none planned"
        val state = h.state.name.lowercase().replaceFirstChar { it.uppercase() }
        status.text = "service: $state\nfeature age: $featureAge${if (h.featuresStale) " (stale)" else ""}\n" +
            "authinfo expires in: $expiry\nreconnects: ${h.reconnects} (disconnects: ${h.disconnects})\n" +
            "next restart: $restart\npreview bound: ${h.previewBound}\npayments pending: ${(h.paymentsQueued - h.paymentsFinal.values.sum()).coerceAtLeast(0)}\n" +
            "last outcome: $lastOutcome\nlast event: $lastEvent"
    }

    override fun onDestroy() {
        binder.detach()
        scope.cancel() // the payment's coroutine too: its flow is stopped (T7.7)
        super.onDestroy()
    }
}
