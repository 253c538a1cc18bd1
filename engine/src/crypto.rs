//! Encryption at rest for the provider credentials Tandem keeps (OAuth access and refresh tokens,
//! PKCE verifiers): ChaCha20-Poly1305 with a random 96-bit nonce per value, and associated data
//! that binds each ciphertext to the row and column it belongs to, so a value copied elsewhere does
//! not decrypt.
//!
//! The key comes from `TANDEM_SECRET_KEY` (64 hex digits or 32 bytes in base64), or else from a key
//! file in the data folder, created at first start with mode 0600. Instances that share a Postgres
//! database must share the key: give each the same `TANDEM_SECRET_KEY`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// The file name of the generated key inside the data folder.
pub const KEY_FILE: &str = "secret.key";
const FORMAT: &str = "v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("TANDEM_SECRET_KEY must be 32 bytes written as 64 hex digits or in base64 (e.g. `openssl rand -hex 32`)")]
    Malformed,
    #[error("cannot read or create the key file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A stored value that did not decrypt: the key changed, or the value was tampered with or moved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a stored credential could not be decrypted (was Tandem's secret key changed?)")]
pub struct DecryptError;

/// Seals and opens secrets stored in the database. Cheap to clone; its `Debug` shows no key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Arc<ChaCha20Poly1305>,
    /// For secrets derived from the key (webhook passwords), never the key itself.
    derive_key: Arc<[u8; 32]>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(**key redacted**)")
    }
}

impl SecretBox {
    pub fn from_key(key: [u8; 32]) -> SecretBox {
        use sha2::{Digest, Sha256};
        let derive_key: [u8; 32] = Sha256::new().chain_update(b"tandem-derive-v1").chain_update(key).finalize().into();
        SecretBox { cipher: Arc::new(ChaCha20Poly1305::new(Key::from_slice(&key))), derive_key: Arc::new(derive_key) }
    }

    /// A secret for `context` that every instance with the same key derives alike, so it needs
    /// no storage (HMAC-SHA256 under a key derived from the secret key; 32 hex characters).
    pub fn derive(&self, context: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.derive_key.as_slice()).expect("HMAC takes any key length");
        mac.update(context.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// A box with a fresh random key (tests).
    pub fn random() -> SecretBox {
        SecretBox::from_key(ChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// The key from `configured` (the value of `TANDEM_SECRET_KEY`) when given, else from the key
    /// file in `data_dir`, created with mode 0600 when missing.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<SecretBox, KeyError> {
        match configured {
            Some(text) => parse_key(text).map(SecretBox::from_key).ok_or(KeyError::Malformed),
            None => load_or_create_file(&data_dir.join(KEY_FILE)).map(SecretBox::from_key),
        }
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag). `context` names where the value lives (for
    /// example `connection:<id>:refresh_token`) and must be given again to open it.
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .expect("ChaCha20-Poly1305 encryption cannot fail for inputs below 256 GiB");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{FORMAT}:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes))
    }

    pub fn open(&self, stored: &str, context: &str) -> Result<String, DecryptError> {
        let encoded = stored.strip_prefix(FORMAT).and_then(|s| s.strip_prefix(':')).ok_or(DecryptError)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded).map_err(|_| DecryptError)?;
        if bytes.len() < 12 + 16 {
            return Err(DecryptError);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain =
            self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: context.as_bytes() }).map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }
}

/// A fresh random key as 64 hex digits (what `TANDEM_SECRET_KEY` takes).
pub fn generate_key_text() -> String {
    let key: [u8; 32] = ChaCha20Poly1305::generate_key(&mut OsRng).into();
    hex::encode(key)
}

fn parse_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .ok()?
    };
    bytes.try_into().ok()
}

fn load_or_create_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let file_error = |source| KeyError::File { path: path.to_path_buf(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => return parse_key(&text).ok_or(KeyError::Malformed),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_error(e)),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_error)?;
    }
    let key: [u8; 32] = ChaCha20Poly1305::generate_key(&mut OsRng).into();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{}\n", hex::encode(key)).as_bytes()).map_err(file_error)?;
            file.sync_all().map_err(file_error)?;
            tracing::info!(path = %path.display(), "created a new secret key for stored credentials");
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(file_error)?;
            parse_key(&text).ok_or(KeyError::Malformed)
        }
        Err(e) => Err(file_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_in_its_context() {
        let secrets = SecretBox::random();
        let sealed = secrets.seal("refresh-abc", "connection:1:refresh_token");
        assert!(!sealed.contains("refresh-abc"));
        assert_ne!(sealed, secrets.seal("refresh-abc", "connection:1:refresh_token"), "nonces are random");
        assert_eq!(secrets.open(&sealed, "connection:1:refresh_token").as_deref(), Ok("refresh-abc"));
        assert_eq!(secrets.open(&sealed, "connection:2:refresh_token"), Err(DecryptError));
        assert_eq!(SecretBox::random().open(&sealed, "connection:1:refresh_token"), Err(DecryptError));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(secrets.open(&tampered, "connection:1:refresh_token"), Err(DecryptError));
        assert_eq!(secrets.open("plaintext", "x"), Err(DecryptError));
    }

    #[test]
    fn keys_from_the_environment() {
        let hex_key = "11".repeat(32);
        let a = SecretBox::load(Some(&hex_key), Path::new("/nonexistent")).expect("hex key");
        let b64 = base64::engine::general_purpose::STANDARD.encode([0x11u8; 32]);
        let b = SecretBox::load(Some(&b64), Path::new("/nonexistent")).expect("base64 key");
        assert_eq!(b.open(&a.seal("x", "c"), "c").as_deref(), Ok("x"));
        assert!(matches!(SecretBox::load(Some("short"), Path::new("/nonexistent")), Err(KeyError::Malformed)));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("tandem-key-{}", uuid::Uuid::new_v4().simple()));
        let first = SecretBox::load(None, &dir).expect("created");
        let again = SecretBox::load(None, &dir).expect("read back");
        assert_eq!(again.open(&first.seal("token", "c"), "c").as_deref(), Ok("token"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE)).expect("key file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
