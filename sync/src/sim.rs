//! An in-memory network of nodes for tests and simulations.
//!
//! Each [`Peer`] keeps its documents, change log and run states in memory and speaks the
//! real protocol: batches are built with [`feed::build_batch`], encoded and decoded with
//! [`wire`], and checked with [`feed::check_batch`] before anything is applied, so the
//! network exercises the same rules a node does, without sockets or clocks:
//!
//! ```
//! use yizhan_sync::auth::NodeRole;
//! use yizhan_sync::sim::Network;
//!
//! let mut net = Network::new();
//! let district = net.add_peer("district", NodeRole::District, "440304");
//! let station = net.add_peer("station", NodeRole::Station, "440304001001");
//! net.connect(district, station);
//! net.run_until_quiescent(64 * 1024);
//! assert!(net.converged().is_ok());
//! ```

use std::collections::{BTreeMap, HashMap};

use automerge::Automerge;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::auth::{NodeRecord, NodeRole, Refusal, Registry, may_read};
use crate::doc::{self, Rows};
use crate::domain::calendar::{Calendar, Date};
use crate::domain::case::{self, Action, CaseError, Intake, NewCase};
use crate::domain::codes::DivisionCode;
use crate::domain::hlc::HlcClock;
use crate::domain::item::Item;
use crate::domain::serial::SerialNo;
use crate::engine::session::{Input, Session, SessionReport, Want};
use crate::engine::{self, Actor, ChangeLog, Person, Request, StaffRole};
use crate::envelope::{self, Envelope};
use crate::feed::{self, Ack, Batch, LogEntry, ParsedBatch, Pull, RunState, VersionVector};
use crate::ids::{DocId, DocKind, Origin, Scope};
use crate::wire::Message;

/// A node in the simulated network.
#[derive(Debug)]
pub struct Peer {
    pub name: String,
    pub record: NodeRecord,
    key: SigningKey,
    pub origin: Origin,
    clock: HlcClock,
    next_seq: u64,
    docs: BTreeMap<DocId, Automerge>,
    log: Vec<LogEntry>,
    runs: HashMap<(Scope, Origin), RunState>,
    /// Records trusted from enrollment: itself, the nodes above it.
    pins: Vec<NodeRecord>,
    serials: HashMap<(String, Date), u32>,
    /// Changes refused for good, with the reason.
    pub quarantine: Vec<(Envelope, String)>,
    /// Hashes of the changes refused here or on the way.
    refused: std::collections::HashSet<[u8; 32]>,
}

impl Peer {
    /// The halls above this peer, as its enrollment pinned them: where it may send a case
    /// (转办 to a hall's node).
    pub fn halls_above(&self) -> Vec<crate::ids::NodeId> {
        self.pins
            .iter()
            .filter(|r| r.node != self.record.node && r.role.is_hall())
            .map(|r| r.node)
            .collect()
    }

    fn new(name: &str, role: NodeRole, division: &str) -> Peer {
        let seed: [u8; 32] = Sha256::digest(name.as_bytes()).into();
        let key = SigningKey::from_bytes(&seed);
        let public_key = key.verifying_key().to_bytes();
        let node = crate::ids::NodeId::from_public_key(&public_key);
        let record = NodeRecord {
            node,
            public_key,
            role,
            division: DivisionCode::parse(division).expect("a valid division"),
            name: name.to_string(),
            enrolled_by: node,
            enrolled_ms: 0,
            revoked: None,
            segment: None,
        };
        Peer {
            name: name.to_string(),
            pins: vec![record.clone()],
            record,
            key,
            origin: Origin { node, epoch: 1 },
            clock: HlcClock::default(),
            next_seq: 1,
            docs: BTreeMap::new(),
            log: Vec::new(),
            runs: HashMap::new(),
            serials: HashMap::new(),
            quarantine: Vec::new(),
            refused: Default::default(),
        }
    }

