//! A fixed number of events through the `LogFiles` layer, for profilers:
//! `valgrind --tool=callgrind target/release/examples/hot_loop 200000 buffered`
//! (modes: `buffered`, `staged`, `direct`, `fmt-sink` for the baseline; then any of
//! `norotate`, `rotate` (a real rotation every 5 MiB, as the criterion bench does; by
//! default rotation is on but never due), `2threads` (the events on each of two threads),
//! `f64` (the event's `latency_ms` is an `f64`
//! instead of a `u64`) and `json` ([`Format::Json`] instead of the MHM line)).

use mhm_log::{Format, LogFiles, Settings, WriteMode};
use tracing_subscriber::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mode = match args.get(2).map(String::as_str) {
        Some("direct") => WriteMode::Direct,
        Some("staged") => WriteMode::Staged,
        _ => WriteMode::Buffered,
    };
    let word = |w: &str| args.iter().skip(3).any(|a| a == w);
    let rotation_disabled = word("norotate");
    let float_field = word("f64");
    let format = if word("json") { Format::Json } else { Format::Mhm };
    let dir = tempfile::tempdir().expect("a temp folder");
    let settings = Settings::from_env()
        .expect("LOG_* settings")
        .write_mode(mode)
        .rotation_disabled(rotation_disabled);
    let settings = if word("rotate") {
        settings.min_rotate_age(std::time::Duration::ZERO)
    } else {
        settings.max_bytes(u64::MAX / 2)
    };
    let (layer, guard) =
        LogFiles::builder(dir.path()).settings(settings).format(format).build().expect("the layer");
    let start = std::time::Instant::now();
    let dispatch = if args.get(2).map(String::as_str) == Some("fmt-sink") {
        // The baseline: tracing_subscriber::fmt formatting into io::sink.
        tracing::Dispatch::new(
            tracing_subscriber::fmt().with_writer(std::io::sink).with_ansi(false).finish(),
        )
    } else {
        tracing::Dispatch::new(tracing_subscriber::registry().with(layer))
    };
    let events = move || {
        for i in 0..n {
            if float_field {
                tracing::info!(target: "mhm::bench", user_id = i, channel = "discord", latency_ms = 12.375f64, "message delivered to the user");
            } else {
                tracing::info!(target: "mhm::bench", user_id = i, channel = "discord", latency_ms = 12u64, "message delivered to the user");
            }
        }
    };
    let threads = if word("2threads") { 2 } else { 1 };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| tracing::dispatcher::with_default(&dispatch, events));
        }
    });
    drop(guard);
    let events = (n * threads) as f64;
    print!("{:.1} ns/event", start.elapsed().as_nanos() as f64 / events);
    // CPU time of every thread (the background one too), user and kernel: what two cores
    // must share when two threads log (`2threads` cannot beat half of the one-thread figure).
    #[cfg(unix)]
    {
        // SAFETY: `getrusage` fills the struct it is given; zeroed is a valid start.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let nanos = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
        print!(
            ", CPU {:.1} ns/event (user {:.1}, kernel {:.1})",
            (nanos(usage.ru_utime) + nanos(usage.ru_stime)) / events,
            nanos(usage.ru_utime) / events,
            nanos(usage.ru_stime) / events
        );
    }
    println!();
}
