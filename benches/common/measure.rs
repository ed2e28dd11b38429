//! Pinning with `taskset`, `INFO` fields and percentiles, for the benchmarks that pin and time.

use std::{process::Stdio, time::Duration};

use super::common::Result;

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
