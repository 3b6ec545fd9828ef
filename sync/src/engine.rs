//! The engine: every rule a node applies to what sync brings it, written once and run by
//! the store over SQLite, by the simulation in memory, and by the bundle import.
//!
//! [`apply_batch`] takes a decoded batch and a [`ChangeLog`] (where the node keeps its
//! documents, change log, registry and quarantine) and decides, change by change:
//!
//! 1. **Authentic?** [`feed::check_batch`] verifies each (scope, origin) run's hash chain
//!    and the origin's signature against the registry. What fails is quarantined and takes
//!    no place in its run (a forger cannot advance another node's run).
//! 2. **Allowed?** The origin's right to write the scope, then [`effect::judge`]: the
//!    document the change really lands in and what its operations do there.
//! 3. **Applicable?** The Automerge change applies to the document.
//!
//! A change refused at step 2 or 3 is quarantined with its reason and **keeps its place in
//! the run** (appended to the log as refused, without its bytes), so the origin's later
//! changes still verify, apply and travel on: one bad change never stalls a link. A change
//! that cannot be judged yet (its origin's key, its document or a change it depends on has
//! not arrived) waits, with the rest of its run, for a later round or batch. The sender
//! learns of both from the [`Ack`]'s notes.

mod act;
mod authoring;
mod departments;
mod node_admin;
pub mod session;
mod staff;
mod supervise;

pub use act::{
    Actor, Person, Request, StaffRole, act, act_combined, allowed_actions, may, on_behalf_of,
    role_may,
};
pub use authoring::{
    AuthoringAct, AuthoringError, authoring_open_to, level_authored_by, may_author, may_review,
};
pub use departments::may_manage_departments;
pub use node_admin::{NodeAdminError, may_administer, may_read_dashboard};
pub use staff::{chief_authorizes, may_manage_staff, stand_in_for};
pub use supervise::{
    SupervisionAct, assessment_open_to, may_assess, may_issue_supervision, may_supervise,
};

use std::collections::{BTreeMap, HashMap, HashSet};

use automerge::{Automerge, ReadDoc};

use crate::auth::{NodeRecord, Refusal, Registry, may_read};
use crate::doc;
use crate::effect::{self, Judgement};
use crate::envelope::{ChainHash, Envelope};
use crate::feed::{self, Ack, Batch, ChangeNote, LogEntry, ParsedBatch, RunState, Verdict};
use crate::ids::{DocId, DocKind, Origin, Scope};

/// Where a node keeps what sync brings: its documents, its change log with each run's
/// head, the keys it trusts and the changes it refused. The store implements it over
/// SQLite inside one transaction; the simulation in memory.
pub trait ChangeLog {
    type Error;

    /// This node's own record: what it may read decides what it accepts at all.
    fn own(&self) -> &NodeRecord;

    /// The origin this node writes its changes under now (its node and epoch).
    fn own_origin(&self) -> Origin;

    /// The keys this node trusts now (its pins and the registries it holds).
    fn registry(&mut self) -> Result<Registry, Self::Error>;

    /// The last change held of a run, applied or refused, and the chain value after it.
    fn run_state(&mut self, scope: &Scope, origin: &Origin) -> Result<RunState, Self::Error>;

    /// Whether the change with this hash was refused here (or arrived refused).
    fn is_refused(&mut self, hash: &[u8; 32]) -> Result<bool, Self::Error>;

    /// Takes a document out of storage to change it; `None` if this node holds none by
    /// that id. It comes back through [`ChangeLog::put_doc`].
    fn take_doc(&mut self, id: &DocId) -> Result<Option<Automerge>, Self::Error>;

    /// Appends a change to the log under its origin's own (origin, seq) with its chain
    /// value, and advances its run. When `entry.envelope.refused` is set, the change was
    /// not applied: only its place in the run is kept (its `change` bytes are empty).
    fn append(&mut self, entry: LogEntry, chain: ChainHash) -> Result<(), Self::Error>;

    /// Keeps a change this node refused, with its bytes and reason, for a person to see.
    fn quarantine(&mut self, envelope: &Envelope, refusal: &Refusal) -> Result<(), Self::Error>;

    /// A registry document changed mid-batch: make its records known to
    /// [`ChangeLog::registry`] before the next round.
    fn registry_changed(&mut self, id: &DocId, document: &Automerge) -> Result<(), Self::Error>;

