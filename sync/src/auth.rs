//! Who may write and read what (DESIGN §5, §9: owner and direction per kind of data), and
//! the node records that say who a key belongs to.
//!
//! * A **catalog** (`catalog/D`) is written by a hall whose division is `D` or contains it,
//!   and read by the nodes in and above `D`: catalogs flow down from the halls that author
//!   them.
//! * The **cases** of a division (`case/D`) are written by the station of `D` and by the
//!   halls above it (decisions, transfers), and read by the same: cases flow up, decisions
//!   flow back down, and no station reads another's cases.
//! * A **registry** (`registry/H`) is written by the hall `H` (or one above it) and read by
//!   every node in and above `H`, so keys flow both down (children learn the keys above
//!   them) and up (a district learns the keys of the stations its sub-districts enrolled).
//!
//! A hall vouches only for nodes inside its own division, and a revoked node's changes are
//! accepted only up to the sequence numbers the revoking hall had already received.

use std::collections::{BTreeMap, HashMap};

use crate::domain::case::{Action, ActionKind, ItemSnapshot};
use crate::domain::codes::{DivisionCode, DivisionLevel};
use crate::domain::serial::{Segment, SegmentError};
use crate::ids::{NodeId, Origin, Scope, ScopeKind, hex, unhex};

/// The role of a node in the tree (DESIGN §3).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    Station,
    Subdistrict,
    District,
    City,
}

impl NodeRole {
    pub const ALL: [NodeRole; 4] = [
        NodeRole::Station,
        NodeRole::Subdistrict,
        NodeRole::District,
        NodeRole::City,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Station => "station",
            NodeRole::Subdistrict => "subdistrict",
            NodeRole::District => "district",
            NodeRole::City => "city",
        }
    }

    pub fn parse(s: &str) -> Option<NodeRole> {
        NodeRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_hall(self) -> bool {
        self != NodeRole::Station
    }

    /// The division level a node of this role serves.
    pub fn division_level(self) -> DivisionLevel {
        match self {
            NodeRole::Station => DivisionLevel::Community,
            NodeRole::Subdistrict => DivisionLevel::Subdistrict,
            NodeRole::District => DivisionLevel::District,
            NodeRole::City => DivisionLevel::City,
        }
    }
}

/// A node as a registry records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeRecord {
    pub node: NodeId,
    #[serde(with = "hex32")]
    pub public_key: [u8; 32],
    pub role: NodeRole,
    pub division: DivisionCode,
    pub name: String,
    /// The hall that enrolled it (itself, for the root of a deployment).
    pub enrolled_by: NodeId,
    pub enrolled_ms: u64,
    #[serde(default)]
    pub revoked: Option<Revocation>,
    /// The node's part of the serial numbers it issues, given out by the hall that
    /// enrolled it (see [`crate::domain::serial`]); `None` for a node no hall enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Segment>,
}

/// A hall's revocation of a node's key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revocation {
    pub at_ms: u64,
    pub by: NodeId,
    pub reason: String,
    /// Per epoch, the last sequence number of the node's changes that stays valid: what
    /// the revoking hall had received. Everything later is refused, whatever time it claims.
    pub accepted_up_to: BTreeMap<u32, u64>,
}

impl NodeRecord {
    /// Whether this record's own fields hang together: the key gives the id, the division
    /// fits the role.
    pub fn is_consistent(&self) -> bool {
        NodeId::from_public_key(&self.public_key) == self.node
            && self.division.level() == self.role.division_level()
    }

    /// The segment the node puts in its serial numbers: the one its hall gave it, or, for
    /// a node no hall enrolled, the one it takes for itself ([`Segment::root`]).
    pub fn serial_segment(&self) -> Segment {
        self.segment
            .clone()
            .unwrap_or_else(|| Segment::root(&self.division, &self.node.0))
    }

    /// Whether the node may still act: not revoked.
    pub fn is_active(&self) -> bool {
        self.revoked.is_none()
    }

    /// Whether a change this node authored as `origin` at `seq` may be applied, as far as
    /// revocation goes.
    pub fn accepts(&self, origin: &Origin, seq: u64) -> bool {
        match &self.revoked {
            None => true,
            Some(r) => r
                .accepted_up_to
                .get(&origin.epoch)
                .is_some_and(|last| seq <= *last),
        }
    }
}