    /// Records this peer's newest change to `id` in its log, signed.
    fn commit_local(&mut self, id: &DocId, kind: DocKind, scope: &Scope) {
        let change = self.docs[id]
            .get_last_local_change()
            .expect("a change was just made");
        self.sign_and_log(id.clone(), kind, scope.clone(), change);
    }

    /// Appends `change` to this peer's own log under whatever labels it is given, signed
    /// with its own key, so it travels up at the next exchange. Honest peers label their
    /// changes truly; the adversarial tests use it to send what a hostile node would.
    pub fn sign_and_log(
        &mut self,
        doc: DocId,
        kind: DocKind,
        scope: Scope,
        change: automerge::Change,
    ) {
        let key = (scope.clone(), self.origin);
        let state = self.runs.get(&key).copied().unwrap_or_default();
        let envelope = Envelope {
            origin: self.origin,
            seq: self.next_seq,
            prev: state.seq,
            doc,
            kind,
            scope,
            hash: change.hash().0,
            change: change.raw_bytes().to_vec(),
            refused: None,
        };
        let chain = envelope::chain_next(&state.chain, &envelope);
        let signature = envelope::sign(&self.key, &self.origin, envelope.seq, &chain);
        self.runs.insert(
            key,
            RunState {
                seq: envelope.seq,
                chain,
            },
        );
        self.log.push(LogEntry {
            envelope,
            signature: Some(signature),
        });
        self.next_seq += 1;
    }

    /// Puts an arbitrary entry in this peer's log (a replay, or a run in another node's
    /// name signed with this peer's key): what a hostile relay could send.
    pub fn inject(&mut self, entry: LogEntry) {
        self.log.push(entry);
    }

    /// This peer's signature over a chain value, as `origin` at `seq`: a forgery unless
    /// `origin` is its own.
    pub fn sign_as(&self, origin: &Origin, seq: u64, chain: &envelope::ChainHash) -> [u8; 64] {
        envelope::sign(&self.key, origin, seq, chain)
    }

    /// The documents this peer holds, by id.
    pub fn doc(&self, id: &DocId) -> Option<&Automerge> {
        self.docs.get(id)
    }

    /// This peer's change log, in its storage order.
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    /// Publishes an item version in this hall's catalog.
    pub fn publish_item(&mut self, item: &Item, now_ms: u64) {
        let scope = Scope::catalog(&self.record.division);
        let id = Item::doc_id_for(&item.impl_code);
        match self.docs.get_mut(&id) {
            Some(document) => {
                doc::put_item(document, &self.origin, item, now_ms).expect("item written")
            }
            None => {
                let (id, document) =
                    doc::new_item(&self.origin, &scope, item, now_ms).expect("item written");
                self.docs.insert(id, document);
            }
        }
        self.commit_local(&id, DocKind::Item, &scope);
    }

    /// Adds `record` to this hall's registry.
    fn enroll(&mut self, record: &NodeRecord, now_ms: u64) {
        let scope = Scope::registry(&self.record.division);
        let id = doc::registry_doc_id(&self.record.division);
        match self.docs.get_mut(&id) {
            Some(document) => {
                doc::put_records(document, &self.origin, std::slice::from_ref(record), now_ms)
                    .expect("registry written")
            }
            None => {
                let records = [self.record.clone(), record.clone()];
                let (id, document) = doc::new_registry(&self.origin, &scope, &records, now_ms)
                    .expect("registry written");
                self.docs.insert(id, document);
            }
        }
        self.commit_local(&id, DocKind::Registry, &scope);
    }

    /// The items this peer holds.
    pub fn items(&self) -> Vec<Item> {
        self.docs
            .values()
            .filter_map(|d| doc::read_item(d).ok())
            .map(|i| i.item)
            .collect()
    }

