//! The change feed between nodes: version vectors, the protocol messages, and the checks a
//! receiver runs on a batch before applying anything.
//!
//! A peer asks "send me what you have beyond this vector, in these scopes" ([`Pull`]); the
//! answer is a [`Batch`] of envelopes in the order the sender stored them (so a change
//! always comes after the changes it depends on), with the origin's signature on the last
//! envelope of each (scope, origin) run. The receiver checks the whole batch with
//! [`check_batch`], applies what passed in one transaction, and its vector advances; a
//! transfer cut at any point resumes at the last committed batch, and nothing acknowledged
//! is sent twice.
//!
//! Vectors are kept per (scope, origin): with partial replication a node holds only some
//! of an origin's changes, but within one scope it always holds all of them up to its
//! vector entry, because every sender sends a scope's changes in sequence order.
//!
//! ```
//! use yizhan_sync::feed::VersionVector;
//! use yizhan_sync::ids::{NodeId, Origin, Scope};
//!
//! let scope = Scope::parse("case/440304001001").unwrap();
//! let origin = Origin { node: NodeId([1; 16]), epoch: 1 };
//! let mut have = VersionVector::default();
//! have.advance(&scope, &origin, 7);
//! have.advance(&scope, &origin, 5); // never goes back
//! assert_eq!(have.get(&scope, &origin), 7);
//! ```

use std::collections::{BTreeMap, HashMap};

use crate::auth::{NodeRole, Refusal, Registry};
use crate::domain::codes::DivisionCode;
use crate::envelope::{self, CHAIN_START, ChainHash, Envelope};
use crate::ids::{DocId, NodeId, Origin, Scope};

/// The protocol version this build speaks. A peer whose range does not include it gets a
/// clear "upgrade needed" answer. 2: refused changes keep their place in a run, and
/// receivers tell senders what they refused (wire encoding 2). 3: requests are signed
/// over a nonce and the body's length and digest, carried in headers, so a receiver
/// authenticates the caller before it reads the body (`request`, `yizhan-request-v2`),
/// and a child may hold a long-poll (`/sync/v1/wait`) open to its parent. 4: documents of
/// the kind `notification` (a hall's 通报) travel in batches. 5: documents of the kinds
/// `attachment` (a hall's blank forms and samples), `staff` (the tree's accounts) and
/// `department` (a hall's departments and their seals) travel in batches, and items carry
/// new fields (the guide's new elements, a version's effective date, the deciding
/// department), which a node of 4 refuses as unknown. 6: cases carry new actions
/// (`finish_step`, `pay`, `exempt`) and their snapshots the item version's steps, fee
/// lines and a combined item's parts; items may be combined (并联审批), with fee amounts.
/// 7: batches travel in wire encoding 3 (dependencies as references into the batch,
/// per-batch dictionaries: `wire`), which a node of 6 cannot read; what documents and
/// changes carry is the same as in 6.
pub const PROTOCOL_VERSION: u16 = 7;
/// The oldest protocol version this build still speaks: 7, since a node of 6 cannot read
/// a batch of encoding 3 and would fail every push and pull rather than hear "upgrade
/// needed" (hellos stay in encoding 2, so it reads this node's hello and says so).
pub const MIN_PROTOCOL_VERSION: u16 = 7;

/// Highest sequence number held, per (scope, origin).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionVector {
    entries: BTreeMap<(Scope, Origin), u64>,
}

impl VersionVector {
    pub fn get(&self, scope: &Scope, origin: &Origin) -> u64 {
        self.entries
            .get(&(scope.clone(), *origin))
            .copied()
            .unwrap_or(0)
    }

