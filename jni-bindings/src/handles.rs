//! Rust objects cross JNI as `Arc::into_raw` pointers in a `Long` (STYLE.md). Borrowing
//! increments the count, so a call in progress keeps its object alive; `release` gives back
//! the reference the handle owned. The Kotlin side never uses a handle after `close()`
//! (its lock makes close wait for live calls), and 0 means closed.

use std::sync::Arc;

use jni::sys::jlong;

use crate::ffi::{FfiError, FfiResult};

pub fn into_handle<T>(a: Arc<T>) -> jlong {
    Arc::into_raw(a) as jlong
}

/// A new strong reference to the object behind `h`.
///
/// # Safety
/// `h` is 0 or a live handle made by [`into_handle`] for the same `T`.
pub unsafe fn borrow<T>(h: jlong, what: &str) -> FfiResult<Arc<T>> {
    if h == 0 {
        return Err(FfiError::IllegalState(format!("{what} is closed")));
    }
    let p = h as *const T;
    // SAFETY: per the contract, `p` came from `Arc::into_raw` and is still owned by the handle.
    unsafe {
        Arc::increment_strong_count(p);
        Ok(Arc::from_raw(p))
    }
}

/// Drops the reference owned by the handle.
///
/// # Safety
/// `h` is a live handle made by [`into_handle`] for the same `T`, released once.
pub unsafe fn release<T>(h: jlong) {
    if h != 0 {
        // SAFETY: per the contract.
        drop(unsafe { Arc::from_raw(h as *const T) });
    }
}
