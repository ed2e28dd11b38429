//! What every benchmark shares: its error type and the report and progress macros (pinning,
//! `INFO` fields and percentiles are in `measure.rs`, scripts' Redis time in `scripts.rs`).

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
