//! The binary encoding of the protocol messages: compact, versioned, compressed, and safe to
//! decode from anyone.
//!
//! A message is `b"YZ"`, the encoding version, the message type, then a DEFLATE stream of
//! the body. Integers are LEB128 varints; strings and byte strings are length-prefixed.
//! Change hashes and chain values are never sent: the receiver recomputes them, so a sender
//! cannot make the two disagree. The one exception is a change refused on the way
//! ([`Envelope::refused`]): its bytes stay behind, so its hash travels instead, covered by
//! the origin's signature over the chain. Decoding never panics and never allocates more than the
//! limits below, whatever the input (see `tests/fixtures/bad/`).

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use crate::auth::NodeRole;
use crate::domain::codes::DivisionCode;
use crate::envelope::{self, Envelope};
use crate::feed::{Ack, Batch, ChangeNote, Hello, ParsedBatch, Pull, SignedSeq, VersionVector};
use crate::ids::{DocId, DocKind, NodeId, Origin, Scope};

/// Version of this encoding. 2 added refused changes in batches and the notes of what a
/// receiver refused (in acks and hellos).
pub const ENCODING_VERSION: u8 = 2;
/// Longest reason text carried for a refused change.
pub const MAX_REASON_BYTES: usize = 1024;
/// Largest decompressed body accepted (a batch is cut far below this by its sender).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// Most items in any list of a message.
pub const MAX_ITEMS: u64 = 1_000_000;

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not a yizhan sync message (bad magic bytes)")]
    Magic,
    #[error(
        "message encoding {0} is not the one this node speaks ({ENCODING_VERSION}); upgrade the older of the two nodes"
    )]
    Version(u8),
    #[error("expected a {expected} message, got type {found}")]
    Type { expected: &'static str, found: u8 },
    #[error("the compressed body is corrupt or larger than {MAX_BODY_BYTES} bytes")]
    Compression,
    #[error("message ends early")]
    Truncated,
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("{0} bytes left over after the message")]
    Trailing(usize),
}

/// The kinds of message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    Hello = 1,
    Pull = 2,
    Batch = 3,
    Ack = 4,
}

/// Something that can be sent.
pub trait Message: Sized {
    const TYPE: MessageType;
    const NAME: &'static str;
    fn write_body(&self, out: &mut Vec<u8>);
    fn read_body(input: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The message as bytes on the wire.
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        self.write_body(&mut body);
        let mut out = vec![b'Y', b'Z', ENCODING_VERSION, Self::TYPE as u8];
        let mut encoder = DeflateEncoder::new(&mut out, Compression::new(6));
        encoder
            .write_all(&body)
            .expect("writing to a Vec cannot fail");
        encoder.finish().expect("writing to a Vec cannot fail");
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let body = open(bytes, Self::TYPE, Self::NAME)?;
        read_all(&body, Self::read_body)
    }
}

/// The decompressed body of a message of type `ty`, after checking its header.
fn open(bytes: &[u8], ty: MessageType, name: &'static str) -> Result<Vec<u8>, DecodeError> {
    if bytes.len() < 4 || bytes[0] != b'Y' || bytes[1] != b'Z' {
        return Err(DecodeError::Magic);
    }
    if bytes[2] != ENCODING_VERSION {
        return Err(DecodeError::Version(bytes[2]));
    }
    if bytes[3] != ty as u8 {
        return Err(DecodeError::Type {
            expected: name,
            found: bytes[3],
        });
    }
    let mut body = Vec::new();
    DeflateDecoder::new(&bytes[4..])
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|_| DecodeError::Compression)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(DecodeError::Compression);
    }
    Ok(body)
}

/// Reads a whole body with `read`, refusing bytes left over.
fn read_all<T>(
    body: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut reader = Reader { bytes: body, at: 0 };
    let message = read(&mut reader)?;
    match body.len() - reader.at {
        0 => Ok(message),
        left => Err(DecodeError::Trailing(left)),
    }
}

