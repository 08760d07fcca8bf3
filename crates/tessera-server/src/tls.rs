//! TLS for the one listener. SDKs such as Yandex Cloud's open only TLS channels, so the server
//! must be able to speak TLS without an external proxy: either with an operator's certificate
//! and key (PEM files), or with a local CA that the server creates once in its data directory
//! and a server certificate signed by it, which clients trust by being handed the CA file.
//!
//! Everything here runs at startup; errors name the file at fault and never show key material.

use crate::bootstrap;
use crate::config::TlsMode;
use anyhow::{anyhow, bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Subject alternative names every self-signed server certificate carries.
pub const DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// A server certificate that expires within this many seconds is re-issued at startup.
pub const RENEW_BEFORE: i64 = 30 * 24 * 3600;
/// Lifetime of an issued server certificate (under the 398 days clients may insist on).
pub const SERVER_CERT_LIFETIME: i64 = 397 * 24 * 3600;
/// Lifetime of the local CA.
pub const CA_LIFETIME: i64 = 10 * 365 * 24 * 3600;
/// Backdating of `notBefore`, for clients whose clocks are a little behind.
const BACKDATE: i64 = 3600;

/// A ready TLS setting for the listener.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// The local CA clients must trust (self-signed mode only).
    pub ca_cert: Option<PathBuf>,
}

/// Builds the TLS setting for `mode`; `None` when TLS is off. In self-signed mode this creates
/// (or reuses) the CA and server certificate under `<data_dir>/tls/`.
pub fn load(mode: &TlsMode, data_dir: &Path, now: i64) -> anyhow::Result<Option<Tls>> {
    match mode {
        TlsMode::Off => Ok(None),
        TlsMode::Files { cert, key } => Ok(Some(Tls {
            config: server_config(cert, key)?,
            ca_cert: None,
        })),
        TlsMode::SelfSigned { names } => {
            let files = ensure_self_signed(&data_dir.join("tls"), names, now)?;
            Ok(Some(Tls {
                config: server_config(&files.cert, &files.key)?,
                ca_cert: Some(files.ca_cert),
            }))
        }
    }
}

/// A rustls server configuration on the aws-lc-rs provider, offering `h2` and `http/1.1`.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = read_cert_chain(cert)?;
    let key_der = read_private_key(key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            // rustls errors describe the problem (e.g. a key that does not match), not the key.
            anyhow!(
                "TLS certificate {} and private key {} cannot be used together: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// All certificates in a PEM file, leaf first.
pub fn read_cert_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read TLS certificate file {}", path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow!(
                "TLS certificate file {} is not valid PEM: {e}",
                path.display()
            )
        })?;
    if chain.is_empty() {
        bail!(
            "TLS certificate file {} contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    for der in &chain {
        x509_parser::parse_x509_certificate(der).map_err(|_| {
            anyhow!(
                "TLS certificate file {} holds a certificate that cannot be parsed",
                path.display()
            )
        })?;
    }
    Ok(chain)
}

/// The first private key in a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub fn read_private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read TLS private key file {}", path.display()))?;
    // The parser's own messages may quote lines of the file: keep them out of the error.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        anyhow!(
            "TLS private key file {} contains no usable PEM private key (unencrypted PKCS#8, PKCS#1 or SEC1)",
            path.display()
        )
    })
}

/// The files of the self-signed setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfSignedFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Whether this call created the CA.
    pub created_ca: bool,
    /// Whether this call issued a new server certificate.
    pub issued: bool,
}

