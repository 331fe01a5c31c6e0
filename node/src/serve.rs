//! Running a node's gRPC server until the process is asked to stop.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;

use crate::config::NodeConfig;
use crate::identity::SigningIdentity;
use crate::operations::{Operations, Readiness};

/// Marks the node as not serving when dropped.
struct NotServing<'a>(&'a Operations);

impl Drop for NotServing<'_> {
    fn drop(&mut self) {
        self.0.set_serving(false);
    }
}

use crate::tls::TlsMaterial;

/// What every node needs before it serves: its TLS material, its organisation's TLS root
/// (for admin calls), its data directory, and its listener.
pub struct Prepared {
    pub tls: TlsMaterial,
    pub admin_root: Vec<u8>,
    pub listener: tokio::net::TcpListener,
    /// The operations endpoint's listener, when the config names one.
    pub operations: Option<tokio::net::TcpListener>,
}

/// Loads the TLS files, creates the data directory and binds the listen address; errors
/// name the config field.
pub async fn prepare(cfg: &NodeConfig) -> anyhow::Result<Prepared> {
    let tls = TlsMaterial::load(&cfg.tls)?;
    let admin_root = std::fs::read(&cfg.tls.admin_root_ca).with_context(|| {
        format!(
            "cannot read tls.adminRootCA {}",
            cfg.tls.admin_root_ca.display()
        )
    })?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create dataDir {}", cfg.data_dir.display()))?;
    // Ledgers and Raft logs are the node's own: not readable by other users, whatever the
    // umask. A directory the node does not own (a volume mounted by root, shared through its
    // group) keeps its mode: that is the volume's owner's choice.
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(err) =
            std::fs::set_permissions(&cfg.data_dir, std::fs::Permissions::from_mode(0o700))
        {
            tracing::warn!(dir = %cfg.data_dir.display(), "cannot make dataDir private: {err}");
        }
    }
    let listener = tokio::net::TcpListener::bind(&cfg.listen_address)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is the port in use?)",
                cfg.listen_address
            )
        })?;
    let operations = match &cfg.operations_address {
        Some(address) => Some(Operations::bind(address).await?),
        None => None,
    };
    Ok(Prepared {
        tls,
        admin_root,
        listener,
        operations,
    })
}

/// The node's signing identity (`identity: {cert, key}` in its config); the error says what
/// it is for. `role` is the certificate's OU (`orderer`, `peer`).
pub fn signing_identity(
    cfg: &NodeConfig,
    role: &str,
    used_for: &str,
) -> anyhow::Result<SigningIdentity> {
    let id = cfg.identity.as_ref().with_context(|| {
        format!(
            "{} needs `identity: {{cert, key}}` in its config: the signing certificate (OU={role}) with which {used_for}",
            cfg.name
        )
    })?;
    SigningIdentity::load(&cfg.msp_id, &id.cert, &id.key)
        .with_context(|| format!("identity {}", id.cert.display()))
}

/// How long a stopping node lets open calls finish: other nodes' long-lived streams (Raft,
/// Deliver, events, status watches) do not end by themselves.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The gRPC server of a node under its limits (see `crate::limits`): TLS with a handshake
/// timeout, streams per connection, HTTP/2 keep-alive. Serve it with
/// `serve_with_incoming_shutdown(crate::connections::limited(listener, max), ..)`.
pub fn server(
    tls: &TlsMaterial,
    limits: &crate::limits::CheckedLimits,
) -> anyhow::Result<tonic::transport::Server> {
    Ok(tonic::transport::Server::builder()
        .tls_config(tls.server_config().timeout(limits.tls_handshake_timeout))?
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(limits.keepalive_timeout)))
}

/// Starts the operations endpoint, when the config names one, for a node whose channels
/// `readiness` reports.
pub fn start_operations(
    listener: Option<tokio::net::TcpListener>,
    readiness: std::sync::Arc<dyn Readiness>,
) -> Operations {
    let ops = Operations::new(readiness);
    if let Some(l) = listener {
        ops.spawn(l);
    }
    ops
}

/// Runs `server` (built with `serve_with_incoming_shutdown` on `stop_rx`'s counterpart)
/// until it fails or `shutdown` resolves; then signals `stop` and waits `grace` at most for
/// open calls. `ops` reports the server as serving meanwhile.
pub async fn until_shutdown<S>(
    server: S,
    stop: oneshot::Sender<()>,
    shutdown: impl Future<Output = ()>,
    ops: &Operations,
    grace: Duration,
) -> anyhow::Result<()>
where
    S: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    let mut server = tokio::spawn(server);
    ops.set_serving(true);
    let _not_serving = NotServing(ops);
    tokio::select! {
        r = &mut server => Ok(r??),
        _ = shutdown => {
            ops.set_serving(false);
            let _ = stop.send(());
            match tokio::time::timeout(grace, &mut server).await {
                Ok(r) => Ok(r??),
                Err(_) => {
                    server.abort();
                    Ok(())
                }
            }
        }
    }
}
