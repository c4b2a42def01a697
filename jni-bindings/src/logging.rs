//! Logging: `tracing` to logcat on Android (`android_logger`), to stderr elsewhere. Quiet by
//! default (warnings and errors); `FACEPAY_LOG` sets an `EnvFilter` on the host. No log line
//! carries personal data (STYLE.md): the core masks it and this crate logs codes only.

use std::sync::Once;

static INIT: Once = Once::new();

#[cfg(target_os = "android")]
pub fn init() {
    INIT.call_once(|| {
        // `tracing` (feature `log`) forwards its events to `log`, and android_logger to logcat.
        android_logger::init_once(
            android_logger::Config::default().with_max_level(log::LevelFilter::Warn).with_tag("facepay"),
        );
    });
}

#[cfg(not(target_os = "android"))]
pub fn init() {
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("FACEPAY_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    });
}
