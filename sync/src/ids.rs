//! Identifiers shared by every node: node ids, origins (node + epoch), document ids and
//! scopes. Each is a newtype so a node id can never be passed where a document id belongs.

use std::fmt;

use sha2::{Digest, Sha256};

/// A node's identity: the first 16 bytes of the SHA-256 of its Ed25519 public key.
///
/// Deriving the id from the key means an id cannot be claimed without the key, and the
/// id is short enough to appear in every event and change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 16]);

impl NodeId {
    pub fn from_public_key(public_key: &[u8; 32]) -> NodeId {
        let digest = Sha256::digest(public_key);
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        NodeId(id)
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub fn parse_hex(s: &str) -> Option<NodeId> {
        let bytes = unhex(s)?;
        Some(NodeId(bytes.try_into().ok()?))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.to_hex())
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NodeId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        NodeId::parse_hex(&s)
            .ok_or_else(|| serde::de::Error::custom("node id must be 32 hex digits"))
    }
}

/// Who authored a change: a node in one epoch (DESIGN §4-§5).
///
/// A node restored from a backup starts a new epoch, so it never reuses a sequence number
/// or an Automerge actor it used before the backup was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub node: NodeId,
    pub epoch: u32,
}

impl Origin {
    /// The Automerge actor id of this origin: node id followed by the big-endian epoch.
    pub fn actor_bytes(&self) -> [u8; 20] {
        let mut bytes = [0; 20];
        bytes[..16].copy_from_slice(&self.node.0);
        bytes[16..].copy_from_slice(&self.epoch.to_be_bytes());
        bytes
    }

    pub fn actor(&self) -> automerge::ActorId {
        automerge::ActorId::from(&self.actor_bytes()[..])
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.node, self.epoch)
    }
}

/// What a document holds; decides its schema and who may write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocKind {
    Item,
    Case,
    /// A hall's node registry: the keys, roles and divisions of the nodes it enrolled.
    Registry,
    /// A sealed notice about a case (受理回执, 一次性告知书, …), issued once, never changed.
    Notice,
    /// A hall's supervision notice (督办, §10.2) about a case or a station, never changed.
    Supervision,
    /// A station's reply to a supervision notice, never changed.
    Reply,
    /// One year of the working-day calendar, published by a hall, replaced by new versions.
    Calendar,
    /// A hall's notification (通报, §10.3), in its catalog scope so it reaches every node
    /// below the hall; never changed.
    Notification,
    /// A staff account a hall's admin wrote (§8.6.3), in the hall's catalog scope so it
    /// reaches every node below the hall; its hall replaces it (disable, reset).
    Staff,
    /// A file a hall publishes with its catalog (an item's blank form or sample, 空表/样表),
    /// in its catalog scope; written once, never changed.
    Attachment,
}

impl DocKind {
    pub const ALL: [DocKind; 10] = [
        DocKind::Item,
        DocKind::Case,
        DocKind::Registry,
        DocKind::Notice,
        DocKind::Supervision,
        DocKind::Reply,
        DocKind::Calendar,
        DocKind::Notification,
        DocKind::Staff,
        DocKind::Attachment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Item => "item",
            DocKind::Case => "case",
            DocKind::Registry => "registry",
            DocKind::Notice => "notice",
            DocKind::Supervision => "supervision",
            DocKind::Reply => "reply",
            DocKind::Calendar => "calendar",
            DocKind::Notification => "notification",
            DocKind::Staff => "staff",
            DocKind::Attachment => "attachment",
        }
    }

    pub fn parse(s: &str) -> Option<DocKind> {
        DocKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The prefix of this kind's document ids (`c-…`, `i-…`): any node can tell a
    /// document's kind from its id, without trusting whoever sent it.
    pub fn id_prefix(self) -> &'static str {
        match self {
            DocKind::Item => "i",
            DocKind::Case => "c",
            DocKind::Registry => "r",
            DocKind::Notice => "n",
            DocKind::Supervision => "s",
            DocKind::Reply => "sr",
            DocKind::Calendar => "y",
            DocKind::Notification => "b",
            DocKind::Staff => "u",
            DocKind::Attachment => "a",
        }
    }

    /// The kind of a document id, from its prefix.
    pub fn of_id(id: &DocId) -> Option<DocKind> {
        let prefix = id.as_str().split_once('-')?.0;
        DocKind::ALL.into_iter().find(|k| k.id_prefix() == prefix)
    }

    /// The kind of scope documents of this kind live in: notices, supervision and replies
    /// travel with the cases of their division, calendars with the catalog.
    pub fn scope_kind(self) -> ScopeKind {
        match self {
            DocKind::Item
            | DocKind::Calendar
            | DocKind::Notification
            | DocKind::Staff
            | DocKind::Attachment => ScopeKind::Catalog,
            DocKind::Case | DocKind::Notice | DocKind::Supervision | DocKind::Reply => {
                ScopeKind::Case
            }
            DocKind::Registry => ScopeKind::Registry,
        }
    }

    /// Whether a document of this kind is written once and never changed after.
    pub fn immutable(self) -> bool {
        matches!(
            self,
            DocKind::Notice
                | DocKind::Supervision
                | DocKind::Reply
                | DocKind::Notification
                | DocKind::Attachment
        )
    }
}

