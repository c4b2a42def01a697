// For integrators' machines (Android SDK + NDK): NOT exercised on the facepay CI, which builds
// and tests the same Kotlin on the host JVM (jni-bindings/kotlin/pom.xml, Robolectric).
pluginManagement {
    repositories { google(); mavenCentral(); gradlePluginPortal() }
}
dependencyResolutionManagement {
    repositories { google(); mavenCentral() }
}
rootProject.name = "facepay-sample"
// The facepay library module the app depends on.
include(":facepay")
project(":facepay").projectDir = file("../android-library")
