//! Progress display for `run`: a bar with images/s and ETA on a terminal, plain lines otherwise.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use clip_audit::commands::run::RunProgress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shows `run`'s progress on standard error.
pub struct TerminalProgress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Mutex<(Instant, u64)>,
}

impl TerminalProgress {
    /// A bar when standard error is a terminal, log lines every 10 s otherwise.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} {wide_bar} {human_pos}/{human_len} images, {rate} images/s, ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.1}", state.per_sec());
                    },
                ),
            );
            bar
        });
        Self {
            bar,
            started: Instant::now(),
            last_line: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl RunProgress for TerminalProgress {
    fn phase(&self, name: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(name.to_string()),
            None => crate::say!("[{:>7.1}s] {name}", self.started.elapsed().as_secs_f64()),
        }
    }

    fn total(&self, total: u64) {
        match &self.bar {
            Some(bar) => bar.set_length(total),
            None => crate::say!(
                "[{:>7.1}s] {total} records",
                self.started.elapsed().as_secs_f64()
            ),
        }
    }

    fn records(&self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let Ok(mut last) = self.last_line.lock() else {
                    return;
                };
                if last.0.elapsed().as_secs() >= 10 {
                    let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64();
                    crate::say!(
                        "[{:>7.1}s] {done} records, {rate:.1} images/s",
                        self.started.elapsed().as_secs_f64()
                    );
                    *last = (Instant::now(), done);
                }
            }
        }
    }
}
