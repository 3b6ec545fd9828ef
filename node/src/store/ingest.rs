//! A received batch of cases applied on two threads (issue "Faster and smaller", point 2).
//!
//! A hall taking a station's push spent nearly all of it on the single writer thread while
//! the second core idled: judging each change, applying it to its Automerge document,
//! saving snapshots and deriving rows need no database, yet ran between the writer's
//! inserts. Here the engine ([`engine::apply_batch`], unchanged) runs on a long-lived
//! apply thread against [`Remote`], a [`ChangeLog`] that sends every write to the writer
//! in order and asks it for what only the database knows; the writer, inside the batch's
//! own transaction, only writes ([`StoreLog`], as the one-thread path does) while the
//! apply thread works on the next change. The batch commits alone (a received batch is
//! never grouped, `WriterHandle::run_alone`) and is acknowledged only after it, as before.
//!
//! One channel carries everything, so the writer does the engine's writes and reads in the
//! engine's order: a read sees every write before it, as on one thread. The path takes
//! only batches of cases (a registry, a calendar or an item changes what later documents
//! of the same batch are judged or derived by) outside the isolated retry; everything else
//! runs on the writer alone (`store::sync::receive`). A long-lived thread rather than one
//! per batch: memory freed across threads stays in mimalloc's per-thread heaps until the
//! thread allocates again (`docs/benchmarks.md`, "Tried and dropped").

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use automerge::Automerge;
use yizhan_sync::auth::{NodeRecord, Refusal, Registry};
use yizhan_sync::effect::ItemFacts;
use yizhan_sync::engine::{self, ChangeLog};
use yizhan_sync::envelope::{ChainHash, Envelope};
use yizhan_sync::feed::{Ack, LogEntry, ParsedBatch, RunState};
use yizhan_sync::ids::{DocId, DocKind, Origin, Scope};

use super::StoreError;
use super::calendars::Calendars;
use super::snapshot;
use super::sync::{Settled, StoreLog};

/// The apply thread, as the writer holds it. Dropping it ends the thread.
pub(super) struct Applier {
    jobs: Sender<Job>,
}

impl Applier {
    /// Starts the apply thread; `None` if the thread cannot be made (the writer then
    /// applies every batch itself).
    pub(super) fn spawn() -> Option<Applier> {
        let (jobs, queue) = channel::<Job>();
        std::thread::Builder::new()
            .name("yizhan-apply".into())
            .spawn(move || apply_loop(queue))
            .inspect_err(
                |e| tracing::warn!(error = %e, "no apply thread; the writer applies batches alone"),
            )
            .ok()?;
        Some(Applier { jobs })
    }
}

/// Whether a batch may take the two-thread path: only cases, whose judging and rows
/// depend on nothing the same batch changes.
pub(super) fn takes(parsed: &ParsedBatch) -> bool {
    !parsed.batch.envelopes.is_empty()
        && parsed
            .batch
            .envelopes
            .iter()
            .all(|e| e.kind == DocKind::Case)
}

/// A document the writer took for the batch: out of its cache, or as stored (loaded on
/// the apply thread when the engine takes it, so loading old cases runs beside the
/// writer too).
pub(super) enum Taken {
    Loaded(Box<Automerge>, u32),
    Stored(snapshot::Stored),
    /// Not held here: a new document, known absent without asking the writer each time
    /// (that made every new case wait for the writer to catch up). Only the engine writes
    /// documents while it runs a batch, so it stays absent until the engine gives it back;
    /// a later take of it asks the writer.
    Absent,
}

/// What the apply thread gets for one batch.
struct Job {
    parsed: ParsedBatch,
    own: NodeRecord,
    own_origin: Origin,
    registry: Registry,
    calendars: Arc<Calendars>,
    /// The batch's documents the writer took out of its cache or the database.
    docs: HashMap<DocId, Taken>,
    to_writer: SyncSender<ToWriter>,
}

/// Writes sent together: one wake-up of the writer for many rows rather than one each
/// (a wake-up per change cost more CPU than the second thread saved).
const WRITES_AT_ONCE: usize = 64;

