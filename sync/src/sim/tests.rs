//! Sync tests on the in-memory network: scripted scenarios, then the convergence property.

use proptest::prelude::*;

use super::*;
use crate::domain::case::{Applicant, MaterialReceived, MissingMaterial, Phone};
use crate::domain::codes::ResidentId;
use crate::domain::item::tests::sample_item;

const HOUR: u64 = 3_600_000;

/// District, sub-district and two stations, enrolled top-down.
struct Tree {
    net: Network,
    district: usize,
    sub: usize,
    a: usize,
    b: usize,
}

fn tree() -> Tree {
    let mut net = Network::new();
    let district = net.add_peer("district", NodeRole::District, "440304");
    let sub = net.add_peer("subdistrict", NodeRole::Subdistrict, "440304001");
    let a = net.add_peer("station-a", NodeRole::Station, "440304001001");
    let b = net.add_peer("station-b", NodeRole::Station, "440304001002");
    net.connect(district, sub);
    net.connect(sub, a);
    net.connect(sub, b);
    Tree {
        net,
        district,
        sub,
        a,
        b,
    }
}

/// Catalog items the district authors: variations of the sample item.
fn items() -> Vec<Item> {
    ["4000599301000", "4000599302000", "4002099103000"]
        .iter()
        .enumerate()
        .map(|(n, tail)| {
            let mut item = sample_item();
            item.impl_code =
                crate::domain::codes::ImplCode::parse(&format!("11440399990000017K{tail}"))
                    .unwrap();
            item.name = format!("{}（{n}）", item.name);
            if n == 2 {
                item.case_type = crate::domain::item::CaseType::Instant;
                item.committed_limit_days = 0;
            }
            item
        })
        .collect()
}

fn application(item: &Item, complete: bool, n: u64) -> NewCase {
    let mut materials: Vec<MaterialReceived> = item
        .materials
        .iter()
        .filter(|m| m.required)
        .map(|m| MaterialReceived {
            name: m.name.clone(),
            originals: m.originals,
            copies: m.copies,
        })
        .collect();
    if !complete {
        materials.clear();
    }
    NewCase {
        applicant: Applicant::NaturalPerson {
            name: format!("申请人{n}"),
            id_number: ResidentId::parse("11010519491231002X").unwrap(),
            phone: Phone::parse("13800138000").unwrap(),
        },
        agent: None,
        materials,
        counter: String::new(),
        note: String::new(),
    }
}

fn accept() -> Action {
    Action::Accept {
        serial_no: SerialNo::parse("11440399990000017K4000599301000202603029900100110001").unwrap(),
        calendar: String::new(),
    }
}

#[test]
fn catalogs_flow_down_cases_up_and_decisions_back() {
    let Tree {
        mut net,
        district,
        sub,
        a,
        b,
    } = tree();
    let now = net.now_ms();
    for item in items() {
        net.peers[district].publish_item(&item, now);
    }
    net.run_until_quiescent(4096);
    assert_eq!(
        net.peers[a].items().len(),
        3,
        "the catalog reached station A"
    );
    assert_eq!(net.peers[b].items().len(), 3);

    let item = net.peers[a].items()[0].clone();
    let case = net.peers[a]
        .create_case(&item, application(&item, true, 1), now + HOUR)
        .unwrap();
    net.peers[a].act(&case, accept(), now + 2 * HOUR).unwrap();
    net.run_until_quiescent(4096);
    assert!(
        net.peers[district].case_ids().contains(&case),
        "the case went up through the sub-district"
    );
    assert!(net.peers[sub].case_ids().contains(&case));
    assert!(
        !net.peers[b].case_ids().contains(&case),
        "a station never receives another's cases"
    );

    let decide = Action::Decide {
        approved: true,
        reason: String::new(),
        basis: String::new(),
        remedies: String::new(),
    };
    net.peers[district]
        .act(&case, decide, now + 3 * HOUR)
        .unwrap();
    net.run_until_quiescent(4096);
    let at_station = doc::read_case(&net.peers[a].docs[&case]).unwrap();
    assert_eq!(
        case::derive(&at_station.intake, &at_station.events).status,
        case::Status::Decided
    );
    net.converged().unwrap();
    assert!(net.peers.iter().all(|p| p.quarantine.is_empty()));
}