/// Whether `author` may write documents in `scope`.
pub fn may_write(author: &NodeRecord, scope: &Scope) -> bool {
    let division = scope.division();
    match scope.kind() {
        ScopeKind::Catalog | ScopeKind::Registry => {
            author.role.is_hall() && division.is_within(&author.division)
        }
        ScopeKind::Case => {
            (author.role == NodeRole::Station && author.division == division)
                || (author.role.is_hall() && division.is_within(&author.division))
        }
    }
}

/// Whether `reader` may receive documents in `scope`.
pub fn may_read(reader: &NodeRecord, scope: &Scope) -> bool {
    let division = scope.division();
    match scope.kind() {
        // Cases only go up (and back to their own station).
        ScopeKind::Case => division.is_within(&reader.division),
        // Catalogs and registries go down the tree and up to the halls above.
        ScopeKind::Catalog | ScopeKind::Registry => {
            reader.division.is_within(&division) || division.is_within(&reader.division)
        }
    }
}

/// The segment `hall` gives `child` when it enrolls it, given the records its registry
/// already holds: the lowest number not yet given out. A city hall gives a district the
/// segment of its code, and enrolls nothing else.
pub fn assign_segment<'a>(
    hall: &NodeRecord,
    child: &NodeRecord,
    enrolled: impl IntoIterator<Item = &'a NodeRecord>,
) -> Result<Segment, SegmentError> {
    let level = hall.division.level();
    if level == DivisionLevel::City {
        return if child.division.level() == DivisionLevel::District {
            Ok(Segment::root(&child.division, &child.node.0))
        } else {
            Err(SegmentError::NotAnEnrollingHall("city"))
        };
    }
    let own = hall.serial_segment();
    let taken: std::collections::HashSet<Segment> = enrolled
        .into_iter()
        .filter(|r| r.node != child.node)
        .filter_map(|r| r.segment.clone())
        .filter(|s| own.gave(level, s))
        .collect();
    if let Some(existing) = enrolled_segment(child, &own, level) {
        return Ok(existing);
    }
    (1..=Segment::MAX_ORDINAL)
        .map(|ordinal| own.child(level, ordinal))
        .find(|s| s.as_ref().is_ok_and(|s| !taken.contains(s)))
        .unwrap_or(Err(SegmentError::Exhausted(Segment::MAX_ORDINAL)))
}

/// A segment `child` already holds from this hall (a node enrolled again keeps it).
fn enrolled_segment(child: &NodeRecord, own: &Segment, level: DivisionLevel) -> Option<Segment> {
    child.segment.clone().filter(|s| own.gave(level, s))
}

/// Whether a hall with record `hall` may vouch for `record` in its registry.
pub fn may_vouch(hall: &NodeRecord, record: &NodeRecord) -> bool {
    hall.role.is_hall() && record.division.is_within(&hall.division) && record.is_consistent()
}

/// How a node stands to the cases of a division: what it may record on them follows from
/// this (see [`may_record`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseRelation {
    /// The node of the case's own division: it received the application and owns the case.
    Owner,
    /// A hall above that division: it receives the case, and decides, signs for and
    /// supervises it, but the counter's acts (acceptance, refusal, materials, the
    /// applicant's withdrawal and rating) are the owner's.
    Above,
}

/// How `node` stands to the cases of `division`, or `None` if it may not write them.
pub fn case_relation(node: &NodeRecord, division: &DivisionCode) -> Option<CaseRelation> {
    if node.division == *division {
        Some(CaseRelation::Owner)
    } else if node.role.is_hall() && division.is_within(&node.division) {
        Some(CaseRelation::Above)
    } else {
        None
    }
}

/// What a rule about recording an event needs to know besides the node's relation to the
/// case: the event's kind, the department it is recorded for (a department without a node
/// of its own, 代为签收/代录决定), and the department that delegated the item's acceptance
/// to the receiving office (代为受理, SZDB/Z 176 §5.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recording<'a> {
    pub kind: ActionKind,
    pub on_behalf_of: Option<&'a str>,
    pub delegated_by: Option<&'a str>,
}

impl<'a> Recording<'a> {
    /// The recording of `action` on a case of `item`.
    pub fn of(action: &'a Action, item: &'a ItemSnapshot) -> Recording<'a> {
        Recording::delegated(action, item.delegated_by.as_deref())
    }

    /// The recording of `action` on a case whose item's acceptance `delegated_by` a
    /// department (what a receiver reads of the intake).
    pub fn delegated(action: &'a Action, delegated_by: Option<&'a str>) -> Recording<'a> {
        let on_behalf_of = match action {
            Action::Decide { on_behalf_of, .. } | Action::SignFor { on_behalf_of, .. } => {
                on_behalf_of.as_deref()
            }
            _ => None,
        };
        Recording {
            kind: action.kind(),
            on_behalf_of,
            delegated_by,
        }
    }
}

