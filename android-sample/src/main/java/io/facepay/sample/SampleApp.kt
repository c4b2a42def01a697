package io.facepay.sample

import android.app.Application
import io.facepay.FacePay
import io.facepay.FacePayConfig

/**
 * T2: the SDK is initialised once, here, with the application context; it starts initialising
 * in the background at once (T2.3). Simulator mode by default so the sample runs on an emulator;
 * on a terminal pass the vendor adapter (`WxPayFaceDriver`) and a real backend URL.
 */
class SampleApp : Application() {
    lateinit var facePay: FacePay
        private set

    override fun onCreate() {
        super.onCreate()
        facePay = FacePay.init(this, FacePayConfig.simulator("sample-terminal-1"))
    }
}
