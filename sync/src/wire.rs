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
//!
//! **Batches (encoding 3)** are written compactly, because a station's batch is mostly a
//! case's changes one after another (issue 16: 100,000 cases, 600,000 changes, took over 40 MB
//! in encoding 2, over half of it bytes DEFLATE cannot shrink):
//!
//! * Each Automerge change carries the 32-byte hashes of the changes it depends on, and its
//!   chunk a 4-byte checksum: random bytes. A dependency that is the previous change of the
//!   same document in the batch is sent as the code 1, one that is another change earlier in
//!   the batch as its distance back; only a dependency outside the batch travels whole. The
//!   receiver rebuilds the exact chunk (dependencies, length, checksum) and hashes it, so
//!   the change hash, and with it the origin's signed chain, verify exactly as before.
//!   A change the sender cannot take apart and rebuild to the same bytes (a compressed chunk,
//!   anything unusual) travels verbatim.
//! * The change's actor id, the envelope's origin, document, kind and scope are each sent
//!   once per batch and then as a small index into what came before (a per-batch
//!   dictionary); `seq` travels as its step from the origin's previous envelope, `prev` as
//!   its distance below `seq`.
//!
//! A reference to nothing earlier in the batch is a [`DecodeError::Reference`]; the
//! changes a batch rebuilds are bounded by [`MAX_BODY_BYTES`] together. Hellos, pulls and
//! acks are the same in encodings 2 and 3 and are still written as 2, so a node of an older
//! build reads a newer node's hello and answers "upgrade needed" (protocol 7) rather than
//! failing to decode it; batches of encoding 2 (a sneakernet bundle written by an older
//! build) are still read.

use std::collections::HashMap;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use sha2::{Digest, Sha256};

use crate::auth::NodeRole;
use crate::domain::codes::DivisionCode;
use crate::envelope::{self, Envelope};
use crate::feed::{Ack, Batch, ChangeNote, Hello, ParsedBatch, Pull, SignedSeq, VersionVector};
use crate::ids::{DocId, DocKind, NodeId, Origin, Scope};

/// Version of this encoding, the one batches are written in. 2 added refused changes in
/// batches and the notes of what a receiver refused (in acks and hellos); 3 writes batches
/// compactly (dependencies as references, per-batch dictionaries; see the module's doc).
pub const ENCODING_VERSION: u8 = 3;
/// The oldest encoding this build reads, and the one it writes hellos, pulls and acks in
/// (their bodies did not change in 3), so an older node can still read a hello and say who
/// must upgrade.
pub const MIN_ENCODING_VERSION: u8 = 2;
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
        "message encoding {0} is not one this node reads ({MIN_ENCODING_VERSION} to {ENCODING_VERSION}); upgrade the older of the two nodes"
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
    /// A compact batch names, by reference, something that is not earlier in the batch.
    #[error("a {0} refers to nothing earlier in the batch")]
    Reference(&'static str),
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
    /// The encoding this build writes the message in.
    const VERSION: u8 = MIN_ENCODING_VERSION;
    fn write_body(&self, out: &mut Vec<u8>);
    fn read_body(input: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// The message as bytes on the wire.
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        self.write_body(&mut body);
        let mut out = vec![b'Y', b'Z', Self::VERSION, Self::TYPE as u8];
        let mut encoder = DeflateEncoder::new(&mut out, Compression::new(6));
        encoder
            .write_all(&body)
            .expect("writing to a Vec cannot fail");
        encoder.finish().expect("writing to a Vec cannot fail");
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (version, body) = open(bytes, Self::TYPE, Self::NAME)?;
        read_all(version, &body, Self::read_body)
    }
}

