//! Bounded waiting: every wait has a deadline and a poll interval, and its error says what
//! was awaited and what was last seen.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// How often conditions are polled: fast enough to time an election to a tenth of a second.
pub const POLL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Ok(Some(value))`, at most `timeout`. `Ok(None)` means "not
/// yet"; an `Err` is remembered (the API server may be restarting) and reported at the deadline.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("nothing yet");
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last})");
        }
        tokio::time::sleep(POLL).await;
    }
}
