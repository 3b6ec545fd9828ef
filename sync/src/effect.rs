//! Authorization by effect (DESIGN §5): a received change is judged by the document it
//! lands in and by what its operations do there, never by the label on its envelope.
//!
//! The envelope's kind, scope and document id are claims. A receiver checks them against
//! what it can know without trusting the sender:
//!
//! * **The document's identity.** Every document id names its kind (`c-` a case, `i-` a
//!   catalog item, `r-` a hall's registry), and its kind and scope are written by the
//!   change that creates it. A change to a document this node holds must carry that
//!   document's own kind and scope; a change to a document it does not hold must be the
//!   creating change, and what it writes must agree with the id (a case's intake names
//!   the node in its id, an item's JSON the implementation code in its id).
//! * **The operations.** The Automerge change is decoded and every operation is checked
//!   against the shape of its kind of document: a case's intake and header never change
//!   after creation and its events are only ever added, under their own ids, by the node
//!   they name; an item document only replaces its item; a registry only adds or replaces
//!   node records its hall may vouch for. Nothing is ever deleted.
//! * **The author.** Its role and division (from the registry, after the signature
//!   checked out) decide which of those effects it may have: a station writes its own
//!   cases, a hall above adds the events a hall may record ([`auth::may_record`]), only a
//!   hall writes its own registry, only halls at or above a catalog write its items.
//! * **The actor.** The change's Automerge actor must be the envelope's origin, so nobody
//!   can write under another node's actor and poison its later changes.
//!
//! Anything else is refused with a [`Refusal`] that says why; the node quarantines it and
//! never applies or forwards it.

use automerge::legacy::{Key, ObjectId, Op, OpId, OpType};
use automerge::{Automerge, Change, ExpandedChange, ObjType, ROOT, ReadDoc, ScalarValue};

use crate::auth::{self, NodeRecord, Refusal};
use crate::doc;
use crate::domain::attachment::Attachment;
use crate::domain::case::{Event, Intake};
use crate::domain::codes::DivisionLevel;
use crate::domain::department::Department;
use crate::domain::item::Item;
use crate::domain::notice;
use crate::domain::serial::{self, Segment, SerialNo};
use crate::domain::staff::StaffAccount;
use crate::domain::supervision::{Notification, SupervisionNotice, SupervisionReply};
use crate::envelope::Envelope;
use crate::ids::{DocId, DocKind, NodeId, Scope};

use std::collections::HashMap;

/// What a receiver does with one authentic change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Apply it.
    Allow,
    /// Never apply it, never forward it.
    Refuse(Refusal),
    /// It cannot be judged yet (the document it changes or changes it depends on are not
    /// here, or it was written by a newer version); ask again later.
    Defer(String),
}

/// The kind of document an id names, from its prefix.
pub fn kind_of_id(id: &DocId) -> Option<DocKind> {
    DocKind::of_id(id)
}

/// The node that created a case, from the case's id (`c-<time>-<node>`).
pub fn case_creator(id: &DocId) -> Option<NodeId> {
    let rest = id.as_str().strip_prefix("c-")?;
    let (time, node) = rest.split_once('-')?;
    (time.len() == 16 && time.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| NodeId::parse_hex(node))
        .flatten()
}

/// Judges one change that arrived with `envelope`, written by `author`, that would land
/// in `held` (the document as this node holds it; `None` if it holds none by that id).
///
/// `is_refused` tells whether a change hash is one this node refused (or was told was
/// refused upstream): a change that depends on one is refused too, since what it builds on
/// will never be here.
pub fn judge(
    author: &NodeRecord,
    envelope: &Envelope,
    change: &Change,
    held: Option<&Automerge>,
    is_refused: &dyn Fn(&[u8; 32]) -> bool,
) -> Judgement {
    judge_knowing(author, envelope, change, held, is_refused, None)
}

/// What a receiver knows of the catalog item a new case names, to check the item the
/// intake froze against (§5.7.2): a station cannot drop or change the department that
/// decides the case to decide it itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemFacts {
    /// The version of the item this node holds.
    pub version: u32,
    /// The department that version names as deciding (its code), and that department's
    /// hall where this node holds the department.
    pub decided_by: Option<String>,
    pub hall: Option<NodeId>,
    /// A combined item's parts (并联审批, §7.5): each deciding department's code and, where
    /// this node holds it, its hall.
    pub parts: Vec<(String, Option<NodeId>)>,
    /// The fee lines that version lists (§9.5): a case charges exactly these.
    pub fees: Vec<crate::domain::item::FeeLine>,
}

/// The implementation code and version of the item a case's creating change freezes, if
/// the change creates a case: what [`ItemFacts`] are looked up for.
pub fn created_case_item(change: &Change) -> Option<(String, u32)> {
    #[derive(serde::Deserialize)]
    struct Frozen {
        impl_code: String,
        version: u32,
    }
    #[derive(serde::Deserialize)]
    struct IntakeItem {
        item: Frozen,
    }
    let expanded = change.decode();
    expanded.operations.iter().find_map(|op| {
        (op.obj == ObjectId::Root && key_of(op) == Some("intake"))
            .then(|| put_str(op))
            .flatten()
            .and_then(|text| serde_json::from_str::<IntakeItem>(text).ok())
            .map(|i| (i.item.impl_code, i.item.version))
    })
}

/// [`judge`], with what this node knows of the item a new case names.
pub fn judge_knowing(
    author: &NodeRecord,
    envelope: &Envelope,
    change: &Change,
    held: Option<&Automerge>,
    is_refused: &dyn Fn(&[u8; 32]) -> bool,
    item: Option<&ItemFacts>,
) -> Judgement {
    judge_remembering(
        author,
        envelope,
        change,
        held,
        is_refused,
        item,
        &mut Memo::default(),
    )
}