/// The encoding version and decompressed body of a message of type `ty`, after checking its
/// header.
fn open(bytes: &[u8], ty: MessageType, name: &'static str) -> Result<(u8, Vec<u8>), DecodeError> {
    if bytes.len() < 4 || bytes[0] != b'Y' || bytes[1] != b'Z' {
        return Err(DecodeError::Magic);
    }
    if !(MIN_ENCODING_VERSION..=ENCODING_VERSION).contains(&bytes[2]) {
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
    Ok((bytes[2], body))
}

/// Reads a whole body of encoding `version` with `read`, refusing bytes left over.
fn read_all<T>(
    version: u8,
    body: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut reader = Reader {
        bytes: body,
        at: 0,
        version,
    };
    let message = read(&mut reader)?;
    match body.len() - reader.at {
        0 => Ok(message),
        left => Err(DecodeError::Trailing(left)),
    }
}

impl ParsedBatch {
    /// Decodes a batch and keeps the changes it parsed to hash them.
    pub fn decode(bytes: &[u8]) -> Result<ParsedBatch, DecodeError> {
        let (version, body) = open(bytes, Batch::TYPE, Batch::NAME)?;
        read_all(version, &body, read_batch)
    }
}

/// Reads primitives from a body, checking every length against what is left.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The encoding the body is in.
    version: u8,
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
    const VERSION: u8 = ENCODING_VERSION;

    fn write_body(&self, out: &mut Vec<u8>) {
        write_batch(self, out);
    }

    fn read_body(input: &mut Reader<'_>) -> Result<Batch, DecodeError> {
        read_batch(input).map(|parsed| parsed.batch)
    }
}

/// The first bytes of every Automerge chunk.
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
/// Automerge's chunk type of an uncompressed change.
const CHUNK_CHANGE: u8 = 1;

/// A dependency that is the previous change of the same document in the batch.
const DEP_SAME_DOCUMENT: u64 = 1;
/// A dependency sent whole (outside the batch); codes from 2 are distances back.
const DEP_WHOLE: u64 = 0;

/// An uncompressed Automerge change chunk taken apart where a batch abbreviates it:
/// magic, checksum, type and length (rebuilt), dependencies, actor, and the rest of the
/// body (sequence number, start op, time, message, other actors, op columns) as it is.
struct ChangeParts<'a> {
    deps: Vec<[u8; 32]>,
    actor: &'a [u8],
    rest: &'a [u8],
    /// The change hash: SHA-256 over the chunk's type, length and body.
    hash: [u8; 32],
}