/// Messages the apply thread may be ahead of the writer by. Each settled document travels
/// to the writer whole (for its cache) as soon as the engine is done with it, so when the
/// writer lags (a catch-up of old cases, whose rows touch many index pages) an unbounded
/// queue would park the batch's loaded documents there instead. A few messages keep both
/// threads busy. The writer never waits on the apply thread while it drains this queue
/// (its answers go back on channels of their own), so the bound cannot deadlock.
const MESSAGES_AHEAD: usize = 4;

/// A write the engine asked for, done by the writer in order.
enum Write {
    Append(LogEntry, ChainHash),
    Quarantine(Envelope, Refusal),
    Settle(Box<Settled>),
}

/// What the apply thread sends the writer, in the engine's order.
enum ToWriter {
    Writes(Vec<Write>),
    RunState(Scope, Origin, Sender<Result<RunState, StoreError>>),
    IsRefused([u8; 32], Sender<Result<bool, StoreError>>),
    TakeDoc(DocId, Sender<Result<Option<(Automerge, u32)>, StoreError>>),
    ItemFacts(
        String,
        u32,
        Scope,
        Sender<Result<Option<ItemFacts>, StoreError>>,
    ),
    Registry(Sender<Result<Registry, StoreError>>),
    RegistryChanged(DocId, Box<Automerge>, Sender<Result<(), StoreError>>),
    /// The engine is done: its answer, and the documents it never took back.
    Done(Result<Ack, StoreError>, HashMap<DocId, Taken>),
}

fn apply_loop(queue: Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        let Job {
            parsed,
            own,
            own_origin,
            registry,
            calendars,
            docs,
            to_writer,
        } = job;
        let mut remote = Remote {
            own,
            own_origin,
            registry: Some(registry),
            calendars,
            docs,
            since: HashMap::new(),
            applied: HashMap::new(),
            item_facts: HashMap::new(),
            to_writer: to_writer.clone(),
            writes: Vec::new(),
        };
        let ack = catch_unwind(AssertUnwindSafe(|| {
            engine::apply_batch(&mut remote, parsed)
        }))
        .unwrap_or_else(|_| {
            tracing::error!("applying a batch panicked on the apply thread; it was rolled back");
            Err(StoreError::Internal(
                "applying a batch failed; nothing of it was saved".into(),
            ))
        });
        let ack = match remote.flush() {
            Ok(()) => ack,
            Err(error) => Err(error),
        };
        let left = std::mem::take(&mut remote.docs);
        let _ = to_writer.send(ToWriter::Done(ack, left));
    }
}

