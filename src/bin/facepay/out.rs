//! Everything the CLI prints to stdout goes through here: a closed pipe (`| head`) or a
//! full disk (`> /dev/full`) becomes a one-line error and a non-zero exit, never the panic
//! (exit 101, backtrace) of `println!`.

use std::fmt;
use std::io::Write;

/// Writes one line and flushes it.
pub fn say(args: fmt::Arguments<'_>) -> Result<(), String> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(args).and_then(|()| o.write_all(b"\n")).and_then(|()| o.flush()).map_err(failed)
}

/// Writes text as is (no newline added) and flushes it.
pub fn say_raw(args: fmt::Arguments<'_>) -> Result<(), String> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(args).and_then(|()| o.flush()).map_err(failed)
}

/// One JSON line.
pub fn line(v: &impl serde::Serialize) -> Result<(), String> {
    let s = serde_json::to_string(v).map_err(|e| e.to_string())?;
    say(format_args!("{s}"))
}

fn failed(e: std::io::Error) -> String {
    format!("cannot write to stdout: {e}")
}
