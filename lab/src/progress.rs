//! The sweep's progress on stderr: a bar with the point being measured and the time left when
//! stderr is a terminal, plain lines otherwise.
//!
//! A sweep takes minutes (ten points of 45 s each by default, more when a point is measured
//! again), so a person at a terminal wants to see where it is and when it ends; a log file or a
//! pipe wants none of a bar's escape codes and redraws, only the lines the sweep writes. Both go
//! through one [`SweepProgress`], which picks the form once, at [`SweepProgress::new`], from
//! [`std::io::IsTerminal`].
//!
//! The time left is estimated per point, not per request: before the first point ends it is the
//! planned time of every point (`secs_per_attempt` each, the warm-up, measured run and overhead
//! run of one attempt); after that it is the mean time the finished points took, times the points
//! left, less the time already spent on the current one. The mean carries the repeated attempts
//! of the points so far, so a sweep whose points are measured again is predicted to go on doing
//! so. indicatif's own estimate works from the rate of its steps, which for ten steps a minute
//! apart jumps at every step and grows while a point runs; this one counts down.
use std::io::{IsTerminal as _, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{FormattedDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How often the bar is redrawn while a point runs, so that the elapsed time and the time left
/// move between points.
const TICK: Duration = Duration::from_secs(1);

/// The bar's layout: spinner, elapsed time, bar, points done, time left and what is measured.
const TEMPLATE: &str =
    "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} points, {sweep_eta} left  {msg}";

/// Where the progress goes.
enum Output {
    /// A bar on the terminal; lines are printed above it. `last_done_ms`: when the last point
    /// finished, in ms of the bar's elapsed time (shared with the bar's time-left key).
    Bar {
        bar: ProgressBar,
        last_done_ms: Arc<AtomicU64>,
    },
    /// Plain lines, nothing else.
    Plain(Mutex<Box<dyn Write + Send>>),
}

/// Where a sweep reports: its lines, and (for a bar) which point runs. Any writer is one (it
/// gets the lines); [`SweepProgress`] also draws the bar.
pub trait SweepLog {
    /// One line of text (without its newline).
    fn line(&mut self, text: &str);
    /// Point `index` (from 0) at load `rho` starts attempt `attempt` (from 1).
    fn start(&mut self, _index: usize, _rho: f64, _attempt: u32) {}
    /// A point is finished, whatever its verdict.
    fn point_done(&mut self) {}
}

impl<W: Write> SweepLog for W {
    fn line(&mut self, text: &str) {
        // Progress is best effort: a closed stderr must not end a sweep.
        let _ = writeln!(self, "{text}");
    }
}

impl SweepLog for SweepProgress {
    fn line(&mut self, text: &str) {
        SweepProgress::line(self, text);
    }
    fn start(&mut self, index: usize, rho: f64, attempt: u32) {
        SweepProgress::start(self, index, rho, attempt);
    }
    fn point_done(&mut self) {
        SweepProgress::point_done(self);
    }
}

/// The progress of a sweep: a bar on a terminal, plain lines elsewhere (see the module docs).
pub struct SweepProgress {
    out: Output,
}

impl std::fmt::Debug for SweepProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepProgress")
            .field("bar", &self.has_bar())
            .finish_non_exhaustive()
    }
}

/// The time left in seconds: with `done` of `total` points finished, the last of them
/// `at_last_done` seconds into the sweep and `elapsed` seconds gone now. Before the first point
/// ends each point is taken to cost `secs_per_attempt`. Never negative (a point running longer
/// than the mean shows 0 until it ends).
fn eta_secs(done: u64, total: u64, elapsed: f64, at_last_done: f64, secs_per_attempt: f64) -> f64 {
    if done >= total {
        return 0.0;
    }
    let per_point = if done == 0 {
        secs_per_attempt
    } else {
        at_last_done / done as f64
    };
    let left = per_point * (total - done) as f64 - (elapsed - at_last_done);
    if left.is_finite() { left.max(0.0) } else { 0.0 }
}

impl SweepProgress {
    /// A bar over `total_points` points when stderr is a terminal, else plain lines on stderr.
    /// `secs_per_attempt` is the planned time of one attempt at a point (warm-up, measured run
    /// and overhead run), for the time left before the first point ends.
    pub fn new(total_points: usize, secs_per_attempt: f64) -> Self {
        if std::io::stderr().is_terminal() {
            Self::with_bar(total_points, secs_per_attempt, ProgressDrawTarget::stderr())
        } else {
            Self::with_writer(Box::new(std::io::stderr()))
        }
    }

    /// Plain lines into `out`, never a bar (what [`SweepProgress::new`] does when stderr is not
    /// a terminal, with stderr).
    pub fn with_writer(out: Box<dyn Write + Send>) -> Self {
        SweepProgress {
            out: Output::Plain(Mutex::new(out)),
        }
    }

