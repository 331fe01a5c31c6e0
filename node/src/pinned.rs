//! Dialing a fellow orderer: the server must present the TLS certificate that a channel's
//! configuration lists for the consenter at that address. Chaining to a trusted CA and naming
//! the host is not enough: any organisation's TLS CA, or any other node's key, that can take a
//! consenter's address could otherwise receive Raft traffic, answer forwarded transactions with
//! a false SUCCESS and feed the block puller.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::tls::{pem_to_der, TlsMaterial};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The consenter certificates (DER) each address may present, from every channel this node
/// orders. Several channels may list the same address; during a certificate rotation they may
/// list different certificates for it for a while, and either is accepted.
#[derive(Default)]
pub struct Pins(RwLock<HashMap<String, HashSet<Vec<u8>>>>);

impl Pins {
    /// Pins the certificate `cert_pem` (a consenter's, from a channel config) for `addr`.
    pub fn pin(&self, addr: &str, cert_pem: &[u8]) -> anyhow::Result<()> {
        let der = pem_to_der(cert_pem)
            .with_context(|| format!("the consenter certificate for {addr} is not PEM"))?;
        self.0
            .write()
            .expect("pins lock")
            .entry(addr.to_string())
            .or_default()
            .insert(der);
        Ok(())
    }

    fn allows(&self, addr: &str, der: &[u8]) -> bool {
        self.0
            .read()
            .expect("pins lock")
            .get(addr)
            .is_some_and(|certs| certs.contains(der))
    }
}

/// Checks the server's chain, validity and name as usual, then that its certificate is one
/// pinned for the address dialled.
#[derive(Debug)]
struct PinnedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: Arc<Pins>,
    addr: String,
}

impl std::fmt::Debug for Pins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pins")
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if self.pins.allows(&self.addr, end_entity.as_ref()) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "{} presented a TLS certificate that is not the one the channel configuration \
                 lists for the consenter at this address",
                self.addr
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn client_config(tls: &TlsMaterial, addr: &str, pins: Arc<Pins>) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&tls.roots_pem) {
        roots
            .add(cert.context("a TLS root CA is not valid PEM")?)
            .context("a TLS root CA is not a valid certificate")?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("cannot build the TLS server verifier")?;
    let certs = CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .context("the node's TLS certificate is not valid PEM")?;
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem)
        .context("the node's TLS key is not a valid PEM private key")?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
            inner,
            pins,
            addr: addr.to_string(),
        }))
        .with_client_auth_cert(certs, key)
        .context("the node's TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A lazily connected channel to the consenter at `addr` (`host:port`) that only completes
/// its TLS handshake with a server presenting a certificate pinned for `addr` in `pins`.
pub fn channel(tls: &TlsMaterial, addr: &str, pins: Arc<Pins>) -> anyhow::Result<Channel> {
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .with_context(|| format!("bad address {addr}: use host:port"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(tls, addr, pins)?));
    let target = addr.to_string();
    let dial = tower::service_fn(move |_: Uri| {
        let (connector, name, target) = (connector.clone(), name.clone(), target.clone());
        async move {
            let tcp =
                tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&target))
                    .await
                    .map_err(|_| timed_out("connect"))??;
            tcp.set_nodelay(true)?;
            let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| timed_out("TLS handshake"))??;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    // TLS is done by the connector above, so the URI's scheme is plain `http`.
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .with_context(|| format!("bad address {addr}: use host:port"))?
        .http2_keep_alive_interval(Duration::from_secs(10))
        .connect_with_connector_lazy(dial))
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"))
}