#[test]
fn forged_and_unauthorized_changes_are_quarantined_and_never_forwarded() {
    let Tree {
        mut net,
        district,
        sub,
        a,
        b,
    } = tree();
    let now = net.now_ms();
    net.peers[district].publish_item(&items()[0], now);
    net.run_until_quiescent(4096);

    // Station A writes into the catalog (it signs properly, but may not write there).
    let item = {
        let mut item = items()[0].clone();
        item.version = 2;
        item.name = "伪造的事项".into();
        item
    };
    let scope = Scope::catalog(&DivisionCode::parse("440304").unwrap());
    let (id, document) = doc::new_item(&net.peers[a].origin, &scope, &item, now).unwrap();
    net.peers[a].docs.insert(id.clone(), document);
    net.peers[a].commit_local(&id, DocKind::Item, &scope);

    // Station A forges a change in station B's name.
    let case_b = {
        let item = net.peers[b].items()[0].clone();
        net.peers[b]
            .create_case(&item, application(&item, true, 2), now + HOUR)
            .unwrap()
    };
    let mut forged = net.peers[b].log.last().unwrap().clone();
    forged.signature = Some(envelope::sign(
        &net.peers[a].key,
        &forged.envelope.origin,
        forged.envelope.seq,
        &[0; 32],
    ));
    let forged_batch = feed::build_batch([forged], 1 << 20);
    let ack = net.peers[sub].receive(&forged_batch);
    assert_eq!(ack.applied, 0);
    assert!(
        net.peers[sub]
            .quarantine
            .iter()
            .any(|(_, r)| r.contains("does not verify")),
        "{:?}",
        net.peers[sub].quarantine
    );

    net.run_until_quiescent(4096);
    assert!(
        net.peers[sub]
            .quarantine
            .iter()
            .any(|(_, r)| r.contains("may not write catalog/440304")),
        "the sub-district quarantined the catalog write: {:?}",
        net.peers[sub].quarantine
    );
    assert!(
        net.peers[district].quarantine.is_empty(),
        "nothing refused was forwarded up: {:?}",
        net.peers[district].quarantine
    );
    assert_eq!(
        net.peers[district].items()[0].version,
        1,
        "the real catalog stands"
    );
    assert_eq!(net.peers[b].items()[0].version, 1);
    assert!(
        net.peers[b].quarantine.is_empty(),
        "nothing refused was forwarded to B"
    );
    assert!(
        net.peers[district].case_ids().contains(&case_b),
        "B's real case still went up"
    );
}

#[test]
fn a_batch_delivered_out_of_order_waits_for_the_gap() {
    let Tree {
        mut net,
        district,
        sub,
        ..
    } = tree();
    let now = net.now_ms();
    let mut item = items()[0].clone();
    for version in 1..=6 {
        item.version = version;
        net.peers[district].publish_item(&item, now + version as u64);
    }
    // Small batches, delivered newest first and one of them twice.
    net.exchange(0, 200);
    net.exchange(0, 200);
    assert!(net.in_flight(0) >= 2);
    let last = net.in_flight(0) - 1;
    net.deliver(0, last, true);
    while net.in_flight(0) > 0 {
        let last = net.in_flight(0) - 1;
        net.deliver(0, last, false);
    }
    net.run_until_quiescent(200);
    assert_eq!(net.peers[sub].items()[0].version, 6);
    net.converged().unwrap();
    assert!(
        net.peers[sub].quarantine.is_empty(),
        "{:?}",
        net.peers[sub].quarantine
    );
}

/// One step of the random scenario.
#[derive(Clone, Debug)]
enum Op {
    Receive {
        station: bool,
        item: usize,
        complete: bool,
    },
    Act {
        peer: usize,
        case: usize,
        action: usize,
    },
    Publish {
        item: usize,
    },
    Cut {
        link: usize,
    },
    Heal {
        link: usize,
    },
    Exchange {
        link: usize,
        max_bytes: u32,
    },
    Deliver {
        link: usize,
        pick: usize,
        duplicate: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), 0..3usize, prop::bool::weighted(0.8)).prop_map(|(station, item, complete)| Op::Receive { station, item, complete }),
        6 => (0..4usize, any::<usize>(), 0..10usize).prop_map(|(peer, case, action)| Op::Act { peer, case, action }),
        1 => (0..3usize).prop_map(|item| Op::Publish { item }),
        1 => (0..3usize).prop_map(|link| Op::Cut { link }),
        2 => (0..3usize).prop_map(|link| Op::Heal { link }),
        4 => (0..3usize, 100..6000u32).prop_map(|(link, max_bytes)| Op::Exchange { link, max_bytes }),
        5 => (0..3usize, any::<usize>(), prop::bool::weighted(0.2)).prop_map(|(link, pick, duplicate)| Op::Deliver { link, pick, duplicate }),
    ]
}