    /// The ids of the cases this peer holds.
    pub fn case_ids(&self) -> Vec<DocId> {
        self.docs
            .iter()
            .filter(|(_, d)| matches!(doc::header(d), Ok((DocKind::Case, _))))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Receives an application at this station.
    pub fn create_case(
        &mut self,
        item: &Item,
        new: NewCase,
        now_ms: u64,
    ) -> Result<DocId, CaseError> {
        let at = self.clock.tick(now_ms);
        let intake = Intake::new(
            item,
            new,
            "sim",
            self.origin.node,
            self.record.division.clone(),
            at,
        )?;
        let scope = Scope::cases(&self.record.division);
        let (id, document) = doc::new_case(&self.origin, &scope, &intake).expect("case written");
        self.docs.insert(id.clone(), document);
        self.commit_local(&id, DocKind::Case, &scope);
        Ok(id)
    }

    /// Records an action on a case this peer holds through the engine, as a lead at this
    /// node would. `Accept` (with any serial number) gets this peer's next one.
    pub fn act(&mut self, id: &DocId, action: Action, now_ms: u64) -> Result<(), CaseError> {
        let case_doc = doc::read_case(&self.docs[id]).expect("a case document");
        let request = match action {
            Action::Accept { .. } => Request::Accept,
            other => Request::Do(other),
        };
        let record = self.record.clone();
        let person = sim_lead();
        let epoch = self.origin.epoch;
        let clock = &mut self.clock;
        let serials = &mut self.serials;
        let events = engine::act::<CaseError>(
            &case_doc,
            vec![request],
            Actor {
                node: &record,
                person: &person,
            },
            &mut || Ok(clock.tick(now_ms)),
            &mut |code, date| {
                let counter = serials.entry((code.to_string(), date)).or_insert(0);
                *counter += 1;
                Ok(
                    SerialNo::issue(code, date, &record.serial_segment(), epoch, *counter)
                        .expect("the simulation never issues 9999 serial numbers a day"),
                )
            },
        )?;
        doc::add_events(self.docs.get_mut(id).expect("held"), &self.origin, &events)
            .expect("event written");
        self.commit_local(id, DocKind::Case, &case_doc.scope);
        Ok(())
    }

    /// What a lead at this peer may record on a case, by the engine's rules.
    pub fn allowed(&self, id: &DocId) -> Vec<case::ActionKind> {
        let case_doc = doc::read_case(&self.docs[id]).expect("a case document");
        let state = case::derive(&case_doc.intake, &case_doc.events);
        let person = sim_lead();
        engine::allowed_actions(
            Actor {
                node: &self.record,
                person: &person,
            },
            &case_doc.intake,
            &state,
        )
    }

    /// The keys this peer trusts: its pins and every registry it holds.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::new();
        for record in &self.pins {
            registry.insert(record.clone());
        }
        for document in self.docs.values() {
            if let Ok(registry_doc) = doc::read_registry(document) {
                for record in registry_doc.records {
                    registry.insert(record);
                }
            }
        }
        registry
    }

    pub fn vector(&self) -> VersionVector {
        let mut vector = VersionVector::default();
        for ((scope, origin), state) in &self.runs {
            vector.advance(scope, origin, state.seq);
        }
        vector
    }

    /// Answers a pull from `requester`: what it lacks, among what it may read.
    pub fn serve_pull(&self, requester: &NodeRecord, pull: &Pull) -> Batch {
        let entries = self
            .log
            .iter()
            .filter(|e| may_read(requester, &e.envelope.scope))
            .filter(|e| pull.scopes.is_empty() || pull.scopes.contains(&e.envelope.scope))
            .filter(|e| e.envelope.seq > pull.have.get(&e.envelope.scope, &e.envelope.origin))
            .cloned();
        feed::build_batch(entries, pull.max_bytes as usize)
    }

    /// Checks and applies a batch with the engine, as a node does in one transaction.
    pub fn receive(&mut self, batch: &Batch) -> Ack {
        let parsed = ParsedBatch::parse(batch.clone());
        let Ok(mut ack) = engine::apply_batch(self, parsed);
        ack.quarantined = self.quarantine.len() as u32;
        ack.have = self.vector();
        ack
    }

    fn quarantine_once(&mut self, envelope: &Envelope, reason: String) {
        let known = self.quarantine.iter().any(|(e, _)| {
            e.origin == envelope.origin && e.seq == envelope.seq && e.scope == envelope.scope
        });
        if !known {
            self.quarantine.push((envelope.clone(), reason));
        }
    }

