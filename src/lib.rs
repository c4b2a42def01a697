//! facepay — the integration kit for WeChat Pay offline face-payment terminals.
//!
//! - [`terminal`] (feature `terminal`, default): the terminal SDK core that owns the vendor
//!   face-service lifecycle (SPEC T1–T8), linked into the Android app through `facepay-jni`.
//! - [`sim`] (feature `sim`): a simulated vendor face service and mock servers for the demo,
//!   benchmarks, tests and the emulator sample.
//! - [`merchant`] (feature `merchant`): the merchant backend (SPEC B1–B6): WeChat Pay v3
//!   client, the B5 deduction engine, the reference backend.
//! - [`recon`] (feature `recon`): Tencent Cloud FaceID billing reconciliation (SPEC R1–R8).
//!
//! The merchant private key never reaches the terminal build: it only links `terminal`
//! (and optionally `sim`).

pub mod clock;
pub mod config;
pub mod error;
pub mod store;
pub mod wire;

#[cfg(feature = "terminal")]
pub mod terminal;

#[cfg(any(feature = "sim", feature = "mock"))]
pub mod sim;

#[cfg(feature = "recon")]
pub mod recon;

#[cfg(feature = "merchant")]
pub mod merchant;

pub use error::{Error, ErrorCode, Result, Secret};
