// The sample POS app (io.facepay.sample). Not exercised here: see README "Android".
// It depends on the facepay library module (../android-library: the wrapper, the adapter,
// the native libraries from scripts/build-android.sh and the consumer keep rules).
plugins {
    id("com.android.application") version "8.7.3"
    id("com.android.library") version "8.7.3" apply false
    id("org.jetbrains.kotlin.android") version "2.0.21"
}

android {
    namespace = "io.facepay.sample"
    compileSdk = 35
    // Pinned: the NDK that scripts/build-android.sh links with (16 KB page alignment, r27).
    ndkVersion = "27.2.12479018"
    defaultConfig {
        applicationId = "io.facepay.sample"
        minSdk = 24
        targetSdk = 35
        ndk { abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64") }
    }
    buildTypes {
        release {
            // The library's consumer rules (proguard-rules.pro) apply by themselves.
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"))
        }
    }
    packaging { jniLibs { useLegacyPackaging = false } } // 16 KB pages: keep .so uncompressed and aligned
}

dependencies {
    implementation(project(":facepay"))
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    // The vendor offline face AAR (com.tencent.wxpayface 2.32.300), from the vendor (not on
    // any public repository, never in this repository). `implementation`, not `compileOnly`:
    // it holds the client classes the app runs (WxPayFace, the AIDL stubs, UserInfo).
    implementation(files("libs/wxfacepay-release-2.32.300.aar"))
    // The AAR builds UserInfo/K12UserInfo with Gson but does not bundle it (VENDOR-API §0).
    implementation("com.google.code.gson:gson:2.11.0")
}
