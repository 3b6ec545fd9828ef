//! The request format of `/sync/v1`: what a node signs to call another, the headers that
//! carry the signature, and the JSON bodies of enrollment.
//!
//! Both sides need it (the client in `link`, the server in the node's API), so it lives
//! here, below both, as pure functions and constants: no I/O, no keys held.
//!
//! A signed request carries, in headers, the caller's node id, its clock (milliseconds
//! since the Unix epoch), a nonce (16 random bytes, hex), the body's length
//! (`Content-Length`) and SHA-256 digest (hex), and an Ed25519 signature by the caller's
//! node key over [`RequestClaim::message`], these lines joined by `\n`:
//!
//! ```text
//! yizhan-request-v2
//! POST
//! /sync/v1/pull
//! 1772000000000
//! 000102030405060708090a0b0c0d0e0f
//! 0
//! e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
//! ```
//!
//! (method, path, time, nonce, body length, body digest). Everything signed travels in
//! the headers, so a receiver checks the caller before it reads a byte of the body: the
//! time within [`MAX_REQUEST_SKEW_MS`] of its own clock, a nonce it has not seen in that
//! window (no replay), a known and unrevoked node, the signature, and the length against
//! its limits; only then does it read exactly that many bytes and compare their digest.
//! Bodies are the binary messages of [`crate::wire`] under [`CONTENT_TYPE`].
//! Enrollment is the one unsigned request: the caller's key is not known yet, a one-time
//! code vouches for it instead.

use sha2::{Digest, Sha256};

use crate::auth::NodeRecord;
use crate::ids::{NodeId, hex, unhex};

/// Media type of the binary sync messages.
pub const CONTENT_TYPE: &str = "application/x-yizhan-sync";

/// The caller's node id (hex).
pub const NODE_HEADER: &str = "x-yizhan-node";
/// The caller's clock when it signed, in milliseconds since the Unix epoch.
pub const TIME_HEADER: &str = "x-yizhan-time";
/// 16 random bytes (hex), never used twice by a caller: a receiver refuses a nonce it
/// saw within the time window, so a captured request cannot be replayed.
pub const NONCE_HEADER: &str = "x-yizhan-nonce";
/// The SHA-256 of the body (hex); its length is the request's `Content-Length`.
pub const DIGEST_HEADER: &str = "x-yizhan-body-sha256";
/// The Ed25519 signature over [`RequestClaim::message`] (hex).
pub const SIGNATURE_HEADER: &str = "x-yizhan-signature";

/// How far apart the caller's and the callee's clocks may be for a signed request. Within
/// it the callee remembers nonces, so nothing can be replayed; five minutes, as Kerberos
/// allows, because station clocks drift (the status pages show each link's offset).
pub const MAX_REQUEST_SKEW_MS: i64 = 5 * 60_000;

/// What a caller claims about a request, all of it signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestClaim {
    pub node: NodeId,
    pub time_ms: i64,
    pub nonce: [u8; 16],
    pub body_len: u64,
    pub body_sha256: [u8; 32],
}

/// Why the headers of a request do not make a claim.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "a sync request must be signed by a node key ({NODE_HEADER}, {TIME_HEADER}, {NONCE_HEADER}, {DIGEST_HEADER}, {SIGNATURE_HEADER}); a node that sends none of these speaks an older protocol: upgrade it"
    )]
    Missing,
    #[error("the {0} header of the sync request cannot be read")]
    Malformed(&'static str),
    #[error("a sync request must give its body's length (Content-Length)")]
    NoLength,
}

impl RequestClaim {
    /// The claim of `node`, at `time_ms`, with `nonce`, for sending `body`.
    pub fn for_body(node: NodeId, time_ms: i64, nonce: [u8; 16], body: &[u8]) -> RequestClaim {
        RequestClaim {
            node,
            time_ms,
            nonce,
            body_len: body.len() as u64,
            body_sha256: Sha256::digest(body).into(),
        }
    }

    /// What the caller signs (see the module documentation).
    pub fn message(&self, method: &str, path: &str) -> Vec<u8> {
        format!(
            "yizhan-request-v2\n{method}\n{path}\n{}\n{}\n{}\n{}",
            self.time_ms,
            hex(&self.nonce),
            self.body_len,
            hex(&self.body_sha256)
        )
        .into_bytes()
    }

