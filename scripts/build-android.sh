#!/usr/bin/env bash
# Builds libfacepay_jni for Android with cargo-ndk into android-library/src/main/jniLibs:
# arm64-v8a, armeabi-v7a, x86_64, profile `jni-release` (size-optimised, panic = unwind),
# linked with 16 KB page alignment (Android 15+ devices). Each library is stripped; its
# symbols are kept aside in target/android-symbols/<abi>/ for crash symbolication. The
# alignment of every LOAD segment is checked with readelf.
#
#   scripts/build-android.sh              production: the terminal core only
#   scripts/build-android.sh --simulator  emulator build: also the simulated face service
#                                         behind the Kotlin SimulatedFaceDriver
#
# For integrators' machines (needs the Android NDK pinned in android-sample/build.gradle.kts,
# `cargo install cargo-ndk`, and
# `rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android`).
# Not exercised on the facepay machines, which have no NDK (README "Android").
set -euo pipefail
cd "$(dirname "$0")/.."

features=()
for a in "$@"; do
  case "$a" in
    --simulator) features=(--features simulator) ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument '$a' (see --help)" >&2; exit 2 ;;
  esac
done

command -v cargo-ndk >/dev/null 2>&1 || { echo "error: cargo-ndk is not installed (cargo install cargo-ndk)" >&2; exit 1; }
out=android-library/src/main/jniLibs
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384"
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform 24 \
  -o "$out" build --profile jni-release -p facepay-jni "${features[@]}"

ndk_bin=$(dirname "$(find "${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-/nonexistent}}" -name llvm-strip -type f 2>/dev/null | head -1)" 2>/dev/null || true)
strip_tool="${ndk_bin:+$ndk_bin/}llvm-strip"
objcopy_tool="${ndk_bin:+$ndk_bin/}llvm-objcopy"
readelf_tool="${ndk_bin:+$ndk_bin/}llvm-readelf"
command -v "$strip_tool" >/dev/null 2>&1 || strip_tool=strip
command -v "$objcopy_tool" >/dev/null 2>&1 || objcopy_tool=objcopy
command -v "$readelf_tool" >/dev/null 2>&1 || readelf_tool=readelf

for so in $(find "$out" -name libfacepay_jni.so); do
  abi=$(basename "$(dirname "$so")")
  mkdir -p "target/android-symbols/$abi"
  "$objcopy_tool" --only-keep-debug "$so" "target/android-symbols/$abi/libfacepay_jni.so.debug"
  "$strip_tool" --strip-unneeded "$so"
  # Every LOAD segment aligned to at least 16 KB (0x4000).
  if "$readelf_tool" -lW "$so" | awk '$1 == "LOAD" { if (strtonum($NF) < 16384) bad = 1 } END { exit bad }'; then
    echo "$abi: $(stat -c %s "$so") bytes stripped, LOAD segments 16 KB aligned"
  else
    echo "error: $so has a LOAD segment aligned below 16 KB" >&2
    "$readelf_tool" -lW "$so" | grep LOAD >&2
    exit 1
  fi
done