    /// What this node knows of the catalog item `impl_code` a new case of `scope` froze
    /// at `version` ([`effect::ItemFacts`]); `None` when it holds no such item (nothing
    /// to check the intake against).
    fn item_facts(
        &mut self,
        _impl_code: &str,
        _version: u32,
        _scope: &Scope,
    ) -> Result<Option<effect::ItemFacts>, Self::Error> {
        Ok(None)
    }

    /// Gives back a document taken with [`ChangeLog::take_doc`]. When `changed`, the batch
    /// changed it: save it and derive its rows.
    fn put_doc(
        &mut self,
        id: DocId,
        kind: DocKind,
        scope: Scope,
        document: Automerge,
        changed: bool,
    ) -> Result<(), Self::Error>;
}

/// Rounds of retrying changes that wait on something else in the same batch (a registry
/// that makes their origin known, a creation in a run checked later).
const ROUNDS: usize = 8;

/// Checks and applies a batch against `log`. Every change ends applied, refused (keeping
/// its place), quarantined, a duplicate, or waiting for a later batch; the returned
/// [`Ack`] counts them and notes the refused and waiting ones for the sender.
pub fn apply_batch<L: ChangeLog>(log: &mut L, parsed: ParsedBatch) -> Result<Ack, L::Error> {
    let ParsedBatch { batch, changes } = parsed;
    let mut ack = Ack::default();
    let signatures = batch.signatures;
    let mut pending: Vec<(Envelope, Option<automerge::Change>)> =
        batch.envelopes.into_iter().zip(changes).collect();
    // Documents the batch touches, out of storage until the end: (kind, scope, document,
    // whether the batch changed it).
    let mut working: BTreeMap<DocId, (DocKind, Scope, Automerge, bool)> = BTreeMap::new();
    let own = log.own().clone();
    let own_origin = log.own_origin();
    let mut last_waits: Vec<ChangeNote> = Vec::new();
    // What judging read of each case, for the batch's later changes to it.
    let mut memo = effect::Memo::default();
    for _round in 0..ROUNDS {
        let registry = log.registry()?;
        let mut runs: HashMap<(Scope, Origin), RunState> = HashMap::new();
        for (envelope, _) in &pending {
            let key = (envelope.scope.clone(), envelope.origin);
            if let std::collections::hash_map::Entry::Vacant(slot) = runs.entry(key) {
                let state = log.run_state(&envelope.scope, &envelope.origin)?;
                slot.insert(state);
            }
        }
        let current = Batch {
            envelopes: pending.iter().map(|(e, _)| e.clone()).collect(),
            signatures: signatures.clone(),
            more: false,
        };
        let verdicts = feed::check_batch(
            &current,
            &|scope, origin| {
                runs.get(&(scope.clone(), *origin))
                    .copied()
                    .unwrap_or_default()
            },
            &registry,
        );
        let mut waiting: Vec<(Envelope, Option<automerge::Change>)> = Vec::new();
        let mut waits: Vec<ChangeNote> = Vec::new();
        // Runs with a waiting change: the rest of the run waits behind it, in order.
        let mut blocked: HashSet<(Scope, Origin)> = HashSet::new();
        let mut progress = 0u32;
        let mut registries_changed: Vec<DocId> = Vec::new();
        let mut give_back = GiveBack::new(&pending);
        for ((envelope, change), verdict) in pending.into_iter().zip(verdicts) {
            give_back.next(log, &mut working, Some(&envelope.doc), waiting.len())?;
            let key = (envelope.scope.clone(), envelope.origin);
            // This node writes its own runs; one arriving from elsewhere (even a place kept
            // for a forgery in its name) would take sequence numbers it has yet to use.
            let authentic = matches!(verdict, Verdict::Apply { .. } | Verdict::Refuse { .. });
            if envelope.origin == own_origin && authentic {
                let refusal = Refusal::OwnOrigin {
                    origin: envelope.origin.to_string(),
                };
                log.quarantine(&envelope, &refusal)?;
                ack.notes
                    .push(note(&envelope, false, refusal.code(), &refusal.to_string()));
                continue;
            }
            let verdict = match verdict {
                Verdict::Apply { .. } | Verdict::Refuse { .. } if blocked.contains(&key) => {
                    waiting.push((envelope, change));
                    continue;
                }
                other => other,
            };
            match verdict {
                Verdict::Duplicate => ack.duplicates += 1,
                Verdict::Defer(reason) => {
                    if blocked.insert(key) {
                        waits.push(note(&envelope, true, "waiting", &reason));
                    }
                    waiting.push((envelope, change));
                }
                Verdict::Quarantine(reason) => {
                    let refusal = Refusal::Unverified(reason);
                    log.quarantine(&envelope, &refusal)?;
                    ack.notes
                        .push(note(&envelope, false, refusal.code(), &refusal.to_string()));
                }
                Verdict::Refuse {
                    chain, signature, ..
                } if envelope.refused.is_some() => {
                    // Refused already on the way: it only keeps its place, here as there.
                    log.append(
                        LogEntry {
                            envelope,
                            signature,
                        },
                        chain,
                    )?;
                    progress += 1;
                }
                Verdict::Refuse {
                    refusal,
                    chain,
                    signature,
                } => {
                    refuse(log, &mut ack, envelope, &refusal, chain, signature)?;
                    progress += 1;
                }
                Verdict::Apply { chain, signature } => {
                    if envelope.refused.is_some() {
                        // Refused on the way: keep its place, as the node before us did.
                        log.append(
                            LogEntry {
                                envelope,
                                signature,
                            },
                            chain,
                        )?;
                        progress += 1;
                        continue;
                    }
                    if !may_read(&own, &envelope.scope) {
                        let refusal = Refusal::NotForThisNode {
                            scope: envelope.scope.to_string(),
                        };
                        refuse(log, &mut ack, envelope, &refusal, chain, signature)?;
                        progress += 1;
                        continue;
                    }
                    let Some(author) = registry.get(&envelope.origin.node) else {
                        // check_batch only says Apply for known origins.
                        continue;
                    };
                    let Some(change) = change else {
                        let refusal =
                            Refusal::Apply("the bytes are not an Automerge change".into());
                        refuse(log, &mut ack, envelope, &refusal, chain, signature)?;
                        progress += 1;
                        continue;
                    };
                    if !working.contains_key(&envelope.doc)
                        && let Some(document) = log.take_doc(&envelope.doc)?
                    {
                        let (kind, scope) = doc::header(&document)
                            .unwrap_or((envelope.kind, envelope.scope.clone()));
                        working.insert(envelope.doc.clone(), (kind, scope, document, false));
                    }
                    let held = working.get(&envelope.doc).map(|(_, _, d, _)| d);
                    let refused_deps = refused_dependencies(log, held, &change)?;
                    // What this node knows of the item a new case names (§5.7.2).
                    let item = match (envelope.kind, held) {
                        (DocKind::Case, None) => match effect::created_case_item(&change) {
                            Some((code, version)) => {
                                log.item_facts(&code, version, &envelope.scope)?
                            }
                            None => None,
                        },
                        _ => None,
                    };
                    let judgement = effect::judge_remembering(
                        author,
                        &envelope,
                        &change,
                        held,
                        &|h| refused_deps.contains(h),
                        item.as_ref(),
                        &mut memo,
                    );
                    match judgement {
                        Judgement::Defer(reason) => {
                            blocked.insert(key);
                            waits.push(note(&envelope, true, "waiting", &reason));
                            waiting.push((envelope, Some(change)));
                        }
                        Judgement::Refuse(refusal) => {
                            refuse(log, &mut ack, envelope, &refusal, chain, signature)?;
                            progress += 1;
                        }
                        Judgement::Allow => {
                            let entry = working.entry(envelope.doc.clone()).or_insert_with(|| {
                                (
                                    envelope.kind,
                                    envelope.scope.clone(),
                                    Automerge::new(),
                                    false,
                                )
                            });
                            match doc::apply_parsed(&mut entry.2, change) {
                                Ok(()) => {
                                    entry.3 = true;
                                    if envelope.kind == DocKind::Registry {
                                        registries_changed.push(envelope.doc.clone());
                                    }
                                    log.append(
                                        LogEntry {
                                            envelope,
                                            signature,
                                        },
                                        chain,
                                    )?;
                                    ack.applied += 1;
                                    progress += 1;
                                }
                                Err(error) => {
                                    let refusal = Refusal::Apply(error.to_string());
                                    refuse(log, &mut ack, envelope, &refusal, chain, signature)?;
                                    progress += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        give_back.next(log, &mut working, None, waiting.len())?;
        registries_changed.sort();
        registries_changed.dedup();
        for id in &registries_changed {
            if let Some((_, _, document, _)) = working.get(id) {
                log.registry_changed(id, document)?;
            }
        }
        pending = waiting;
        last_waits = waits;
        if pending.is_empty() || progress == 0 {
            break;
        }
    }
    ack.deferred = pending.len() as u32;
    ack.notes.extend(last_waits);
    for (id, (kind, scope, document, changed)) in working {
        if changed || !document.get_heads().is_empty() {
            log.put_doc(id, kind, scope, document, changed)?;
        }
    }
    Ok(ack)
}

/// A round's bookkeeping for giving a case back to the log (`put_doc`: its snapshot, rows
/// and cache) once the round has none of its changes left and none of them waits for the
/// next round. Holding every document to the end of the batch held a whole batch of loaded
/// cases at once (a hall's catch-up of old cases: tens of MB; `docs/benchmarks.md`).
/// Other kinds stay to the end: a registry's change is read after the round, and items,
/// departments and calendars are what later documents are judged and derived by.
struct GiveBack {
    /// How many of the round's changes each document has left.
    left: HashMap<DocId, usize>,
    /// Documents with a change waiting for the next round.
    waits_on: HashSet<DocId>,
    /// The change being handled: its document, and how many changes waited before it.
    current: Option<(DocId, usize)>,
}

impl GiveBack {
    fn new(pending: &[(Envelope, Option<automerge::Change>)]) -> GiveBack {
        let mut left: HashMap<DocId, usize> = HashMap::new();
        for (envelope, _) in pending {
            *left.entry(envelope.doc.clone()).or_default() += 1;
        }
        GiveBack {
            left,
            waits_on: HashSet::new(),
            current: None,
        }
    }

    /// Called before each change of the round with its document, and once after the last
    /// with `None`: settles the change handled before (`waiting`: the round's waiting list
    /// as it is now) and gives its case back if nothing of it is left.
    fn next<L: ChangeLog>(
        &mut self,
        log: &mut L,
        working: &mut BTreeMap<DocId, (DocKind, Scope, Automerge, bool)>,
        doc: Option<&DocId>,
        waiting: usize,
    ) -> Result<(), L::Error> {
        let done = std::mem::replace(&mut self.current, doc.map(|d| (d.clone(), waiting)));
        let Some((doc, waiting_before)) = done else {
            return Ok(());
        };
        if waiting_before < waiting {
            self.waits_on.insert(doc.clone());
        }
        let Some(count) = self.left.get_mut(&doc) else {
            return Ok(());
        };
        *count = count.saturating_sub(1);
        if *count > 0 || self.waits_on.contains(&doc) {
            return Ok(());
        }
        self.left.remove(&doc);
        if !matches!(working.get(&doc), Some((DocKind::Case, ..))) {
            return Ok(());
        }
        let Some((kind, scope, document, changed)) = working.remove(&doc) else {
            return Ok(());
        };
        if changed || !document.get_heads().is_empty() {
            log.put_doc(doc, kind, scope, document, changed)?;
        }
        Ok(())
    }
}

/// The hashes among what `change` depends on (and this node lacks) that were refused.
fn refused_dependencies<L: ChangeLog>(
    log: &mut L,
    held: Option<&Automerge>,
    change: &automerge::Change,
) -> Result<HashSet<[u8; 32]>, L::Error> {
    let missing = match held {
        Some(document) => document.get_missing_deps(change.deps()),
        None => change.deps().to_vec(),
    };
    let mut refused = HashSet::new();
    for hash in missing {
        if log.is_refused(&hash.0)? {
            refused.insert(hash.0);
        }
    }
    Ok(refused)
}

/// Quarantines an authentic change and keeps its place in its run, with the chain value
/// and signature the batch check verified (a relay forwards the run with them).
fn refuse<L: ChangeLog>(
    log: &mut L,
    ack: &mut Ack,
    envelope: Envelope,
    refusal: &Refusal,
    chain: ChainHash,
    signature: Option<[u8; 64]>,
) -> Result<(), L::Error> {
    log.quarantine(&envelope, refusal)?;
    ack.notes
        .push(note(&envelope, false, refusal.code(), &refusal.to_string()));
    let kept = Envelope {
        change: Vec::new(),
        refused: Some(format!("{}: {refusal}", refusal.code())),
        ..envelope
    };
    log.append(
        LogEntry {
            envelope: kept,
            signature,
        },
        chain,
    )
}

fn note(envelope: &Envelope, waiting: bool, code: &str, reason: &str) -> ChangeNote {
    ChangeNote {
        scope: envelope.scope.clone(),
        origin: envelope.origin,
        seq: envelope.seq,
        doc: envelope.doc.clone(),
        waiting,
        code: code.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests;