    /// Raises the entry to `seq`; never lowers it.
    pub fn advance(&mut self, scope: &Scope, origin: &Origin, seq: u64) {
        let entry = self.entries.entry((scope.clone(), *origin)).or_insert(0);
        *entry = (*entry).max(seq);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Scope, &Origin, u64)> {
        self.entries.iter().map(|((s, o), seq)| (s, o, *seq))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Only the entries in `scopes`.
    pub fn restricted_to(&self, scopes: &[Scope]) -> VersionVector {
        VersionVector {
            entries: self
                .entries
                .iter()
                .filter(|((s, _), _)| scopes.contains(s))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }

    /// How many changes `self` has that `other` lacks, assuming contiguous runs.
    pub fn ahead_of(&self, other: &VersionVector) -> u64 {
        self.entries
            .iter()
            .map(|((s, o), seq)| seq.saturating_sub(other.get(s, o)))
            .sum()
    }
}

/// First message of a session: who is speaking, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub protocol: u16,
    pub min_protocol: u16,
    pub node: NodeId,
    pub role: NodeRole,
    pub division: DivisionCode,
    pub name: String,
    /// The sender's clock, so the receiver can report the offset.
    pub now_ms: u64,
    pub capabilities: Vec<String>,
    /// Changes the sender refused lately that came from the receiver (what a child refused
    /// of what it pulled), so the receiver learns of them: nothing fails silently.
    pub refused: Vec<ChangeNote>,
}

/// What a receiver did with a change it did not apply, told back to whoever sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeNote {
    pub scope: Scope,
    pub origin: Origin,
    pub seq: u64,
    pub doc: DocId,
    /// Refused for good (quarantined), or only waiting (deferred) for something to arrive.
    pub waiting: bool,
    /// The reason's code, for a person's screen (see `auth::Refusal::code`).
    pub code: String,
    /// The reason in words, for logs and the command line.
    pub reason: String,
}

/// "Send me what you have beyond `have`, in `scopes`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pull {
    pub scopes: Vec<Scope>,
    pub have: VersionVector,
    /// Stop adding envelopes once the batch reaches about this many bytes of changes.
    pub max_bytes: u32,
}

/// The origin's signature on the chain value of one of its envelopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedSeq {
    pub scope: Scope,
    pub origin: Origin,
    pub seq: u64,
    pub signature: [u8; 64],
}

/// A run of envelopes, in the sender's storage order, with the signatures that close each
/// (scope, origin) run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub envelopes: Vec<Envelope>,
    pub signatures: Vec<SignedSeq>,
    /// The sender has more beyond this batch.
    pub more: bool,
}

/// A batch with its changes already parsed (`None` where the bytes are not a change), one
/// per envelope. Parsing is the larger part of applying a change, so it happens once, at
/// decoding ([`ParsedBatch::decode`]), and off the thread that applies the batch.
#[derive(Clone, Debug, Default)]
pub struct ParsedBatch {
    pub batch: Batch,
    pub changes: Vec<Option<automerge::Change>>,
}

impl ParsedBatch {
    /// Parses the changes of a batch that was decoded without keeping them. Each
    /// envelope's hash is recomputed from its bytes (as wire decoding does), so a batch
    /// handed over in memory cannot carry bytes its chain does not cover.
    pub fn parse(mut batch: Batch) -> ParsedBatch {
        let changes = batch
            .envelopes
            .iter_mut()
            .map(|e| {
                if e.refused.is_some() {
                    return None;
                }
                let change = automerge::Change::from_bytes(e.change.clone()).ok();
                e.hash = change
                    .as_ref()
                    .map_or(envelope::INVALID_HASH, |c| c.hash().0);
                change
            })
            .collect();
        ParsedBatch { batch, changes }
    }
}

/// The receiver's answer to a pushed batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    /// The receiver's vector in the pushed scopes, after the batch.
    pub have: VersionVector,
    pub applied: u32,
    pub duplicates: u32,
    pub quarantined: u32,
    pub deferred: u32,
    /// The changes of the pushed batch that were refused, and the first waiting change of
    /// each run that waits, with why.
    pub notes: Vec<ChangeNote>,
}

/// What a receiver knows of one (scope, origin) run: the last sequence number held and
/// the chain value after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunState {
    pub seq: u64,
    pub chain: ChainHash,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            seq: 0,
            chain: CHAIN_START,
        }
    }
}