impl ParsedBatch {
    /// Decodes a batch and keeps the changes it parsed to hash them.
    pub fn decode(bytes: &[u8]) -> Result<ParsedBatch, DecodeError> {
        let body = open(bytes, Batch::TYPE, Batch::NAME)?;
        read_all(&body, read_batch)
    }
}

/// Reads primitives from a body, checking every length against what is left.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).ok_or(DecodeError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(DecodeError::Truncated)?;
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Invalid("varint"))
    }

    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > MAX_ITEMS {
            return Err(DecodeError::Invalid("list length"));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::Invalid("text"))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError::Invalid("number"))
    }

    fn origin(&mut self) -> Result<Origin, DecodeError> {
        Ok(Origin {
            node: NodeId(self.array()?),
            epoch: self.u32()?,
        })
    }

    fn scope(&mut self) -> Result<Scope, DecodeError> {
        Scope::parse(self.str()?).ok_or(DecodeError::Invalid("scope"))
    }

    fn vector(&mut self) -> Result<VersionVector, DecodeError> {
        let mut vector = VersionVector::default();
        for _ in 0..self.count()? {
            let scope = self.scope()?;
            let origin = self.origin()?;
            vector.advance(&scope, &origin, self.varint()?);
        }
        Ok(vector)
    }
}

impl Reader<'_> {
    fn notes(&mut self) -> Result<Vec<ChangeNote>, DecodeError> {
        let n = self.count()?;
        if n > MAX_NOTES {
            return Err(DecodeError::Invalid("list length"));
        }
        (0..n)
            .map(|_| {
                let scope = self.scope()?;
                let origin = self.origin()?;
                let seq = self.varint()?;
                let doc = DocId::parse(self.str()?).ok_or(DecodeError::Invalid("document id"))?;
                let waiting = match self.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("flag")),
                };
                let code = self.str()?;
                let reason = self.str()?;
                if code.len() > 64 || reason.len() > MAX_REASON_BYTES {
                    return Err(DecodeError::Invalid("reason"));
                }
                Ok(ChangeNote {
                    scope,
                    origin,
                    seq,
                    doc,
                    waiting,
                    code: code.to_string(),
                    reason: reason.to_string(),
                })
            })
            .collect()
    }
}

/// Most notes in one message; a receiver that refused more tells the first ones.
pub const MAX_NOTES: usize = 1000;

fn put_notes(out: &mut Vec<u8>, notes: &[ChangeNote]) {
    let notes = &notes[..notes.len().min(MAX_NOTES)];
    put_varint(out, notes.len() as u64);
    for note in notes {
        put_bytes(out, note.scope.as_str().as_bytes());
        put_origin(out, &note.origin);
        put_varint(out, note.seq);
        put_bytes(out, note.doc.as_str().as_bytes());
        out.push(u8::from(note.waiting));
        put_bytes(out, truncated(&note.code, 64).as_bytes());
        put_bytes(out, truncated(&note.reason, MAX_REASON_BYTES).as_bytes());
    }
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_origin(out: &mut Vec<u8>, origin: &Origin) {
    out.extend_from_slice(&origin.node.0);
    put_varint(out, u64::from(origin.epoch));
}

fn put_vector(out: &mut Vec<u8>, vector: &VersionVector) {
    put_varint(out, vector.len() as u64);
    for (scope, origin, seq) in vector.iter() {
        put_bytes(out, scope.as_str().as_bytes());
        put_origin(out, origin);
        put_varint(out, seq);
    }
}

impl Message for Hello {
    const TYPE: MessageType = MessageType::Hello;
    const NAME: &'static str = "hello";

    fn write_body(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(self.protocol));
        put_varint(out, u64::from(self.min_protocol));
        out.extend_from_slice(&self.node.0);
        put_bytes(out, self.role.as_str().as_bytes());
        put_bytes(out, self.division.as_str().as_bytes());
        put_bytes(out, self.name.as_bytes());
        put_varint(out, self.now_ms);
        put_varint(out, self.capabilities.len() as u64);
        for capability in &self.capabilities {
            put_bytes(out, capability.as_bytes());
        }
        put_notes(out, &self.refused);
    }

    fn read_body(input: &mut Reader<'_>) -> Result<Hello, DecodeError> {
        let protocol =
            u16::try_from(input.varint()?).map_err(|_| DecodeError::Invalid("protocol"))?;
        let min_protocol =
            u16::try_from(input.varint()?).map_err(|_| DecodeError::Invalid("protocol"))?;
        let node = NodeId(input.array()?);
        let role = NodeRole::parse(input.str()?).ok_or(DecodeError::Invalid("role"))?;
        let division =
            DivisionCode::parse(input.str()?).map_err(|_| DecodeError::Invalid("division"))?;
        let name = input.str()?.to_string();
        let now_ms = input.varint()?;
        let capabilities = (0..input.count()?)
            .map(|_| input.str().map(str::to_string))
            .collect::<Result<_, _>>()?;
        let refused = input.notes()?;
        Ok(Hello {
            protocol,
            min_protocol,
            node,
            role,
            division,
            name,
            now_ms,
            capabilities,
            refused,
        })
    }
}

