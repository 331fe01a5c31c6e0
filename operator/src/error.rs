//! The operator's errors. A reconcile that fails is retried by its controller's error policy
//! with backoff; `InvalidSpec` is the exception: it is reported in status and waits for the
//! user to change the resource.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    /// The resource cannot be run as written; the message says what to change.
    #[error("{0}")]
    InvalidSpec(String),

    /// Something the resource needs is not there yet (its network, a CA Secret, a node).
    #[error("waiting: {0}")]
    Waiting(String),

    /// Issuing or reading certificates failed.
    #[error("certificates: {0}")]
    Pki(String),

    /// A node refused or failed an admin call.
    #[error("node {node}: {message}")]
    Node { node: String, message: String },

    /// An object could not be (de)serialised.
    #[error("serialisation: {0}")]
    Serde(#[from] serde_json::Error),
}

impl Error {
    /// A short label for the `reason` of error metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Waiting(_) => "waiting",
            Error::Pki(_) => "pki",
            Error::Node { .. } => "node",
            Error::Serde(_) => "serde",
        }
    }

    pub fn pki(err: impl std::fmt::Display) -> Self {
        Error::Pki(format!("{err:#}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
