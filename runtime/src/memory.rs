//! Returning freed memory to the system.
//!
//! librdkafka copies every produced record and frees it on another thread once delivered. glibc
//! keeps such freed blocks in its per-thread arenas instead of returning them, so a worker's
//! resident memory grows to hundreds of MB of free space (measured: 528 MB resident, 33 MB after
//! one `malloc_trim`). Trimming now and then keeps resident memory close to what is in use.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim only walks glibc's own allocator state.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}
