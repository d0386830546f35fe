//! Progress bars on stderr (only when it is a terminal and output is not JSON).

use mhm_sidecar::{Bar, Progress};

/// Draws an `indicatif` bar per piece of long work.
pub struct Bars;

impl Progress for Bars {
    fn start(&self, what: &str, total: u64) -> Box<dyn Bar> {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        Box::new(Drawn(bar))
    }
}

struct Drawn(indicatif::ProgressBar);

impl Bar for Drawn {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