/// The writer's side: hands the batch to the apply thread and does what it sends, in
/// order, until the engine is done. `Ok(Err(batch))`: there is no apply thread, the batch
/// is handed back untouched for the writer to apply alone.
pub(super) fn receive_on_two_threads(
    log: &mut StoreLog<'_>,
    parsed: ParsedBatch,
) -> Result<Result<Ack, ParsedBatch>, StoreError> {
    // The documents of every change beyond what this node holds of its run, out of the
    // cache (or read as stored) now, so the engine takes them without asking. A change
    // held already is a duplicate the engine never takes a document for.
    let mut heads: HashMap<(Scope, Origin), u64> = HashMap::new();
    let mut wanted: Vec<DocId> = Vec::new();
    let mut seen: HashSet<&DocId> = HashSet::new();
    for envelope in &parsed.batch.envelopes {
        let key = (envelope.scope.clone(), envelope.origin);
        let held = match heads.get(&key) {
            Some(seq) => *seq,
            None => {
                let seq = log.run_state(&envelope.scope, &envelope.origin)?.seq;
                heads.insert(key, seq);
                seq
            }
        };
        if envelope.seq > held && seen.insert(&envelope.doc) {
            wanted.push(envelope.doc.clone());
        }
    }
    let mut docs = HashMap::with_capacity(wanted.len());
    for id in wanted {
        let taken = log.take_for_batch(&id)?.unwrap_or(Taken::Absent);
        docs.insert(id, taken);
    }
    let (to_writer, from_engine) = sync_channel(MESSAGES_AHEAD);
    let job = Job {
        parsed,
        own: log.own().clone(),
        own_origin: log.own_origin(),
        registry: log.registry()?,
        calendars: log.calendars(),
        docs,
        to_writer,
    };
    let Some(applier) = log.applier() else {
        log.put_back_untouched(job.docs);
        return Ok(Err(job.parsed));
    };
    if let Err(refused) = applier.jobs.send(job) {
        let job = refused.0;
        log.forget_applier();
        log.put_back_untouched(job.docs);
        return Ok(Err(job.parsed));
    }
    // The first failed write fails the batch (its transaction is rolled back); later
    // messages are only answered, so the engine ends soon.
    let mut failed: Option<StoreError> = None;
    loop {
        let Ok(message) = from_engine.recv() else {
            log.forget_applier();
            return Err(StoreError::Internal(
                "the apply thread stopped; the batch was not saved".into(),
            ));
        };
        let stopped = || StoreError::Internal("the batch stopped at an earlier failure".into());
        match message {
            ToWriter::Writes(writes) => {
                for write in writes {
                    if failed.is_some() {
                        break;
                    }
                    let done = match write {
                        Write::Append(entry, chain) => log.append(entry, chain),
                        Write::Quarantine(envelope, refusal) => log.quarantine(&envelope, &refusal),
                        Write::Settle(settled) => log.settle(*settled),
                    };
                    if let Err(e) = done {
                        failed = Some(e);
                    }
                }
            }
            ToWriter::RunState(scope, origin, reply) => {
                let answer = match &failed {
                    None => log.run_state(&scope, &origin),
                    Some(_) => Err(stopped()),
                };
                let _ = reply.send(answer);
            }
            ToWriter::IsRefused(hash, reply) => {
                let answer = match &failed {
                    None => log.is_refused(&hash),
                    Some(_) => Err(stopped()),
                };
                let _ = reply.send(answer);
            }
            ToWriter::TakeDoc(id, reply) => {
                let answer = match &failed {
                    None => log
                        .take_doc(&id)
                        .map(|d| d.map(|document| (document, log.since_taken(&id)))),
                    Some(_) => Err(stopped()),
                };
                let _ = reply.send(answer);
            }
            ToWriter::ItemFacts(code, version, scope, reply) => {
                let answer = match &failed {
                    None => log.item_facts(&code, version, &scope),
                    Some(_) => Err(stopped()),
                };
                let _ = reply.send(answer);
            }
            ToWriter::Registry(reply) => {
                let answer = match &failed {
                    None => log.registry(),
                    Some(_) => Err(stopped()),
                };
                let _ = reply.send(answer);
            }
            ToWriter::RegistryChanged(id, document, reply) => {
                let answer = match &failed {
                    None => log.registry_changed(&id, &document),
                    Some(_) => Err(stopped()),
                };
                let _ = reply.send(answer);
            }
            ToWriter::Done(ack, left) => {
                if let Some(error) = failed {
                    return Err(error);
                }
                log.put_back_untouched(left);
                return ack.map(Ok);
            }
        }
    }
}

/// The engine's [`ChangeLog`] on the apply thread: writes go to the writer in order, and
/// what only the database knows is asked of it (the answer reflects every write sent
/// before).
struct Remote {
    own: NodeRecord,
    own_origin: Origin,
    /// The registry as the batch began; `None` once a registry document of the batch
    /// changed it (then asked of the writer).
    registry: Option<Registry>,
    calendars: Arc<Calendars>,
    docs: HashMap<DocId, Taken>,
    /// Changes since its snapshot of each document the engine took.
    since: HashMap<DocId, u32>,
    /// Changes applied per document in this batch.
    applied: HashMap<DocId, u32>,
    /// What the writer said of each item version, per batch (as [`StoreLog`] keeps it):
    /// item and department rows are written only after the engine is done.
    item_facts: HashMap<(String, u32, Scope), Option<ItemFacts>>,
    to_writer: SyncSender<ToWriter>,
    /// Writes not sent yet: sent before any question, and at the end.
    writes: Vec<Write>,
}

