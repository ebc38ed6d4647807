//! AutoMTLS as go-plugin does it: Terraform passes its own self-signed client certificate in
//! PLUGIN_CLIENT_CERT; we generate a self-signed server certificate, print it in the
//! handshake, and accept exactly that one client certificate.
//!
//! Both certificates are CA certificates used as end-entities, which WebPKI path building
//! rejects, so the client certificate is pinned by its exact bytes. Terraform's key is P-521,
//! which is why the aws-lc-rs crypto provider is used (ring cannot verify P-521).

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

pub struct AutoMtls {
    pub server_config: Arc<ServerConfig>,
    pub server_cert_der: Vec<u8>,
}

/// Accepts one client certificate, compared byte for byte.
#[derive(Debug)]
struct PinnedClientCert {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A fresh self-signed certificate for `localhost`, valid for a day either side of now.
fn server_certificate() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating the server key")?;
    let mut params =
        CertificateParams::new(vec!["localhost".to_string()]).context("certificate parameters")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "ferry");
    // go-plugin's client puts our certificate in its root pool, so it must be a CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(1);
    let cert = params
        .self_signed(&key)
        .context("self-signing the server certificate")?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

pub fn auto_mtls(client_cert_pem: &str) -> Result<AutoMtls> {
    let client_cert = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
        .context("PLUGIN_CLIENT_CERT does not hold a PEM certificate")?;
    let provider: Arc<CryptoProvider> = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = PinnedClientCert {
        expected: client_cert,
        algorithms: provider.signature_verification_algorithms,
    };
    let (cert, key) = server_certificate()?;
    let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![cert.clone()], key)
        .context("installing the server certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    if config.alpn_protocols.is_empty() {
        bail!("no ALPN protocol configured");
    }
    Ok(AutoMtls {
        server_config: Arc::new(config),
        server_cert_der: cert.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_certificate_is_a_localhost_ca() {
        let (cert, _) = server_certificate().unwrap();
        // The DER names localhost and carries the CA basic constraint (OID 2.5.29.19).
        let der = cert.as_ref();
        assert!(der.windows(9).any(|w| w == b"localhost"));
        assert!(der.windows(3).any(|w| w == [0x55, 0x1d, 0x13]));
    }

    #[test]
    fn rejects_a_client_cert_env_that_is_not_pem() {
        assert!(auto_mtls("not a certificate").is_err());
    }

    #[test]
    fn p521_sha512_is_accepted_for_client_signatures() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        assert!(
            provider
                .signature_verification_algorithms
                .supported_schemes()
                .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
        );
    }
}
