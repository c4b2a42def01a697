//! The terminal SDK core: the engine that drives the vendor face service so that a
//! merchant app cannot get its lifecycle wrong (SPEC T1–T8). Policy types are pure (they
//! take `now` and events and return decisions); only `runtime` owns timers and IO.

pub mod auth_info;
pub mod backend;
pub mod backend_http;
pub mod blocking;
pub mod command;
pub mod config;
pub mod engine;
pub mod face_service;
pub mod features;
pub mod gate;
pub mod health;
pub mod lifecycle;
pub mod link_sign;
pub mod outbox;
pub mod preview;
pub mod restart;
pub mod runtime;
pub mod sequence;
pub mod verify;
