//! Change envelopes: one Automerge change with where it belongs and who wrote it, bound
//! into a per-origin hash chain that the origin signs.
//!
//! Every node numbers the changes it authors 1, 2, 3, … per epoch (its [`Origin`]). The
//! chain value of change *n* is a SHA-256 over the chain value of change *n − 1* and the
//! envelope's fields (origin, seq, document, kind, scope and the Automerge change hash,
//! which itself covers the change bytes). The origin signs the chain value of every change
//! it writes and keeps the signatures in its change log, so:
//!
//! * a receiver that holds an origin's chain up to *n − 1* can check a whole run *n…m*
//!   with SHA-256 alone and **one** Ed25519 verification, of the signature on *m*;
//! * a relay (a sub-district hall forwarding a station's changes) forwards the origin's
//!   own signatures, so provenance holds over any number of hops and nobody can forge
//!   another node's writes.
//!
//! Why a chain rather than a signature check per change: verifying 200,000 Ed25519
//! signatures costs several seconds of CPU on a 2-core station PC, and 64 incompressible
//! bytes per change would be a third of the wire budget (ARCHITECTURE.md, docs/benchmarks.md).

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::ids::{DocId, DocKind, Origin, Scope};

/// A chain value: 32 bytes. The value "before" an origin's first change is all zeros.
pub type ChainHash = [u8; 32];

/// The chain value before seq 1.
pub const CHAIN_START: ChainHash = [0; 32];

/// One change and its place in the feed.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    pub origin: Origin,
    pub seq: u64,
    /// The origin's previous sequence number in the same scope (0 before its first): tells
    /// a receiver whether a run continues what it holds or starts past a gap.
    pub prev: u64,
    pub doc: DocId,
    pub kind: DocKind,
    pub scope: Scope,
    /// The Automerge change hash of `change`, so the chain covers the bytes. It is never
    /// sent: wire decoding computes it from the bytes (all zeros when they are not a change),
    /// which keeps it true for everything a node receives without hashing twice.
    pub hash: [u8; 32],
    /// The Automerge change, as `Change::raw_bytes`; empty when `refused`.
    pub change: Vec<u8>,
    /// Set when a node on the way refused the change (with its reason): the change's bytes
    /// never travel on, but its place in the origin's run does, with `hash` as signed, so
    /// the origin's later changes still verify and apply everywhere.
    pub refused: Option<String>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Envelope({} #{} {} {} {}B{})",
            self.origin,
            self.seq,
            self.doc,
            self.scope,
            self.change.len(),
            if self.refused.is_some() {
                " refused"
            } else {
                ""
            }
        )
    }
}

/// The chain value after `envelope`, given the value before it.
pub fn chain_next(previous: &ChainHash, envelope: &Envelope) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(b"yizhan-chain-v1\0");
    hasher.update(previous);
    hasher.update(envelope.origin.node.0);
    hasher.update(envelope.origin.epoch.to_be_bytes());
    hasher.update(envelope.seq.to_be_bytes());
    for field in [
        envelope.doc.as_str(),
        envelope.kind.as_str(),
        envelope.scope.as_str(),
    ] {
        hasher.update((field.len() as u32).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.update(envelope.hash);
    hasher.finalize().into()
}

fn signed_message(origin: &Origin, seq: u64, chain: &ChainHash) -> Vec<u8> {
    let mut message = Vec::with_capacity(16 + 16 + 4 + 8 + 32);
    message.extend_from_slice(b"yizhan-sig-v1\0\0\0");
    message.extend_from_slice(&origin.node.0);
    message.extend_from_slice(&origin.epoch.to_be_bytes());
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(chain);
    message
}

/// The origin's signature on its chain value at `seq`.
pub fn sign(key: &SigningKey, origin: &Origin, seq: u64, chain: &ChainHash) -> [u8; 64] {
    key.sign(&signed_message(origin, seq, chain)).to_bytes()
}

/// Whether `signature` is `origin`'s signature on chain value `chain` at `seq`.
pub fn verify(
    public_key: &[u8; 32],
    origin: &Origin,
    seq: u64,
    chain: &ChainHash,
    signature: &[u8; 64],
) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    key.verify(
        &signed_message(origin, seq, chain),
        &Signature::from_bytes(signature),
    )
    .is_ok()
}

/// The Automerge hash of change bytes, or `None` if they are not a valid change.
///
/// Parsing a change is most of the cost of receiving one, so this runs once per change, at
/// decoding; [`INVALID_HASH`] stands for bytes that are not a change.
pub const INVALID_HASH: [u8; 32] = [0; 32];

pub fn change_hash(bytes: &[u8]) -> Option<[u8; 32]> {
    automerge::Change::from_bytes(bytes.to_vec())
        .ok()
        .map(|c| c.hash().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            origin: Origin {
                node: NodeId([3; 16]),
                epoch: 1,
            },
            seq,
            prev: seq - 1,
            doc: DocId::parse("c-1").unwrap(),
            kind: DocKind::Case,
            scope: Scope::parse("case/440304001001").unwrap(),
            hash: [seq as u8; 32],
            change: vec![],
            refused: None,
        }
    }

    #[test]
    fn chain_covers_every_field_and_signatures_bind_it() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let public = key.verifying_key().to_bytes();
        let base = envelope(1);
        let chain = chain_next(&CHAIN_START, &base);
        let signature = sign(&key, &base.origin, 1, &chain);
        assert!(verify(&public, &base.origin, 1, &chain, &signature));
        let changed: Vec<Envelope> = vec![
            Envelope {
                seq: 2,
                ..base.clone()
            },
            Envelope {
                doc: DocId::parse("c-2").unwrap(),
                ..base.clone()
            },
            Envelope {
                kind: DocKind::Item,
                ..base.clone()
            },
            Envelope {
                scope: Scope::parse("case/440304001002").unwrap(),
                ..base.clone()
            },
            Envelope {
                hash: [7; 32],
                ..base.clone()
            },
            Envelope {
                origin: Origin {
                    epoch: 2,
                    ..base.origin
                },
                ..base.clone()
            },
        ];
        for other in changed {
            assert_ne!(chain_next(&CHAIN_START, &other), chain, "{other:?}");
        }
        assert_ne!(
            chain_next(&[1; 32], &base),
            chain,
            "the previous value matters"
        );
        let mut forged = signature;
        forged[0] ^= 1;
        assert!(!verify(&public, &base.origin, 1, &chain, &forged));
        assert!(!verify(&public, &base.origin, 2, &chain, &signature));
        let stranger = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(!verify(&stranger, &base.origin, 1, &chain, &signature));
        assert!(!verify(&[0; 32], &base.origin, 1, &chain, &signature));
    }

    #[test]
    fn change_hashes_are_recomputed_from_bytes() {
        let mut doc = automerge::AutoCommit::new();
        automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "k", "v").unwrap();
        let change = doc.get_last_local_change().unwrap();
        assert_eq!(change_hash(change.raw_bytes()), Some(change.hash().0));
        assert_eq!(change_hash(b"not a change"), None);
    }
}
