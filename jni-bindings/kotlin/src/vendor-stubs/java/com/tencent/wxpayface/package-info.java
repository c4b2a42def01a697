/**
 * Compile-only stubs of the public API of the vendor's client library
 * {@code com.tencent.wxpayface} 2.32.300 (VENDOR-API.md §1, §2, §5.3, §6): the signatures exactly,
 * raw {@code java.util.Map} included, every body {@code throw new RuntimeException("Stub!")}.
 * They exist so that {@code src/vendor} (the adapter, SPEC T2.4, T3.6, T7.10, T9) compiles on
 * every Maven run; they are never packaged (scripts/test-jvm checks the jar has no
 * {@code com/tencent/} class) and never on a test class path (the behavioural fake in
 * {@code src/test/java} takes their place). Written from VENDOR-API.md, not from the AAR.
 */
package com.tencent.wxpayface;