impl Message for Pull {
    const TYPE: MessageType = MessageType::Pull;
    const NAME: &'static str = "pull";

    fn write_body(&self, out: &mut Vec<u8>) {
        put_varint(out, self.scopes.len() as u64);
        for scope in &self.scopes {
            put_bytes(out, scope.as_str().as_bytes());
        }
        put_vector(out, &self.have);
        put_varint(out, u64::from(self.max_bytes));
    }

    fn read_body(input: &mut Reader<'_>) -> Result<Pull, DecodeError> {
        let scopes = (0..input.count()?)
            .map(|_| input.scope())
            .collect::<Result<_, _>>()?;
        let have = input.vector()?;
        let max_bytes = input.u32()?;
        Ok(Pull {
            scopes,
            have,
            max_bytes,
        })
    }
}

impl Message for Batch {
    const TYPE: MessageType = MessageType::Batch;
    const NAME: &'static str = "batch";

    fn write_body(&self, out: &mut Vec<u8>) {
        put_varint(out, self.envelopes.len() as u64);
        for e in &self.envelopes {
            put_origin(out, &e.origin);
            put_varint(out, e.seq);
            put_varint(out, e.prev);
            put_bytes(out, e.doc.as_str().as_bytes());
            put_bytes(out, e.kind.as_str().as_bytes());
            put_bytes(out, e.scope.as_str().as_bytes());
            match &e.refused {
                None => {
                    out.push(0);
                    put_bytes(out, &e.change);
                }
                Some(reason) => {
                    out.push(1);
                    out.extend_from_slice(&e.hash);
                    put_bytes(out, truncated(reason, MAX_REASON_BYTES).as_bytes());
                }
            }
        }
        put_varint(out, self.signatures.len() as u64);
        for s in &self.signatures {
            put_bytes(out, s.scope.as_str().as_bytes());
            put_origin(out, &s.origin);
            put_varint(out, s.seq);
            out.extend_from_slice(&s.signature);
        }
        out.push(u8::from(self.more));
    }

    fn read_body(input: &mut Reader<'_>) -> Result<Batch, DecodeError> {
        read_batch(input).map(|parsed| parsed.batch)
    }
}

