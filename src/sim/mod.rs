//! Simulations of the services we cannot reach from a test machine: the vendor face
//! service and mock servers. They follow API-NOTES exactly, including its errors.

pub mod backend;
pub mod bench;
pub mod bench_recovery;
pub mod demo;
pub mod face_service;
#[cfg(feature = "recon")]
pub mod faceid;
pub mod population;
#[cfg(feature = "merchant")]
pub mod reference_stack;
pub mod virtual_clock;
#[cfg(feature = "merchant")]
pub mod wechatpay;
#[cfg(feature = "merchant")]
pub mod wechatpay_bench;
#[cfg(feature = "merchant")]
pub mod wechatpay_fixture;
