//! The account root's access key: from the environment, or generated once
//! and kept in the data dir, readable by its owner only.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file in the data dir holding the generated root key.
pub const ROOT_CREDENTIALS_FILE: &str = "root-credentials.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    pub secret_access_key: String,
}

/// Where the root key came from (printed at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKeySource {
    Environment,
    File,
    /// Generated now: the only start that prints the secret.
    Generated,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a root credentials file: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("KUMO_ROOT_ACCESS_KEY_ID and KUMO_ROOT_SECRET_ACCESS_KEY must be set together")]
    HalfSet,
    #[error("the root access key id must be 16 to 128 letters and digits, and the secret at least 8 characters")]
    Unusable,
}

/// The root key from `KUMO_ROOT_ACCESS_KEY_ID` / `KUMO_ROOT_SECRET_ACCESS_KEY`, if set.
pub fn root_key_from_env() -> Result<Option<AccessKey>, CredentialsError> {
    let id = std::env::var("KUMO_ROOT_ACCESS_KEY_ID").ok().filter(|v| !v.is_empty());
    let secret = std::env::var("KUMO_ROOT_SECRET_ACCESS_KEY").ok().filter(|v| !v.is_empty());
    match (id, secret) {
        (None, None) => Ok(None),
        (Some(access_key_id), Some(secret_access_key)) => {
            let key = AccessKey { access_key_id, secret_access_key };
            if !usable(&key) {
                return Err(CredentialsError::Unusable);
            }
            Ok(Some(key))
        }
        _ => Err(CredentialsError::HalfSet),
    }
}

fn usable(key: &AccessKey) -> bool {
    (16..=128).contains(&key.access_key_id.len())
        && key.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        && key.secret_access_key.len() >= 8
}

/// The key stored in the data dir, if there is one.
pub fn root_key_from_file(data_dir: &Path) -> Result<Option<AccessKey>, CredentialsError> {
    let path = data_dir.join(ROOT_CREDENTIALS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|source| CredentialsError::Parse { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialsError::Read { path, source }),
    }
}

/// The server's root key: the environment wins, then the data dir's file;
/// otherwise a new key is generated and stored (mode 0600, created exclusively
/// so two starts on one data dir cannot write different keys).
pub fn load_or_create_root_key(data_dir: &Path) -> Result<(AccessKey, RootKeySource), CredentialsError> {
    if let Some(key) = root_key_from_env()? {
        return Ok((key, RootKeySource::Environment));
    }
    if let Some(key) = root_key_from_file(data_dir)? {
        return Ok((key, RootKeySource::File));
    }
    let key = generate_access_key("AKIA");
    let path = data_dir.join(ROOT_CREDENTIALS_FILE);
    let write_err = |source| CredentialsError::Write { path: path.clone(), source };
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(write_err)?;
    let body = serde_json::to_vec_pretty(&key).map_err(|e| write_err(std::io::Error::other(e)))?;
    file.write_all(&body).and_then(|()| file.sync_all()).map_err(write_err)?;
    Ok((key, RootKeySource::Generated))
}

/// A new access key: `prefix` and 16 characters of AWS's key alphabet, and a
/// 40-character secret, from the operating system's random source.
pub fn generate_access_key(prefix: &str) -> AccessKey {
    const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let random: Vec<u8> = (0..4).flat_map(|_| uuid::Uuid::new_v4().into_bytes()).collect();
    // A v4 UUID carries 122 random bits; the fixed version bits are skipped by
    // taking bytes other than 6 and 8 of each.
    let random: Vec<u8> = random
        .chunks(16)
        .flat_map(|c| c.iter().enumerate().filter(|(i, _)| *i != 6 && *i != 8).map(|(_, b)| *b))
        .collect();
    let id: String = random[..16].iter().map(|b| ID_ALPHABET[usize::from(b % 32)] as char).collect();
    let secret: String = random[16..56].iter().map(|b| SECRET_ALPHABET[usize::from(b % 64)] as char).collect();
    AccessKey { access_key_id: format!("{prefix}{id}"), secret_access_key: secret }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_look_like_aws_keys_and_differ() {
        let a = generate_access_key("AKIA");
        let b = generate_access_key("AKIA");
        assert_eq!(a.access_key_id.len(), 20);
        assert!(a.access_key_id.starts_with("AKIA"));
        assert_eq!(a.secret_access_key.len(), 40);
        assert_ne!(a, b);
        assert!(usable(&a));
    }

    #[test]
    fn the_key_is_created_once_and_private() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let (first, source) = load_or_create_root_key(dir.path())?;
        // The environment of the test runner may set the variables; only check the file path when it does not.
        if source == RootKeySource::Environment {
            return Ok(());
        }
        assert_eq!(source, RootKeySource::Generated);
        let mode = std::fs::metadata(dir.path().join(ROOT_CREDENTIALS_FILE))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, source) = load_or_create_root_key(dir.path())?;
        assert_eq!((again, source), (first, RootKeySource::File));
        Ok(())
    }
}
