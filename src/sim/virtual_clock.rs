//! The simulator's default clock is the core's [`crate::clock::VirtualClock`]: its wall time
//! follows tokio's pausable clock, so under paused time "10 minutes without an update"
//! (SPEC T4.3) means 10 virtual minutes on the service and on the engine alike.

pub use crate::clock::VirtualClock as VirtualWallClock;