/// Creates the local CA in `dir` unless it exists, and (re-)issues the server certificate when
/// it is missing, does not cover all wanted names, was not signed by the CA, or expires within
/// [`RENEW_BEFORE`] of `now`.
pub fn ensure_self_signed(
    dir: &Path,
    names: &[String],
    now: i64,
) -> anyhow::Result<SelfSignedFiles> {
    let wanted = wanted_names(names)?;
    bootstrap::create_private_dir(dir)
        .with_context(|| format!("cannot create TLS directory {}", dir.display()))?;
    let mut files = SelfSignedFiles {
        ca_cert: dir.join("ca.pem"),
        ca_key: dir.join("ca.key"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        created_ca: false,
        issued: false,
    };
    let (ca_pem, ca_key) = match (files.ca_cert.exists(), files.ca_key.exists()) {
        (true, true) => {
            let pem = std::fs::read_to_string(&files.ca_cert).with_context(|| {
                format!("cannot read local CA certificate {}", files.ca_cert.display())
            })?;
            let key = read_key_pair(&files.ca_key)?;
            (pem, key)
        }
        (false, false) => {
            let (pem, key) = create_ca(now)?;
            // The key first: a CA certificate without its key would be refused on the next start.
            write_atomic(&files.ca_key, key.serialize_pem().as_bytes(), 0o600)?;
            write_atomic(&files.ca_cert, pem.as_bytes(), 0o644)?;
            files.created_ca = true;
            tracing::info!(path = %files.ca_cert.display(), "created a local TLS certificate authority");
            (pem, key)
        }
        _ => bail!(
            "the local CA in {} is incomplete (ca.pem and ca.key must both exist); remove both to create a new CA, which clients must then trust again",
            dir.display()
        ),
    };
    let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|_| {
        anyhow!(
            "local CA certificate {} is not valid PEM",
            files.ca_cert.display()
        )
    })?;
    match current_server_cert(&files, &ca_der, &wanted, now) {
        Ok(()) => return Ok(files),
        Err(reason) => {
            tracing::info!(%reason, path = %files.cert.display(), "issuing a TLS server certificate")
        }
    }
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| {
        anyhow!(
            "cannot use local CA certificate {}: {e}",
            files.ca_cert.display()
        )
    })?;
    let (cert_pem, key) = issue_server_cert(&issuer, &wanted, now)?;
    write_atomic(&files.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&files.cert, cert_pem.as_bytes(), 0o644)?;
    files.issued = true;
    Ok(files)
}

/// The default names plus `extra`, de-duplicated: IP addresses in canonical form, DNS names in
/// lower case. Refuses names that cannot be a SAN.
pub fn wanted_names(extra: &[String]) -> anyhow::Result<BTreeSet<SanName>> {
    DEFAULT_NAMES
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .map(SanName::parse)
        .collect()
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SanName {
    Ip(IpAddr),
    Dns(String),
}

impl SanName {
    pub fn parse(name: &str) -> anyhow::Result<SanName> {
        let name = name.trim();
        let unbracketed = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(SanName::Ip(ip));
        }
        let dns = name.trim_end_matches('.').to_ascii_lowercase();
        let valid = !dns.is_empty()
            && dns.len() <= 253
            && dns.split('.').enumerate().all(|(i, label)| {
                (label == "*" && i == 0)
                    || (!label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            });
        if !valid {
            bail!("--tls-name {name:?} is neither an IP address nor a DNS name");
        }
        Ok(SanName::Dns(dns))
    }

    fn to_san(&self) -> anyhow::Result<SanType> {
        Ok(match self {
            SanName::Ip(ip) => SanType::IpAddress(*ip),
            SanName::Dns(name) => SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|_| anyhow!("--tls-name {name:?} is not a valid DNS name"))?,
            ),
        })
    }
}

impl std::fmt::Display for SanName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SanName::Ip(ip) => write!(f, "{ip}"),
            SanName::Dns(name) => f.write_str(name),
        }
    }
}

/// `Ok` when the existing server certificate can be kept, else why not.
fn current_server_cert(
    files: &SelfSignedFiles,
    ca_der: &CertificateDer<'_>,
    wanted: &BTreeSet<SanName>,
    now: i64,
) -> Result<(), String> {
    if files.created_ca {
        return Err("new CA".into());
    }
    if !files.cert.exists() || !files.key.exists() {
        return Err("no server certificate yet".into());
    }
    let pem = std::fs::read(&files.cert).map_err(|e| format!("cannot read it: {e}"))?;
    let der = CertificateDer::from_pem_slice(&pem).map_err(|_| "not valid PEM".to_owned())?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|_| "cannot parse it".to_owned())?;
    let (_, ca) = x509_parser::parse_x509_certificate(ca_der)
        .map_err(|_| "cannot parse the CA certificate".to_owned())?;
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|_| "not signed by the local CA".to_owned())?;
    if cert.validity().not_after.timestamp() - now < RENEW_BEFORE {
        return Err("expires within 30 days".into());
    }
    let present = cert_names(&cert);
    let missing: Vec<String> = wanted
        .iter()
        .filter(|n| !present.contains(*n))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(format!("names not covered: {}", missing.join(", ")));
    }
    let key = read_key_pair(&files.key).map_err(|_| "cannot read its key".to_owned())?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err("key does not match".into());
    }
    Ok(())
}

