#!/usr/bin/env bash
# Builds libfacepay_jni for Android with cargo-ndk into android-sample/src/main/jniLibs:
# arm64-v8a, armeabi-v7a, x86_64, linked with 16 KB page alignment (Android 15+ devices).
# For integrators' machines (needs the Android NDK, `cargo install cargo-ndk`, and
# `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`).
# Not exercised on the facepay machines, which have no NDK (README "Android").
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-ndk >/dev/null 2>&1 || { echo "error: cargo-ndk is not installed (cargo install cargo-ndk)" >&2; exit 1; }
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform 24 \
  -o android-sample/src/main/jniLibs build --release -p facepay-jni
echo "built: $(find android-sample/src/main/jniLibs -name libfacepay_jni.so | tr '\n' ' ')"
