// The facepay Android library (AAR): the Kotlin wrapper io.facepay, the vendor adapter, the
// native libraries and the consumer keep rules. NOT built on the facepay CI (no Android Gradle
// plugin there): the same Kotlin is built and tested on the host JVM by
// jni-bindings/kotlin/pom.xml. Native libraries: scripts/build-android.sh writes them into
// src/main/jniLibs of this module.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "io.facepay"
    compileSdk = 35
    // Pinned: the NDK that scripts/build-android.sh links with (16 KB page alignment, r27).
    ndkVersion = "27.2.12479018"
    defaultConfig {
        minSdk = 26 // java.time.Duration in the config API
        // R8 applies these to every app that depends on the library (the Maven jar carries the
        // same file as META-INF/proguard/proguard-rules.pro).
        consumerProguardFiles("../proguard-rules.pro")
        ndk { abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64") }
    }
    sourceSets["main"].java.srcDirs(
        "../jni-bindings/kotlin/src/main/kotlin",
        // The vendor adapter: compiles against the vendor AAR in ../android-sample/libs.
        "../jni-bindings/kotlin/src/vendor/kotlin",
    )
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    // The vendor offline face AAR (com.tencent.wxpayface 2.32.300): the app links it
    // (`implementation`); a library can only compile against a local AAR. Never in this repository.
    compileOnly(files("../android-sample/libs/wxfacepay-release-2.32.300.aar"))
}