/// The DNS and IP subject alternative names of a certificate.
fn cert_names(cert: &x509_parser::certificate::X509Certificate<'_>) -> BTreeSet<SanName> {
    use x509_parser::extensions::GeneralName;
    let mut names = BTreeSet::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    names.insert(SanName::Dns(dns.to_ascii_lowercase()));
                }
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.insert(SanName::Ip(ip));
                    }
                }
                _ => {}
            }
        }
    }
    names
}

fn read_key_pair(path: &Path) -> anyhow::Result<KeyPair> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read private key {}", path.display()))?;
    KeyPair::from_pem(&pem).map_err(|_| anyhow!("private key {} cannot be used", path.display()))
}

fn time_at(unix: i64) -> anyhow::Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(unix).context("time out of range")
}

fn random_serial() -> anyhow::Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("no randomness for a serial number"))?;
    // Positive and non-zero, as RFC 5280 requires.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A new CA (ECDSA P-256): its certificate PEM and key.
fn create_ca(now: i64) -> anyhow::Result<(String, KeyPair)> {
    let key = KeyPair::generate().map_err(|e| anyhow!("cannot generate the CA key: {e}"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Tessera");
    // A distinct name per installation, so that several local CAs can be told apart.
    let tag = tessera_core::ids::hex(&random_serial()?.to_bytes()[..4]);
    dn.push(DnType::CommonName, format!("Tessera local CA {tag}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial()?);
    params.not_before = time_at(now - BACKDATE)?;
    params.not_after = time_at(now + CA_LIFETIME)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| anyhow!("cannot create the CA certificate: {e}"))?;
    Ok((cert.pem(), key))
}

/// A new server certificate (ECDSA P-256) for `names`, signed by `issuer`.
fn issue_server_cert(
    issuer: &Issuer<'_, KeyPair>,
    names: &BTreeSet<SanName>,
    now: i64,
) -> anyhow::Result<(String, KeyPair)> {
    let key = KeyPair::generate().map_err(|e| anyhow!("cannot generate the server key: {e}"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Tessera");
    dn.push(DnType::CommonName, "Tessera server");
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(SanName::to_san)
        .collect::<anyhow::Result<_>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    params.not_before = time_at(now - BACKDATE)?;
    params.not_after = time_at(now + SERVER_CERT_LIFETIME)?;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|e| anyhow!("cannot issue the server certificate: {e}"))?;
    Ok((cert.pem(), key))
}

/// Writes `contents` to `path` through a temporary file and a rename, so a crash never leaves
/// half a certificate or key behind.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const NOW: i64 = 1_780_000_000;

    fn names_of(path: &Path) -> BTreeSet<SanName> {
        let der = CertificateDer::from_pem_file(path).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert_names(&cert)
    }

    fn not_after(path: &Path) -> i64 {
        let der = CertificateDer::from_pem_file(path).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert.validity().not_after.timestamp()
    }

    #[test]
    fn creates_a_ca_and_a_server_certificate_with_the_default_and_extra_names() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let files =
            ensure_self_signed(&tls, &["Tessera.Test".into(), "10.0.0.7".into()], NOW).unwrap();
        assert!(files.created_ca && files.issued);
        let names = names_of(&files.cert);
        for want in ["localhost", "127.0.0.1", "::1", "tessera.test", "10.0.0.7"] {
            assert!(names.contains(&SanName::parse(want).unwrap()), "{want}");
        }
        assert_eq!(not_after(&files.cert), NOW + SERVER_CERT_LIFETIME);
        assert!(server_config(&files.cert, &files.key).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&tls), 0o700);
            assert_eq!(mode(&files.ca_key), 0o600);
            assert_eq!(mode(&files.key), 0o600);
        }
    }

    #[test]
    fn reuses_the_ca_and_the_certificate_while_they_fit() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_self_signed(dir.path(), &["a.test".into()], NOW).unwrap();
        let ca = std::fs::read(&first.ca_cert).unwrap();
        let ca_key = std::fs::read(&first.ca_key).unwrap();
        let cert = std::fs::read(&first.cert).unwrap();
        // Same names (a default given again, different case) a month later: nothing changes.
        let again = ensure_self_signed(
            dir.path(),
            &["A.test".into(), "localhost".into()],
            NOW + 30 * 86_400,
        )
        .unwrap();
        assert!(!again.created_ca && !again.issued);
        assert_eq!(std::fs::read(&again.ca_cert).unwrap(), ca);
        assert_eq!(std::fs::read(&again.ca_key).unwrap(), ca_key);
        assert_eq!(std::fs::read(&again.cert).unwrap(), cert);
        // Fewer names are still covered.
        let fewer = ensure_self_signed(dir.path(), &[], NOW).unwrap();
        assert!(!fewer.issued);
    }

    #[test]
    fn reissues_the_server_certificate_for_new_names_under_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_self_signed(dir.path(), &["a.test".into()], NOW).unwrap();
        let ca = std::fs::read(&first.ca_cert).unwrap();
        let cert = std::fs::read(&first.cert).unwrap();
        let second = ensure_self_signed(dir.path(), &["b.test".into()], NOW).unwrap();
        assert!(second.issued && !second.created_ca);
        assert_eq!(std::fs::read(&second.ca_cert).unwrap(), ca);
        assert_ne!(std::fs::read(&second.cert).unwrap(), cert);
        let names = names_of(&second.cert);
        assert!(names.contains(&SanName::Dns("b.test".into())));
        assert!(!names.contains(&SanName::Dns("a.test".into())));
        // The new certificate is signed by the old CA.
        let ca_der = CertificateDer::from_pem_file(&second.ca_cert).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let der = CertificateDer::from_pem_file(&second.cert).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
        leaf.verify_signature(Some(ca.public_key())).unwrap();
        assert_eq!(leaf.issuer(), ca.subject());
    }

    #[test]
    fn reissues_a_server_certificate_that_expires_within_30_days() {
        let dir = tempfile::tempdir().unwrap();
        ensure_self_signed(dir.path(), &[], NOW).unwrap();
        let later = NOW + SERVER_CERT_LIFETIME - RENEW_BEFORE + 1;
        let renewed = ensure_self_signed(dir.path(), &[], later).unwrap();
        assert!(renewed.issued && !renewed.created_ca);
        assert_eq!(not_after(&renewed.cert), later + SERVER_CERT_LIFETIME);
    }

    #[test]
    fn reissues_a_certificate_not_signed_by_the_ca_or_not_matching_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_self_signed(dir.path(), &[], NOW).unwrap();
        // A certificate from another CA in place of ours.
        let other = tempfile::tempdir().unwrap();
        let foreign = ensure_self_signed(other.path(), &[], NOW).unwrap();
        std::fs::copy(&foreign.cert, &first.cert).unwrap();
        std::fs::copy(&foreign.key, &first.key).unwrap();
        assert!(ensure_self_signed(dir.path(), &[], NOW).unwrap().issued);
        // A key that is not the certificate's.
        std::fs::copy(&first.ca_key, &first.key).unwrap();
        assert!(ensure_self_signed(dir.path(), &[], NOW).unwrap().issued);
        let files = ensure_self_signed(dir.path(), &[], NOW).unwrap();
        assert!(!files.issued);
        assert!(server_config(&files.cert, &files.key).is_ok());
    }

    #[test]
    fn an_incomplete_ca_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let files = ensure_self_signed(dir.path(), &[], NOW).unwrap();
        std::fs::remove_file(&files.ca_key).unwrap();
        let error = ensure_self_signed(dir.path(), &[], NOW)
            .unwrap_err()
            .to_string();
        assert!(error.contains("incomplete"), "{error}");
        assert!(files.ca_cert.exists());
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "exa mple.com", "-a.test", "a..b", "ü.test"] {
            assert!(SanName::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            SanName::parse("[::1]").unwrap(),
            SanName::Ip("::1".parse().unwrap())
        );
        assert_eq!(
            SanName::parse("Host.Example.").unwrap(),
            SanName::Dns("host.example".into())
        );
        assert!(ensure_self_signed(Path::new("/nonexistent-never"), &["a b".into()], NOW).is_err());
    }

    #[test]
    fn pem_files_in_every_key_format_load_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = ensure_self_signed(dir.path(), &[], NOW).unwrap();
        // SEC1 and PKCS#1 keys, converted from PKCS#8 with aws-lc-rs.
        let pkcs8 = PrivateKeyDer::from_pem_file(&files.key).unwrap();
        let pkcs8_der = pkcs8.secret_der().to_vec();
        let ec = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8_der,
        )
        .unwrap();
        let sec1: aws_lc_rs::encoding::EcPrivateKeyRfc5915Der =
            aws_lc_rs::encoding::AsDer::as_der(&ec.private_key()).unwrap();
        let sec1_pem = pem_block("EC PRIVATE KEY", sec1.as_ref());
        let sec1_path = dir.path().join("sec1.key");
        std::fs::write(&sec1_path, sec1_pem).unwrap();
        assert!(server_config(&files.cert, &sec1_path).is_ok());
        assert!(matches!(
            read_private_key(&sec1_path).unwrap(),
            PrivateKeyDer::Sec1(_)
        ));

        // An RSA certificate and a PKCS#1 key.
        let rsa = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let rsa_cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&rsa)
            .unwrap();
        let rsa_cert_path = dir.path().join("rsa.pem");
        std::fs::write(&rsa_cert_path, rsa_cert.pem()).unwrap();
        let pkcs1_path = dir.path().join("rsa.key");
        std::fs::write(
            &pkcs1_path,
            pem_block("RSA PRIVATE KEY", &pkcs1_from_pkcs8(rsa.serialized_der())),
        )
        .unwrap();
        assert!(matches!(
            read_private_key(&pkcs1_path).unwrap(),
            PrivateKeyDer::Pkcs1(_)
        ));
        assert!(server_config(&rsa_cert_path, &pkcs1_path).is_ok());

        // Missing, garbage, a certificate where the key belongs, mismatched.
        let missing = dir.path().join("missing.pem");
        let error = server_config(&missing, &files.key).unwrap_err().to_string();
        assert!(error.contains("missing.pem"), "{error}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let error = server_config(&garbage, &files.key).unwrap_err().to_string();
        assert!(error.contains("garbage.pem"), "{error}");
        let error = server_config(&files.cert, &files.cert)
            .unwrap_err()
            .to_string();
        assert!(error.contains("private key file"), "{error}");
        let error = server_config(&files.cert, &files.ca_key)
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot be used together"), "{error}");
        // A broken key file: the error names it but quotes nothing from it.
        let broken = dir.path().join("broken.key");
        std::fs::write(
            &broken,
            "-----BEGIN PRIVATE KEY-----\nSECRETSECRET!!\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let error = format!("{:#}", server_config(&files.cert, &broken).unwrap_err());
        assert!(error.contains("broken.key"), "{error}");
        assert!(!error.contains("SECRET"), "{error}");
    }

    #[test]
    fn alpn_offers_h2_and_http1() {
        let dir = tempfile::tempdir().unwrap();
        let tls = load(&TlsMode::SelfSigned { names: vec![] }, dir.path(), NOW)
            .unwrap()
            .unwrap();
        assert_eq!(
            tls.config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(tls.ca_cert, Some(dir.path().join("tls").join("ca.pem")));
        assert!(load(&TlsMode::Off, dir.path(), NOW).unwrap().is_none());
    }

    fn pem_block(label: &str, der: &[u8]) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    /// The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo (its OCTET STRING `privateKey`).
    fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
        use x509_parser::der_parser::ber::BerObjectContent;
        let (_, info) = x509_parser::der_parser::parse_der(pkcs8).unwrap();
        let BerObjectContent::Sequence(items) = info.content else {
            panic!("not a sequence")
        };
        items
            .iter()
            .find_map(|item| match &item.content {
                BerObjectContent::OctetString(bytes) => Some(bytes.to_vec()),
                _ => None,
            })
            .unwrap()
    }
}