/// What judging read of the documents a batch changes, kept for the batch's later changes
/// to the same documents: a case's item rules are fixed at intake (a later change to its
/// root is refused), and parsing them again for every event was about a tenth of a hall's
/// engine time on a push (profiled, docs/benchmarks.md). Keyed by document, so one memo
/// serves a whole batch; only what was read successfully is kept.
#[derive(Debug, Default)]
pub struct Memo {
    rules: HashMap<DocId, doc::ItemRules>,
}

impl Memo {
    /// The item rules of the case `held` (the document `id`), read once.
    fn item_rules(
        &mut self,
        id: &DocId,
        held: &Automerge,
    ) -> Result<&doc::ItemRules, doc::DocError> {
        if !self.rules.contains_key(id) {
            let rules = doc::read_item_rules(held)?;
            self.rules.insert(id.clone(), rules);
        }
        Ok(&self.rules[id])
    }
}

/// [`judge_knowing`], reading each document's fixed parts once per [`Memo`] (the engine
/// keeps one for a batch).
pub fn judge_remembering(
    author: &NodeRecord,
    envelope: &Envelope,
    change: &Change,
    held: Option<&Automerge>,
    is_refused: &dyn Fn(&[u8; 32]) -> bool,
    item: Option<&ItemFacts>,
    memo: &mut Memo,
) -> Judgement {
    match judge_inner(author, envelope, change, held, is_refused, item, memo) {
        Ok(()) => Judgement::Allow,
        Err(Verdict::Refuse(refusal)) => Judgement::Refuse(refusal),
        Err(Verdict::Defer(why)) => Judgement::Defer(why),
    }
}

enum Verdict {
    Refuse(Refusal),
    Defer(String),
}

impl From<Refusal> for Verdict {
    fn from(refusal: Refusal) -> Verdict {
        Verdict::Refuse(refusal)
    }
}

fn effect(envelope: &Envelope, what: impl Into<String>) -> Verdict {
    Verdict::Refuse(Refusal::Effect {
        doc: envelope.doc.to_string(),
        what: what.into(),
    })
}

fn judge_inner(
    author: &NodeRecord,
    envelope: &Envelope,
    change: &Change,
    held: Option<&Automerge>,
    is_refused: &dyn Fn(&[u8; 32]) -> bool,
    item: Option<&ItemFacts>,
    memo: &mut Memo,
) -> Result<(), Verdict> {
    if change.actor_id().to_bytes() != envelope.origin.actor_bytes() {
        return Err(Refusal::ForeignActor {
            origin: envelope.origin.to_string(),
        }
        .into());
    }
    let id_kind = kind_of_id(&envelope.doc).ok_or_else(|| Refusal::UnknownDocument {
        doc: envelope.doc.to_string(),
    })?;
    if id_kind != envelope.kind {
        return Err(mislabelled(envelope, id_kind, None));
    }
    // The document this change really lands in, as this node knows it.
    let held = match held {
        Some(document) if !document.get_heads().is_empty() => Some(document),
        _ => None,
    };
    if let Some(document) = held {
        let (kind, scope) = doc::header(document).map_err(|e| match e {
            doc::DocError::NewerSchema(_) => Verdict::Defer(e.to_string()),
            other => effect(
                envelope,
                format!("the document it changes is damaged: {other}"),
            ),
        })?;
        if kind != envelope.kind || scope != envelope.scope {
            return Err(mislabelled(envelope, kind, Some(&scope)));
        }
        let missing = document.get_missing_deps(change.deps());
        if !missing.is_empty() {
            if missing.iter().any(|h| is_refused(&h.0)) {
                return Err(Refusal::BuildsOnRefused {
                    doc: envelope.doc.to_string(),
                }
                .into());
            }
            return Err(Verdict::Defer(format!(
                "it depends on {} change(s) of {} this node does not have yet",
                missing.len(),
                envelope.doc
            )));
        }
    } else if !change.deps().is_empty() {
        if change.deps().iter().any(|h| is_refused(&h.0)) {
            return Err(Refusal::BuildsOnRefused {
                doc: envelope.doc.to_string(),
            }
            .into());
        }
        return Err(Verdict::Defer(format!(
            "it changes {}, which this node does not have yet",
            envelope.doc
        )));
    }
    let expanded = change.decode();
    let division = envelope.scope.division();
    match envelope.kind {
        DocKind::Case => {
            let relation =
                auth::case_relation(author, &division).ok_or_else(|| Refusal::NotAuthorized {
                    node: author.node,
                    role: author.role.as_str(),
                    division: author.division.to_string(),
                    scope: envelope.scope.to_string(),
                })?;
            match held {
                None => case_creation(author, envelope, &expanded, item),
                Some(document) => {
                    case_events(author, relation, envelope, &expanded, document, memo)
                }
            }
        }
        DocKind::Item => {
            if !auth::may_write(author, &envelope.scope) {
                return Err(not_authorized(author, &envelope.scope));
            }
            // Only the hall that authored an item publishes its later versions.
            if let Some(document) = held
                && creator(document) != Some(author.node)
            {
                return Err(not_authorized(author, &envelope.scope));
            }
            item_change(author, envelope, &expanded, held.is_none())
        }
        DocKind::Notice | DocKind::Supervision | DocKind::Reply => {
            if held.is_some() {
                return Err(effect(
                    envelope,
                    "changes a record that is never changed once written (a correction is a new record)",
                ));
            }
            let relation = auth::case_relation(author, &division)
                .ok_or_else(|| not_authorized(author, &envelope.scope))?;
            let (texts, _) =
                creation_header(envelope, &expanded, doc::record_fields(envelope.kind), None)?;
            record_creation(author, relation, envelope, &texts)
        }
        DocKind::Notification => {
            if held.is_some() {
                return Err(effect(
                    envelope,
                    "changes a notification, which is never changed once published",
                ));
            }
            // Only the hall whose catalog scope it is publishes there: the scope reaches
            // exactly the nodes below that hall.
            if !author.role.is_hall()
                || envelope.scope.kind() != crate::ids::ScopeKind::Catalog
                || author.division != division
            {
                return Err(not_authorized(author, &envelope.scope));
            }
            let (texts, _) =
                creation_header(envelope, &expanded, doc::record_fields(envelope.kind), None)?;
            notification_creation(author, envelope, &texts)
        }
        DocKind::Staff => {
            // Only the hall whose catalog scope it is writes its accounts there (the scope
            // reaches exactly the hall's subtree), and only the hall that created one
            // changes it: a parent hall does not write into a child hall's accounts.
            if !author.role.is_hall()
                || envelope.scope.kind() != crate::ids::ScopeKind::Catalog
                || author.division != division
                || held.is_some_and(|d| creator(d) != Some(author.node))
            {
                return Err(not_authorized(author, &envelope.scope));
            }
            staff_change(author, envelope, &expanded, held)
        }
        DocKind::Attachment => {
            if held.is_some() {
                return Err(effect(
                    envelope,
                    "changes an attachment, which is never changed once published",
                ));
            }
            // Only the hall whose catalog scope it is publishes there, as it publishes
            // the items that name it.
            if !author.role.is_hall()
                || envelope.scope.kind() != crate::ids::ScopeKind::Catalog
                || author.division != division
            {
                return Err(not_authorized(author, &envelope.scope));
            }
            attachment_creation(envelope, &expanded)
        }
        DocKind::Department => {
            // Only the hall whose catalog scope it is defines its departments (§9.6), and
            // only the hall that created one republishes it.
            if !author.role.is_hall()
                || envelope.scope.kind() != crate::ids::ScopeKind::Catalog
                || author.division != division
                || held.is_some_and(|d| creator(d) != Some(author.node))
            {
                return Err(not_authorized(author, &envelope.scope));
            }
            department_change(author, envelope, &expanded, held)
        }
        DocKind::Calendar => {
            if !auth::may_write(author, &envelope.scope) {
                return Err(not_authorized(author, &envelope.scope));
            }
            if let Some(document) = held
                && creator(document) != Some(author.node)
            {
                return Err(not_authorized(author, &envelope.scope));
            }
            calendar_change(envelope, &expanded, held.is_none())
        }
        DocKind::Registry => {
            // Only the hall of the registry's own division writes it: the node that
            // created it.
            if !author.role.is_hall()
                || author.division != division
                || held.is_some_and(|d| creator(d) != Some(author.node))
            {
                return Err(not_authorized(author, &envelope.scope));
            }
            if envelope.doc != doc::registry_doc_id(&division) {
                return Err(Refusal::UnknownDocument {
                    doc: envelope.doc.to_string(),
                }
                .into());
            }
            registry_change(author, envelope, &expanded, held)
        }
    }
}

