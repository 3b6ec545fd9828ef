//! One sync session of a child with its parent, as a plan: the session says what it
//! wants next ([`Want`]), the driver does it (over HTTP, with a file, or in memory) and
//! hands the result back ([`Input`]). The HTTP driver, the sneakernet bundle and the
//! simulation all run this one machine, so a session goes the same way everywhere:
//!
//! 1. hello: versions and clocks (refused changes of the peer's, learnt since, go with it);
//! 2. pull until the parent has nothing more, applying each batch as it comes;
//! 3. ask what the parent holds, then push what it lacks, batch by batch, until it has
//!    everything or stops taking. While a batch is in flight the driver may build the
//!    next one from what the parent will hold if it takes all ([`Want::Push::next_have`])
//!    and hand it in with the acknowledgement; the session uses it only if the parent did
//!    take all.
//!
//! Every loop is bounded, and each batch commits on its own: a session cut at any point
//! resumes where it stopped.
//!
//! ```
//! use yizhan_sync::engine::session::{Input, Session, Want};
//! use yizhan_sync::feed::{Ack, Hello, VersionVector};
//! # let hello = Hello { protocol: yizhan_sync::feed::PROTOCOL_VERSION,
//! #     min_protocol: yizhan_sync::feed::MIN_PROTOCOL_VERSION, node: yizhan_sync::ids::NodeId([1; 16]),
//! #     role: yizhan_sync::auth::NodeRole::Station,
//! #     division: yizhan_sync::domain::codes::DivisionCode::parse("440304001001").unwrap(),
//! #     name: String::new(), now_ms: 0, capabilities: vec![], refused: vec![] };
//! let mut session = Session::new(hello.clone(), 64 * 1024);
//! let mut want = session.start();
//! // The parent answers the hello, has nothing to send and lacks nothing:
//! want = session.on(Input::Hello(hello));
//! assert!(matches!(want, Want::LocalVector));
//! want = session.on(Input::LocalVector(VersionVector::default()));
//! assert!(matches!(want, Want::Pull(_)));
//! want = session.on(Input::Pulled { batch: Default::default(), wire_bytes: 10 });
//! assert!(matches!(want, Want::ParentVector));
//! want = session.on(Input::ParentVector(VersionVector::default()));
//! assert!(matches!(want, Want::Build { .. }));
//! want = session.on(Input::Built(None));
//! assert!(matches!(want, Want::Done(Ok(_))));
//! ```

use crate::feed::{self, Ack, Batch, Hello, ParsedBatch, Pull, VersionVector};

/// Most batches a session pulls or pushes before it ends; the next session goes on.
pub const MAX_BATCHES: u32 = 100_000;

/// What the session wants the driver to do next.
#[derive(Debug)]
pub enum Want {
    /// Send this hello to the parent; answer with [`Input::Hello`].
    Hello(Hello),
    /// Read this node's vector; answer with [`Input::LocalVector`].
    LocalVector,
    /// Send this pull; answer with [`Input::Pulled`].
    Pull(Pull),
    /// Apply this batch to this node's log; answer with [`Input::Applied`].
    Apply(ParsedBatch),
    /// Ask the parent what it holds; answer with [`Input::ParentVector`].
    ParentVector,
    /// Build the batch the parent lacks beyond `have` from this node's log (what the
    /// parent may read); answer with [`Input::Built`].
    Build { have: VersionVector, max_bytes: u32 },
    /// Push this batch; answer with [`Input::Pushed`]. `next_have` is what the parent
    /// holds if it takes all of it: the next batch may be built from it meanwhile.
    Push {
        batch: Batch,
        next_have: Option<VersionVector>,
    },
    /// The session is over.
    Done(Result<SessionReport, String>),
}

/// What the driver hands back.
#[derive(Debug)]
pub enum Input {
    Hello(Hello),
    LocalVector(VersionVector),
    Pulled {
        batch: ParsedBatch,
        wire_bytes: u64,
    },
    Applied(Ack),
    ParentVector(VersionVector),
    Built(Option<Batch>),
    Pushed {
        ack: Ack,
        wire_bytes: u64,
        /// The next batch, built from the `next_have` of the push, if the driver did.
        ahead: Option<Batch>,
    },
    /// The transport failed; the session ends with this error.
    Failed(String),
}

/// What one session moved, and what the parent said.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SessionReport {
    /// The parent's hello.
    pub parent: Option<Hello>,
    /// What the parent said it holds, last in the session (for pending-up counts).
    pub parent_have: Option<VersionVector>,
    pub pulled_batches: u32,
    pub pulled: u32,
    pub pushed_batches: u32,
    pub pushed: u32,
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// The changes this node pulled and refused, and those the parent refused or is
    /// still waiting on of what this node pushed, with why.
    pub pull_notes: Vec<feed::ChangeNote>,
    pub push_notes: Vec<feed::ChangeNote>,
}

#[derive(Debug)]
enum Phase {
    Start,
    Hello,
    Vector,
    Pulling,
    Applying { more: bool },
    ParentVector,
    Building,
    Pushing { expected: Option<VersionVector> },
    Done,
}

/// One session's progress.
#[derive(Debug)]
pub struct Session {
    own: Hello,
    batch_bytes: u32,
    phase: Phase,
    report: SessionReport,
}

