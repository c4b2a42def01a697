//! Daemon attachment of the threads that complete asynchronous natives (issue 13): the engine's
//! own thread (`facepay-engine`, started by the core, not by the JVM) finishes most `Engine_*Async`
//! calls and calls `NativeCompletion.done` itself ([`crate::inline`]), so it is attached to the JVM
//! the first time it needs to be, once, as a daemon — a daemon thread never keeps a host JVM from
//! exiting (jni-rs only attaches non-daemon threads) — and detached when it ends (ART warns about,
//! and old runtimes abort on, a native thread that exits attached). A thread the JVM or someone
//! else attached is left as it is. Serves SPEC T7.7 (a cancelled coroutine's stop goes out at
//! once, from any thread) and STYLE.md's "`Global` refs are dropped while attached".

use std::cell::RefCell;
use std::ffi::{c_void, CString};
use std::ptr;

use jni::sys::{self, jint, JNI_EDETACHED, JNI_OK, JNI_VERSION_1_6};

/// Detaches the thread when it ends (thread-local destructor).
struct Daemon {
    vm: *mut sys::JavaVM,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: `vm` is the process's JavaVM (it outlives every thread of an app; on a host JVM
        // the engine threads end in `Engine_close`, before the VM is destroyed), and this thread
        // was attached by `ensure` below.
        unsafe {
            ((**self.vm).v1_1.DetachCurrentThread)(self.vm);
        }
    }
}

thread_local! {
    static OURS: RefCell<Option<Daemon>> = const { RefCell::new(None) };
}

/// Makes sure the current thread is attached, attaching it as a daemon if it is not. Cheap when
/// it is (one `GetEnv` call, or a thread-local read for a thread we attached). Failing to attach
/// is logged; the JNI calls that follow then fail and are logged too (never a panic).
pub fn ensure() {
    let Ok(cache) = crate::cache::get() else { return };
    let vm = cache.vm.get_raw();
    if OURS.with(|o| o.borrow().is_some()) {
        return;
    }
    let mut env: *mut c_void = ptr::null_mut();
    // SAFETY: `vm` is the valid JavaVM pointer cached in `JNI_OnLoad`.
    let r: jint = unsafe { ((**vm).v1_2.GetEnv)(vm, &mut env, JNI_VERSION_1_6) };
    if r == JNI_OK {
        return;
    }
    if r != JNI_EDETACHED {
        tracing::warn!(code = r, "GetEnv failed on a facepay completion thread");
        return;
    }
    let name = std::thread::current().name().and_then(|n| CString::new(n).ok());
    let mut args = sys::JavaVMAttachArgs {
        version: JNI_VERSION_1_6,
        name: name.as_ref().map_or(ptr::null_mut(), |n| n.as_ptr() as *mut _),
        group: ptr::null_mut(),
    };
    // SAFETY: a valid VM pointer, an unattached thread, and `args` outlives the call.
    let r = unsafe {
        ((**vm).v1_4.AttachCurrentThreadAsDaemon)(vm, &mut env, &mut args as *mut sys::JavaVMAttachArgs as *mut c_void)
    };
    if r != JNI_OK {
        tracing::warn!(code = r, "a facepay completion thread could not attach to the JVM");
        return;
    }
    OURS.with(|o| *o.borrow_mut() = Some(Daemon { vm }));
}