/// The node that created a document: the author of its `kind`, which only the creating
/// change writes.
fn creator(document: &Automerge) -> Option<NodeId> {
    match document.get(ROOT, "kind").ok()?? {
        (_, automerge::ObjId::Id(_, actor, _)) => {
            let bytes: [u8; 16] = actor.to_bytes().get(..16)?.try_into().ok()?;
            Some(NodeId(bytes))
        }
        (_, automerge::ObjId::Root) => None,
    }
}

fn not_authorized(author: &NodeRecord, scope: &Scope) -> Verdict {
    Verdict::Refuse(Refusal::NotAuthorized {
        node: author.node,
        role: author.role.as_str(),
        division: author.division.to_string(),
        scope: scope.to_string(),
    })
}

fn mislabelled(envelope: &Envelope, kind: DocKind, scope: Option<&Scope>) -> Verdict {
    Verdict::Refuse(Refusal::Mislabelled {
        doc: envelope.doc.to_string(),
        kind: kind.as_str(),
        scope: scope.map(Scope::to_string),
        label_kind: envelope.kind.as_str(),
        label_scope: envelope.scope.to_string(),
    })
}

fn key_of(op: &Op) -> Option<&str> {
    match &op.key {
        Key::Map(key) => Some(key.as_str()),
        Key::Seq(_) => None,
    }
}

fn put_str(op: &Op) -> Option<&str> {
    match &op.action {
        OpType::Put(ScalarValue::Str(text)) => Some(text.as_str()),
        _ => None,
    }
}

/// The id of the `index`-th operation of a change.
fn op_id(expanded: &ExpandedChange, index: usize) -> OpId {
    OpId(
        expanded.start_op.get() + index as u64,
        expanded.actor_id.clone(),
    )
}

/// The object id of a map held in a document, in the form changes use.
fn held_object(document: &Automerge, key: &str) -> Option<ObjectId> {
    match document.get(ROOT, key).ok()?? {
        (automerge::Value::Object(ObjType::Map), automerge::ObjId::Id(counter, actor, _)) => {
            Some(ObjectId::Id(OpId(counter, actor)))
        }
        _ => None,
    }
}

/// What a creating change wrote: its text fields by key, and the map it made.
type Creation<'a> = (Vec<(&'a str, &'a str)>, Option<OpId>);

