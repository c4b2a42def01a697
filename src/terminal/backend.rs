//! The terminal ↔ merchant backend protocol (DESIGN.md "Contracts", documented in
//! `docs/merchant-protocol.md`): the wire types and the two traits the engine uses.
//! The merchant private key never reaches a terminal: authinfo (B3) and payment
//! credentials only go through the merchant backend.

use crate::error::Result;
pub use crate::wire::{AuthInfoGrant, AuthInfoRequest, BoxFut, PaymentRequest, PaymentState, PaymentStatus};

/// Where the engine gets authinfo (T3). An error of code `ConfigMismatch` (T3.5) is final:
/// the engine reports it and does not retry.
pub trait AuthInfoSource: Send + Sync + 'static {
    fn fetch(&self, req: AuthInfoRequest) -> BoxFut<'_, Result<AuthInfoGrant>>;
}

/// Where the outbox delivers payment credentials.
pub trait PaymentBackend: Send + Sync + 'static {
    /// Borrows the request: the credential is not copied again for each attempt.
    fn submit<'a>(&'a self, req: &'a PaymentRequest) -> BoxFut<'a, Result<PaymentStatus>>;
    fn status(&self, payment_id: String) -> BoxFut<'_, Result<PaymentStatus>>;
}
