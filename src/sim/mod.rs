//! Simulations of the services we cannot reach from a test machine: the vendor face
//! service and mock servers. They follow API-NOTES exactly, including its errors.

#[cfg(feature = "recon")]
pub mod faceid;