impl<'a> ChangeParts<'a> {
    /// The parts of `bytes` if they are an uncompressed change chunk that
    /// [`build_change`] gives back byte for byte (so canonical lengths, a true checksum);
    /// anything else travels verbatim.
    fn split(bytes: &'a [u8]) -> Option<ChangeParts<'a>> {
        let mut r = Reader {
            bytes,
            at: 0,
            version: ENCODING_VERSION,
        };
        if r.take(4).ok()? != CHUNK_MAGIC {
            return None;
        }
        r.take(4).ok()?;
        if r.u8().ok()? != CHUNK_CHANGE {
            return None;
        }
        let length = r.varint().ok()?;
        if length != (bytes.len() - r.at) as u64 {
            return None;
        }
        let deps = (0..r.count().ok()?)
            .map(|_| r.array::<32>())
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let actor = r.bytes().ok()?;
        let rest = &bytes[r.at..];
        let (rebuilt, hash) = build_change(&deps, actor, rest);
        (rebuilt == bytes).then_some(ChangeParts {
            deps,
            actor,
            rest,
            hash,
        })
    }
}

/// The bytes of an uncompressed change chunk and its hash, from its parts: what the
/// receiver of a compact batch rebuilds.
fn build_change(deps: &[[u8; 32]], actor: &[u8], rest: &[u8]) -> (Vec<u8>, [u8; 32]) {
    let body = varint_len(deps.len() as u64)
        + 32 * deps.len()
        + varint_len(actor.len() as u64)
        + actor.len()
        + rest.len();
    let mut out = Vec::with_capacity(9 + varint_len(body as u64) + body);
    out.extend_from_slice(&CHUNK_MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.push(CHUNK_CHANGE);
    put_varint(&mut out, body as u64);
    put_varint(&mut out, deps.len() as u64);
    for dep in deps {
        out.extend_from_slice(dep);
    }
    put_bytes(&mut out, actor);
    out.extend_from_slice(rest);
    let hash: [u8; 32] = Sha256::digest(&out[8..]).into();
    out[4..8].copy_from_slice(&hash[..4]);
    (out, hash)
}

fn varint_len(value: u64) -> usize {
    (64 - value.max(1).leading_zeros() as usize).div_ceil(7)
}

/// A per-batch dictionary, writing side: the first time a value is written whole after
/// the code 0, later as its index + 1.
struct Dictionary<K> {
    index: HashMap<K, u64>,
}

impl<K: std::hash::Hash + Eq> Dictionary<K> {
    fn new() -> Self {
        Dictionary {
            index: HashMap::new(),
        }
    }

    /// Writes the reference to `key`, or 0 when it is new (the caller then writes it).
    fn put(&mut self, out: &mut Vec<u8>, key: K) -> bool {
        let next = self.index.len() as u64 + 1;
        match self.index.entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => {
                put_varint(out, *entry.get());
                false
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(next);
                put_varint(out, 0);
                true
            }
        }
    }
}

/// Writes a batch in encoding 3 (see the module's doc).
fn write_batch(batch: &Batch, out: &mut Vec<u8>) {
    put_varint(out, batch.envelopes.len() as u64);
    // The origin's previous seq in the batch, by origin.
    let mut last_seq: HashMap<Origin, u64> = HashMap::new();
    let mut origins = Dictionary::new();
    let mut docs = Dictionary::new();
    let mut kinds = Dictionary::new();
    let mut scopes = Dictionary::new();
    let mut actors = Dictionary::new();
    // The hash of each document's latest compact change, and of every compact change.
    let mut latest: HashMap<&str, [u8; 32]> = HashMap::new();
    let mut compact: HashMap<[u8; 32], usize> = HashMap::new();
    for (i, e) in batch.envelopes.iter().enumerate() {
        if origins.put(out, e.origin) {
            put_origin(out, &e.origin);
        }
        let last = last_seq.insert(e.origin, e.seq).unwrap_or(0);
        put_varint(out, e.seq.wrapping_sub(last).wrapping_sub(1));
        put_varint(out, e.seq.wrapping_sub(e.prev));
        for (dictionary, text) in [
            (&mut docs, e.doc.as_str()),
            (&mut kinds, e.kind.as_str()),
            (&mut scopes, e.scope.as_str()),
        ] {
            if dictionary.put(out, text) {
                put_bytes(out, text.as_bytes());
            }
        }
        if let Some(reason) = &e.refused {
            out.push(1);
            out.extend_from_slice(&e.hash);
            put_bytes(out, truncated(reason, MAX_REASON_BYTES).as_bytes());
            continue;
        }
        let Some(parts) = ChangeParts::split(&e.change) else {
            out.push(0);
            put_bytes(out, &e.change);
            continue;
        };
        out.push(2);
        put_varint(out, parts.deps.len() as u64);
        let previous = latest.get(e.doc.as_str());
        for dep in &parts.deps {
            if previous == Some(dep) {
                put_varint(out, DEP_SAME_DOCUMENT);
            } else if let Some(j) = compact.get(dep) {
                put_varint(out, (i - j) as u64 + 1);
            } else {
                put_varint(out, DEP_WHOLE);
                out.extend_from_slice(dep);
            }
        }
        if actors.put(out, parts.actor) {
            put_bytes(out, parts.actor);
        }
        put_bytes(out, parts.rest);
        latest.insert(e.doc.as_str(), parts.hash);
        compact.insert(parts.hash, i);
    }
    put_signatures(out, &batch.signatures);
    out.push(u8::from(batch.more));
}

fn put_signatures(out: &mut Vec<u8>, signatures: &[SignedSeq]) {
    put_varint(out, signatures.len() as u64);
    for s in signatures {
        put_bytes(out, s.scope.as_str().as_bytes());
        put_origin(out, &s.origin);
        put_varint(out, s.seq);
        out.extend_from_slice(&s.signature);
    }
}

/// Reads a batch of the reader's encoding.
fn read_batch(input: &mut Reader<'_>) -> Result<ParsedBatch, DecodeError> {
    if input.version >= 3 {
        read_batch_3(input)
    } else {
        read_batch_2(input)
    }
}

/// Parses the bytes of a change and gives its hash (recomputed here; bytes that are not a
/// change get a hash no run can verify).
fn parse_change(change: &[u8]) -> (Option<automerge::Change>, [u8; 32]) {
    let parsed = automerge::Change::from_bytes(change.to_vec()).ok();
    let hash = parsed
        .as_ref()
        .map_or(envelope::INVALID_HASH, |c| c.hash().0);
    (parsed, hash)
}

/// A change refused on the way: its hash as signed and the reason.
fn read_refused(input: &mut Reader<'_>) -> Result<([u8; 32], String), DecodeError> {
    let hash = input.array()?;
    let reason = input.str()?;
    if reason.len() > MAX_REASON_BYTES {
        return Err(DecodeError::Invalid("reason"));
    }
    Ok((hash, reason.to_string()))
}

fn read_signatures_and_more(input: &mut Reader<'_>) -> Result<(Vec<SignedSeq>, bool), DecodeError> {
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
    Ok((signatures, more))
}

/// A per-batch dictionary, reading side: code 0 reads a new entry, code k is entry k − 1.
fn read_entry<'a, T>(
    input: &mut Reader<'a>,
    entries: &mut Vec<T>,
    what: &'static str,
    read_new: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<usize, DecodeError> {
    match input.varint()? {
        0 => {
            entries.push(read_new(input)?);
            Ok(entries.len() - 1)
        }
        code => usize::try_from(code - 1)
            .ok()
            .filter(|&k| k < entries.len())
            .ok_or(DecodeError::Reference(what)),
    }
}

/// Reads a batch of encoding 3 (see the module's doc).
fn read_batch_3(input: &mut Reader<'_>) -> Result<ParsedBatch, DecodeError> {
    let mut envelopes = Vec::new();
    let mut changes = Vec::new();
    // (origin, its previous seq in the batch)
    let mut origins: Vec<(Origin, u64)> = Vec::new();
    // (document, the hash of its latest compact change)
    let mut docs: Vec<(DocId, Option<[u8; 32]>)> = Vec::new();
    let mut kinds: Vec<DocKind> = Vec::new();
    let mut scopes: Vec<Scope> = Vec::new();
    let mut actors: Vec<&[u8]> = Vec::new();
    // The hash of each compact change, by envelope.
    let mut compact: Vec<Option<[u8; 32]>> = Vec::new();
    // What the rebuilt changes may take together.
    let mut budget = MAX_BODY_BYTES;
    for i in 0..input.count()? {
        let o = read_entry(input, &mut origins, "origin", |r| Ok((r.origin()?, 0)))?;
        let seq = origins[o].1.wrapping_add(input.varint()?).wrapping_add(1);
        origins[o].1 = seq;
        let prev = seq.wrapping_sub(input.varint()?);
        let d = read_entry(input, &mut docs, "document", |r| {
            let doc = DocId::parse(r.str()?).ok_or(DecodeError::Invalid("document id"))?;
            Ok((doc, None))
        })?;
        let k = read_entry(input, &mut kinds, "document kind", |r| {
            DocKind::parse(r.str()?).ok_or(DecodeError::Invalid("document kind"))
        })?;
        let s = read_entry(input, &mut scopes, "scope", Reader::scope)?;
        let (hash, change, refused) = match input.u8()? {
            0 => {
                let change = input.bytes()?.to_vec();
                let (parsed, hash) = parse_change(&change);
                changes.push(parsed);
                compact.push(None);
                (hash, change, None)
            }
            1 => {
                let (hash, reason) = read_refused(input)?;
                changes.push(None);
                compact.push(None);
                (hash, Vec::new(), Some(reason))
            }
            2 => {
                let n = input.count()?;
                let size = n.saturating_mul(32);
                if size > budget {
                    return Err(DecodeError::Invalid("size of the batch's changes"));
                }
                let mut deps = Vec::with_capacity(n.min(input.bytes.len() - input.at));
                for _ in 0..n {
                    let dep = match input.varint()? {
                        DEP_WHOLE => Some(input.array()?),
                        DEP_SAME_DOCUMENT => docs[d].1,
                        back => usize::try_from(back - 1)
                            .ok()
                            .and_then(|back| i.checked_sub(back))
                            .and_then(|j| compact[j]),
                    };
                    deps.push(dep.ok_or(DecodeError::Reference("dependency"))?);
                }
                let a = read_entry(input, &mut actors, "actor", Reader::bytes)?;
                let rest = input.bytes()?;
                let size = size + actors[a].len() + rest.len() + 32;
                if size > budget {
                    return Err(DecodeError::Invalid("size of the batch's changes"));
                }
                budget -= size;
                let (change, sha) = build_change(&deps, actors[a], rest);
                let (parsed, hash) = parse_change(&change);
                changes.push(parsed);
                compact.push(Some(sha));
                docs[d].1 = Some(sha);
                (hash, change, None)
            }
            _ => return Err(DecodeError::Invalid("flag")),
        };
        envelopes.push(Envelope {
            origin: origins[o].0,
            seq,
            prev,
            doc: docs[d].0.clone(),
            kind: kinds[k],
            scope: scopes[s].clone(),
            hash,
            change,
            refused,
        });
    }
    let (signatures, more) = read_signatures_and_more(input)?;
    Ok(ParsedBatch {
        batch: Batch {
            envelopes,
            signatures,
            more,
        },
        changes,
    })
}

/// Reads a batch of encoding 2: every field whole, each change verbatim.
fn read_batch_2(input: &mut Reader<'_>) -> Result<ParsedBatch, DecodeError> {
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
                let (parsed, hash) = parse_change(&change);
                changes.push(parsed);
                (hash, change, None)
            }
            1 => {
                let (hash, reason) = read_refused(input)?;
                changes.push(None);
                (hash, Vec::new(), Some(reason))
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
    let (signatures, more) = read_signatures_and_more(input)?;
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
        compressed_as(ENCODING_VERSION, kind, body)
    }

