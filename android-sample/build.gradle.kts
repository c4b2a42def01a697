// The sample POS app (io.facepay.sample). Not exercised here: see README "Android".
// Native libraries come from scripts/build-android.sh (cargo-ndk) into src/main/jniLibs.
plugins {
    id("com.android.application") version "8.7.3"
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
    sourceSets["main"].java.srcDirs(
        "src/main/java",
        "../jni-bindings/kotlin/src/main/kotlin",
        // The vendor adapter: needs the vendor AAR in libs/.
        "../jni-bindings/kotlin/src/vendor/kotlin",
    )
    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "../proguard-rules.pro")
        }
    }
    packaging { jniLibs { useLegacyPackaging = false } } // 16 KB pages: keep .so uncompressed and aligned
}

dependencies {
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    // The vendor offline face AAR, from the vendor (not on any public repository).
    compileOnly(files("libs/wxpayface-offline.aar"))
}
