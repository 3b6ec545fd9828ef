//! The two-thread apply writes exactly what the writer alone writes.

use rusqlite::types::Value;
use yizhan_sync::domain::case::Action;

use crate::store::NewAction;
use crate::store::sync::tests::{Node, sync, tree_with_demo_catalog};
use crate::store::tests::{at, complete_application, item, staff};

/// Every row a received case leaves at the hall, but for the wall-clock times of writing
/// (`documents.updated_ms`).
const ROWS: &[&str] = &[
    "SELECT id, kind, scope, bytes, heads, upto FROM documents ORDER BY id",
    "SELECT local_seq, origin_node, origin_epoch, seq, prev, doc_id, scope, hash, bytes, chain, signature, refused, kind
     FROM changes ORDER BY local_seq",
    "SELECT * FROM run_heads ORDER BY scope, origin_node, origin_epoch",
    "SELECT * FROM cases ORDER BY id",
    "SELECT * FROM case_events ORDER BY case_id, event_id",
    "SELECT * FROM case_fees ORDER BY case_id, event_id",
    "SELECT doc_id FROM underived ORDER BY doc_id",
    "SELECT origin_node, seq, doc_id, code FROM quarantine ORDER BY id",
];

async fn rows(node: &Node) -> Vec<Vec<Value>> {
    node.store
        .write(|ctx| {
            let mut all = Vec::new();
            for sql in ROWS {
                let mut statement = ctx.conn.prepare(sql)?;
                let width = statement.column_count();
                let mut found = statement.query([])?;
                while let Some(row) = found.next()? {
                    all.push((0..width).map(|i| row.get(i)).collect::<Result<_, _>>()?);
                }
                all.push(vec![Value::Text(format!("end of {sql}"))]);
            }
            Ok(all)
        })
        .await
        .unwrap()
}

/// Batches the sub-district applied on two threads.
async fn on_two_threads(node: &Node) -> u64 {
    node.store
        .write(|ctx| Ok(ctx.two_thread_batches))
        .await
        .unwrap()
}

/// The station makes cases and records on them in small batches (a case's changes split
/// over batches, so documents come from the cache and from their snapshots), then records
/// on old cases again; the sub-district receives them, with or without its apply thread.
async fn received_at_sub(two_threads: bool) -> (Vec<Vec<Value>>, u64) {
    let [district, sub, station] = tree_with_demo_catalog().await;
    if !two_threads {
        sub.store
            .write(|ctx| {
                ctx.applier = None;
                Ok(())
            })
            .await
            .unwrap();
    }
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let residence = item("居住证申领");
    let mut ids = Vec::new();
    for n in 0..24u64 {
        let day = at("2026-03-02") + n * 60_000;
        let id = station
            .store
            .create_case(
                residence.impl_code.to_string(),
                complete_application(&residence),
                staff(),
                day,
            )
            .await
            .unwrap();
        station
            .store
            .act_on_case(id.clone(), vec![NewAction::Accept], staff(), day + 1_000)
            .await
            .unwrap();
        ids.push(id);
        if n % 8 == 7 {
            sync(&sub, &station).await;
        }
    }
    for id in ids.iter().step_by(3) {
        station
            .store
            .act_on_case(
                id.clone(),
                vec![NewAction::Do(Action::Decide {
                    approved: true,
                    reason: String::new(),
                    basis: String::new(),
                    remedies: String::new(),
                    on_behalf_of: None,
                })],
                staff(),
                at("2026-03-05"),
            )
            .await
            .unwrap();
    }
    sync(&sub, &station).await;
    (rows(&sub).await, on_two_threads(&sub).await)
}

#[tokio::test]
async fn the_apply_thread_writes_what_the_writer_alone_writes() {
    let (two, batches) = received_at_sub(true).await;
    let (one, none) = received_at_sub(false).await;
    assert!(batches >= 3, "{batches} batches on two threads");
    assert_eq!(none, 0);
    assert!(two.len() > 200, "{} rows", two.len());
    assert_eq!(two.len(), one.len());
    for (a, b) in two.iter().zip(&one) {
        assert_eq!(a, b);
    }
}
