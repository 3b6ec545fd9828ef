//! Passwords and API tokens: hashing and checking, without storage.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes),
//! slow on purpose. API tokens are 256 random bits, so a single SHA-256 is enough to keep
//! a stolen database from yielding usable tokens, and lookups stay fast.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use yizhan_sync::ids::{hex, unhex};

/// Prefix of every API token, so a leaked token is recognisable in logs and scanners.
pub const TOKEN_PREFIX: &str = "yz_";

/// Why a username or password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error(
        "username must be 2-32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter: {0:?}"
    )]
    BadUsername(String),
    #[error("password must be at least 10 characters")]
    WeakPassword,
    #[error("could not hash the password: {0}")]
    Hash(String),
    /// A display name or counter holds a control or layout character (the core's text
    /// rule, `yizhan_sync::domain::text`).
    #[error(transparent)]
    Text(#[from] yizhan_sync::domain::text::Refused),
}

/// The one rule for sign-in names, local and tree accounts alike
/// (`domain::staff::check_username`).
pub fn validate_username(name: &str) -> Result<(), AccountError> {
    yizhan_sync::domain::staff::check_username(name)
        .map_err(|_| AccountError::BadUsername(name.to_string()))
}

/// Checks the names an account shows on pages and receipts: one line each, with none of
/// the characters the core's text rule refuses.
pub fn validate_names(display_name: &str, counter: &str) -> Result<(), AccountError> {
    yizhan_sync::domain::text::line("display_name", display_name)?;
    yizhan_sync::domain::text::line("counter", counter)?;
    Ok(())
}

/// The Argon2id PHC string of a password.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < 10 {
        return Err(AccountError::WeakPassword);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches a stored PHC string. A malformed hash never matches.
/// A hash of a random password made with the same parameters as real ones, verified
/// when a sign-in names no account, so the answer takes as long as for a real one.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 16];
        fill_random(&mut secret);
        hash_password(&yizhan_sync::ids::hex(&secret)).unwrap_or_default()
    })
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A random password of 16 characters without look-alikes (no 0/O, 1/l/I).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    // 256 is not a multiple of 56; the bias (< 1%) does not matter for a 16-character secret.
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A new API token and the hash to store.
pub fn generate_token() -> (String, [u8; 32]) {
    let mut secret = [0u8; 32];
    fill_random(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", hex(&secret));
    let hash = hash_token(&token).expect("a fresh token is well formed");
    (token, hash)
}

/// The stored hash of a presented token, or `None` if it is not shaped like one.
pub fn hash_token(token: &str) -> Option<[u8; 32]> {
    let secret = token.strip_prefix(TOKEN_PREFIX)?;
    if secret.len() != 64 || unhex(secret).is_none() {
        return None;
    }
    Some(Sha256::digest(token.as_bytes()).into())
}

/// Fills `buf` from the operating system's random source.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system provides random bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["worker", "li.ming", "a1", "counter_3-b"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "Worker", "1abc", "a b", "张三", &"a".repeat(33)] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_names("李敏", "1号窗口"), Ok(()));
        for (display_name, counter, field) in [
            ("李\u{202E}敏", "1号窗口", "display_name"),
            ("李敏", "1号\n窗口", "counter"),
            ("\u{0}", "", "display_name"),
        ] {
            match validate_names(display_name, counter) {
                Err(AccountError::Text(refused)) => assert_eq!(refused.field, field),
                other => panic!("{display_name:?} {counter:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterx", &hash));
        assert!(!verify_password("anything", "not a hash"));
        assert_eq!(hash_password("short"), Err(AccountError::WeakPassword));
        let generated = generate_password();
        assert_eq!(generated.len(), 16);
        assert_ne!(generated, generate_password());
    }

    #[test]
    fn tokens() {
        let (token, hash) = generate_token();
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == 67);
        assert_eq!(hash_token(&token), Some(hash));
        assert_eq!(hash_token("yz_nothex"), None);
        assert_eq!(hash_token(&token[3..]), None);
        let (other, _) = generate_token();
        assert_ne!(token, other);
    }
}