    /// Every document this peer holds in `scope`: id, heads, rows.
    pub fn scope_state(&self, scope: &Scope) -> Vec<(DocId, Vec<u8>, Rows)> {
        self.docs
            .iter()
            .filter(|(_, d)| doc::header(d).is_ok_and(|(_, s)| &s == scope))
            .map(|(id, d)| {
                (
                    id.clone(),
                    doc::heads_bytes(d),
                    doc::rows(id, d, Calendar::china()).expect("readable"),
                )
            })
            .collect()
    }

    /// The scopes this peer holds documents in.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut scopes: Vec<Scope> = self
            .docs
            .values()
            .filter_map(|d| doc::header(d).ok().map(|(_, s)| s))
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }
}

impl ChangeLog for Peer {
    type Error = std::convert::Infallible;

    fn own(&self) -> &NodeRecord {
        &self.record
    }

    fn own_origin(&self) -> Origin {
        self.origin
    }

    fn registry(&mut self) -> Result<Registry, Self::Error> {
        Ok(Peer::registry(self))
    }

    fn run_state(&mut self, scope: &Scope, origin: &Origin) -> Result<RunState, Self::Error> {
        Ok(self
            .runs
            .get(&(scope.clone(), *origin))
            .copied()
            .unwrap_or_default())
    }

    fn is_refused(&mut self, hash: &[u8; 32]) -> Result<bool, Self::Error> {
        Ok(self.refused.contains(hash))
    }

    fn take_doc(&mut self, id: &DocId) -> Result<Option<Automerge>, Self::Error> {
        Ok(self.docs.remove(id))
    }

    fn append(&mut self, entry: LogEntry, chain: envelope::ChainHash) -> Result<(), Self::Error> {
        let envelope = &entry.envelope;
        self.runs.insert(
            (envelope.scope.clone(), envelope.origin),
            RunState {
                seq: envelope.seq,
                chain,
            },
        );
        if envelope.refused.is_some() {
            self.refused.insert(envelope.hash);
        }
        self.log.push(entry);
        Ok(())
    }

    fn quarantine(&mut self, envelope: &Envelope, refusal: &Refusal) -> Result<(), Self::Error> {
        self.quarantine_once(envelope, refusal.to_string());
        Ok(())
    }

    fn registry_changed(&mut self, id: &DocId, document: &Automerge) -> Result<(), Self::Error> {
        // Visible to `registry()` now; the engine gives the document back at the end.
        self.docs.insert(id.clone(), document.clone());
        Ok(())
    }

    fn put_doc(
        &mut self,
        id: DocId,
        _kind: DocKind,
        _scope: Scope,
        document: Automerge,
        _changed: bool,
    ) -> Result<(), Self::Error> {
        self.docs.insert(id, document);
        Ok(())
    }
}

/// The person every simulated action is recorded as: a lead, who may do everything a
/// node's relation to a case allows.
fn sim_lead() -> Person {
    Person::Staff {
        username: "sim".into(),
        counter: String::new(),
        role: StaffRole::Lead,
        chief: false,
    }
}

/// A link between a parent and a child, with the batches in flight on it.
#[derive(Debug)]
struct Link {
    parent: usize,
    child: usize,
    up: bool,
    /// Encoded batches and whether each goes to the child (a pull answer) or the parent.
    in_flight: Vec<(bool, Vec<u8>)>,
}

/// A set of peers and the links between them.
#[derive(Debug, Default)]
pub struct Network {
    pub peers: Vec<Peer>,
    links: Vec<Link>,
    now_ms: u64,
}

impl Network {
    pub fn new() -> Network {
        Network {
            now_ms: 1_772_413_200_000,
            ..Network::default()
        }
    }

