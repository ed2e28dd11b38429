//! What the benchmarks share: their error type, the report and progress macros, pinning with
//! `taskset`, `INFO` fields and percentiles.

use std::{process::Stdio, time::Duration};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The report goes to stdout; progress goes to stderr so the report can be piped alone.
macro_rules! report {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

macro_rules! progress {
    ($($arg:tt)*) => {
        writeln!(std::io::stderr().lock(), $($arg)*)?
    };
}

pub(crate) use {progress, report};

/// `taskset -a -pc <cpu> <pid>`: every thread of `pid` onto `cpu`.
pub fn taskset(cpu: &str, pid: u32) -> Result<()> {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-pc", cpu, &pid.to_string()])
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .to_owned()
            .into())
    }
}

/// The value of `name` in an `INFO` answer.
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// The nearest-rank `q`-th percentile (0–100) of sorted samples; zero without samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
