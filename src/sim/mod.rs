//! Simulations of the services we cannot reach from a test machine: the vendor face
//! service and mock servers. They follow API-NOTES exactly, including its errors.
//! Feature `sim`: the face service simulator and the in-process backend double (what the
//! emulator build of the Android library links). Feature `mock`: the mock HTTP servers,
//! the virtual-time demo and the benchmark harnesses (the CLI and the tests only).

#[cfg(feature = "sim")]
pub mod backend;
#[cfg(feature = "sim")]
pub mod bench;
#[cfg(all(feature = "sim", feature = "mock"))]
pub mod bench_recovery;
#[cfg(all(feature = "sim", feature = "mock"))]
pub mod demo;
#[cfg(feature = "sim")]
pub mod face_service;
#[cfg(all(feature = "recon", feature = "mock"))]
pub mod faceid;
#[cfg(all(feature = "sim", feature = "mock", feature = "merchant"))]
pub mod link_bench;
#[cfg(feature = "sim")]
pub mod population;
#[cfg(all(feature = "sim", feature = "mock", feature = "merchant"))]
pub mod reference_link;
#[cfg(all(feature = "sim", feature = "mock", feature = "merchant"))]
pub mod reference_stack;
#[cfg(feature = "sim")]
pub mod virtual_clock;
#[cfg(all(feature = "merchant", feature = "mock"))]
pub mod wechatpay;
#[cfg(all(feature = "merchant", feature = "mock"))]
pub mod wechatpay_bench;
#[cfg(all(feature = "merchant", feature = "mock"))]
pub mod wechatpay_fixture;
#[cfg(all(feature = "sim", feature = "mock"))]
pub mod wechatpay_side;