fn read_batch(input: &mut Reader<'_>) -> Result<ParsedBatch, DecodeError> {
    let mut envelopes = Vec::new();
    let mut changes = Vec::new();
    for _ in 0..input.count()? {
        let origin = input.origin()?;
        let seq = input.varint()?;
        let prev = input.varint()?;
        let doc = DocId::parse(input.str()?).ok_or(DecodeError::Invalid("document id"))?;
        let kind = DocKind::parse(input.str()?).ok_or(DecodeError::Invalid("document kind"))?;
        let scope = input.scope()?;
        let (hash, change, refused) = match input.u8()? {
            0 => {
                let change = input.bytes()?.to_vec();
                // Recomputed here; bytes that are not a change get a hash no run can verify.
                let parsed = automerge::Change::from_bytes(change.clone()).ok();
                let hash = parsed
                    .as_ref()
                    .map_or(envelope::INVALID_HASH, |c| c.hash().0);
                changes.push(parsed);
                (hash, change, None)
            }
            1 => {
                let hash = input.array()?;
                let reason = input.str()?;
                if reason.len() > MAX_REASON_BYTES {
                    return Err(DecodeError::Invalid("reason"));
                }
                changes.push(None);
                (hash, Vec::new(), Some(reason.to_string()))
            }
            _ => return Err(DecodeError::Invalid("flag")),
        };
        envelopes.push(Envelope {
            origin,
            seq,
            prev,
            doc,
            kind,
            scope,
            hash,
            change,
            refused,
        });
    }
    let mut signatures = Vec::new();
    for _ in 0..input.count()? {
        let scope = input.scope()?;
        let origin = input.origin()?;
        let seq = input.varint()?;
        let signature = input.array()?;
        signatures.push(SignedSeq {
            scope,
            origin,
            seq,
            signature,
        });
    }
    let more = match input.u8()? {
        0 => false,
        1 => true,
        _ => return Err(DecodeError::Invalid("flag")),
    };
    Ok(ParsedBatch {
        batch: Batch {
            envelopes,
            signatures,
            more,
        },
        changes,
    })
}

impl Message for Ack {
    const TYPE: MessageType = MessageType::Ack;
    const NAME: &'static str = "ack";

    fn write_body(&self, out: &mut Vec<u8>) {
        put_vector(out, &self.have);
        for n in [
            self.applied,
            self.duplicates,
            self.quarantined,
            self.deferred,
        ] {
            put_varint(out, u64::from(n));
        }
        put_notes(out, &self.notes);
    }