/// Which events a node may record on a case, by its relation to the case. One rule for
/// the node's own writes (the engine's `may`) and for every change it receives
/// (`effect`):
///
/// * the owner (the receiving office) records everything, except that on an item it
///   accepts on a department's behalf (代为受理) the decision is the department's: the
///   owner enters one only on that department's behalf;
/// * a hall above decides, signs for, supervises and extends, finishes the process steps
///   of a case sent to it (§9.2.2), and its workers ask its lead for extensions; the counter's acts (acceptance, refusal, materials, the
///   applicant's withdrawal and rating) are the owner's.
pub fn may_record(relation: CaseRelation, recording: Recording<'_>) -> bool {
    use ActionKind as A;
    match relation {
        CaseRelation::Owner => match (recording.kind, recording.delegated_by) {
            (A::Decide, Some(department)) => recording.on_behalf_of == Some(department),
            _ => true,
        },
        CaseRelation::Above => matches!(
            recording.kind,
            A::Suspend
                | A::Resume
                | A::Extend
                | A::RequestExtension
                | A::DeclineExtension
                | A::Decide
                | A::Complete
                | A::Transfer
                | A::SignFor
                | A::Resolve
                | A::FinishStep
        ),
    }
}

/// Whether `node` may record the decision on a case whose item `decider` decides (SZDB/Z
/// 176 §5.7.2: the department's head authorizes its window; the decision is the
/// department's): only the hall where the department works. One rule for the engine's
/// local act and for every receiver's judgement of a decision event; a case without a
/// deciding department leaves it to [`may_record`].
pub fn may_decide(node: NodeId, decider: Option<&crate::domain::department::Decider>) -> bool {
    decider.is_none_or(|d| d.hall == node)
}

/// Why a change was refused. [`Refusal::code`] names the reason for people's screens; the
/// `Display` text is for logs and the command line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the origin node {0} is not known here")]
    UnknownOrigin(NodeId),
    #[error("node {0} is revoked; its changes after the revocation are refused")]
    Revoked(NodeId),
    #[error("node {node} ({role} {division}) may not write {scope}")]
    NotAuthorized {
        node: NodeId,
        role: &'static str,
        division: String,
        scope: String,
    },
    #[error("the change was written under another Automerge actor than its origin {origin}")]
    ForeignActor { origin: String },
    #[error("{doc} is not a document id this node knows")]
    UnknownDocument { doc: String },
    #[error(
        "the change lands in {doc}, a {kind}{}, but is labelled a {label_kind} of {label_scope}",
        .scope.as_ref().map(|s| format!(" of {s}")).unwrap_or_default()
    )]
    Mislabelled {
        doc: String,
        kind: &'static str,
        /// The document's own scope, when this node holds it.
        scope: Option<String>,
        label_kind: &'static str,
        label_scope: String,
    },
    #[error("the change to {doc} builds on a change that was refused")]
    BuildsOnRefused { doc: String },
    #[error("the change to {doc} is not allowed: it {what}")]
    Effect { doc: String, what: String },
    #[error("node {node} ({role}) may not record a {kind} event on case {doc}")]
    EventNotAllowed {
        node: NodeId,
        role: &'static str,
        kind: &'static str,
        doc: String,
    },
    #[error("hall {hall} may not vouch for node {node} in its registry")]
    BadRecord { node: NodeId, hall: NodeId },
    #[error("{0}")]
    Apply(String),
    #[error("{scope} is not meant for this node")]
    NotForThisNode { scope: String },
    #[error("the change claims to be this node's own ({origin}), which only it writes")]
    OwnOrigin { origin: String },
    #[error("{0}")]
    Unverified(String),
}

