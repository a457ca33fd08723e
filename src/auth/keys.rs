//! Verification keys: the development key, shared secrets, PEM public keys and a JWKS
//! file. Every key is bound to one `kid` and one algorithm, so a token can never choose
//! how its own signature is checked (no `alg` switching, no HMAC over a public key).

use std::io::Write;
use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use rand::RngCore;

use crate::config::{AuthConfig, Config};

/// The `kid` of tokens signed with the development key.
pub(crate) const DEVELOPMENT_KID: &str = "dev";

/// One key a token may be verified with.
pub(crate) struct Key {
    pub(crate) kid: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// All keys currently accepted.
#[derive(Default)]
pub(crate) struct KeyRing {
    keys: Vec<Key>,
}

/// A key file that cannot be used; names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("key file {path} is not a valid {what}")]
    Invalid { path: PathBuf, what: &'static str },
    #[error("key `{kid}` in {path}: algorithm {algorithm:?} does not fit a key of this kind")]
    WrongAlgorithm { kid: String, path: PathBuf, algorithm: Algorithm },
    #[error("the development key is refused in production (set auth.development_key = false)")]
    DevelopmentKeyInProduction,
    #[error("no verification key is configured: every request would be refused")]
    NoKeys,
}

impl KeyRing {
    /// Reads every configured key.
    pub(crate) fn load(config: &Config) -> Result<Self, KeyError> {
        let auth = &config.auth;
        let mut keys = Vec::new();
        if auth.development_key {
            if config.environment == crate::config::Environment::Production {
                return Err(KeyError::DevelopmentKeyInProduction);
            }
            let secret = development_key(config)?;
            keys.push(Key {
                kid: DEVELOPMENT_KID.into(),
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(&secret),
            });
        }
        for file in &auth.hmac_keys {
            let secret = read(&file.file)?;
            if !matches!(file.algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                return Err(wrong(&file.kid, &file.file, file.algorithm));
            }
            keys.push(Key { kid: file.kid.clone(), algorithm: file.algorithm, key: DecodingKey::from_secret(&secret) });
        }
        for file in &auth.public_keys {
            let pem = read(&file.file)?;
            let invalid = || KeyError::Invalid { path: file.file.clone(), what: "PEM public key" };
            let key = match file.algorithm {
                Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512 => DecodingKey::from_rsa_pem(&pem).map_err(|_| invalid())?,
                Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem).map_err(|_| invalid())?,
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem).map_err(|_| invalid())?,
                other => return Err(wrong(&file.kid, &file.file, other)),
            };
            keys.push(Key { kid: file.kid.clone(), algorithm: file.algorithm, key });
        }
        if let Some(path) = &auth.jwks_file {
            keys.extend(jwks(path)?);
        }
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(KeyRing { keys })
    }

    /// The key named by `kid` for `algorithm`. A token without `kid` may use the only key
    /// of its algorithm; with several, it must say which.
    pub(crate) fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<&Key> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid == kid && k.algorithm == algorithm),
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.algorithm == algorithm);
                let only = fitting.next()?;
                fitting.next().is_none().then_some(only)
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The files keys come from (watched for rotation).
pub(crate) fn key_files(auth: &AuthConfig) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = auth.hmac_keys.iter().chain(&auth.public_keys).map(|k| k.file.clone()).collect();
    files.extend(auth.jwks_file.clone());
    files
}

/// A fingerprint of each of `files` (missing files have none). Key files are small, so
/// their content is hashed: a rewrite within the file system's timestamp resolution still
/// counts.
pub(crate) fn stamps(files: &[PathBuf]) -> Vec<Option<u64>> {
    files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).ok()?;
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&bytes, &mut hasher);
            Some(std::hash::Hasher::finish(&hasher))
        })
        .collect()
}

fn wrong(kid: &str, path: &Path, algorithm: Algorithm) -> KeyError {
    KeyError::WrongAlgorithm { kid: kid.into(), path: path.into(), algorithm }
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read { path: path.into(), source })
}

/// Public keys of a JWKS document; each must carry a `kid`. The algorithm is the key's
/// `alg`, else the usual one for its type (RS256 for RSA, ES256 for P-256).
fn jwks(path: &Path) -> Result<Vec<Key>, KeyError> {
    let invalid = || KeyError::Invalid { path: path.into(), what: "JWKS document" };
    let set: JwkSet = serde_json::from_slice(&read(path)?).map_err(|_| invalid())?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone().ok_or_else(invalid)?;
        let algorithm = match (jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(alg), _) => alg.to_string().parse::<Algorithm>().map_err(|_| invalid())?,
            (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
            (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
            (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err(invalid()),
        };
        if matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            // Symmetric secrets do not belong in a published key set.
            return Err(wrong(&kid, path, algorithm));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|_| invalid())?;
        keys.push(Key { kid, algorithm, key });
    }
    Ok(keys)
}

/// Where the development key lives.
pub(crate) fn development_key_path(config: &Config) -> PathBuf {
    config.data_dir.join("dev-signing.key")
}

/// The development signing secret: read from `data_dir/dev-signing.key`, or made there
/// (32 random bytes, hex, readable by the owner only) on first use.
pub fn development_key(config: &Config) -> Result<Vec<u8>, KeyError> {
    local_secret(&development_key_path(config), "development key (at least 32 characters)")
}

/// A secret the hub keeps in a file of its own: read from `path`, or made there (32
/// random bytes, hex, readable by the owner only) on first use. `what` names it in errors.
pub(crate) fn local_secret(path: &Path, what: &'static str) -> Result<Vec<u8>, KeyError> {
    if !path.exists() {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(mut file) => file.write_all(hex.as_bytes()),
                // Another process made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(e),
            }
        };
        write().map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
    }
    let secret = read(path)?;
    let secret = String::from_utf8_lossy(&secret).trim().as_bytes().to_vec();
    if secret.len() < 32 {
        return Err(KeyError::Invalid { path: path.to_owned(), what });
    }
    Ok(secret)
}