    fn read_body(input: &mut Reader<'_>) -> Result<Ack, DecodeError> {
        Ok(Ack {
            have: input.vector()?,
            applied: input.u32()?,
            duplicates: input.u32()?,
            quarantined: input.u32()?,
            deferred: input.u32()?,
            notes: input.notes()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample_batch(n: usize) -> Batch {
        let mut doc = automerge::AutoCommit::new();
        let mut envelopes = Vec::new();
        for i in 0..n {
            automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "k", i as i64)
                .unwrap();
            let change = doc.get_last_local_change().unwrap();
            envelopes.push(Envelope {
                origin: Origin {
                    node: NodeId([i as u8; 16]),
                    epoch: 3,
                },
                seq: i as u64 + 1,
                prev: i as u64,
                doc: DocId::parse("c-0001").unwrap(),
                kind: DocKind::Case,
                scope: Scope::parse("case/440304001001").unwrap(),
                hash: change.hash().0,
                change: change.raw_bytes().to_vec(),
                refused: None,
            });
        }
        let signatures = vec![SignedSeq {
            scope: Scope::parse("case/440304001001").unwrap(),
            origin: Origin {
                node: NodeId([1; 16]),
                epoch: 3,
            },
            seq: n as u64,
            signature: [7; 64],
        }];
        Batch {
            envelopes,
            signatures,
            more: true,
        }
    }

    #[test]
    fn messages_round_trip() {
        let mut batch = sample_batch(5);
        assert_eq!(Batch::decode(&batch.encode()).unwrap(), batch);
        // A change refused on the way travels as its place in the run: hash and reason.
        batch.envelopes[2].change = Vec::new();
        batch.envelopes[2].refused = Some("forbidden_effect: 改写受理信息".into());
        let decoded = ParsedBatch::decode(&batch.encode()).unwrap();
        assert_eq!(decoded.batch, batch);
        assert!(decoded.changes[2].is_none() && decoded.changes[3].is_some());
        let mut have = VersionVector::default();
        have.advance(
            &Scope::parse("catalog/440304").unwrap(),
            &Origin {
                node: NodeId([2; 16]),
                epoch: 1,
            },
            300,
        );
        let pull = Pull {
            scopes: vec![Scope::parse("catalog/440304").unwrap()],
            have: have.clone(),
            max_bytes: 1 << 20,
        };
        assert_eq!(Pull::decode(&pull.encode()).unwrap(), pull);
        let ack = Ack {
            have,
            applied: 3,
            duplicates: 1,
            quarantined: 2,
            deferred: 0,
            notes: vec![ChangeNote {
                scope: Scope::parse("case/440304001001").unwrap(),
                origin: Origin {
                    node: NodeId([3; 16]),
                    epoch: 2,
                },
                seq: 9,
                doc: DocId::parse("c-1").unwrap(),
                waiting: false,
                code: "forbidden_effect".into(),
                reason: "改写受理信息".into(),
            }],
        };
        assert_eq!(Ack::decode(&ack.encode()).unwrap(), ack);
        let hello = Hello {
            protocol: 1,
            min_protocol: 1,
            node: NodeId([5; 16]),
            role: NodeRole::Subdistrict,
            division: DivisionCode::parse("440304001").unwrap(),
            name: "园岭街道".into(),
            now_ms: 1_772_000_000_000,
            capabilities: vec!["bundle".into()],
            refused: vec![],
        };
        assert_eq!(Hello::decode(&hello.encode()).unwrap(), hello);
    }

    #[test]
    fn wrong_messages_are_refused_with_a_reason() {
        let batch = sample_batch(2).encode();
        assert_eq!(
            Pull::decode(&batch).unwrap_err(),
            DecodeError::Type {
                expected: "pull",
                found: 3
            }
        );
        assert_eq!(
            Batch::decode(b"GET / HTTP/1.1").unwrap_err(),
            DecodeError::Magic
        );
        let mut future = batch.clone();
        future[2] = 9;
        assert!(
            Batch::decode(&future)
                .unwrap_err()
                .to_string()
                .contains("upgrade")
        );
        assert_eq!(
            Batch::decode(&batch[..batch.len() / 2]).unwrap_err(),
            DecodeError::Compression
        );
    }

    /// Every file in tests/fixtures/bad/ must be refused without a panic.
    #[test]
    fn the_bad_input_corpus_is_refused() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(Batch::decode(&bytes).is_err());
            assert!(Pull::decode(&bytes).is_err());
            assert!(Hello::decode(&bytes).is_err());
            assert!(Ack::decode(&bytes).is_err());
            seen += 1;
        }
        assert!(seen >= 4, "the corpus has {seen} files");
    }

    fn compressed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![b'Y', b'Z', ENCODING_VERSION, kind];
        let mut encoder = DeflateEncoder::new(&mut out, Compression::fast());
        encoder.write_all(body).unwrap();
        encoder.finish().unwrap();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary bodies, compressed correctly so the decoder really parses them, never panic.
        #[test]
        fn decoding_arbitrary_bodies_never_panics(kind in 1u8..5, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let bytes = compressed(kind, &body);
            let _ = Batch::decode(&bytes);
            let _ = Pull::decode(&bytes);
            let _ = Hello::decode(&bytes);
            let _ = Ack::decode(&bytes);
        }

        /// Flipping any byte of a real message gives an error or a message, never a panic.
        #[test]
        fn corrupted_messages_never_panic(position in any::<prop::sample::Index>(), value in any::<u8>()) {
            let mut bytes = sample_batch(3).encode();
            let i = position.index(bytes.len());
            bytes[i] = value;
            let _ = Batch::decode(&bytes);
        }
    }
}
