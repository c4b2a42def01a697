package io.facepay

/** Marks a class or member that Rust calls or creates by name: `proguard-rules.pro` keeps it. */
@Retention(AnnotationRetention.BINARY)
@Target(AnnotationTarget.CLASS, AnnotationTarget.FUNCTION, AnnotationTarget.CONSTRUCTOR, AnnotationTarget.FIELD)
annotation class CalledFromNative