/// Checks the root operations of a creating change: exactly the header keys with the
/// envelope's kind and scope, each written once, plus the keys `body` names with the
/// checks it applies. Returns the id of the map made under `map_key`, if any.
fn creation_header<'a>(
    envelope: &Envelope,
    expanded: &'a ExpandedChange,
    body: &[&str],
    map_key: Option<&str>,
) -> Result<Creation<'a>, Verdict> {
    if expanded.seq != 1 {
        return Err(effect(
            envelope,
            "a new document must start with its creation",
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut texts = Vec::new();
    let mut made = None;
    for (index, op) in expanded.operations.iter().enumerate() {
        if op.obj != ObjectId::Root {
            continue;
        }
        let key = key_of(op).ok_or_else(|| effect(envelope, "a list operation at the root"))?;
        if seen.contains(&key) || !op.pred.is_empty() || op.insert {
            return Err(effect(envelope, format!("{key} written twice at creation")));
        }
        seen.push(key);
        match (key, &op.action) {
            ("schema", OpType::Put(ScalarValue::Int(n))) => {
                if *n > doc::SCHEMA {
                    return Err(Verdict::Defer(format!(
                        "{} has schema {n}, newer than this node knows; upgrade this node",
                        envelope.doc
                    )));
                }
                if *n < 1 {
                    return Err(effect(envelope, "a document schema below 1"));
                }
            }
            ("kind", _) if put_str(op) == Some(envelope.kind.as_str()) => {}
            ("scope", _) if put_str(op) == Some(envelope.scope.as_str()) => {}
            // An attachment's bytes, checked against its record by `attachment_creation`.
            ("content", OpType::Put(ScalarValue::Bytes(_)))
                if envelope.kind == DocKind::Attachment => {}
            (key, OpType::Make(ObjType::Map)) if Some(key) == map_key => {
                made = Some(op_id(expanded, index));
            }
            (key, _) if body.contains(&key) => {
                let text =
                    put_str(op).ok_or_else(|| effect(envelope, format!("{key} is not text")))?;
                texts.push((key, text));
            }
            (key, _) => {
                return Err(effect(
                    envelope,
                    format!("writes {key} at the root of a {}", envelope.kind.as_str()),
                ));
            }
        }
    }
    let mut needed = vec!["schema", "kind", "scope"];
    needed.extend_from_slice(body);
    needed.extend(map_key);
    if envelope.kind == DocKind::Attachment {
        needed.push("content");
    }
    if let Some(absent) = needed.iter().find(|k| !seen.contains(k)) {
        return Err(effect(
            envelope,
            format!("creates a {} without {absent}", envelope.kind.as_str()),
        ));
    }
    Ok((texts, made))
}

fn case_creation(
    author: &NodeRecord,
    envelope: &Envelope,
    expanded: &ExpandedChange,
    item: Option<&ItemFacts>,
) -> Result<(), Verdict> {
    let (texts, events_map) = creation_header(envelope, expanded, &["intake"], Some("events"))?;
    let intake_text = texts
        .iter()
        .find(|(k, _)| *k == "intake")
        .map(|(_, v)| *v)
        .unwrap_or_default();
    let intake: Intake = serde_json::from_str(intake_text)
        .map_err(|e| effect(envelope, format!("its intake does not read: {e}")))?;
    crate::domain::case::check_received_intake(&intake)
        .map_err(|refused| effect(envelope, format!("its intake: {refused}")))?;
    crate::domain::case::check_situations(
        &intake.situations,
        intake.item.situations.iter().map(String::as_str),
    )
    .map_err(|e| effect(envelope, format!("its intake: {e}")))?;
    let division = envelope.scope.division();
    if intake.node != author.node
        || intake.doc_id() != envelope.doc
        || case_creator(&envelope.doc) != Some(author.node)
    {
        return Err(effect(
            envelope,
            "creates a case in another node's name (the intake and the id must name its author)",
        ));
    }
    if intake.division != division || author.division != division {
        return Err(effect(
            envelope,
            "creates a case outside its author's own division",
        ));
    }
    // The deciding department as the catalog's item of that version names it (§5.7.2),
    // where this node holds that version: never dropped, never another. A sub-case's is
    // its part's, checked with the parts below.
    if let Some(facts) = item.filter(|f| f.version == intake.item.version)
        && intake.part_of.is_none()
    {
        let frozen = intake.item.decided_by.as_ref();
        let same_code = match (frozen, &facts.decided_by) {
            (None, None) => true,
            (Some(d), Some(code)) => d.code.eq_ignore_ascii_case(code),
            _ => false,
        };
        let same_hall = match (frozen, facts.hall) {
            (Some(d), Some(hall)) => d.hall == hall,
            _ => true,
        };
        if !same_code || !same_hall {
            return Err(effect(
                envelope,
                "freezes its item with another deciding department than the catalog names",
            ));
        }
        // §9.5.1: no fee line the catalog's version does not list, none dropped.
        if intake.item.fees != facts.fees {
            return Err(effect(
                envelope,
                "freezes its item with other fee lines than the catalog's version lists (§9.5)",
            ));
        }
    }
    // 并联审批 (§7.5): a sub-case bound to its part's department under its part's limits,
    // to an earlier case of its own node; a whole within 45 (+15) days (行政许可法 §26).
    let own_time = envelope.doc.as_str().get(2..18).unwrap_or_default();
    crate::domain::combined::check_binding(&intake, |parent| {
        DocId::parse(parent).is_some_and(|p| {
            case_creator(&p) == Some(author.node)
                && p.as_str().get(2..18).is_some_and(|t| t < own_time)
        })
    })
    .map_err(|what| effect(envelope, what))?;
    // The parts as the catalog's item of that version names them, where this node holds it.
    if let Some(facts) = item.filter(|f| f.version == intake.item.version) {
        let frozen = &intake.item.parts;
        let same = frozen.len() == facts.parts.len()
            && frozen.iter().zip(&facts.parts).all(|(part, (code, hall))| {
                part.decider.code.eq_ignore_ascii_case(code)
                    && hall.is_none_or(|h| h == part.decider.hall)
            });
        if !same {
            return Err(effect(
                envelope,
                "freezes its item with other parts or departments than the catalog names",
            ));
        }
    }
    let events_map = events_map.map(ObjectId::Id);
    for op in expanded
        .operations
        .iter()
        .filter(|op| op.obj != ObjectId::Root)
    {
        if Some(&op.obj) != events_map.as_ref() {
            return Err(effect(envelope, "writes outside the case's fields"));
        }
        let rules = doc::ItemRules {
            delegated_by: intake.item.delegated_by.clone(),
            decided_by: intake.item.decided_by.clone(),
            parts: intake.item.parts.clone(),
            fees: intake.item.fees.clone(),
        };
        event_op(
            author,
            auth::CaseRelation::Owner,
            &rules,
            envelope,
            op,
            None,
        )?;
    }
    Ok(())
}

fn case_events(
    author: &NodeRecord,
    relation: auth::CaseRelation,
    envelope: &Envelope,
    expanded: &ExpandedChange,
    held: &Automerge,
    memo: &mut Memo,
) -> Result<(), Verdict> {
    let events = held_object(held, "events")
        .ok_or_else(|| effect(envelope, "the case it changes has no event list"))?;
    // Of the intake, judging an event needs only the department the item's acceptance was
    // delegated by and the one that decides; the events map is looked up once for all the
    // change's operations.
    let rules = memo
        .item_rules(&envelope.doc, held)
        .map_err(|e| effect(envelope, format!("the case it changes cannot be read: {e}")))?;
    let events_id = match held.get(ROOT, "events") {
        Ok(Some((_, id))) => id,
        _ => return Err(effect(envelope, "the case it changes has no event list")),
    };
    let mut keys: Vec<&str> = Vec::new();
    for op in &expanded.operations {
        if op.obj == ObjectId::Root {
            return Err(effect(
                envelope,
                "rewrites a case's intake or header, which never change after intake",
            ));
        }
        if op.obj != events {
            return Err(effect(envelope, "writes outside the case's event list"));
        }
        let key = event_op(
            author,
            relation,
            rules,
            envelope,
            op,
            Some((held, &events_id)),
        )?;
        if keys.contains(&key) {
            return Err(effect(envelope, format!("writes event {key} twice")));
        }
        keys.push(key);
        step_in_order(envelope, expanded, held, op)?;
    }
    Ok(())
}

/// A step finishes only while it is the step the case is in (`case::check_finish_step`):
/// judged on the case as its author saw it, the document at the change's own
/// dependencies, so every receiver judges it alike whatever else arrived meanwhile (two
/// nodes' concurrent events are [`case::derive`]'s to order). No step finishes before
/// the case was accepted, before the step started, twice, or after the case closed.
fn step_in_order(
    envelope: &Envelope,
    expanded: &ExpandedChange,
    held: &Automerge,
    op: &Op,
) -> Result<(), Verdict> {
    let Some(Ok(Event {
        action: crate::domain::case::Action::FinishStep { step, .. },
        ..
    })) = put_str(op).map(serde_json::from_str::<Event>)
    else {
        return Ok(());
    };
    let seen = held
        .fork_at(&expanded.deps)
        .map_err(|e| Verdict::Defer(format!("the case as its author saw it: {e}")))?;
    let case = doc::read_case(&seen)
        .map_err(|e| effect(envelope, format!("the case it changes cannot be read: {e}")))?;
    let state = crate::domain::case::derive(&case.intake, &case.events);
    crate::domain::case::check_finish_step(&state, step)
        .map_err(|e| effect(envelope, format!("finishes a step out of order: {e}")))
}

/// Checks one operation on a case's event list: a new event under its own id, written by
/// the node it names, of a kind that node may record on this case (by [`auth::may_record`],
/// as the author's own engine decided it). Returns the event id.
fn event_op<'a>(
    author: &NodeRecord,
    relation: auth::CaseRelation,
    rules: &doc::ItemRules,
    envelope: &Envelope,
    op: &'a Op,
    held: Option<(&Automerge, &automerge::ObjId)>,
) -> Result<&'a str, Verdict> {
    let key = key_of(op).ok_or_else(|| effect(envelope, "a list operation on the events"))?;
    let text = put_str(op)
        .filter(|_| !op.insert && op.pred.is_empty())
        .ok_or_else(|| {
            effect(
                envelope,
                format!("changes or deletes event {key}; events are only ever added"),
            )
        })?;
    if let Some((document, events)) = held
        && matches!(document.get(events, key), Ok(Some(_)))
    {
        return Err(effect(
            envelope,
            format!("writes event {key} again; events are only ever added"),
        ));
    }
    match serde_json::from_str::<Event>(text) {
        Ok(event) => {
            if event.id() != key || event.node != author.node {
                return Err(effect(
                    envelope,
                    format!("event {key} names another node or id than its author's"),
                ));
            }
            crate::domain::case::check_received_event(&event)
                .map_err(|refused| effect(envelope, format!("event {key}: {refused}")))?;
            // A stand-in acts for another person: a sign-in name, never the actor's own.
            if let Some(first) = &event.stand_in_for
                && (crate::domain::staff::check_username(first).is_err() || *first == event.staff)
            {
                return Err(effect(
                    envelope,
                    format!(
                        "event {key} is recorded for {first:?}, who is not another staff member"
                    ),
                ));
            }
            let kind = event.action.kind();
            // A decision on a case a department decides comes only from its hall (§5.7.2).
            // A combined case is decided by its parts alone (§7.5, 行政许可法 §26).
            let decides = kind != crate::domain::case::ActionKind::Decide
                || (auth::may_decide(author.node, rules.decided_by.as_ref())
                    && (rules.parts.is_empty() || rules.decided_by.is_some()));
            if !decides
                || !auth::may_record(
                    relation,
                    auth::Recording::delegated(&event.action, rules.delegated_by.as_deref()),
                )
            {
                return Err(Refusal::EventNotAllowed {
                    node: author.node,
                    role: author.role.as_str(),
                    kind: kind.as_str(),
                    doc: envelope.doc.to_string(),
                }
                .into());
            }
            // §9.5.1: a payment or an exemption only of a fee line the case's own item
            // version lists, above zero and within its fixed amount.
            if let crate::domain::case::Action::Pay {
                fee, amount_fen, ..
            }
            | crate::domain::case::Action::Exempt {
                fee, amount_fen, ..
            } = &event.action
                && let Err(refused) = crate::domain::fee::check_line(&rules.fees, fee, *amount_fen)
            {
                return Err(effect(envelope, format!("event {key}: {refused}")));
            }
            // A node issues serial numbers only in its own segment and epoch.
            if let crate::domain::case::Action::Accept { serial_no, .. } = &event.action
                && serial_no.as_str().len() == SerialNo::LEN
            {
                let parts = serial_no.parts();
                let own = [
                    author.serial_segment(),
                    Segment::provisional(&author.division, &author.node.0),
                ];
                let epoch_ok = serial::epoch_digit(envelope.origin.epoch)
                    .is_ok_and(|digit| digit == parts.epoch_digit);
                if !epoch_ok || !own.iter().any(|s| s.as_str() == parts.node_segment) {
                    return Err(effect(
                        envelope,
                        format!(
                            "issues serial number {serial_no} outside its own node segment and epoch"
                        ),
                    ));
                }
            }
        }
        Err(error) => {
            // An event of a kind a newer version writes is kept (it counts nowhere here);
            // it must still be the author's own, under its own id.
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|_| effect(envelope, format!("event {key} does not read: {error}")))?;
            let node = value.get("node").and_then(|n| n.as_str());
            let kind = value.get("kind").and_then(|k| k.as_str());
            let known = kind.and_then(crate::domain::case::ActionKind::parse);
            let own_key = key.ends_with(&format!("-{}", author.node.to_hex()));
            if known.is_some()
                || kind.is_none_or(|k| k.is_empty() || k.len() > 64)
                || node != Some(author.node.to_hex().as_str())
                || !own_key
            {
                return Err(effect(
                    envelope,
                    format!("event {key} does not read: {error}"),
                ));
            }
        }
    }
    Ok(key)
}

