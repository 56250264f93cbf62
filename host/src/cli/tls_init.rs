//! `host tls init DIR`: a cluster CA and a node certificate it signed
//! (rcgen), written mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub const CA_FILE: &str = "ca.pem";
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

pub fn init(dir: &Path, names: &[String]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for file in [CA_FILE, CERT_FILE, KEY_FILE] {
        let path = dir.join(file);
        if path.exists() {
            anyhow::bail!(
                "{} exists: not replaced (remove it, or choose another directory)",
                path.display()
            );
        }
    }
    let mut all: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(host) = hostname() {
        all.push(host);
    }
    for name in names {
        if !all.contains(name) {
            all.push(name.clone());
        }
    }

    let ca_key = KeyPair::generate().context("making the CA's key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Reef cluster CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).context("signing the CA")?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().context("making the node key")?;
    let mut node = CertificateParams::new(all.clone()).with_context(|| format!("names {all:?}"))?;
    node.distinguished_name
        .push(DnType::CommonName, "Reef node");
    node.is_ca = IsCa::ExplicitNoCa;
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = node
        .signed_by(&key, &issuer)
        .context("signing the node certificate")?;

    write_private(&dir.join(CA_FILE), ca_cert.pem().as_bytes())?;
    write_private(&dir.join(CERT_FILE), cert.pem().as_bytes())?;
    write_private(&dir.join(KEY_FILE), key.serialize_pem().as_bytes())?;
    let d = dir.display();
    println!(
        "wrote {d}/{CA_FILE}, {d}/{CERT_FILE} and {d}/{KEY_FILE} (names: {})",
        all.join(", ")
    );
    println!(
        "start nodes with --tls-cert {d}/{CERT_FILE} --tls-key {d}/{KEY_FILE} --tls-ca {d}/{CA_FILE}; \
         drivers trust {d}/{CA_FILE} (REEF_TLS_CA)"
    );
    Ok(())
}

/// Creates `path` (mode 0600, never replacing a file) holding `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// This machine's hostname, when it is a usable DNS name.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    let usable = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    usable.then(|| name.to_owned())
}
