//! What makes a notice (回执, 告知书, §7.5, §9.3) sealed, in the core so every node checks
//! a notice it receives the same way: the digest of its canonical content and the seal
//! (an Ed25519 signature) over its number and that digest. The content itself (what a
//! receipt lists) is the node's business; the core reads only the few fields it checks.

use sha2::{Digest, Sha256};

/// The fields of a notice's content every node checks.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct NoticeHeader {
    pub number: String,
    pub case_id: String,
    /// The issuing node, 32 hex digits.
    pub node: String,
    /// The department whose approval seal (§9.6) the notice carries, with its hall's
    /// certificate; absent when the issuing node's own key seals it.
    #[serde(default)]
    pub seal: Option<crate::domain::department::NoticeSeal>,
}

/// The digest of a notice's canonical content.
pub fn digest(canonical: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"yizhan-notice-v1\0");
    hasher.update(canonical);
    hasher.finalize().into()
}

/// What a seal signs: the number and the digest, so neither can be swapped.
pub fn sealed_message(number: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut message = b"yizhan-seal-v1\0".to_vec();
    message.extend_from_slice(number.as_bytes());
    message.push(0);
    message.extend_from_slice(digest);
    message
}

/// Whether `seal` is `public_key`'s signature on the notice `number` with `digest`.
pub fn seal_holds(public_key: &[u8; 32], number: &str, digest: &[u8; 32], seal: &[u8; 64]) -> bool {
    use ed25519_dalek::Verifier;
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    key.verify(
        &sealed_message(number, digest),
        &ed25519_dalek::Signature::from_bytes(seal),
    )
    .is_ok()
}

/// Whether a notice's seal holds as issued by `issuer` (its node key): a notice carrying a
/// department's seal must be signed by that seal's key, certified by the issuing hall
/// itself (SZDB/Z 176 §9.6); any other by the issuer's own key.
pub fn notice_seal_holds(
    issuer_key: &[u8; 32],
    header: &NoticeHeader,
    digest: &[u8; 32],
    seal: &[u8; 64],
) -> bool {
    match &header.seal {
        None => seal_holds(issuer_key, &header.number, digest, seal),
        Some(department) => {
            crate::domain::department::check_seal(
                department,
                issuer_key,
                &sealed_message(&header.number, digest),
                seal,
            ) == crate::domain::department::SealCheck::Genuine
        }
    }
}

/// The document id of the notice numbered `number`, or `None` if the number cannot be
/// one (letters, digits and `-` only, at most 64 characters).
pub fn doc_id(number: &str) -> Option<crate::ids::DocId> {
    let ok = !number.is_empty()
        && number.len() <= 64
        && number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| crate::ids::DocId::parse(&format!("n-{}", number.to_ascii_lowercase())))
        .flatten()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer;

    use super::*;

    #[test]
    fn a_seal_binds_number_and_digest() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let public = key.verifying_key().to_bytes();
        let d = digest(b"{\"number\":\"TZ1E1-000001\"}");
        let seal = key.sign(&sealed_message("TZ1E1-000001", &d)).to_bytes();
        assert!(seal_holds(&public, "TZ1E1-000001", &d, &seal));
        assert!(!seal_holds(&public, "TZ1E1-000002", &d, &seal));
        assert!(!seal_holds(&public, "TZ1E1-000001", &digest(b"{}"), &seal));
        assert_eq!(doc_id("TZ1E1-000001").unwrap().as_str(), "n-tz1e1-000001");
        assert!(doc_id("a/b").is_none() && doc_id("").is_none());
    }
}