/// What to do with one envelope of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Verified and authorized: apply it, then record it with its chain value (and the
    /// origin's signature, when the batch carried the one for this seq).
    Apply {
        chain: ChainHash,
        signature: Option<[u8; 64]>,
    },
    /// Already held.
    Duplicate,
    /// Not authentic (a broken chain, a signature that does not verify, bytes that are not
    /// a change): never apply, never forward, and it takes no place in its run; keep it
    /// with the reason for a person to see.
    Quarantine(String),
    /// Authentic, but its origin may not write there: never apply it; its place in the run
    /// is kept (see [`Envelope::refused`]) so the origin's later changes still flow.
    Refuse {
        refusal: Refusal,
        chain: ChainHash,
        signature: Option<[u8; 64]>,
    },
    /// Cannot be checked yet (its origin's key is not known here); ask again later.
    Defer(String),
}

/// Checks every envelope of a batch: change bytes against their hash, each run's hash
/// chain against the origin's signature, and the origin's right to write the scope.
///
/// `known` gives the receiver's state of a (scope, origin) run. Verdicts come back in the
/// batch's order, which is also the order to apply them in.
pub fn check_batch(
    batch: &Batch,
    known: &dyn Fn(&Scope, &Origin) -> RunState,
    registry: &Registry,
) -> Vec<Verdict> {
    let mut verdicts = vec![Verdict::Duplicate; batch.envelopes.len()];
    let mut runs: BTreeMap<(Scope, Origin), Vec<usize>> = BTreeMap::new();
    for (idx, envelope) in batch.envelopes.iter().enumerate() {
        runs.entry((envelope.scope.clone(), envelope.origin))
            .or_default()
            .push(idx);
    }
    let signatures: HashMap<(&Scope, &Origin, u64), &[u8; 64]> = batch
        .signatures
        .iter()
        .map(|s| ((&s.scope, &s.origin, s.seq), &s.signature))
        .collect();
    for ((scope, origin), indices) in runs {
        let mut state = known(&scope, &origin);
        // Envelopes past what is held, with their chain values.
        let mut fresh: Vec<(usize, ChainHash)> = Vec::new();
        let mut broken: Option<String> = None;
        let mut gap: Option<String> = None;
        for idx in indices {
            let envelope = &batch.envelopes[idx];
            if envelope.seq <= state.seq {
                verdicts[idx] = Verdict::Duplicate;
                continue;
            }
            if broken.is_some() || gap.is_some() {
                fresh.push((idx, state.chain));
                continue;
            }
            if envelope.prev != state.seq {
                if fresh.is_empty() && envelope.prev > state.seq {
                    // A batch delivered out of order: ask again once the gap is filled.
                    gap = Some(format!(
                        "{origin} in {scope} continues after #{} but this node holds only up to #{}",
                        envelope.prev, state.seq
                    ));
                } else {
                    broken = Some(format!(
                        "the run of {origin} in {scope} is not contiguous at #{}",
                        envelope.seq
                    ));
                }
                fresh.push((idx, state.chain));
                continue;
            }
            if envelope.kind.scope_kind() != envelope.scope.kind() {
                broken = Some(format!(
                    "a {} document cannot live in {}",
                    envelope.kind.as_str(),
                    envelope.scope
                ));
            } else if envelope.refused.is_none() && envelope.hash == envelope::INVALID_HASH {
                // The hash itself was computed from the bytes at decoding (see Envelope::hash).
                broken = Some("the change bytes are not a valid Automerge change".into());
            }
            state = RunState {
                seq: envelope.seq,
                chain: envelope::chain_next(&state.chain, envelope),
            };
            fresh.push((idx, state.chain));
        }
        let Some(&(last_idx, last_chain)) = fresh.last() else {
            continue;
        };
        let last_seq = batch.envelopes[last_idx].seq;
        let record = registry.get(&origin.node);
        let outcome: Result<(), Verdict> = if let Some(reason) = broken {
            Err(Verdict::Quarantine(reason))
        } else if let Some(reason) = gap {
            Err(Verdict::Defer(reason))
        } else if let Some(record) = record {
            match signatures.get(&(&scope, &origin, last_seq)) {
                None => Err(Verdict::Quarantine(format!(
                    "the run of {origin} in {scope} ends unsigned at #{last_seq}"
                ))),
                Some(signature)
                    if !envelope::verify(
                        &record.public_key,
                        &origin,
                        last_seq,
                        &last_chain,
                        signature,
                    ) =>
                {
                    Err(Verdict::Quarantine(format!(
                        "the signature of {origin} on #{last_seq} in {scope} does not verify (forged, altered or missing changes)"
                    )))
                }
                Some(_) => Ok(()),
            }
        } else {
            Err(Verdict::Defer(
                Refusal::UnknownOrigin(origin.node).to_string(),
            ))
        };
        for (idx, chain) in fresh {
            let envelope = &batch.envelopes[idx];
            verdicts[idx] = match &outcome {
                Err(verdict) => verdict.clone(),
                Ok(()) => {
                    let signature = signatures
                        .get(&(&scope, &origin, envelope.seq))
                        .map(|s| **s);
                    match registry.check_write(&origin, envelope.seq, &scope) {
                        Ok(_) => Verdict::Apply { chain, signature },
                        Err(refusal @ Refusal::UnknownOrigin(_)) => {
                            Verdict::Defer(refusal.to_string())
                        }
                        Err(refusal) => Verdict::Refuse {
                            refusal,
                            chain,
                            signature,
                        },
                    }
                }
            };
        }
    }
    verdicts
}

