//! Eventline browser tracker, compiled to WebAssembly: validates events with the collector's own
//! rules, stores every event before `track()` returns, and delivers batches at least once
//! (the collector deduplicates by `event_id`, so storage sees each event exactly once).
//!
//! Natively this crate is the pure model, unit-tested with `cargo test`: [`wire`] JSON,
//! [`queue`], [`backoff`], [`session`], [`uuid`], [`outbox`] (multi-tab hand-over),
//! [`validate`] and the [`engine`] that combines them. On `wasm32` the `bindings` module adds
//! `Core` and its exports, which the npm wrapper's JavaScript `Tracker` drives (npm/src/tracker.js).
//! The wrapper reads the collector's answer itself (JSON.parse, which the browser already has)
//! and hands `Core::settle` only its decision: retry with a floor, or remove, or split.

pub mod backoff;
pub mod engine;
pub mod outbox;
pub mod queue;
pub mod session;
pub mod store;
pub mod uuid;
pub mod validate;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
pub use bindings::core::{check, Core, Host};

// lol_alloc instead of the default dlmalloc saves about 6 KB of wasm. The
// tracker is single-threaded wasm, which is what `AssumeSingleThreaded` asks us to promise; that
// promise is the only `unsafe` in the crate.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[global_allocator]
#[allow(unsafe_code)]
static ALLOCATOR: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };
