//! HTTPS and WSS: the emulator serves TLS with a certificate and key from PEM files, or with a
//! certificate generated at start, issued by a CA generated with it (clients trust the CA, as
//! they would a private CA; rustls's verifier refuses a bare self-signed leaf as its own root).
//! ALPN offers `h2` and `http/1.1`, as the accept loop serves both.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::EmulatorError;

/// Where the server's certificate comes from.
#[derive(Debug, Clone)]
pub(crate) enum TlsSource {
    /// A certificate chain and its private key, PEM files.
    Files {
        /// The chain, leaf first.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// A CA and a leaf generated at start, valid for `localhost`, `127.0.0.1`, `::1` and the
    /// listen and public hosts.
    SelfSigned,
}

/// TLS ready to serve.
pub(crate) struct ServerTls {
    pub(crate) acceptor: TlsAcceptor,
    /// The served chain, PEM.
    pub(crate) cert_pem: String,
    /// The generated CA, PEM (self-signed mode only).
    pub(crate) ca_pem: Option<String>,
}

impl ServerTls {
    /// Loads or generates the certificate; `hosts` are the names and addresses a generated one
    /// must be valid for (besides the loopback ones).
    pub(crate) fn new(source: &TlsSource, hosts: &[String]) -> Result<Self, EmulatorError> {
        let (chain, key, cert_pem, ca_pem) = match source {
            TlsSource::Files { cert, key } => {
                let (chain, cert_pem) = read_chain(cert)?;
                (chain, read_key(key)?, cert_pem, None)
            }
            TlsSource::SelfSigned => {
                let generated = generate(hosts)?;
                (
                    vec![generated.leaf_der],
                    generated.key,
                    generated.leaf_pem,
                    Some(generated.ca_pem),
                )
            }
        };
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| EmulatorError::Tls(e.to_string()))?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(|e| {
                    EmulatorError::Tls(format!(
                        "the certificate and key cannot be served together: {e}"
                    ))
                })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            cert_pem,
            ca_pem,
        })
    }
}

fn file_error(path: &Path, reason: impl Into<String>) -> EmulatorError {
    EmulatorError::TlsFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_chain(path: &Path) -> Result<(Vec<CertificateDer<'static>>, String), EmulatorError> {
    let pem = std::fs::read_to_string(path).map_err(|e| file_error(path, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(file_error(path, "no CERTIFICATE block in it"));
    }
    Ok((chain, pem))
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, EmulatorError> {
    // The key's bytes never reach an error message or a log.
    let pem = std::fs::read(path).map_err(|e| file_error(path, e.to_string()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => file_error(
            path,
            "no PRIVATE KEY block (PKCS#8, RSA or EC) in it".to_string(),
        ),
        other => file_error(path, format!("not a PEM private key file: {other}")),
    })
}

struct Generated {
    leaf_der: CertificateDer<'static>,
    leaf_pem: String,
    key: PrivateKeyDer<'static>,
    ca_pem: String,
}

fn generate(hosts: &[String]) -> Result<Generated, EmulatorError> {
    let failed =
        |e: rcgen::Error| EmulatorError::Tls(format!("cannot generate a certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(failed)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "daytona-emulator local CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    for host in hosts {
        if !names.contains(host) {
            names.push(host.clone());
        }
    }
    let leaf_key = KeyPair::generate().map_err(failed)?;
    let mut leaf = CertificateParams::new(names).map_err(failed)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "daytona-emulator");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(failed)?;
    let key = PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| EmulatorError::Tls(format!("cannot use the generated key: {e}")))?;
    Ok(Generated {
        leaf_pem: leaf_cert.pem(),
        leaf_der: leaf_cert.der().clone(),
        key,
        ca_pem: ca_cert.pem(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_or_wrong_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem at all\n").unwrap();
        for (cert, key) in [(&missing, &junk), (&junk, &junk)] {
            let err = ServerTls::new(
                &TlsSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                &[],
            )
            .err()
            .unwrap();
            assert!(
                matches!(&err, EmulatorError::TlsFile { path, .. } if path == cert),
                "{err:?}"
            );
        }
        // A good certificate with a key file that holds none.
        let generated = generate(&[]).unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, &generated.leaf_pem).unwrap();
        let err = ServerTls::new(
            &TlsSource::Files {
                cert: cert.clone(),
                key: junk.clone(),
            },
            &[],
        )
        .err()
        .unwrap();
        assert!(
            matches!(&err, EmulatorError::TlsFile { path, .. } if path == &junk),
            "{err:?}"
        );
        // A key that is not the certificate's.
        let other_key = dir.path().join("other.key");
        std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let err = ServerTls::new(
            &TlsSource::Files {
                cert,
                key: other_key,
            },
            &[],
        )
        .err()
        .unwrap();
        assert!(matches!(err, EmulatorError::Tls(_)), "{err:?}");
    }

    /// A TLS handshake with the generated leaf, trusting only the generated CA, for `name`.
    async fn handshake(tls: &ServerTls, name: &'static str) -> Result<(), std::io::Error> {
        let ca = CertificateDer::from_pem_slice(tls.ca_pem.as_ref().unwrap().as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tls.acceptor.clone();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            // The server side's outcome follows the client's.
            let _ = acceptor.accept(tcp).await;
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let outcome = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(rustls_pki_types::ServerName::try_from(name).unwrap(), tcp)
            .await
            .map(drop);
        server.await.unwrap();
        outcome
    }

    #[tokio::test]
    async fn a_generated_certificate_is_valid_for_its_hosts_only() {
        let tls = ServerTls::new(&TlsSource::SelfSigned, &["emulator.test".to_string()]).unwrap();
        assert!(tls.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        for name in ["emulator.test", "localhost", "127.0.0.1", "::1"] {
            handshake(&tls, name)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let err = handshake(&tls, "elsewhere.test").await.unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}