    /// The simulated wall clock.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn advance_clock(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    pub fn add_peer(&mut self, name: &str, role: NodeRole, division: &str) -> usize {
        self.peers.push(Peer::new(name, role, division));
        self.peers.len() - 1
    }

    /// Enrolls `child` with `parent`: the parent records it in its registry, the child
    /// pins the parent and the nodes above it. Returns the link's index.
    pub fn connect(&mut self, parent: usize, child: usize) -> usize {
        let now = self.now_ms;
        let mut child_record = self.peers[child].record.clone();
        child_record.enrolled_by = self.peers[parent].record.node;
        let enrolled = self.peers[parent].registry();
        child_record.segment = Some(
            crate::auth::assign_segment(
                &self.peers[parent].record,
                &child_record,
                enrolled.records(),
            )
            .expect("a segment for the child"),
        );
        self.peers[child].record = child_record.clone();
        self.peers[child].pins[0] = child_record.clone();
        self.peers[parent].enroll(&child_record, now);
        let above: Vec<NodeRecord> = self.peers[parent].pins.clone();
        self.peers[child].pins.extend(above);
        self.links.push(Link {
            parent,
            child,
            up: true,
            in_flight: Vec::new(),
        });
        self.links.len() - 1
    }

    pub fn links(&self) -> usize {
        self.links.len()
    }

    /// Takes a link down; batches in flight on it are lost.
    pub fn cut(&mut self, link: usize) {
        self.links[link].up = false;
        self.links[link].in_flight.clear();
    }

    pub fn heal(&mut self, link: usize) {
        self.links[link].up = true;
    }

    /// One round of a link's session: the child pulls from the parent and pushes to it.
    /// The answers go in flight; nothing is applied until delivered.
    pub fn exchange(&mut self, link: usize, max_bytes: u32) {
        let Link {
            parent, child, up, ..
        } = self.links[link];
        if !up {
            return;
        }
        let pull = Pull {
            scopes: Vec::new(),
            have: self.peers[child].vector(),
            max_bytes,
        };
        let pull = Pull::decode(&pull.encode()).expect("a pull round-trips");
        let down = self.peers[parent].serve_pull(&self.peers[child].record, &pull);
        let push_request = Pull {
            scopes: Vec::new(),
            have: self.peers[parent].vector(),
            max_bytes,
        };
        let up_batch = self.peers[child].serve_pull(&self.peers[parent].record, &push_request);
        let in_flight = &mut self.links[link].in_flight;
        if !down.envelopes.is_empty() {
            in_flight.push((true, down.encode()));
        }
        if !up_batch.envelopes.is_empty() {
            in_flight.push((false, up_batch.encode()));
        }
    }

    /// Runs one full session on a link, the child driving the engine's session machine
    /// against the parent in memory (every message through its wire encoding).
    pub fn session(&mut self, link: usize, max_bytes: u32) -> Result<SessionReport, String> {
        let Link {
            parent, child, up, ..
        } = self.links[link];
        if !up {
            return Err("the link is down".into());
        }
        let hello = |peer: &Peer, now_ms: u64| feed::Hello {
            protocol: feed::PROTOCOL_VERSION,
            min_protocol: feed::MIN_PROTOCOL_VERSION,
            node: peer.record.node,
            role: peer.record.role,
            division: peer.record.division.clone(),
            name: peer.name.clone(),
            now_ms,
            capabilities: Vec::new(),
            refused: Vec::new(),
        };
        let mut session = Session::new(hello(&self.peers[child], self.now_ms), max_bytes);
        let mut want = session.start();
        for _step in 0..10_000 {
            let input = match want {
                Want::Hello(own) => {
                    let own = feed::Hello::decode(&own.encode()).map_err(|e| e.to_string())?;
                    debug_assert_eq!(own.node, self.peers[child].record.node);
                    Input::Hello(hello(&self.peers[parent], self.now_ms))
                }
                Want::LocalVector => Input::LocalVector(self.peers[child].vector()),
                Want::Pull(pull) => {
                    let pull = Pull::decode(&pull.encode()).map_err(|e| e.to_string())?;
                    let requester = self.peers[child].record.clone();
                    let bytes = self.peers[parent].serve_pull(&requester, &pull).encode();
                    let batch = ParsedBatch::decode(&bytes).map_err(|e| e.to_string())?;
                    Input::Pulled {
                        batch,
                        wire_bytes: bytes.len() as u64,
                    }
                }
                Want::Apply(batch) => Input::Applied(self.peers[child].receive(&batch.batch)),
                Want::ParentVector => Input::ParentVector(self.peers[parent].vector()),
                Want::Build { have, max_bytes } => {
                    let parent_record = self.peers[parent].record.clone();
                    let batch = self.peers[child].serve_pull(
                        &parent_record,
                        &Pull {
                            scopes: Vec::new(),
                            have,
                            max_bytes,
                        },
                    );
                    Input::Built((!batch.envelopes.is_empty()).then_some(batch))
                }
                Want::Push { batch, .. } => {
                    let bytes = batch.encode();
                    let decoded = Batch::decode(&bytes).map_err(|e| e.to_string())?;
                    let ack = self.peers[parent].receive(&decoded);
                    let ack = Ack::decode(&ack.encode()).map_err(|e| e.to_string())?;
                    Input::Pushed {
                        ack,
                        wire_bytes: bytes.len() as u64,
                        ahead: None,
                    }
                }
                Want::Done(result) => return result,
            };
            want = session.on(input);
        }
        Err("the session did not end in 10,000 steps".into())
    }

    /// Batches waiting on a link.
    pub fn in_flight(&self, link: usize) -> usize {
        self.links[link].in_flight.len()
    }

    /// Delivers the `pick`-th batch in flight on `link` (any order), keeping a copy to
    /// deliver again when `duplicate`. Returns how many changes were applied.
    pub fn deliver(&mut self, link: usize, pick: usize, duplicate: bool) -> u32 {
        let Link {
            parent, child, up, ..
        } = self.links[link];
        let waiting = self.links[link].in_flight.len();
        if !up || waiting == 0 {
            return 0;
        }
        let index = pick % waiting;
        let (to_child, bytes) = if duplicate {
            self.links[link].in_flight[index].clone()
        } else {
            self.links[link].in_flight.remove(index)
        };
        let batch = Batch::decode(&bytes).expect("a batch round-trips");
        let target = if to_child { child } else { parent };
        self.peers[target].receive(&batch).applied
    }

    /// Exchanges and delivers on every live link until nothing moves (bounded).
    pub fn run_until_quiescent(&mut self, max_bytes: u32) {
        for _round in 0..1000 {
            let mut moved = 0;
            for link in 0..self.links.len() {
                self.exchange(link, max_bytes);
                while self.in_flight(link) > 0 {
                    moved += self.deliver(link, 0, false);
                }
            }
            if moved == 0 {
                return;
            }
        }
        panic!("the network did not become quiescent in 1000 rounds");
    }

    /// Checks that every peer that may read a scope holds the same documents in it, with
    /// the same heads and the same derived rows (so the same status for every case).
    pub fn converged(&self) -> Result<(), String> {
        let mut scopes: Vec<Scope> = self.peers.iter().flat_map(|p| p.scopes()).collect();
        scopes.sort();
        scopes.dedup();
        for scope in scopes {
            let holders: Vec<&Peer> = self
                .peers
                .iter()
                .filter(|p| may_read(&p.record, &scope))
                .collect();
            let Some(first) = holders.first() else {
                continue;
            };
            let reference = first.scope_state(&scope);
            for other in &holders[1..] {
                let state = other.scope_state(&scope);
                if state != reference {
                    let differing = reference
                        .iter()
                        .zip(&state)
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| {
                            format!("first difference in {}: {:?} vs {:?}", a.0, a.2, b.2)
                        })
                        .unwrap_or_default();
                    return Err(format!(
                        "{} and {} differ in {scope}: {} vs {} documents; {differing}; quarantined: {:?} / {:?}",
                        first.name,
                        other.name,
                        reference.len(),
                        state.len(),
                        first.quarantine,
                        other.quarantine,
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
