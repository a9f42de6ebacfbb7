//! Ed25519 signing keys shared by recordings (checkpoint and trailer
//! signatures) and gateway tokens, and the verifier's trusted set.
//!
//! Keys are Ed25519, stored as PKCS#8 PEM. A key id is the first 8 bytes of
//! BLAKE3 over the 32-byte public key, shown as 16 hex digits; recordings carry
//! it so a verifier can pick the right key out of a rotation set.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};

/// Why a key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("key file {path}")]
    Io {
        /// Which file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an Ed25519 key in PEM.
    #[error("key file {path}: not an ed25519 pkcs8 pem key")]
    Format {
        /// Which file.
        path: String,
    },
    /// The operating system's random source failed.
    #[error("no randomness available")]
    Random,
}

/// 8-byte key identifier.
pub type KeyId = [u8; 8];

/// Formats a key id as 16 lowercase hex digits.
pub fn key_id_hex(id: &KeyId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_id_of(public: &ed25519_dalek::VerifyingKey) -> KeyId {
    let h = blake3::hash(public.as_bytes());
    let mut id = [0; 8];
    id.copy_from_slice(&h.as_bytes()[..8]);
    id
}

/// A gateway's recording signing key.
#[derive(Clone)]
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
    id: KeyId,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", key_id_hex(&self.id))
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| KeyError::Random)?;
        Ok(Self::from_seed(&seed))
    }

    /// A key from a 32-byte secret; deterministic, for tests and golden files.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let inner = ed25519_dalek::SigningKey::from_bytes(seed);
        let id = key_id_of(&inner.verifying_key());
        SigningKey { inner, id }
    }

    /// Parses a PKCS#8 PEM private key.
    pub fn from_pem(pem: &str) -> Option<Self> {
        let inner = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).ok()?;
        let id = key_id_of(&inner.verifying_key());
        Some(SigningKey { inner, id })
    }

    /// The private key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        // Encoding a well-formed key into memory cannot fail.
        self.inner
            .to_pkcs8_pem(LineEnding::LF)
            .map(|s| s.to_string())
            .unwrap_or_default()
    }

    /// Loads the key at `path`, or creates it (mode 0600) if it does not exist.
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(pem) => return Self::from_pem(&pem).ok_or(KeyError::Format { path: shown }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(KeyError::Io {
                    path: shown,
                    source,
                });
            }
        }
        let key = Self::generate()?;
        let io = |source| KeyError::Io {
            path: shown.clone(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        // create_new: if another process won the race, use its key instead.
        match opts.open(path) {
            Ok(mut f) => {
                f.write_all(key.to_pem().as_bytes()).map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let pem = std::fs::read_to_string(path).map_err(io)?;
                Self::from_pem(&pem).ok_or(KeyError::Format { path: shown })
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.verifying_key(),
            id: self.id,
        }
    }

    /// Signs `message`; the signature is the 64-byte Ed25519 encoding.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.inner.sign(message).to_bytes()
    }
}

/// A public key trusted to sign recordings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    inner: ed25519_dalek::VerifyingKey,
    id: KeyId,
}

impl PublicKey {
    /// Parses an SPKI PEM public key.
    pub fn from_pem(pem: &str) -> Option<Self> {
        let inner = ed25519_dalek::VerifyingKey::from_public_key_pem(pem).ok()?;
        Some(PublicKey {
            id: key_id_of(&inner),
            inner,
        })
    }

    /// Reads an SPKI PEM public key file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::from_pem(&pem).ok_or(KeyError::Format { path: shown })
    }

    /// The public key as SPKI PEM.
    pub fn to_pem(&self) -> String {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// Whether `signature` is this key's signature over `message` (strict
    /// verification: no malleable or small-order encodings).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.inner.verify_strict(message, &sig).is_ok()
    }
}

/// The set of public keys a verifier accepts, by key id.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    keys: HashMap<KeyId, PublicKey>,
}

impl TrustedKeys {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key.
    pub fn insert(&mut self, key: PublicKey) {
        self.keys.insert(key.id, key);
    }

    /// Looks a key up by id.
    pub fn get(&self, id: &KeyId) -> Option<&PublicKey> {
        self.keys.get(id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<PublicKey> for TrustedKeys {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> Self {
        let mut set = TrustedKeys::new();
        for k in iter {
            set.insert(k);
        }
        set
    }
}
