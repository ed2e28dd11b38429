//! Redis's own account of the scripts it ran (for the benchmarks that measure scripts).

use super::{common::Result, measure::info_field};

/// Redis's `usec` and `calls` for scripts so far (`EVALSHA`, and `EVAL` on a first run).
pub async fn script_usec(conn: &mut redis::aio::MultiplexedConnection) -> Result<(f64, f64)> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    let mut total = (0.0, 0.0);
    for name in ["cmdstat_evalsha", "cmdstat_eval"] {
        if let Some(stats) = info_field(&info, name) {
            for pair in stats.split(',') {
                match pair.split_once('=') {
                    Some(("usec", v)) => total.0 += v.parse::<f64>()?,
                    Some(("calls", v)) => total.1 += v.parse::<f64>()?,
                    _ => {}
                }
            }
        }
    }
    Ok(total)
}
