//! Running a node's gRPC server until the process is asked to stop.

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;

/// How long a stopping node lets open calls finish: other nodes' long-lived streams (Raft,
/// Deliver, events, status watches) do not end by themselves.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Runs `server` (built with `serve_with_incoming_shutdown` on `stop_rx`'s counterpart)
/// until it fails or `shutdown` resolves; then signals `stop` and waits [`SHUTDOWN_GRACE`]
/// at most.
pub async fn until_shutdown<S>(
    server: S,
    stop: oneshot::Sender<()>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    S: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    let mut server = tokio::spawn(server);
    tokio::select! {
        r = &mut server => Ok(r??),
        _ = shutdown => {
            let _ = stop.send(());
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(r) => Ok(r??),
                Err(_) => {
                    server.abort();
                    Ok(())
                }
            }
        }
    }
}