/// An action on `case` as `peer` sees it: the `n`-th of those the state machine allows
/// there (so most attempts are valid; concurrent ones on other peers still conflict).
fn action(n: usize, peer: &Peer, case: &DocId) -> Action {
    let case_doc = doc::read_case(&peer.docs[case]).unwrap();
    let status = case::derive(&case_doc.intake, &case_doc.events).status;
    let intake = case_doc.intake;
    let allowed: Vec<case::ActionKind> = case::ActionKind::ALL
        .into_iter()
        .filter(|k| case::transition(status, *k).is_some())
        .collect();
    let kind = if allowed.is_empty() {
        case::ActionKind::ALL[n % 10]
    } else {
        allowed[n % allowed.len()]
    };
    let procedure = intake
        .item
        .special_procedures
        .iter()
        .find(|p| !p.counted)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let written = |s: &str| s.to_string();
    match kind {
        case::ActionKind::Accept => accept(),
        case::ActionKind::NotifyMissing => Action::NotifyMissing {
            missing: intake
                .item
                .materials
                .iter()
                .filter(|m| m.required)
                .map(|m| MissingMaterial {
                    name: m.name.clone(),
                    reason: written("需提供"),
                })
                .collect(),
            note: String::new(),
        },
        case::ActionKind::Supplement => Action::Supplement {
            materials: intake
                .item
                .materials
                .iter()
                .filter(|m| m.required)
                .map(|m| MaterialReceived {
                    name: m.name.clone(),
                    originals: m.originals,
                    copies: m.copies,
                })
                .collect(),
        },
        case::ActionKind::Suspend => Action::Suspend {
            procedure,
            reason: written("按规定"),
        },
        case::ActionKind::Resume => Action::Resume {
            note: String::new(),
        },
        case::ActionKind::Extend => Action::Extend {
            days: 5,
            reason: written("情况复杂"),
        },
        case::ActionKind::Decide => Action::Decide {
            approved: !n.is_multiple_of(3),
            reason: written("不符合条件"),
            basis: written("《社会救助暂行办法》"),
            remedies: written("可申请复议或诉讼"),
        },
        case::ActionKind::Complete => Action::Complete {
            result: written("准予"),
            delivery: written("窗口领取"),
        },
        case::ActionKind::Withdraw => Action::Withdraw {
            reason: written("申请人撤回"),
        },
        case::ActionKind::Transfer => Action::Transfer {
            to: written("福田区民政局"),
            reason: written("需区级部门审批"),
            to_node: None,
        },
        case::ActionKind::SignFor => Action::SignFor {
            note: String::new(),
        },
        case::ActionKind::Resolve => Action::Resolve {
            void: Vec::new(),
            reason: written("组长裁定"),
            keep: Vec::new(),
        },
        case::ActionKind::Rate => Action::Rate {
            level: 2,
            comment: String::new(),
            rectify_days: 15,
        },
        case::ActionKind::Rectify => Action::Rectify {
            response: written("已回访整改"),
        },
        case::ActionKind::Refuse => Action::Refuse {
            reason: written("不符合条件"),
            basis: written("《社会救助暂行办法》"),
            remedies: written("可申请复议或诉讼"),
            competent_authority: None,
        },
    }
}

fn cases_from_env() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// What one scenario produced, for the coverage check.
#[derive(Debug, Default)]
struct Outcome {
    cases: usize,
    conflicts: usize,
    statuses: std::collections::BTreeSet<&'static str>,
    changes: usize,
}

