//! Random tokens handed to browsers, and the digests the store keeps in their place.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A bearer token (session cookie, invitation link). Its `Debug` never shows the value, so it
/// cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// 256 random bits, URL-safe.
    pub fn generate() -> Token {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Token(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_presented(raw: &str) -> Token {
        Token(raw.to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps: the token itself never touches the database.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(**redacted**)")
    }
}

/// A new record id: UUID v7, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_redacted() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 43);
        assert_eq!(format!("{a:?}"), "Token(**redacted**)");
        assert_eq!(a.digest().len(), 64);
        assert_ne!(a.digest(), a.expose());
    }
}