impl Session {
    /// A session of the node that says `own` in its hello, moving batches of about
    /// `batch_bytes`.
    pub fn new(own: Hello, batch_bytes: u32) -> Session {
        Session {
            own,
            batch_bytes,
            phase: Phase::Start,
            report: SessionReport::default(),
        }
    }

    /// What the session moved so far (also when it ended early).
    pub fn report(&self) -> &SessionReport {
        &self.report
    }

    /// The first step: say hello.
    pub fn start(&mut self) -> Want {
        self.phase = Phase::Hello;
        Want::Hello(self.own.clone())
    }

    /// Takes the result of the last step and says what to do next.
    pub fn on(&mut self, input: Input) -> Want {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        match (phase, input) {
            (_, Input::Failed(error)) => self.finish(Err(error)),
            (Phase::Hello, Input::Hello(theirs)) => {
                if let Err(error) = feed::compatible(&theirs) {
                    return self.finish(Err(error));
                }
                self.report.parent = Some(theirs);
                self.phase = Phase::Vector;
                Want::LocalVector
            }
            (Phase::Vector, Input::LocalVector(have)) => {
                self.phase = Phase::Pulling;
                Want::Pull(Pull {
                    scopes: Vec::new(),
                    have,
                    max_bytes: self.batch_bytes,
                })
            }
            (Phase::Pulling, Input::Pulled { batch, wire_bytes }) => {
                self.report.bytes_down += wire_bytes;
                if batch.batch.envelopes.is_empty() {
                    self.phase = Phase::ParentVector;
                    return Want::ParentVector;
                }
                self.phase = Phase::Applying {
                    more: batch.batch.more,
                };
                Want::Apply(batch)
            }
            (Phase::Applying { more }, Input::Applied(ack)) => {
                self.report.pulled_batches += 1;
                self.report.pulled += ack.applied;
                let before = self.report.pull_notes.len();
                self.report
                    .pull_notes
                    .extend(ack.notes.into_iter().filter(|n| !n.waiting));
                let refused_now = self.report.pull_notes.len() > before;
                // Stop pulling when the parent has no more, or nothing moved (what waits
                // is asked for again next session). A refused change moved: it keeps its
                // place, so it is not sent again.
                let moved = ack.applied > 0 || refused_now;
                if more && moved && self.report.pulled_batches < MAX_BATCHES {
                    self.phase = Phase::Vector;
                    Want::LocalVector
                } else {
                    self.phase = Phase::ParentVector;
                    Want::ParentVector
                }
            }
            (Phase::ParentVector, Input::ParentVector(have)) => {
                self.report.parent_have = Some(have.clone());
                self.phase = Phase::Building;
                Want::Build {
                    have,
                    max_bytes: self.batch_bytes,
                }
            }
            (Phase::Building, Input::Built(None)) => self.finish(Ok(())),
            (Phase::Building, Input::Built(Some(batch))) => self.push(batch),
            (
                Phase::Pushing { expected },
                Input::Pushed {
                    ack,
                    wire_bytes,
                    ahead,
                },
            ) => {
                self.report.pushed_batches += 1;
                self.report.pushed += ack.applied;
                self.report.bytes_up += wire_bytes;
                let before = self.report.parent_have.replace(ack.have.clone());
                let progress = before.is_none_or(|before| !covers(&before, &ack.have));
                self.report.push_notes.extend(ack.notes);
                let Some(expected) = expected else {
                    // That was the last batch the log had.
                    return self.finish(Ok(()));
                };
                if self.report.pushed_batches >= MAX_BATCHES {
                    return self.finish(Ok(()));
                }
                if covers(&ack.have, &expected) {
                    match ahead {
                        Some(batch) if !batch.envelopes.is_empty() => self.push(batch),
                        _ => {
                            self.phase = Phase::Building;
                            Want::Build {
                                have: ack.have,
                                max_bytes: self.batch_bytes,
                            }
                        }
                    }
                } else if !progress {
                    // The parent took nothing (it waits on something): the rest waits for
                    // a later session; the notes say why.
                    self.finish(Ok(()))
                } else {
                    self.phase = Phase::Building;
                    Want::Build {
                        have: ack.have,
                        max_bytes: self.batch_bytes,
                    }
                }
            }
            (phase, input) => self.finish(Err(format!(
                "sync session out of step: {input:?} in {phase:?}"
            ))),
        }
    }

    fn push(&mut self, batch: Batch) -> Want {
        // What the parent holds once it takes this batch, if more is to come.
        let expected = batch.more.then(|| {
            let mut have = self.report.parent_have.clone().unwrap_or_default();
            for e in &batch.envelopes {
                have.advance(&e.scope, &e.origin, e.seq);
            }
            have
        });
        self.phase = Phase::Pushing {
            expected: expected.clone(),
        };
        Want::Push {
            batch,
            next_have: expected,
        }
    }

    fn finish(&mut self, result: Result<(), String>) -> Want {
        self.phase = Phase::Done;
        Want::Done(result.map(|()| self.report.clone()))
    }
}

/// Whether `have` is at or beyond `want` for every run `want` names.
pub fn covers(have: &VersionVector, want: &VersionVector) -> bool {
    want.iter()
        .all(|(scope, origin, seq)| have.get(scope, origin) >= seq)
}
