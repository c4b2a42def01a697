package io.facepay.sample

import android.app.Application
import io.facepay.FacePay
import io.facepay.FacePayConfig
import io.facepay.FaceServiceDriver
import io.facepay.SimulatedFaceDriver

/**
 * T2: the SDK is initialised once, here, with the application context; it starts initialising
 * in the background at once (T2.3). The driver is chosen explicitly: this sample runs on an
 * emulator with `SimulatedFaceDriver()`; on a terminal pass `WxPayFaceDriver(this)` (the vendor
 * adapter) and a real backend. No store path: the SDK keeps its store (queued payments, cached
 * authinfo: T3.3, T7.8) in `noBackupFilesDir`, and the manifest sets `allowBackup="false"`.
 */
class SampleApp : Application() {
    lateinit var facePay: FacePay
        private set

    override fun onCreate() {
        super.onCreate()
        val driver: FaceServiceDriver = SimulatedFaceDriver() // a terminal: WxPayFaceDriver(this)
        val config = FacePayConfig.simulator("sample-terminal-1").copy(memoryStore = false)
        facePay = FacePay.init(this, config, driver)
    }
}