impl Remote {
    fn ask<T>(
        &mut self,
        message: impl FnOnce(Sender<Result<T, StoreError>>) -> ToWriter,
    ) -> Result<T, StoreError> {
        self.flush()?;
        let (reply, answer) = channel();
        self.to_writer
            .send(message(reply))
            .map_err(|_| StoreError::Internal("the writer stopped listening".into()))?;
        answer
            .recv()
            .map_err(|_| StoreError::Internal("the writer did not answer".into()))?
    }

    fn tell(&mut self, write: Write) -> Result<(), StoreError> {
        self.writes.push(write);
        if self.writes.len() >= WRITES_AT_ONCE {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(&mut self.writes);
        self.to_writer
            .send(ToWriter::Writes(writes))
            .map_err(|_| StoreError::Internal("the writer stopped listening".into()))
    }
}

impl ChangeLog for Remote {
    type Error = StoreError;

    fn own(&self) -> &NodeRecord {
        &self.own
    }

    fn own_origin(&self) -> Origin {
        self.own_origin
    }

    fn registry(&mut self) -> Result<Registry, StoreError> {
        match &self.registry {
            Some(registry) => Ok(registry.clone()),
            None => self.ask(ToWriter::Registry),
        }
    }

    fn run_state(&mut self, scope: &Scope, origin: &Origin) -> Result<RunState, StoreError> {
        self.ask(|reply| ToWriter::RunState(scope.clone(), *origin, reply))
    }

    fn is_refused(&mut self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        self.ask(|reply| ToWriter::IsRefused(*hash, reply))
    }

    fn take_doc(&mut self, id: &DocId) -> Result<Option<Automerge>, StoreError> {
        let taken = match self.docs.remove(id) {
            Some(Taken::Loaded(document, since)) => Some((*document, since)),
            // A document that does not load fails the batch, as on the writer.
            Some(Taken::Stored(stored)) => Some(stored.load(id.as_str())?),
            Some(Taken::Absent) => None,
            None => self.ask(|reply| ToWriter::TakeDoc(id.clone(), reply))?,
        };
        Ok(taken.map(|(document, since)| {
            self.since.insert(id.clone(), since);
            document
        }))
    }

    fn append(&mut self, entry: LogEntry, chain: ChainHash) -> Result<(), StoreError> {
        if entry.envelope.refused.is_none() {
            *self.applied.entry(entry.envelope.doc.clone()).or_default() += 1;
        }
        self.tell(Write::Append(entry, chain))
    }

    fn quarantine(&mut self, envelope: &Envelope, refusal: &Refusal) -> Result<(), StoreError> {
        self.tell(Write::Quarantine(envelope.clone(), refusal.clone()))
    }

    fn registry_changed(&mut self, id: &DocId, document: &Automerge) -> Result<(), StoreError> {
        self.registry = None;
        let document = Box::new(document.clone());
        self.ask(|reply| ToWriter::RegistryChanged(id.clone(), document, reply))
    }

    fn item_facts(
        &mut self,
        impl_code: &str,
        version: u32,
        scope: &Scope,
    ) -> Result<Option<ItemFacts>, StoreError> {
        let key = (impl_code.to_string(), version, scope.clone());
        if let Some(found) = self.item_facts.get(&key) {
            return Ok(found.clone());
        }
        let found = self.ask(|reply| {
            ToWriter::ItemFacts(impl_code.to_string(), version, scope.clone(), reply)
        })?;
        self.item_facts.insert(key, found.clone());
        Ok(found)
    }

    fn put_doc(
        &mut self,
        id: DocId,
        kind: DocKind,
        scope: Scope,
        document: Automerge,
        changed: bool,
    ) -> Result<(), StoreError> {
        // Removed, not read: the engine may take the document again in a later round of
        // the batch and give it back once more.
        let held = self.since.remove(&id);
        let applied = self.applied.remove(&id).unwrap_or(0);
        let done = Settled::prepare(
            &self.calendars,
            id,
            kind,
            scope,
            document,
            changed,
            held,
            applied,
        );
        self.tell(Write::Settle(Box::new(done)))
    }
}

#[cfg(test)]
mod tests;