    fn compressed_as(version: u8, kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![b'Y', b'Z', version, kind];
        let mut encoder = DeflateEncoder::new(&mut out, Compression::fast());
        encoder.write_all(body).unwrap();
        encoder.finish().unwrap();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary bodies, compressed correctly so the decoder really parses them, never
        /// panic, in either encoding this build reads.
        #[test]
        fn decoding_arbitrary_bodies_never_panics(version in MIN_ENCODING_VERSION..=ENCODING_VERSION, kind in 1u8..5, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let bytes = compressed_as(version, kind, &body);
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

    /// How an envelope of [`arbitrary_batch`] travels.
    #[derive(Clone, Copy, Debug)]
    enum Form {
        /// A change, its dependencies in the batch or not.
        Change,
        /// Refused on the way: hash and reason only.
        Refused,
        /// Bytes that are no change (a flipped byte): verbatim, with the invalid hash.
        Damaged,
        /// A compressed chunk (a large value): verbatim.
        Compressed,
        /// Made but left out of the batch, so a later change depends on it from outside.
        Absent,
    }

    fn form() -> impl Strategy<Value = Form> {
        prop_oneof![
            6 => Just(Form::Change),
            1 => Just(Form::Refused),
            1 => Just(Form::Damaged),
            1 => Just(Form::Compressed),
            1 => Just(Form::Absent),
        ]
    }

    /// A batch of real changes to a few documents by two origins, in the shapes a batch
    /// can hold, with arbitrary sequence numbers.
    fn arbitrary_batch(steps: &[(usize, usize, Form, u64, u64)]) -> Batch {
        let origins = [1u8, 2].map(|n| Origin {
            node: NodeId([n; 16]),
            epoch: u32::from(n),
        });
        batch_by(origins, steps)
    }

    fn batch_by(origins: [Origin; 2], steps: &[(usize, usize, Form, u64, u64)]) -> Batch {
        let mut docs: Vec<automerge::AutoCommit> = (0..4)
            .map(|d| automerge::AutoCommit::new().with_actor(origins[d % 2].actor()))
            .collect();
        let mut envelopes = Vec::new();
        for (n, &(d, o, form, seq, prev)) in steps.iter().enumerate() {
            let doc = &mut docs[d];
            let value = match form {
                Form::Compressed => "大".repeat(400),
                _ => format!("v{n}"),
            };
            automerge::transaction::Transactable::put(&mut *doc, automerge::ROOT, "k", value)
                .unwrap();
            let mut change = doc.get_last_local_change().unwrap().clone();
            let mut envelope = Envelope {
                origin: origins[o],
                seq,
                prev,
                doc: DocId::parse(&format!("c-{d}")).unwrap(),
                kind: if d == 3 { DocKind::Item } else { DocKind::Case },
                scope: Scope::parse(&format!("case/44030400100{}", o + 1)).unwrap(),
                hash: change.hash().0,
                change: change.raw_bytes().to_vec(),
                refused: None,
            };
            match form {
                Form::Change => {}
                Form::Absent => continue,
                Form::Refused => {
                    envelope.change = Vec::new();
                    envelope.refused = Some(format!("forbidden_effect {n}"));
                }
                Form::Damaged => {
                    *envelope.change.last_mut().unwrap() ^= 0x55;
                    envelope.hash = envelope::INVALID_HASH;
                }
                Form::Compressed => {
                    envelope.change = change.bytes().to_vec();
                    assert_eq!(envelope.change[8], 2, "a compressed chunk");
                }
            }
            envelopes.push(envelope);
        }
        Batch {
            envelopes,
            signatures: vec![SignedSeq {
                scope: Scope::parse("case/440304001001").unwrap(),
                origin: origins[0],
                seq: 9,
                signature: [7; 64],
            }],
            more: false,
        }
    }

    /// A station's run as the field makes it: one change per action, cases interleaved,
    /// each change depending on its case's previous one; then one change whose
    /// dependency is not in the batch.
    fn field_batch() -> Batch {
        field_batch_by(Origin {
            node: NodeId([1; 16]),
            epoch: 1,
        })
    }

    fn field_batch_by(origin: Origin) -> Batch {
        let steps: Vec<_> = (0..24)
            .map(|n| (n % 3, 0, Form::Change, n as u64 + 1, n as u64))
            .collect();
        let mut batch = batch_by([origin; 2], &steps);
        batch.envelopes.remove(0);
        batch
    }

    #[test]
    fn a_compact_batch_rebuilds_every_change_exactly_and_sends_no_hash_it_can_spare() {
        let batch = field_batch();
        let bytes = batch.encode();
        assert_eq!(bytes[2], ENCODING_VERSION);
        let decoded = ParsedBatch::decode(&bytes).unwrap();
        assert_eq!(decoded.batch, batch, "bytes and hashes as sent");
        for (e, change) in decoded.batch.envelopes.iter().zip(&decoded.changes) {
            assert_eq!(change.as_ref().unwrap().hash().0, e.hash);
        }
        let mut body = Vec::new();
        batch.write_body(&mut body);
        let inside = |hash: &[u8; 32]| body.windows(32).any(|w| w == hash);
        // The first change of document c-0 depends on one outside the batch: it travels.
        let outside = automerge::Change::from_bytes(batch.envelopes[2].change.clone())
            .unwrap()
            .deps()[0];
        assert!(inside(&outside.0));
        // Every other dependency is the previous change of its case, sent as a code.
        for e in &batch.envelopes {
            let change = automerge::Change::from_bytes(e.change.clone()).unwrap();
            for dep in change.deps().iter().filter(|d| **d != outside) {
                assert!(!inside(&dep.0), "{e:?} sends its dependency whole");
            }
        }
        // And it is smaller than the same batch with every field whole.
        let whole: usize = batch
            .envelopes
            .iter()
            .map(|e| e.change.len() + e.doc.as_str().len() + e.scope.as_str().len() + 20)
            .sum();
        assert!(body.len() + 600 < whole, "{} against {whole}", body.len());
    }

    /// A compact body by hand: one envelope whose change refers by `dep` to a dependency.
    fn body_with_dependency(dep: u64, doc_ref: u64) -> Vec<u8> {
        let mut body = Vec::new();
        put_varint(&mut body, 1);
        put_varint(&mut body, 0);
        put_origin(
            &mut body,
            &Origin {
                node: NodeId([1; 16]),
                epoch: 1,
            },
        );
        put_varint(&mut body, 0);
        put_varint(&mut body, 1);
        put_varint(&mut body, doc_ref);
        if doc_ref == 0 {
            put_bytes(&mut body, b"c-1");
        }
        put_varint(&mut body, 0);
        put_bytes(&mut body, b"case");
        put_varint(&mut body, 0);
        put_bytes(&mut body, b"case/440304001001");
        body.push(2);
        put_varint(&mut body, 1);
        put_varint(&mut body, dep);
        put_varint(&mut body, 0);
        put_bytes(&mut body, &[3; 16]);
        put_bytes(&mut body, &[1, 1, 0, 0, 0, 0]);
        put_varint(&mut body, 0);
        body.push(0);
        body
    }

    #[test]
    fn a_reference_to_nothing_in_the_batch_is_a_clear_error() {
        let decode = |body: &[u8]| Batch::decode(&compressed(MessageType::Batch as u8, body));
        // The document's previous change, for its first change in the batch.
        assert_eq!(
            decode(&body_with_dependency(DEP_SAME_DOCUMENT, 0)).unwrap_err(),
            DecodeError::Reference("dependency")
        );
        // A change before the first, or far beyond any.
        for back in [2, 3, u64::MAX] {
            assert_eq!(
                decode(&body_with_dependency(back, 0)).unwrap_err(),
                DecodeError::Reference("dependency")
            );
        }
        // A document of the dictionary that was never written.
        assert_eq!(
            decode(&body_with_dependency(DEP_SAME_DOCUMENT, 1)).unwrap_err(),
            DecodeError::Reference("document")
        );
        // A reference that ends early.
        let mut cut = body_with_dependency(2, 0);
        cut.truncate(cut.len() - 24);
        assert!(decode(&cut).is_err());
        assert!(
            DecodeError::Reference("dependency")
                .to_string()
                .contains("refers to nothing earlier in the batch")
        );
        // The same two in the bad-input corpus, as files.
        let bad = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
        for (file, what) in [
            ("dangling-reference.bin", "dependency"),
            ("unknown-document-reference.bin", "document"),
        ] {
            let bytes = std::fs::read(bad.join(file)).unwrap();
            assert_eq!(
                Batch::decode(&bytes).unwrap_err(),
                DecodeError::Reference(what)
            );
        }
    }

    #[test]
    fn a_refused_change_keeps_its_hash_and_a_later_change_still_refers_past_it() {
        let mut batch = field_batch();
        batch.envelopes[4].change = Vec::new();
        batch.envelopes[4].refused = Some("forbidden_effect".into());
        let decoded = ParsedBatch::decode(&batch.encode()).unwrap();
        assert_eq!(decoded.batch, batch);
        assert!(decoded.changes[4].is_none() && decoded.changes[5].is_some());
    }

    /// A batch written by a build of encoding 2 (as in a sneakernet bundle made before
    /// encoding 3) still reads: its changes verbatim, one refused on the way.
    #[test]
    fn a_batch_of_encoding_2_still_reads() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/batch-encoding-2.bin");
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes[2], 2);
        let decoded = ParsedBatch::decode(&bytes).unwrap();
        let batch = &decoded.batch;
        assert_eq!(batch.envelopes.len(), 4);
        assert_eq!(batch.signatures.len(), 1);
        for (e, change) in batch.envelopes.iter().zip(&decoded.changes) {
            match &e.refused {
                Some(reason) => assert_eq!(
                    (reason.as_str(), change.is_none()),
                    ("forbidden_effect", true)
                ),
                None => assert_eq!(change.as_ref().unwrap().hash().0, e.hash),
            }
        }
        // Written again, it is compact and the same batch.
        assert_eq!(Batch::decode(&batch.encode()).unwrap(), *batch);
        // Hellos are written as 2, so an older node reads them and says who must upgrade.
        let hello = Hello {
            protocol: crate::feed::PROTOCOL_VERSION,
            min_protocol: crate::feed::MIN_PROTOCOL_VERSION,
            node: NodeId([5; 16]),
            role: NodeRole::Station,
            division: DivisionCode::parse("440304001001").unwrap(),
            name: "站".into(),
            now_ms: 1,
            capabilities: vec![],
            refused: vec![],
        };
        assert_eq!(hello.encode()[2], MIN_ENCODING_VERSION);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Arbitrary batches round-trip exactly: every rebuilt change equals the original
        /// bytes, every hash the original's.
        #[test]
        fn arbitrary_batches_round_trip_byte_exact(
            steps in proptest::collection::vec((0..4usize, 0..2usize, form(), any::<u64>(), any::<u64>()), 0..24)
        ) {
            let batch = arbitrary_batch(&steps);
            let decoded = ParsedBatch::decode(&batch.encode()).unwrap();
            prop_assert_eq!(&decoded.batch, &batch);
            for (e, change) in batch.envelopes.iter().zip(&decoded.changes) {
                prop_assert_eq!(change.as_ref().map(|c| c.hash().0), (e.refused.is_none() && e.hash != envelope::INVALID_HASH).then_some(e.hash));
            }
        }

        /// A compact batch damaged anywhere in its body never panics, and whatever decodes
        /// from it the chain check passes only as it was signed: every change a receiver
        /// would apply is exactly the origin's.
        #[test]
        fn corrupted_compact_batches_never_yield_a_change_the_chain_did_not_sign(
            position in any::<prop::sample::Index>(),
            value in any::<u8>(),
        ) {
            let (batch, registry) = signed_field_batch();
            let mut body = Vec::new();
            batch.write_body(&mut body);
            let i = position.index(body.len());
            body[i] = value;
            let Ok(decoded) = ParsedBatch::decode(&compressed(MessageType::Batch as u8, &body)) else {
                return Ok(());
            };
            let verdicts = crate::feed::check_batch(&decoded.batch, &|_, _| Default::default(), &registry);
            for (e, verdict) in decoded.batch.envelopes.iter().zip(verdicts) {
                if let crate::feed::Verdict::Apply { .. } = verdict {
                    let original = batch.envelopes.iter().find(|o| o.seq == e.seq && o.origin == e.origin);
                    prop_assert_eq!(Some(e), original);
                }
            }
        }
    }