/// One change in a node's log, with the origin's signature on it when the node has it
/// (always for its own changes; for relayed ones, where a received run ended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub envelope: Envelope,
    pub signature: Option<[u8; 64]>,
}

/// Builds the next batch from `entries`: the changes the receiver lacks, in the sender's
/// storage order (so dependencies come first).
///
/// The batch is a prefix of `entries` of about `max_bytes` of change bytes that ends where
/// every (scope, origin) run in it ends on a signed change, and it carries exactly one
/// signature per run: the one on its last change. A relay can therefore always forward what
/// it received, cut where its own batches were cut.
pub fn build_batch(entries: impl IntoIterator<Item = LogEntry>, max_bytes: usize) -> Batch {
    let mut envelopes: Vec<Envelope> = Vec::new();
    let mut signed: HashMap<(Scope, Origin, u64), [u8; 64]> = HashMap::new();
    let mut open: std::collections::HashSet<(Scope, Origin)> = std::collections::HashSet::new();
    let mut closed_at = 0;
    let mut bytes = 0;
    let mut more = false;
    for entry in entries {
        if bytes >= max_bytes && open.is_empty() {
            more = true;
            break;
        }
        let key = (entry.envelope.scope.clone(), entry.envelope.origin);
        match entry.signature {
            Some(signature) => {
                signed.insert((key.0.clone(), key.1, entry.envelope.seq), signature);
                open.remove(&key);
            }
            None => {
                open.insert(key);
            }
        }
        bytes += entry.envelope.change.len();
        envelopes.push(entry.envelope);
        if open.is_empty() {
            closed_at = envelopes.len();
        }
    }
    if closed_at < envelopes.len() {
        // The log ended inside an unsigned run (a relay that lost a signature): stop at the
        // last point where every run was closed.
        envelopes.truncate(closed_at);
        more = true;
    }
    let mut last: BTreeMap<(Scope, Origin), u64> = BTreeMap::new();
    for envelope in &envelopes {
        last.insert((envelope.scope.clone(), envelope.origin), envelope.seq);
    }
    let signatures = last
        .into_iter()
        .map(|((scope, origin), seq)| {
            let signature = signed[&(scope.clone(), origin, seq)];
            SignedSeq {
                scope,
                origin,
                seq,
                signature,
            }
        })
        .collect();
    Batch {
        envelopes,
        signatures,
        more,
    }
}