    fn with_bar(total_points: usize, secs_per_attempt: f64, target: ProgressDrawTarget) -> Self {
        let last_done_ms = Arc::new(AtomicU64::new(0));
        let bar = ProgressBar::with_draw_target(Some(total_points as u64), target);
        let at_last = Arc::clone(&last_done_ms);
        let eta = move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let left = eta_secs(
                s.pos(),
                s.len().unwrap_or(0),
                s.elapsed().as_secs_f64(),
                at_last.load(Ordering::Relaxed) as f64 / 1e3,
                secs_per_attempt,
            );
            let _ = write!(w, "{}", FormattedDuration(Duration::from_secs_f64(left)));
        };
        // The template is a constant: a mistake in it is a bug found by the tests, not an input.
        let style = match ProgressStyle::with_template(TEMPLATE) {
            Ok(s) => s.with_key("sweep_eta", eta).progress_chars("=> "),
            Err(_) => ProgressStyle::default_bar(),
        };
        bar.set_style(style);
        bar.enable_steady_tick(TICK);
        SweepProgress {
            out: Output::Bar { bar, last_done_ms },
        }
    }

    /// Whether the progress is drawn as a bar (stderr is a terminal).
    pub fn has_bar(&self) -> bool {
        matches!(self.out, Output::Bar { .. })
    }

    /// Point `index` (from 0), at load `rho`, starts its attempt `attempt` (from 1): the bar's
    /// message becomes `ρ=0.40, attempt 2`, and its position `index` (the points before it are
    /// done). Plain output writes nothing (the sweep's own lines say what starts).
    pub fn start(&self, index: usize, rho: f64, attempt: u32) {
        if let Output::Bar { bar, .. } = &self.out {
            bar.set_position(index as u64);
            bar.set_message(format!("ρ={rho:.2}, attempt {attempt}"));
        }
    }

    /// A line of text: above the bar, or on its own line in plain output.
    pub fn line(&self, text: &str) {
        match &self.out {
            Output::Bar { bar, .. } => bar.println(text),
            Output::Plain(out) => {
                // A poisoned lock only means another thread panicked mid-line: keep writing.
                let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// A point is finished (whatever its verdict): the bar advances and the time left is
    /// estimated again from the time per finished point.
    pub fn point_done(&self) {
        if let Output::Bar { bar, last_done_ms } = &self.out {
            let ms = u64::try_from(bar.elapsed().as_millis()).unwrap_or(u64::MAX);
            last_done_ms.store(ms, Ordering::Relaxed);
            bar.inc(1);
        }
    }

    /// The sweep is over: the bar is drawn one last time, full, and left on the terminal.
    pub fn finish(&self) {
        match &self.out {
            Output::Bar { bar, .. } => bar.finish_with_message("done"),
            Output::Plain(out) => {
                let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                let _ = out.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("UTF-8")
        }
    }

    #[test]
    fn plain_output_is_the_lines_and_nothing_else() {
        let buf = Shared::default();
        let p = SweepProgress::with_writer(Box::new(buf.clone()));
        assert!(!p.has_bar());
        p.start(0, 0.1, 1);
        p.line("[1/2] ρ = 0.10: λ = 100.0/s");
        p.point_done();
        p.start(1, 0.4, 2);
        p.line("retrying ρ = 0.40");
        p.point_done();
        p.finish();
        // No escape codes, no carriage returns, no bar: exactly the lines, each ended.
        assert_eq!(
            buf.text(),
            "[1/2] ρ = 0.10: λ = 100.0/s\nretrying ρ = 0.40\n"
        );
    }

    #[test]
    fn the_bar_shows_the_point_and_attempt_and_counts_points() {
        let p = SweepProgress::with_bar(3, 10.0, ProgressDrawTarget::hidden());
        assert!(p.has_bar());
        let Output::Bar { bar, last_done_ms } = &p.out else {
            panic!("a bar");
        };
        p.start(0, 0.4, 1);
        assert_eq!(bar.message(), "ρ=0.40, attempt 1");
        p.start(0, 0.4, 2);
        assert_eq!(bar.message(), "ρ=0.40, attempt 2");
        assert_eq!(bar.position(), 0);
        p.point_done();
        assert_eq!(bar.position(), 1);
        let first = last_done_ms.load(Ordering::Relaxed);
        p.start(1, 0.95, 1);
        assert_eq!(bar.message(), "ρ=0.95, attempt 1");
        // A line on a hidden bar goes nowhere, and does not disturb it.
        p.line("a line");
        p.point_done();
        assert_eq!(bar.position(), 2);
        assert!(last_done_ms.load(Ordering::Relaxed) >= first);
        p.finish();
        assert!(bar.is_finished());
        assert_eq!(bar.message(), "done");
    }

    #[test]
    fn the_template_parses() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }

    #[test]
    fn time_left_counts_down_per_point() {
        // Before the first point ends: the plan, less what has passed.
        assert_eq!(eta_secs(0, 10, 0.0, 0.0, 50.0), 500.0);
        assert_eq!(eta_secs(0, 10, 20.0, 0.0, 50.0), 480.0);
        // Two points took 120 s: 60 s each, eight left, 15 s into the third.
        assert_eq!(eta_secs(2, 10, 135.0, 120.0, 50.0), 8.0 * 60.0 - 15.0);
        // A point running long shows 0, never a negative time.
        assert_eq!(eta_secs(9, 10, 1000.0, 540.0, 50.0), 0.0);
        // Done.
        assert_eq!(eta_secs(10, 10, 600.0, 600.0, 50.0), 0.0);
        // Nothing planned and nothing done: 0, not NaN.
        assert_eq!(eta_secs(0, 0, 1.0, 0.0, f64::NAN), 0.0);
        assert_eq!(eta_secs(0, 3, 1.0, 0.0, f64::NAN), 0.0);
    }
}