    /// [`field_batch`] written by a registered station, chained and signed as a station's
    /// store does, with the registry that knows the station.
    fn signed_field_batch() -> (Batch, crate::auth::Registry) {
        let record = crate::auth::tests::record(4, NodeRole::Station, "440304001001");
        let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
        let origin = Origin {
            node: record.node,
            epoch: 1,
        };
        let mut batch = field_batch_by(origin);
        let mut chain = envelope::CHAIN_START;
        let mut seq = 0;
        for e in &mut batch.envelopes {
            seq += 1;
            e.origin = origin;
            (e.seq, e.prev) = (seq, seq - 1);
            e.scope = Scope::parse("case/440304001001").unwrap();
            chain = envelope::chain_next(&chain, e);
        }
        batch.signatures = vec![SignedSeq {
            scope: Scope::parse("case/440304001001").unwrap(),
            origin,
            seq,
            signature: envelope::sign(&key, &origin, seq, &chain),
        }];
        let mut registry = crate::auth::Registry::new();
        registry.insert(record);
        (batch, registry)
    }

    #[test]
    fn an_intact_signed_compact_batch_passes_the_chain_check() {
        let (batch, registry) = signed_field_batch();
        let decoded = ParsedBatch::decode(&batch.encode()).unwrap();
        let verdicts =
            crate::feed::check_batch(&decoded.batch, &|_, _| Default::default(), &registry);
        assert_eq!(verdicts.len(), batch.envelopes.len());
        assert!(
            verdicts
                .iter()
                .all(|v| matches!(v, crate::feed::Verdict::Apply { .. })),
            "{verdicts:?}"
        );
    }
}