fn item_change(
    author: &NodeRecord,
    envelope: &Envelope,
    expanded: &ExpandedChange,
    creating: bool,
) -> Result<(), Verdict> {
    let texts = if creating {
        creation_header(envelope, expanded, &["item"], None)?.0
    } else {
        let mut texts = Vec::new();
        for op in &expanded.operations {
            match (op.obj == ObjectId::Root, key_of(op), put_str(op)) {
                (true, Some("item"), Some(text)) if !op.insert => texts.push(("item", text)),
                _ => {
                    return Err(effect(
                        envelope,
                        "changes an item document other than by publishing a version of the item",
                    ));
                }
            }
        }
        texts
    };
    if texts.len() != 1 {
        return Err(effect(envelope, "publishes no item, or several at once"));
    }
    let item: Item = serde_json::from_str(texts[0].1)
        .map_err(|e| effect(envelope, format!("the item does not read: {e}")))?;
    if Item::doc_id_for(&item.impl_code) != envelope.doc {
        return Err(effect(
            envelope,
            "publishes an item under another item's document",
        ));
    }
    // A hall publishes only items handled at the levels it authors (§8.4.2, the level is
    // in the implementation code): a sub-district cannot publish a district's item.
    if !crate::engine::level_authored_by(author.role, item.level()) {
        return Err(effect(
            envelope,
            format!(
                "publishes an item handled at level {}, which a {} does not author",
                item.level().digit(),
                author.role.as_str()
            ),
        ));
    }
    Ok(())
}