/// Whether a peer speaking `hello` can talk to this build; `Err` says who must upgrade.
pub fn compatible(hello: &Hello) -> Result<(), String> {
    if hello.protocol < MIN_PROTOCOL_VERSION {
        return Err(format!(
            "upgrade needed: node {} speaks sync protocol {} but this node needs at least {MIN_PROTOCOL_VERSION}; upgrade yizhan on {}",
            hello.node, hello.protocol, hello.name
        ));
    }
    if hello.min_protocol > PROTOCOL_VERSION {
        return Err(format!(
            "upgrade needed: node {} needs sync protocol {} or newer but this node speaks {PROTOCOL_VERSION}; upgrade yizhan here",
            hello.node, hello.min_protocol
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::auth::tests::record;
    use crate::ids::{DocId, DocKind};

    struct Author {
        key: SigningKey,
        origin: Origin,
        chains: HashMap<Scope, ChainHash>,
        last_in: HashMap<Scope, u64>,
        seq: u64,
    }

    impl Author {
        fn new(seed: u8) -> Author {
            let key = SigningKey::from_bytes(&[seed; 32]);
            let node = NodeId::from_public_key(&key.verifying_key().to_bytes());
            Author {
                key,
                origin: Origin { node, epoch: 1 },
                chains: HashMap::new(),
                last_in: HashMap::new(),
                seq: 0,
            }
        }

        /// A real Automerge change in `scope`, enveloped and signed.
        fn write(&mut self, scope: &str, n: u64) -> (Envelope, SignedSeq) {
            let mut doc = automerge::AutoCommit::new().with_actor(self.origin.actor());
            automerge::transaction::Transactable::put(&mut doc, automerge::ROOT, "n", n as i64)
                .unwrap();
            let change = doc.get_last_local_change().unwrap();
            self.seq += 1;
            let scope = Scope::parse(scope).unwrap();
            let prev = self.last_in.get(&scope).copied().unwrap_or(0);
            self.last_in.insert(scope.clone(), self.seq);
            let envelope = Envelope {
                origin: self.origin,
                seq: self.seq,
                prev,
                doc: DocId::parse(&format!("c-{n}")).unwrap(),
                kind: DocKind::Case,
                scope: scope.clone(),
                hash: change.hash().0,
                change: change.raw_bytes().to_vec(),
                refused: None,
            };
            let previous = self.chains.get(&scope).copied().unwrap_or(CHAIN_START);
            let chain = envelope::chain_next(&previous, &envelope);
            self.chains.insert(scope.clone(), chain);
            let signature = envelope::sign(&self.key, &self.origin, self.seq, &chain);
            (
                envelope,
                SignedSeq {
                    scope,
                    origin: self.origin,
                    seq: self.seq,
                    signature,
                },
            )
        }
    }

    fn registry_with(records: &[crate::auth::NodeRecord]) -> Registry {
        let mut registry = Registry::new();
        for r in records {
            registry.insert(r.clone());
        }
        registry
    }

    #[test]
    fn a_signed_run_is_applied_and_only_its_end_needs_a_signature() {
        let mut author = Author::new(4);
        let registry = registry_with(&[record(4, NodeRole::Station, "440304001001")]);
        let mut batch = Batch::default();
        for n in 0..5 {
            let (envelope, signature) = author.write("case/440304001001", n);
            batch.envelopes.push(envelope);
            if n == 4 {
                batch.signatures.push(signature);
            }
        }
        let verdicts = check_batch(&batch, &|_, _| RunState::default(), &registry);
        assert!(
            verdicts.iter().all(|v| matches!(v, Verdict::Apply { .. })),
            "{verdicts:?}"
        );
        // Resending it is harmless.
        let Verdict::Apply { chain, .. } = verdicts[4] else {
            unreachable!()
        };
        let state = RunState { seq: 5, chain };
        let again = check_batch(&batch, &|_, _| state, &registry);
        assert!(again.iter().all(|v| *v == Verdict::Duplicate));
    }

    #[test]
    fn forged_altered_unsigned_and_unauthorized_runs_are_quarantined() {
        let station = record(4, NodeRole::Station, "440304001001");
        let registry = registry_with(&[
            station.clone(),
            record(5, NodeRole::Station, "440304001002"),
        ]);

        // Forged: claims to be station 5, signed with station 4's key.
        let mut forger = Author::new(4);
        forger.origin = Origin {
            node: registry
                .get(&record(5, NodeRole::Station, "440304001002").node)
                .unwrap()
                .node,
            epoch: 1,
        };
        let (envelope, signature) = forger.write("case/440304001002", 1);
        let forged = Batch {
            envelopes: vec![envelope],
            signatures: vec![signature],
            more: false,
        };
        let verdicts = check_batch(&forged, &|_, _| RunState::default(), &registry);
        assert!(
            matches!(&verdicts[0], Verdict::Quarantine(r) if r.contains("does not verify")),
            "{verdicts:?}"
        );

        // Altered in transit: a middle envelope's document id changed.
        let mut author = Author::new(4);
        let mut altered = Batch::default();
        for n in 0..3 {
            let (envelope, signature) = author.write("case/440304001001", n);
            altered.envelopes.push(envelope);
            altered.signatures.push(signature);
        }
        altered.envelopes[1].doc = DocId::parse("c-99").unwrap();
        let verdicts = check_batch(&altered, &|_, _| RunState::default(), &registry);
        assert!(
            verdicts.iter().all(|v| matches!(v, Verdict::Quarantine(_))),
            "{verdicts:?}"
        );

        // Unsigned end.
        let mut author = Author::new(4);
        let (envelope, _) = author.write("case/440304001001", 1);
        let unsigned = Batch {
            envelopes: vec![envelope],
            signatures: vec![],
            more: false,
        };
        let verdicts = check_batch(&unsigned, &|_, _| RunState::default(), &registry);
        assert!(matches!(&verdicts[0], Verdict::Quarantine(r) if r.contains("unsigned")));

        // Validly signed, but a station writing the catalog.
        let mut author = Author::new(4);
        let (mut envelope, _) = author.write("case/440304001001", 1);
        envelope.scope = Scope::parse("catalog/440304").unwrap();
        envelope.kind = DocKind::Item;
        let chain = envelope::chain_next(&CHAIN_START, &envelope);
        let signature = envelope::sign(&author.key, &author.origin, 1, &chain);
        let batch = Batch {
            signatures: vec![SignedSeq {
                scope: envelope.scope.clone(),
                origin: author.origin,
                seq: 1,
                signature,
            }],
            envelopes: vec![envelope],
            more: false,
        };
        let verdicts = check_batch(&batch, &|_, _| RunState::default(), &registry);
        assert!(
            matches!(&verdicts[0], Verdict::Refuse { refusal, .. } if refusal.to_string().contains("may not write catalog/440304")),
            "{verdicts:?}"
        );

        // Unknown origin: deferred, not quarantined.
        let mut stranger = Author::new(7);
        let (envelope, signature) = stranger.write("case/440304001001", 1);
        let batch = Batch {
            envelopes: vec![envelope],
            signatures: vec![signature],
            more: false,
        };
        let verdicts = check_batch(&batch, &|_, _| RunState::default(), &registry);
        assert!(matches!(verdicts[0], Verdict::Defer(_)));
    }

    #[test]
    fn a_run_that_skips_a_change_does_not_verify() {
        let mut author = Author::new(4);
        let registry = registry_with(&[record(4, NodeRole::Station, "440304001001")]);
        let writes: Vec<_> = (0..3)
            .map(|n| author.write("case/440304001001", n))
            .collect();
        let batch = Batch {
            envelopes: vec![writes[0].0.clone(), writes[2].0.clone()],
            signatures: vec![writes[2].1.clone()],
            more: false,
        };
        let verdicts = check_batch(&batch, &|_, _| RunState::default(), &registry);
        assert!(
            verdicts.iter().all(|v| matches!(v, Verdict::Quarantine(_))),
            "{verdicts:?}"
        );
    }

    #[test]
    fn protocol_versions() {
        let hello = Hello {
            protocol: PROTOCOL_VERSION,
            min_protocol: MIN_PROTOCOL_VERSION,
            node: NodeId([1; 16]),
            role: NodeRole::Station,
            division: DivisionCode::parse("440304001001").unwrap(),
            name: "x".into(),
            now_ms: 0,
            capabilities: vec![],
            refused: vec![],
        };
        assert!(compatible(&hello).is_ok());
        let newer = Hello {
            protocol: 9,
            min_protocol: 9,
            ..hello.clone()
        };
        assert!(
            compatible(&newer)
                .unwrap_err()
                .contains("upgrade yizhan here")
        );
        let older = Hello {
            protocol: 0,
            min_protocol: 0,
            ..hello
        };
        assert!(
            compatible(&older)
                .unwrap_err()
                .contains("upgrade yizhan on")
        );
    }
}
