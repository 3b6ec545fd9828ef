//! Sneakernet bundles: a batch in a file, signed by the node that wrote it, for a
//! technician to carry where no link reaches (DESIGN §9). The receiver checks the
//! signature against the key it knows for the writer, then applies the batch exactly as a
//! pushed one, through the engine.
//!
//! Layout: `YZB1`, the writer's node id (16 bytes), its Ed25519 signature over the rest
//! (64 bytes), then the batch in its wire encoding: 3 from this build; a bundle written in
//! encoding 2 by an older build still reads, while an older build refuses one of 3 with
//! "upgrade the older of the two nodes" (`wire::DecodeError::Version`).

use crate::ids::NodeId;

/// The first four bytes of every bundle.
pub const MAGIC: &[u8; 4] = b"YZB1";
const HEADER: usize = 4 + 16 + 64;

/// A bundle taken apart; nothing in it is trusted until [`Bundle::verify`] says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle<'a> {
    pub from: NodeId,
    pub signature: [u8; 64],
    /// The batch, as `Batch::encode` wrote it.
    pub body: &'a [u8],
}

/// A file that is not a bundle.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a yizhan bundle (made by `yizhan export-bundle`)")]
pub struct NotABundle;

impl<'a> Bundle<'a> {
    /// Takes a file apart, checking only its shape.
    pub fn parse(bytes: &'a [u8]) -> Result<Bundle<'a>, NotABundle> {
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return Err(NotABundle);
        }
        let from = NodeId(bytes[4..20].try_into().map_err(|_| NotABundle)?);
        let signature = bytes[20..HEADER].try_into().map_err(|_| NotABundle)?;
        Ok(Bundle {
            from,
            signature,
            body: &bytes[HEADER..],
        })
    }

    /// The bytes of a bundle of `body` (an encoded batch) written by `from` and signed with
    /// `signature` over `body`.
    pub fn write(from: NodeId, signature: [u8; 64], body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&from.0);
        out.extend_from_slice(&signature);
        out.extend_from_slice(body);
        out
    }

    /// Whether the writer's `public_key` signed the body.
    pub fn verify(&self, public_key: &[u8; 32]) -> bool {
        use ed25519_dalek::Verifier;
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
            return false;
        };
        key.verify(
            self.body,
            &ed25519_dalek::Signature::from_bytes(&self.signature),
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_bundle_round_trips_and_its_signature_binds_the_body() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let public = key.verifying_key().to_bytes();
        let from = NodeId::from_public_key(&public);
        let body = b"a batch".to_vec();
        let bytes = Bundle::write(from, key.sign(&body).to_bytes(), &body);
        let bundle = Bundle::parse(&bytes).unwrap();
        assert_eq!((bundle.from, bundle.body), (from, &body[..]));
        assert!(bundle.verify(&public));
        let mut altered = bytes.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(!Bundle::parse(&altered).unwrap().verify(&public));
        assert_eq!(Bundle::parse(&bytes[..83]), Err(NotABundle));
    }

    /// A bundle written before wire encoding 3 holds a batch of encoding 2: it still reads,
    /// and its changes come out with their hashes.
    #[test]
    fn a_bundle_of_an_older_build_still_reads() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let public = key.verifying_key().to_bytes();
        let body = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/batch-encoding-2.bin"),
        )
        .unwrap();
        assert_eq!(body[2], 2, "written in encoding 2");
        let bytes = Bundle::write(
            NodeId::from_public_key(&public),
            key.sign(&body).to_bytes(),
            &body,
        );
        let bundle = Bundle::parse(&bytes).unwrap();
        assert!(bundle.verify(&public));
        let parsed = crate::feed::ParsedBatch::decode(bundle.body).unwrap();
        assert_eq!(parsed.batch.envelopes.len(), 4);
        assert_eq!(parsed.changes.iter().filter(|c| c.is_some()).count(), 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes at all: a bundle or an error, never a panic, and never a verified
        /// bundle without the key.
        #[test]
        fn parsing_arbitrary_files_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(bundle) = Bundle::parse(&bytes) {
                prop_assert!(!bundle.verify(&[9; 32]));
                let _ = crate::feed::ParsedBatch::decode(bundle.body);
            }
        }
    }
}
