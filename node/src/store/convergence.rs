//! What a node holds, in a form two nodes can be compared by: every document of a kind
//! with its Automerge heads, and every `cases` row as text. `yizhan bench city` checks
//! with them that each hall of a simulated tree holds exactly the documents and derived
//! rows of its subtree (counts alone would hide a document held at an older state).

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
    /// column order): nodes holding the same case documents derive the same rows.
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
                    text.push_str(&format!("{name}={:?}", row.get_ref(i)?));
                }
                out.push((id, text));
            }
            Ok(out)
        })
        .await
    }
}
