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
import io.facepay.FacePayException
import io.facepay.PreviewBinder
import java.util.concurrent.Executors
import java.util.concurrent.LinkedBlockingQueue

/**
 * The sample POS screen: one 3:4 preview (T6), an amount, pay and cancel, and a status panel
 * (service state, feature age, authinfo expiry, reconnect count, last outcome). Views are built
 * in code so the sample needs no resources. Payments run on a worker thread in the only legal
 * order (T7); cancel stops the flow at any time (T7.7).
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
    private val worker = Executors.newSingleThreadExecutor()
    private lateinit var facePay: FacePay
    private lateinit var binder: PreviewBinder
    @Volatile private var currentFlow = 0L
    @Volatile private var lastOutcome = "-"

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
        renderStatus()
    }

    private fun pay() {
        val fen = amount.text.toString().toLongOrNull()
        if (fen == null || fen <= 0) {
            show("enter an amount in fen")
            outcomes.put("enter an amount in fen")
            return
        }
        val tail = phone.text.toString().takeIf { it.isNotBlank() }
        worker.execute {
            val outcome = try {
                val flow = facePay.startFlowBlocking(fen)
                currentFlow = flow
                val rec = facePay.waitRecognitionBlocking(flow)
                if (rec.needExtVerify) {
                    if (tail == null) {
                        facePay.stopBlocking(flow)
                        throw FacePayException(FacePayException.FLOW_CANCELLED, "auxiliary verification needs the phone tail")
                    }
                    facePay.extVerifyBlocking(flow, tail)
                }
                facePay.finishBlocking(flow)
                facePay.credentialBlocking(flow)
                "paid"
            } catch (e: FacePayException) {
                "failed (${e.code})"
            } catch (e: IllegalStateException) {
                "failed (${e.message})"
            } finally {
                currentFlow = 0
            }
            main.post { show(outcome) }
            outcomes.put(outcome)
        }
    }

    private fun cancel() {
        val flow = currentFlow
        if (flow != 0L) worker.execute { runCatching { facePay.stopBlocking(flow) } }
    }

    private fun show(outcome: String) {
        lastOutcome = outcome
        renderStatus()
    }

    fun renderStatus() {
        val h = facePay.refreshHealth()
        val featureAge = h.lastFeatureUpdateUnixMs?.let { "${(System.currentTimeMillis() - it) / 1000} s" } ?: "never"
        val expiry = h.authinfoValidForMs?.let { "${it / 1000} s" } ?: "none"
        status.text = "service: ${h.state}\nfeature age: $featureAge\nauthinfo expires in: $expiry\n" +
            "reconnects: ${h.reconnects}\npreview bound: ${h.previewBound}\nlast outcome: $lastOutcome"
    }

    override fun onDestroy() {
        binder.detach()
        worker.shutdown()
        super.onDestroy()
    }
}