/// What a scope partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKind {
    Catalog,
    Case,
    Registry,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Catalog => "catalog",
            ScopeKind::Case => "case",
            ScopeKind::Registry => "registry",
        }
    }
}

/// A document id, fixed when the document is created at its origin (DESIGN §4).
///
/// Ids are short ASCII strings (`[a-z0-9:.-]`, at most 96 bytes) so they can sit in URLs,
/// file names and log lines without escaping.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(String);

impl DocId {
    pub fn parse(s: &str) -> Option<DocId> {
        let ok = !s.is_empty()
            && s.len() <= 96
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-:.".contains(&b));
        ok.then(|| DocId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for DocId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DocId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DocId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DocId::parse(&s).ok_or_else(|| serde::de::Error::custom("not a document id"))
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({})", self.0)
    }
}

/// The partition a document belongs to, such as `catalog/440304` or
/// `case/440304001001`; sync filters and write authorization work on scopes (DESIGN §5).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    pub fn catalog(division: &crate::domain::codes::DivisionCode) -> Scope {
        Scope(format!("catalog/{division}"))
    }

    pub fn cases(division: &crate::domain::codes::DivisionCode) -> Scope {
        Scope(format!("case/{division}"))
    }

    pub fn registry(division: &crate::domain::codes::DivisionCode) -> Scope {
        Scope(format!("registry/{division}"))
    }

    pub fn parse(s: &str) -> Option<Scope> {
        let (kind, division) = s.split_once('/')?;
        crate::domain::codes::DivisionCode::parse(division).ok()?;
        matches!(kind, "catalog" | "case" | "registry").then(|| Scope(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> ScopeKind {
        match self.0.split_once('/').map(|(k, _)| k) {
            Some("catalog") => ScopeKind::Catalog,
            Some("case") => ScopeKind::Case,
            _ => ScopeKind::Registry,
        }
    }

    /// The division the scope belongs to.
    pub fn division(&self) -> crate::domain::codes::DivisionCode {
        let (_, division) = self.0.split_once('/').expect("validated");
        crate::domain::codes::DivisionCode::parse(division).expect("validated")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Bytes of a hex string (either case), or `None` if it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let value = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(value(pair[0])? << 4 | value(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }

    #[test]
    fn actor_is_node_then_epoch() {
        let origin = Origin {
            node: NodeId([7; 16]),
            epoch: 258,
        };
        let bytes = origin.actor_bytes();
        assert_eq!(&bytes[..16], &[7; 16]);
        assert_eq!(&bytes[16..], &[0, 0, 1, 2]);
        let next = Origin {
            epoch: 259,
            ..origin
        };
        assert_ne!(origin.actor(), next.actor());
    }

    #[test]
    fn doc_ids_and_scopes() {
        assert!(DocId::parse("c-0001-abc").is_some());
        for bad in ["", "C-1", "a/b", "a b", &"x".repeat(97)] {
            assert!(DocId::parse(bad).is_none(), "{bad}");
        }
        assert!(Scope::parse("case/440304001001").is_some());
        assert!(Scope::parse("catalog/440304").is_some());
        assert!(Scope::parse("secrets/440304").is_none());
        assert!(Scope::parse("case/44030").is_none());
    }
}