/// The fields a new notice, supervision notice or reply writes must agree with its id and
/// its author, and a notice's seal must hold under its author's key.
fn record_creation(
    author: &NodeRecord,
    relation: auth::CaseRelation,
    envelope: &Envelope,
    texts: &[(&str, &str)],
) -> Result<(), Verdict> {
    let text = |name: &str| {
        texts
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| *v)
    };
    match envelope.kind {
        DocKind::Notice => {
            let content = text("content");
            let header: notice::NoticeHeader = serde_json::from_str(content)
                .map_err(|e| effect(envelope, format!("its notice does not read: {e}")))?;
            let digest = notice::digest(content.as_bytes());
            let seal: Option<[u8; 64]> =
                crate::ids::unhex(text("seal")).and_then(|b| b.try_into().ok());
            if notice::doc_id(&header.number).as_ref() != Some(&envelope.doc)
                || header.node != author.node.to_hex()
            {
                return Err(effect(
                    envelope,
                    "issues a notice under another number or node than its own",
                ));
            }
            if crate::ids::unhex(text("digest")).as_deref() != Some(&digest[..])
                || !seal.is_some_and(|seal| {
                    notice::notice_seal_holds(&author.public_key, &header, &digest, &seal)
                })
                // A department's seal works through a hall (§9.6).
                || (header.seal.is_some() && !author.role.is_hall())
            {
                return Err(effect(
                    envelope,
                    "carries a notice whose seal does not hold",
                ));
            }
            if DocKind::of_id(
                &DocId::parse(&header.case_id).unwrap_or_else(|| envelope.doc.clone()),
            ) != Some(DocKind::Case)
            {
                return Err(effect(
                    envelope,
                    "issues a notice about something that is not a case",
                ));
            }
        }
        DocKind::Supervision => {
            if relation != auth::CaseRelation::Above {
                return Err(Refusal::EventNotAllowed {
                    node: author.node,
                    role: author.role.as_str(),
                    kind: "supervision",
                    doc: envelope.doc.to_string(),
                }
                .into());
            }
            let body: SupervisionNotice = serde_json::from_str(text("body")).map_err(|e| {
                effect(
                    envelope,
                    format!("its supervision notice does not read: {e}"),
                )
            })?;
            body.validate().map_err(|e| {
                effect(
                    envelope,
                    format!("its supervision notice is not valid: {e}"),
                )
            })?;
            if body.node != author.node || body.doc_id() != envelope.doc {
                return Err(effect(
                    envelope,
                    "issues a supervision notice in another node's name",
                ));
            }
        }
        DocKind::Reply => {
            if relation != auth::CaseRelation::Owner {
                return Err(Refusal::EventNotAllowed {
                    node: author.node,
                    role: author.role.as_str(),
                    kind: "reply",
                    doc: envelope.doc.to_string(),
                }
                .into());
            }
            let body: SupervisionReply = serde_json::from_str(text("body"))
                .map_err(|e| effect(envelope, format!("its reply does not read: {e}")))?;
            body.validate()
                .map_err(|e| effect(envelope, format!("its reply is not valid: {e}")))?;
            if body.node != author.node || body.doc_id() != envelope.doc {
                return Err(effect(envelope, "replies in another node's name"));
            }
        }
        _ => return Err(effect(envelope, "is not a record")),
    }
    Ok(())
}