impl Refusal {
    /// A stable name for the reason, which the UI words in the reader's language.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownOrigin(_) => "unknown_origin",
            Refusal::Revoked(_) => "revoked",
            Refusal::NotAuthorized { .. } => "not_authorized",
            Refusal::ForeignActor { .. } => "foreign_actor",
            Refusal::UnknownDocument { .. } => "unknown_document",
            Refusal::Mislabelled { .. } => "mislabelled",
            Refusal::BuildsOnRefused { .. } => "builds_on_refused",
            Refusal::Effect { .. } => "forbidden_effect",
            Refusal::EventNotAllowed { .. } => "event_not_allowed",
            Refusal::BadRecord { .. } => "bad_record",
            Refusal::Apply(_) => "cannot_apply",
            Refusal::NotForThisNode { .. } => "not_for_this_node",
            Refusal::OwnOrigin { .. } => "own_origin",
            Refusal::Unverified(_) => "unverified",
        }
    }
}

/// The keys this node trusts: its own pins (itself, the nodes above it, the nodes it
/// enrolled) and every record in the registries it holds.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    nodes: HashMap<NodeId, NodeRecord>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds or replaces a record. A revoked record is never replaced by an unrevoked one.
    pub fn insert(&mut self, record: NodeRecord) {
        if let Some(existing) = self.nodes.get(&record.node)
            && existing.revoked.is_some()
            && record.revoked.is_none()
        {
            return;
        }
        self.nodes.insert(record.node, record);
    }

    pub fn get(&self, node: &NodeId) -> Option<&NodeRecord> {
        self.nodes.get(node)
    }

    pub fn records(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.values()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Checks that a change by `origin` at `seq` may go into `scope`.
    pub fn check_write(
        &self,
        origin: &Origin,
        seq: u64,
        scope: &Scope,
    ) -> Result<&NodeRecord, Refusal> {
        let record = self
            .get(&origin.node)
            .ok_or(Refusal::UnknownOrigin(origin.node))?;
        if !record.accepts(origin, seq) {
            return Err(Refusal::Revoked(origin.node));
        }
        if !may_write(record, scope) {
            return Err(Refusal::NotAuthorized {
                node: origin.node,
                role: record.role.as_str(),
                division: record.division.to_string(),
                scope: scope.to_string(),
            });
        }
        Ok(record)
    }
}

mod hex32 {
    use super::{hex, unhex};

