//! TLS for links configured with `https://` URLs (issue: sync §3).
//!
//! There is no certificate authority between nodes. A node that serves TLS presents a
//! self-signed certificate made from its own Ed25519 node key, and a client pins the key
//! it already knows for that peer (from enrollment and the registry): the handshake is
//! accepted only if the server's TLS 1.3 `CertificateVerify` signature verifies under the
//! pinned key. Names, dates and issuers in the certificate are never trusted, so a
//! certificate that merely *contains* the right key proves nothing; possession of the
//! private key does. During enrollment the child does not know the hall's key yet: it
//! records the key the handshake proved and refuses to enroll unless the hall's answer
//! names that same key (and prints its fingerprint to compare by eye, like SSH).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::{Signature, VerifyingKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::identity::NodeKey;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4): the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// How long a client gets to finish its handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes under way at once; a connection beyond them is closed at once, so slow or
/// silent clients cannot pile up work before the server's connection limit applies.
const MAX_HANDSHAKES: usize = 1024;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default TLS provider, so an HTTP client built anywhere
/// works (reqwest brings no provider of its own here). Harmless when already done.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A self-signed certificate for `key`, valid for every name: clients pin the key, not
/// the name, so the node may be reached by any address.
fn certificate(key: &NodeKey) -> Result<CertificateDer<'static>, rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("yizhan node {}", key.node_id()),
    );
    // Wide validity: station PCs run for years, and their clocks may be wrong. Nothing
    // checks these dates; the pinned key is the trust anchor.
    // Derived from the key, so the same node always presents the same certificate.
    let mut serial = vec![0x01];
    serial.extend_from_slice(&key.public_key()[..8]);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 12, 31);
    let signer = DalekSigner {
        key,
        public: key.public_key(),
    };
    Ok(params.self_signed(&signer)?.der().clone())
}

/// Lets rcgen sign with the node key held by ed25519-dalek.
struct DalekSigner<'a> {
    key: &'a NodeKey,
    public: [u8; 32],
}

impl rcgen::PublicKeyData for DalekSigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for DalekSigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).to_vec())
    }
}

/// The server side: TLS 1.3 only, the node key as the certificate key.
pub fn server_config(key: &NodeKey) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let cert =
        certificate(key).map_err(|e| anyhow::anyhow!("cannot make the TLS certificate: {e}"))?;
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// What a client trusts.
#[derive(Debug, Clone)]
pub enum Pin {
    /// Exactly this Ed25519 public key.
    Key([u8; 32]),
    /// Any key, recorded here once the server proved possession of it (enrollment only).
    Record(Arc<Mutex<Option<[u8; 32]>>>),
}

/// The client side: TLS 1.3 only, the server's key checked against `pin`.
pub fn client_config(pin: Pin) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedKey { pin }))
        .with_no_client_auth();
    // A resumed session skips the key check; every connection proves the key again.
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[derive(Debug)]
struct PinnedKey {
    pin: Pin,
}

fn tls_error(message: &str) -> rustls::Error {
    rustls::Error::General(message.to_string())
}

/// The Ed25519 key a certificate carries, if it carries exactly one.
fn ed25519_key_in(cert: &[u8]) -> Option<[u8; 32]> {
    let mut found = None;
    let n = ED25519_SPKI_PREFIX.len();
    for start in 0..cert.len().saturating_sub(n + 31) {
        if cert[start..start + n] == ED25519_SPKI_PREFIX {
            if found.is_some() {
                return None;
            }
            found = cert[start + n..start + n + 32].try_into().ok();
        }
    }
    found
}

impl ServerCertVerifier for PinnedKey {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Deferred to the handshake signature below, which proves the key itself.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls_error("nodes speak TLS 1.3 only"))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(tls_error("the peer's TLS key is not an Ed25519 node key"));
        }
        let key = match &self.pin {
            Pin::Key(key) => *key,
            Pin::Record(_) => ed25519_key_in(cert.as_ref()).ok_or_else(|| {
                tls_error("the peer's certificate does not carry one Ed25519 key")
            })?,
        };
        let verifying = VerifyingKey::from_bytes(&key)
            .map_err(|_| tls_error("the pinned node key is not a valid Ed25519 key"))?;
        let signature = Signature::from_slice(dss.signature())
            .map_err(|_| tls_error("malformed handshake signature"))?;
        verifying.verify_strict(message, &signature).map_err(|_| {
            tls_error(
                "the peer did not prove the pinned node key (wrong node, or someone in between)",
            )
        })?;
        if let Pin::Record(slot) = &self.pin {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
        }
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// An HTTP client for one peer, speaking TLS with `pin` when the URL is `https://`.
pub fn http_client(pin: Pin, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        // Below the server's header timeout (10 s by default), which also closes idle
        // connections: a connection is never reused just as the server closes it.
        .pool_idle_timeout(Duration::from_secs(5))
        .timeout(timeout)
        .tls_backend_preconfigured(client_config(pin))
        .build()
        .expect("a client with a preconfigured TLS backend builds")
}

/// The address a request came from, on either listener (plain TCP or [`TlsListener`]):
/// handlers read it as `ConnectInfo<ClientAddr>` (the sign-in throttle and the applicants'
/// limits count per address).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Accepts TCP connections and finishes TLS handshakes off the accept loop, so a slow
/// or silent client never holds up the others.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(
        listener: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (send, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    tracing::debug!(peer = %peer, "too many TLS handshakes under way; connection closed");
                    continue;
                };
                let acceptor = acceptor.clone();
                let ready = send.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = ready.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                    }
                });
                if send.is_closed() {
                    break;
                }
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Runs one handshake over loopback and returns whether the client accepted it.
    async fn handshake(server_key: &NodeKey, pin: Pin) -> Result<(), String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(server_config(server_key).unwrap());
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"ok").await;
                let _ = tls.shutdown().await;
            }
        });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(pin)));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let result = match connector.connect(name, tcp).await {
            Ok(mut tls) => {
                let mut buf = Vec::new();
                tls.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
                assert_eq!(buf, b"ok");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        server.await.unwrap();
        result
    }

    #[tokio::test]
    async fn a_client_accepts_only_the_pinned_node_key() {
        let hall = NodeKey::from_seed([7; 32]);
        let other = NodeKey::from_seed([8; 32]);
        handshake(&hall, Pin::Key(hall.public_key())).await.unwrap();
        let refused = handshake(&hall, Pin::Key(other.public_key()))
            .await
            .unwrap_err();
        assert!(
            refused.contains("did not prove the pinned node key"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn enrollment_records_the_key_the_handshake_proved() {
        let hall = NodeKey::from_seed([9; 32]);
        let slot = Arc::new(Mutex::new(None));
        handshake(&hall, Pin::Record(slot.clone())).await.unwrap();
        assert_eq!(*slot.lock().unwrap(), Some(hall.public_key()));
    }

    #[test]
    fn a_certificate_carries_exactly_its_node_key() {
        let key = NodeKey::from_seed([3; 32]);
        let cert = certificate(&key).unwrap();
        assert_eq!(ed25519_key_in(cert.as_ref()), Some(key.public_key()));
        // Two candidate keys are ambiguous and refused.
        let mut doubled = cert.as_ref().to_vec();
        doubled.extend_from_slice(&ED25519_SPKI_PREFIX);
        doubled.extend_from_slice(&[1; 32]);
        assert_eq!(ed25519_key_in(&doubled), None);
    }
}