/// A new notification must read, be the author's own under its id, have been published by
/// a role the engine lets publish, and name only stations below the author.
fn notification_creation(
    author: &NodeRecord,
    envelope: &Envelope,
    texts: &[(&str, &str)],
) -> Result<(), Verdict> {
    let body = texts
        .iter()
        .find(|(k, _)| *k == "body")
        .map_or("", |(_, v)| *v);
    let notification: Notification = serde_json::from_str(body)
        .map_err(|e| effect(envelope, format!("its notification does not read: {e}")))?;
    notification
        .validate()
        .map_err(|e| effect(envelope, format!("its notification is not valid: {e}")))?;
    if notification.node != author.node || notification.doc_id() != envelope.doc {
        return Err(effect(
            envelope,
            "publishes a notification in another node's name",
        ));
    }
    let role = crate::engine::StaffRole::parse(&notification.role);
    if role.is_none_or(|role| crate::engine::may_issue_supervision(author, role).is_err()) {
        return Err(Refusal::EventNotAllowed {
            node: author.node,
            role: author.role.as_str(),
            kind: "notification",
            doc: envelope.doc.to_string(),
        }
        .into());
    }
    notification
        .stations_below(&author.division)
        .map_err(|e| effect(envelope, format!("names {e}")))?;
    Ok(())
}

/// A staff account written or replaced by its hall (§8.6.3): the account must be valid,
/// name its hall and the id it lands in, be written by a role the engine lets manage
/// accounts, and, replacing one, follow it (a new verifier only with a new generation).
fn staff_change(
    author: &NodeRecord,
    envelope: &Envelope,
    expanded: &ExpandedChange,
    held: Option<&Automerge>,
) -> Result<(), Verdict> {
    let text = whole_text(
        envelope,
        expanded,
        held.is_none(),
        "account",
        "changes a staff account other than by writing its next version",
        "writes no account, or several at once",
    )?;
    let account: StaffAccount = serde_json::from_str(text)
        .map_err(|e| effect(envelope, format!("its account does not read: {e}")))?;
    let division = envelope.scope.division();
    account
        .validate(&division)
        .map_err(|e| effect(envelope, format!("its account is not valid: {e}")))?;
    if account.hall != author.node
        || StaffAccount::doc_id_for(&division, &account.username).as_ref() != Some(&envelope.doc)
    {
        return Err(effect(
            envelope,
            "writes an account in another node's name or under another account's id",
        ));
    }
    let role = crate::engine::StaffRole::parse(&account.by_role);
    if role.is_none_or(|role| crate::engine::may_manage_staff(author, role).is_err()) {
        return Err(Refusal::EventNotAllowed {
            node: author.node,
            role: author.role.as_str(),
            kind: "staff",
            doc: envelope.doc.to_string(),
        }
        .into());
    }
    if let Some(document) = held {
        let before: StaffAccount = doc::read_record(document)
            .ok()
            .and_then(|r| serde_json::from_str(r.field("account")).ok())
            .ok_or_else(|| effect(envelope, "the account it replaces cannot be read"))?;
        account
            .may_follow(&before)
            .map_err(|e| effect(envelope, format!("does not follow the account held: {e}")))?;
    }
    Ok(())
}

/// A department published (or republished, with a new seal key) by its hall: it must read,
/// be the author's own under its id, published by a role the engine lets manage
/// departments, with every seal certified by the author's own key; a later version keeps
/// what the earlier one said and only adds seals.
fn department_change(
    author: &NodeRecord,
    envelope: &Envelope,
    expanded: &ExpandedChange,
    held: Option<&Automerge>,
) -> Result<(), Verdict> {
    let body = whole_text(
        envelope,
        expanded,
        held.is_none(),
        "body",
        "changes a department other than by republishing it",
        "publishes no department, or several at once",
    )?;
    let department: Department = serde_json::from_str(body)
        .map_err(|e| effect(envelope, format!("its department does not read: {e}")))?;
    if department.hall != author.node
        || department.division != author.division
        || department.doc_id().as_ref() != Some(&envelope.doc)
    {
        return Err(effect(
            envelope,
            "publishes a department in another node's name or under another id",
        ));
    }
    let role = crate::engine::StaffRole::parse(&department.role);
    if role.is_none_or(|role| crate::engine::may_manage_departments(author, role).is_err()) {
        return Err(Refusal::EventNotAllowed {
            node: author.node,
            role: author.role.as_str(),
            kind: "department",
            doc: envelope.doc.to_string(),
        }
        .into());
    }
    department.check(&author.public_key).map_err(|e| {
        effect(
            envelope,
            format!("carries a seal its hall did not certify: {e}"),
        )
    })?;
    if let Some(document) = held {
        let before: Department = doc::read_record(document)
            .ok()
            .and_then(|r| serde_json::from_str(r.field("body")).ok())
            .ok_or_else(|| effect(envelope, "the department it changes does not read"))?;
        department
            .continues(&before)
            .map_err(|e| effect(envelope, e.to_string()))?;
    }
    Ok(())
}

/// A new attachment must hold the bytes its record describes, of a type taken, under the
/// id its hall's division and its digest make.
fn attachment_creation(envelope: &Envelope, expanded: &ExpandedChange) -> Result<(), Verdict> {
    let (texts, _) = creation_header(envelope, expanded, &["meta"], None)?;
    let meta = texts
        .iter()
        .find(|(k, _)| *k == "meta")
        .map_or("", |(_, v)| *v);
    let attachment: Attachment = serde_json::from_str(meta)
        .map_err(|e| effect(envelope, format!("its record does not read: {e}")))?;
    let bytes = expanded
        .operations
        .iter()
        .find_map(|op| match (&op.obj, key_of(op), &op.action) {
            (ObjectId::Root, Some("content"), OpType::Put(ScalarValue::Bytes(bytes))) => {
                Some(bytes.as_slice())
            }
            _ => None,
        })
        .unwrap_or_default();
    if !attachment.holds(bytes) {
        return Err(effect(
            envelope,
            "carries a file that is not what its record says (name, type, size or digest)",
        ));
    }
    if attachment.doc_id(&envelope.scope.division()) != envelope.doc {
        return Err(effect(
            envelope,
            "publishes an attachment under another file's or hall's id",
        ));
    }
    Ok(())
}

