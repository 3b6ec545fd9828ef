//! What a node holds, in a form two nodes can be compared by: every document of a kind
//! with its Automerge heads, and every `cases` row as text. `yizhan bench city` checks
//! with them that each hall of a simulated tree holds exactly the documents and derived
//! rows of its subtree (counts alone would hide a document held at an older state).

use rusqlite::types::ValueRef;
use yizhan_sync::doc;
use yizhan_sync::ids::DocKind;

use super::{Store, StoreError, snapshot};

impl Store {
    /// Every document of `kind` this node holds, in id order, with its heads (sorted, as
    /// `doc::heads_bytes` gives them): two nodes hold a document alike exactly when its
    /// heads are equal. Each document is loaded as the writer would load it (snapshot
    /// and the changes after it), so the heads are those of every applied change.
    pub async fn document_heads(
        &self,
        kind: DocKind,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, bytes, upto FROM documents WHERE kind = ?1 ORDER BY id",
            )?;
            let mut rows = stmt.query([kind.as_str()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let id: String = row.get(0)?;
                let bytes: Vec<u8> = row.get(1)?;
                let upto: i64 = row.get(2)?;
                let (document, _) = snapshot::load_from(conn, &id, &bytes, upto)?;
                out.push((id, doc::heads_bytes(&document)));
            }
            Ok(out)
        })
        .await
    }

    /// Every `cases` row, in id order, each column as text (`name=value`, in the table's
    /// column order; text quoted, NULL as `NULL`): nodes holding the same case documents derive the same rows.
    pub async fn case_rows(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT * FROM cases ORDER BY id")?;
            let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let id: String = row.get("id")?;
                let mut text = String::new();
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        text.push_str(", ");
                    }
                    text.push_str(name);
                    text.push('=');
                    text.push_str(&match row.get_ref(i)? {
                        ValueRef::Null => "NULL".to_string(),
                        ValueRef::Integer(n) => n.to_string(),
                        ValueRef::Real(x) => x.to_string(),
                        ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
                        ValueRef::Blob(b) => format!("x'{}'", yizhan_sync::ids::hex(b)),
                    });
                }
                out.push((id, text));
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use yizhan_sync::domain::case::Action;
    use yizhan_sync::ids::DocKind;

    use super::super::tests::{at, complete_application, item, lead, open_temp, publish_catalog};
    use crate::store::NewAction;

    /// A case's heads move with every change, past its snapshots too (a station's writes
    /// keep one line of history, so one head), and its row follows its status.
    #[tokio::test]
    async fn heads_and_rows_follow_every_change_of_a_case() {
        let (_dir, store) = open_temp();
        publish_catalog(&store).await;
        let dibao = item("最低生活保障申请");
        let id = store
            .create_case(
                dibao.impl_code.to_string(),
                complete_application(&dibao),
                lead(),
                at("2026-03-02"),
            )
            .await
            .unwrap();
        let heads = |store: crate::store::Store| async move {
            let all = store.document_heads(DocKind::Case).await.unwrap();
            assert_eq!(all.len(), 1);
            all[0].1.clone()
        };
        let mut seen = vec![heads(store.clone()).await];
        assert_eq!(seen[0].len(), 32, "one head");
        let procedure = dibao.special_procedures[0].name.clone();
        let suspend = || {
            NewAction::Do(Action::Suspend {
                procedure: procedure.clone(),
                reason: "需现场核查".into(),
            })
        };
        let mut actions = vec![NewAction::Accept];
        for _ in 0..10 {
            actions.push(suspend());
            actions.push(NewAction::Do(Action::Resume {
                note: String::new(),
            }));
        }
        actions.push(suspend());
        // 22 changes after the intake: past the snapshot written every 16.
        for action in actions {
            store
                .act_on_case(id.clone(), vec![action], lead(), at("2026-03-03"))
                .await
                .unwrap();
            let now = heads(store.clone()).await;
            assert_eq!(now.len(), 32, "one head");
            assert!(!seen.contains(&now), "the heads moved with the change");
            seen.push(now);
        }
        let rows = store.case_rows().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, id.as_str());
        assert!(rows[0].1.contains("status=\"suspended\""), "{}", rows[0].1);
    }
}
