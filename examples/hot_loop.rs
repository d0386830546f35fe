//! A fixed number of events through the `LogFiles` layer, for profilers:
//! `valgrind --tool=callgrind target/release/examples/hot_loop 200000 buffered`
//! (modes: `buffered`, `direct`, `fmt-sink` for the baseline; add `norotate` as a third word).

use mhm_log::{LogFiles, Settings, WriteMode};
use tracing_subscriber::prelude::*;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mode = match std::env::args().nth(2).as_deref() {
        Some("direct") => WriteMode::Direct,
        _ => WriteMode::Buffered,
    };
    let rotation_disabled = std::env::args().nth(3).as_deref() == Some("norotate");
    let dir = tempfile::tempdir().expect("a temp folder");
    let settings = Settings::default()
        .write_mode(mode)
        .max_bytes(u64::MAX / 2)
        .rotation_disabled(rotation_disabled);
    let (layer, guard) =
        LogFiles::builder(dir.path()).settings(settings).build().expect("the layer");
    let start = std::time::Instant::now();
    let dispatch = if std::env::args().nth(2).as_deref() == Some("fmt-sink") {
        // The baseline: tracing_subscriber::fmt formatting into io::sink.
        tracing::Dispatch::new(
            tracing_subscriber::fmt().with_writer(std::io::sink).with_ansi(false).finish(),
        )
    } else {
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
    };
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..n {
            tracing::info!(target: "mhm::bench", user_id = i, channel = "discord", latency_ms = 12u64, "message delivered to the user");
        }
    });
    drop(guard);
    println!("{:.1} ns/event", start.elapsed().as_nanos() as f64 / n as f64);
}