    /// The headers that carry the claim and its `signature` (besides `Content-Length`,
    /// which the HTTP client sets from the body).
    pub fn headers(&self, signature: &[u8; 64]) -> [(&'static str, String); 5] {
        [
            (NODE_HEADER, self.node.to_hex()),
            (TIME_HEADER, self.time_ms.to_string()),
            (NONCE_HEADER, hex(&self.nonce)),
            (DIGEST_HEADER, hex(&self.body_sha256)),
            (SIGNATURE_HEADER, hex(signature)),
        ]
    }

    /// The claim and signature a request's headers carry; `header` looks one up by its
    /// lower-case name (`content-length` included).
    pub fn from_headers<'a>(
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<(RequestClaim, [u8; 64]), ClaimError> {
        let names = [
            NODE_HEADER,
            TIME_HEADER,
            NONCE_HEADER,
            DIGEST_HEADER,
            SIGNATURE_HEADER,
        ];
        if names.iter().all(|name| header(name).is_none()) {
            return Err(ClaimError::Missing);
        }
        let get = |name: &'static str| header(name).ok_or(ClaimError::Missing);
        let bytes = |name: &'static str| {
            get(name).and_then(|text| unhex(text).ok_or(ClaimError::Malformed(name)))
        };
        let node =
            NodeId::parse_hex(get(NODE_HEADER)?).ok_or(ClaimError::Malformed(NODE_HEADER))?;
        let time_ms = get(TIME_HEADER)?
            .parse()
            .map_err(|_| ClaimError::Malformed(TIME_HEADER))?;
        let nonce = <[u8; 16]>::try_from(bytes(NONCE_HEADER)?)
            .map_err(|_| ClaimError::Malformed(NONCE_HEADER))?;
        let body_sha256 = <[u8; 32]>::try_from(bytes(DIGEST_HEADER)?)
            .map_err(|_| ClaimError::Malformed(DIGEST_HEADER))?;
        let signature = <[u8; 64]>::try_from(bytes(SIGNATURE_HEADER)?)
            .map_err(|_| ClaimError::Malformed(SIGNATURE_HEADER))?;
        let body_len = header("content-length")
            .ok_or(ClaimError::NoLength)?
            .parse()
            .map_err(|_| ClaimError::Malformed("content-length"))?;
        Ok((
            RequestClaim {
                node,
                time_ms,
                nonce,
                body_len,
                body_sha256,
            },
            signature,
        ))
    }

    /// Whether `body` is the body this claim was made for.
    pub fn matches(&self, body: &[u8]) -> bool {
        body.len() as u64 == self.body_len && Sha256::digest(body)[..] == self.body_sha256[..]
    }
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

    /// The signed text is part of the protocol: a change here breaks every older node. It
    /// is exactly what the module documentation shows.
    #[test]
    fn the_signed_message_is_what_the_documentation_says() {
        let nonce: [u8; 16] = std::array::from_fn(|i| i as u8);
        let claim = RequestClaim::for_body(NodeId([9; 16]), 1_772_000_000_000, nonce, b"");
        let message = String::from_utf8(claim.message("POST", "/sync/v1/pull")).unwrap();
        let documented = include_str!("request.rs")
            .split("//! ```text\n")
            .nth(1)
            .and_then(|rest| rest.split("//! ```").next())
            .unwrap()
            .lines()
            .map(|line| line.trim_start_matches("//! "))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(message, documented);
        assert_eq!(
            message,
            "yizhan-request-v2\nPOST\n/sync/v1/pull\n1772000000000\n\
             000102030405060708090a0b0c0d0e0f\n0\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn headers_carry_the_claim_and_its_signature() {
        let claim = RequestClaim::for_body(NodeId([3; 16]), 42, [7; 16], b"body");
        let signature = [5u8; 64];
        let mut headers: Vec<(String, String)> = claim
            .headers(&signature)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        headers.push(("content-length".into(), "4".into()));
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            RequestClaim::from_headers(get),
            Ok((claim.clone(), signature))
        );
        assert!(claim.matches(b"body"));
        assert!(!claim.matches(b"bodY"));
        assert_eq!(
            RequestClaim::from_headers(|_| None),
            Err(ClaimError::Missing)
        );
        let no_length = |name: &str| {
            if name == "content-length" {
                None
            } else {
                get(name)
            }
        };
        assert_eq!(
            RequestClaim::from_headers(no_length),
            Err(ClaimError::NoLength)
        );
        let bad_nonce = |name: &str| {
            if name == NONCE_HEADER {
                Some("zz")
            } else {
                get(name)
            }
        };
        assert_eq!(
            RequestClaim::from_headers(bad_nonce),
            Err(ClaimError::Malformed(NONCE_HEADER))
        );
    }
}