/// The one text field `key` a document holds whole (a calendar year, a department, a
/// staff account): written with the record's header at creation, and later only replaced
/// whole, once per change; anything else is refused with `otherwise` or `not_one`.
fn whole_text<'a>(
    envelope: &Envelope,
    expanded: &'a ExpandedChange,
    creating: bool,
    key: &'static str,
    otherwise: &str,
    not_one: &str,
) -> Result<&'a str, Verdict> {
    let texts = if creating {
        creation_header(envelope, expanded, &[key], None)?.0
    } else {
        let mut texts = Vec::new();
        for op in &expanded.operations {
            match (op.obj == ObjectId::Root, key_of(op), put_str(op)) {
                (true, Some(k), Some(text)) if k == key && !op.insert => texts.push((key, text)),
                _ => return Err(effect(envelope, otherwise)),
            }
        }
        texts
    };
    match texts[..] {
        [(_, text)] => Ok(text),
        _ => Err(effect(envelope, not_one)),
    }
}

/// A calendar year published (or republished) by its hall: the text must read as exactly
/// the year its id names, in a document of the hall's own division.
fn calendar_change(
    envelope: &Envelope,
    expanded: &ExpandedChange,
    creating: bool,
) -> Result<(), Verdict> {
    let text = whole_text(
        envelope,
        expanded,
        creating,
        "text",
        "changes a calendar other than by publishing its year",
        "publishes no calendar year, or several at once",
    )?;
    let calendar = crate::domain::calendar::Calendar::from_files(&[text])
        .map_err(|e| effect(envelope, format!("its calendar does not read: {e}")))?;
    let years: Vec<i32> = calendar.years().map(|y| y.year).collect();
    let expected = years
        .first()
        .map(|year| format!("y-{}-{year}", envelope.scope.division()));
    if years.len() != 1 || expected.as_deref() != Some(envelope.doc.as_str()) {
        return Err(effect(
            envelope,
            "publishes a calendar year under another year's or division's document",
        ));
    }
    Ok(())
}

fn registry_change(
    author: &NodeRecord,
    envelope: &Envelope,
    expanded: &ExpandedChange,
    held: Option<&Automerge>,
) -> Result<(), Verdict> {
    let nodes = match held {
        None => creation_header(envelope, expanded, &[], Some("nodes"))?
            .1
            .map(ObjectId::Id),
        Some(document) => held_object(document, "nodes"),
    }
    .ok_or_else(|| effect(envelope, "the registry has no node list"))?;
    let division = envelope.scope.division();
    let held_nodes = held.and_then(|d| d.get(ROOT, "nodes").ok().flatten().map(|(_, id)| id));
    // The segments the registry gives out already, by node.
    let held_segments: Vec<(NodeId, Segment)> = held
        .and_then(|d| doc::read_registry(d).ok())
        .map(|r| {
            r.records
                .into_iter()
                .filter_map(|rec| rec.segment.map(|s| (rec.node, s)))
                .collect()
        })
        .unwrap_or_default();
    for op in &expanded.operations {
        if op.obj == ObjectId::Root && held.is_none() {
            continue; // the header, checked above
        }
        if op.obj != nodes {
            return Err(effect(envelope, "writes outside the registry's node list"));
        }
        let key = key_of(op).unwrap_or_default();
        let text = put_str(op)
            .filter(|_| !op.insert)
            .ok_or_else(|| effect(envelope, "deletes or damages a node record"))?;
        let record: NodeRecord = serde_json::from_str(text)
            .map_err(|e| effect(envelope, format!("a node record does not read: {e}")))?;
        let own_record = record.node == author.node;
        let vouchable = record.is_consistent()
            && record.node.to_hex() == key
            && record.division.is_within(&division)
            && if own_record {
                record.role == author.role
                    && record.division == author.division
                    && record.public_key == author.public_key
            } else {
                // A hall vouches for nodes below it, never for another of its own level.
                record.division != author.division
            };
        // A segment it gives out must be one this hall can give, and no other node's.
        let segment_ok = match (&record.segment, own_record) {
            (None, _) | (Some(_), true) => true,
            (Some(segment), false) => {
                let level = author.division.level();
                let own_segment = author.serial_segment();
                let given = if level == DivisionLevel::City {
                    *segment == Segment::root(&record.division, &record.node.0)
                        || own_segment.is_above(level, segment)
                } else if record.enrolled_by == author.node {
                    own_segment.gave(level, segment)
                } else {
                    // A record of a node a hall below enrolled (a revocation made here).
                    own_segment.is_above(level, segment)
                };
                given
                    && !held_segments
                        .iter()
                        .any(|(node, s)| s == segment && *node != record.node)
            }
        };
        if !vouchable || !segment_ok {
            return Err(Refusal::BadRecord {
                node: record.node,
                hall: author.node,
            }
            .into());
        }
        // A revocation is for good: no record may undo one.
        if let (Some(document), Some(nodes_id)) = (held, &held_nodes)
            && record.revoked.is_none()
            && let Ok(Some((automerge::Value::Scalar(old), _))) = document.get(nodes_id, key)
            && let Some(old) = old.as_str()
            && serde_json::from_str::<NodeRecord>(old).is_ok_and(|r| r.revoked.is_some())
        {
            return Err(effect(envelope, format!("undoes the revocation of {key}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod staff_tests;
#[cfg(test)]
mod step_tests;
#[cfg(test)]
pub(crate) mod tests;
