//! Progress of a load: a bar with events, bytes, rate and ETA on a terminal, plain lines
//! every few seconds otherwise (a log, a CI job).

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::records::Counter;

/// How often a line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(2);

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Bytes of the input as read (compressed if it is), against `total`.
    read: Counter,
    total: Option<u64>,
    started: Instant,
    last_line: Instant,
    events: u64,
    duplicates: u64,
}

impl Progress {
    pub fn new(total: Option<u64>, read: Counter) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} {msg} ETA {eta}"
            } else {
                "{elapsed_precise} {spinner} {bytes} {msg}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            bar
        });
        let now = Instant::now();
        Progress { bar, read, total, started: now, last_line: now, events: 0, duplicates: 0 }
    }

    /// One batch was written: `events` records, `duplicates` of them there before.
    pub fn add(&mut self, events: u64, duplicates: u64) {
        self.events += events;
        self.duplicates += duplicates;
        let rate = self.events as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let msg =
            format!("{} events ({} already there), {rate:.0}/s", self.events, self.duplicates);
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.read.get());
                bar.set_message(msg);
            }
            None if self.last_line.elapsed() >= LINE_EVERY => {
                self.last_line = Instant::now();
                let share = match self.total {
                    Some(t) if t > 0 => {
                        format!(
                            " ({:.0} % of the input)",
                            100.0 * self.read.get() as f64 / t as f64
                        )
                    }
                    _ => String::new(),
                };
                eprintln!("{msg}, {} MiB read{share}", self.read.get() >> 20);
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.read.get());
            bar.finish_and_clear();
        }
    }

    pub fn totals(&self) -> (u64, u64) {
        (self.events, self.duplicates)
    }
}
