//! Mutual TLS for every gRPC connection: the node's certificate serves and dials, and only
//! certificates from the configured TLS root CAs are accepted on either side.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};

use crate::config::TlsFiles;

#[derive(Clone)]
pub struct TlsMaterial {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// Every trusted root, concatenated.
    pub roots_pem: Vec<u8>,
}

fn read(path: &std::path::Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

impl TlsMaterial {
    pub fn load(files: &TlsFiles) -> anyhow::Result<Self> {
        let mut roots_pem = Vec::new();
        for root in &files.root_cas {
            roots_pem.extend(read(root, "TLS root CA")?);
            roots_pem.push(b'\n');
        }
        anyhow::ensure!(
            !roots_pem.is_empty(),
            "tls.rootCAs is empty: list at least one TLS root CA"
        );
        Ok(Self {
            cert_pem: read(&files.cert, "TLS certificate")?,
            key_pem: read(&files.key, "TLS key")?,
            roots_pem,
        })
    }

    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.roots_pem))
    }

    pub fn client_config(&self, host: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .domain_name(host)
            .ca_certificate(Certificate::from_pem(&self.roots_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }

    /// A lazily connected channel to `addr` (`host:port`).
    pub fn channel(&self, addr: &str) -> anyhow::Result<Channel> {
        let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Endpoint::from_shared(format!("https://{addr}"))
            .with_context(|| format!("bad address {addr}: use host:port"))?
            .tls_config(self.client_config(host))?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .connect_lazy())
    }
}

/// DER bytes of the first certificate in a PEM text.
pub fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    x509_parser::pem::parse_x509_pem(pem)
        .ok()
        .map(|(_, p)| p.contents)
}

/// The DER certificate the remote side presented on this connection.
pub fn peer_cert<T>(req: &tonic::Request<T>) -> Option<Vec<u8>> {
    req.peer_certs()
        .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()))
}
