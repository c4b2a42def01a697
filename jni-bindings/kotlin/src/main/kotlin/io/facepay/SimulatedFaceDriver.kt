package io.facepay

/**
 * The simulated vendor face service for emulators and tests: the Rust simulator
 * (`facepay::sim::face_service`, zero latency, seeded) driven by the core directly through
 * JNI. Its [FaceServiceDriver] methods are never called from Kotlin.
 */
class SimulatedFaceDriver(val seed: Long = 1) : FaceServiceDriver {
    private fun inRust(): Nothing = throw UnsupportedOperationException("SimulatedFaceDriver runs inside the Rust core")
    override fun initWxpayface(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun getWxpayfaceRawdata(callback: DriverCallback) = inRust()
    override fun preloadSdkEnv(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun manualUpdateFaceDatas(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun getSdkInfo(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun setCameraPreview(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun removeCameraView(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun startVerify(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun stopVerify(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun finishFaceVerify(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun getFacePayCredential(request: Map<String, String>, callback: DriverCallback) = inRust()
    override fun releaseWxpayface(callback: DriverCallback) = inRust()
}