/// Runs a scenario to quiescence and checks convergence; returns what happened.
fn run_scenario(ops: Vec<Op>) -> Result<Outcome, TestCaseError> {
    let Tree {
        mut net,
        district,
        a,
        b,
        ..
    } = tree();
    let catalog = items();
    for item in &catalog {
        let now = net.now_ms();
        net.peers[district].publish_item(item, now);
    }
    // The stations start with the catalog, as enrolled stations do.
    net.run_until_quiescent(8192);
    let mut versions = vec![1u32; catalog.len()];
    let mut n = 0u64;
    for op in ops {
        net.advance_clock(37 * 60_000);
        let now = net.now_ms();
        match op {
            Op::Receive {
                station,
                item,
                complete,
            } => {
                let peer = if station { a } else { b };
                let held = net.peers[peer].items();
                if let Some(item) = held.get(item % held.len().max(1)).cloned() {
                    n += 1;
                    let _ =
                        net.peers[peer].create_case(&item, application(&item, complete, n), now);
                }
            }
            Op::Act {
                peer,
                case,
                action: which,
            } => {
                let ids = net.peers[peer].case_ids();
                if !ids.is_empty() {
                    let id = ids[case % ids.len()].clone();
                    let action = action(which, &net.peers[peer], &id);
                    // Refusals by the state machine are expected; only valid events are written.
                    let _ = net.peers[peer].act(&id, action, now);
                }
            }
            Op::Publish { item } => {
                versions[item] += 1;
                let mut next = catalog[item].clone();
                next.version = versions[item];
                if next.case_type != crate::domain::item::CaseType::Instant {
                    next.committed_limit_days = 10 + versions[item] % 5;
                }
                net.peers[district].publish_item(&next, now);
            }
            Op::Cut { link } => net.cut(link),
            Op::Heal { link } => net.heal(link),
            Op::Exchange { link, max_bytes } => net.exchange(link, max_bytes),
            Op::Deliver {
                link,
                pick,
                duplicate,
            } => {
                net.deliver(link, pick, duplicate);
            }
        }
    }
    for link in 0..net.links() {
        net.heal(link);
    }
    net.run_until_quiescent(8192);
    prop_assert!(net.converged().is_ok(), "{}", net.converged().unwrap_err());
    for peer in &net.peers {
        prop_assert!(
            peer.quarantine.is_empty(),
            "{} quarantined {:?}",
            peer.name,
            peer.quarantine
        );
    }
    let mut outcome = Outcome {
        changes: net.peers[district].log.len(),
        ..Outcome::default()
    };
    // Every station's cases reached the district.
    for station in [a, b] {
        for id in net.peers[station].case_ids() {
            prop_assert!(net.peers[district].case_ids().contains(&id));
        }
    }
    for id in net.peers[district].case_ids() {
        let case_doc = doc::read_case(&net.peers[district].docs[&id]).unwrap();
        let state = case::derive(&case_doc.intake, &case_doc.events);
        outcome.cases += 1;
        outcome.conflicts += usize::from(!state.conflicts.is_empty());
        outcome.statuses.insert(state.status.as_str());
    }
    Ok(outcome)
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 20..120)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases_from_env(), max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// Random local writes (new cases, events on cases, catalog edits, concurrent
    /// conflicting transitions) with random link cuts and heals, batch sizes, reordering
    /// and duplication: once the links heal and the network runs to quiescence, every peer
    /// holding a scope has identical documents, rows and case statuses.
    #[test]
    fn the_network_converges(ops in ops()) {
        run_scenario(ops)?;
    }
}

/// The scenarios above really contain what the property claims to cover: many cases,
/// most statuses, and concurrent conflicts (a fixed seed, so this is deterministic).
#[test]
fn the_scenarios_cover_conflicts_and_every_status() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let mut total = Outcome::default();
    for _ in 0..40 {
        let ops = ops().new_tree(&mut runner).unwrap().current();
        let outcome = run_scenario(ops).unwrap();
        total.cases += outcome.cases;
        total.conflicts += outcome.conflicts;
        total.changes += outcome.changes;
        total.statuses.extend(outcome.statuses);
    }
    eprintln!("40 scenarios: {total:?}");
    assert!(total.cases >= 200, "{total:?}");
    assert!(total.conflicts >= 3, "{total:?}");
    assert!(total.statuses.len() >= 7, "{total:?}");
}