    pub fn serialize<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        unhex(&text)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("a public key is 64 hex digits"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn record(seed: u8, role: NodeRole, division: &str) -> NodeRecord {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes();
        NodeRecord {
            node: NodeId::from_public_key(&key),
            public_key: key,
            role,
            division: DivisionCode::parse(division).unwrap(),
            name: format!("node {seed}"),
            enrolled_by: NodeId([0; 16]),
            enrolled_ms: 0,
            revoked: None,
            segment: None,
        }
    }

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    #[test]
    fn who_writes_and_reads_what() {
        let city = record(1, NodeRole::City, "440300");
        let district = record(2, NodeRole::District, "440304");
        let sub = record(3, NodeRole::Subdistrict, "440304001");
        let station_a = record(4, NodeRole::Station, "440304001001");
        let station_b = record(5, NodeRole::Station, "440304001002");
        let other_district = record(6, NodeRole::District, "440305");
        // (node, scope, may write, may read)
        let table = [
            (&district, "catalog/440304", true, true),
            (&city, "catalog/440304", true, true),
            (&sub, "catalog/440304", false, true),
            (&station_a, "catalog/440304", false, true),
            (&other_district, "catalog/440304", false, false),
            (&sub, "catalog/440304001", true, true),
            (&station_a, "case/440304001001", true, true),
            (&station_b, "case/440304001001", false, false),
            (&sub, "case/440304001001", true, true),
            (&district, "case/440304001001", true, true),
            (&other_district, "case/440304001001", false, false),
            (&station_a, "registry/440304001", false, true),
            (&sub, "registry/440304001", true, true),
            (&district, "registry/440304001", true, true),
            (&district, "registry/440304", true, true),
            (&station_a, "registry/440304", false, true),
            (&other_district, "registry/440304", false, false),
        ];
        for (node, s, write, read) in table {
            assert_eq!(
                may_write(node, &scope(s)),
                write,
                "{} writes {s}",
                node.name
            );
            assert_eq!(may_read(node, &scope(s)), read, "{} reads {s}", node.name);
        }
    }

    #[test]
    fn revocation_keeps_what_was_received_and_refuses_the_rest() {
        let mut station = record(4, NodeRole::Station, "440304001001");
        let origin = Origin {
            node: station.node,
            epoch: 1,
        };
        let case_scope = scope("case/440304001001");
        let mut registry = Registry::new();
        registry.insert(station.clone());
        assert!(registry.check_write(&origin, 100, &case_scope).is_ok());
        station.revoked = Some(Revocation {
            at_ms: 1,
            by: NodeId([0; 16]),
            reason: "stolen".into(),
            accepted_up_to: BTreeMap::from([(1, 40)]),
        });
        registry.insert(station.clone());
        assert!(registry.check_write(&origin, 40, &case_scope).is_ok());
        assert_eq!(
            registry.check_write(&origin, 41, &case_scope).unwrap_err(),
            Refusal::Revoked(station.node)
        );
        let new_epoch = Origin { epoch: 2, ..origin };
        assert!(
            registry.check_write(&new_epoch, 1, &case_scope).is_err(),
            "a restored copy is revoked too"
        );
        // A stale, unrevoked copy of the record never undoes the revocation.
        station.revoked = None;
        registry.insert(station);
        assert!(registry.check_write(&origin, 41, &case_scope).is_err());
        let stranger = Origin {
            node: NodeId([9; 16]),
            epoch: 1,
        };
        assert!(matches!(
            registry.check_write(&stranger, 1, &case_scope),
            Err(Refusal::UnknownOrigin(_))
        ));
        let err = {
            let mut r = Registry::new();
            r.insert(record(4, NodeRole::Station, "440304001001"));
            r.check_write(&origin, 1, &scope("catalog/440304"))
                .unwrap_err()
        };
        assert!(
            err.to_string().contains("may not write catalog/440304"),
            "{err}"
        );
    }

    /// Who records what on a case: the relation, the event, whom it is recorded for and
    /// whether the item was delegated; one table for the engine and the receivers.
    #[test]
    fn who_records_what_on_a_case() {
        use ActionKind as A;
        use CaseRelation::{Above, Owner};
        let dept = Some("示范区民政局");
        // (relation, kind, on behalf of, delegated by, may record)
        type Row<'a> = (CaseRelation, A, Option<&'a str>, Option<&'a str>, bool);
        let table: &[Row] = &[
            (Owner, A::Accept, None, None, true),
            (Owner, A::Accept, None, dept, true),
            (Owner, A::Decide, None, None, true),
            (Owner, A::Decide, None, dept, false),
            (Owner, A::Decide, Some("另一部门"), dept, false),
            (Owner, A::Decide, dept, dept, true),
            (Owner, A::Decide, Some("福田区民政局"), None, true),
            (Owner, A::Complete, None, dept, true),
            (Owner, A::SignFor, dept, None, true),
            (Owner, A::RequestExtension, None, None, true),
            (Owner, A::DeclineExtension, None, None, true),
            (Above, A::Accept, None, None, false),
            (Above, A::Refuse, None, None, false),
            (Above, A::Withdraw, None, None, false),
            (Above, A::Rate, None, None, false),
            (Above, A::Supplement, None, None, false),
            (Above, A::Decide, None, dept, true),
            (Above, A::Decide, None, None, true),
            (Above, A::Extend, None, None, true),
            (Above, A::RequestExtension, None, None, true),
            (Above, A::DeclineExtension, None, None, true),
            (Above, A::SignFor, None, None, true),
            (Above, A::Resolve, None, None, true),
        ];
        for (relation, kind, on_behalf_of, delegated_by, expected) in table {
            let recording = Recording {
                kind: *kind,
                on_behalf_of: *on_behalf_of,
                delegated_by: *delegated_by,
            };
            assert_eq!(
                may_record(*relation, recording),
                *expected,
                "{relation:?} {recording:?}"
            );
        }
    }

    #[test]
    fn halls_vouch_only_for_their_subtree() {
        let sub = record(3, NodeRole::Subdistrict, "440304001");
        assert!(may_vouch(
            &sub,
            &record(4, NodeRole::Station, "440304001001")
        ));
        assert!(!may_vouch(
            &sub,
            &record(5, NodeRole::Station, "440304002001")
        ));
        assert!(!may_vouch(
            &record(4, NodeRole::Station, "440304001001"),
            &record(5, NodeRole::Station, "440304001001")
        ));
        let mut inconsistent = record(6, NodeRole::Station, "440304001003");
        inconsistent.node = NodeId([1; 16]);
        assert!(!may_vouch(&sub, &inconsistent));
        let json = serde_json::to_string(&record(4, NodeRole::Station, "440304001001")).unwrap();
        let back: NodeRecord = serde_json::from_str(&json).unwrap();
        assert!(back.is_consistent());
    }
}
