//! The request format of `/sync/v1`: what a node signs to call another, the headers that
//! carry the signature, and the JSON bodies of enrollment.
//!
//! Both sides need it (the client in `link`, the server in the node's API), so it lives
//! here, below both, as pure functions and constants: no I/O, no keys held.
//!
//! A signed request carries the caller's node id, its clock (milliseconds since the Unix
//! epoch) and an Ed25519 signature, by the caller's node key, over [`request_message`]:
//! the method, the path, that time and the SHA-256 of the body. Bodies of the other
//! requests are the binary messages of [`crate::wire`] under [`CONTENT_TYPE`].
//! Enrollment is the one unsigned request: the caller's key is not known yet, a one-time
//! code vouches for it instead.

use sha2::{Digest, Sha256};

use crate::auth::NodeRecord;

/// Media type of the binary sync messages.
pub const CONTENT_TYPE: &str = "application/x-yizhan-sync";

/// The caller's node id (hex).
pub const NODE_HEADER: &str = "x-yizhan-node";
/// The caller's clock when it signed, in milliseconds since the Unix epoch.
pub const TIME_HEADER: &str = "x-yizhan-time";
/// The Ed25519 signature over [`request_message`] (hex).
pub const SIGNATURE_HEADER: &str = "x-yizhan-signature";

/// How far apart the caller's and the callee's clocks may be for a signed request: it
/// bounds how long a captured request could be replayed.
pub const MAX_REQUEST_SKEW_MS: i64 = 15 * 60_000;

/// What a node signs to make a request.
pub fn request_message(method: &str, path: &str, time_ms: i64, body: &[u8]) -> Vec<u8> {
    let body_hash = crate::ids::hex(&Sha256::digest(body));
    format!("yizhan-request-v1\n{method}\n{path}\n{time_ms}\n{body_hash}").into_bytes()
}

/// A child's enrollment request (`POST /sync/v1/enroll`, JSON).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time code the hall issued (`yizhan enroll-code`).
    pub code: String,
    /// The child's own record, with its public key.
    pub record: NodeRecord,
}

/// The hall's answer: itself and the nodes above it, for the child to pin, and the
/// child's own record as the hall registered it (with the serial-number segment it gave).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct EnrollResponse {
    pub parent: NodeRecord,
    pub above: Vec<NodeRecord>,
    #[serde(default)]
    pub record: Option<NodeRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signed text is part of the protocol: a change here breaks every older node.
    #[test]
    fn the_signed_message_is_stable() {
        let message = request_message("POST", "/sync/v1/pull", 1_772_000_000_000, b"");
        assert_eq!(
            String::from_utf8(message).unwrap(),
            "yizhan-request-v1\nPOST\n/sync/v1/pull\n1772000000000\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
