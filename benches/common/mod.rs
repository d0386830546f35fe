//! What the benches share: the event, the folder for their files, and threads that
//! log it together.

use std::{
    hint::black_box,
    sync::{Arc, Barrier},
    thread::{self, JoinHandle},
};

use tracing::Dispatch;

/// The event: `info!` with three fields, a ~127-byte line.
#[inline]
pub fn event(i: u64) {
    tracing::info!(target: "mhm::bench", user_id = i, channel = "discord", latency_ms = 12u64, "message delivered to the user");
}

/// A temporary folder in the system's temp folder, or in `MHM_BENCH_DIR` (e.g. `/dev/shm`).
pub fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("MHM_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

/// `threads` threads, each logging `iters` events through `dispatch` once the returned
/// barrier is passed (the caller waits on it too, to start them all at once).
pub fn logging_threads(
    dispatch: &Dispatch,
    threads: usize,
    iters: u64,
) -> (Arc<Barrier>, Vec<JoinHandle<()>>) {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles = (0..threads)
        .map(|_| {
            let dispatch = dispatch.clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    barrier.wait();
                    for i in 0..iters {
                        event(black_box(i));
                    }
                })
            })
        })
        .collect();
    (barrier, handles)
}
