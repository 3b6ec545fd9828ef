//! Attachments: the blank forms and samples a hall publishes with its catalog, kept as
//! their documents (`DocKind::Attachment`) and read from them, with no derived rows (so
//! `yizhan rebuild` has nothing to regenerate for them).

use yizhan_sync::doc;
use yizhan_sync::domain::attachment::Attachment;
use yizhan_sync::ids::{DocId, DocKind, Scope};

use super::{Store, StoreError};
use crate::i18n::Words;

impl Store {
    /// Publishes a file in `scope` (a hall's catalog scope) and answers its id and record.
    /// A file this hall already published is the same document: it is answered again,
    /// never created twice.
    pub async fn publish_attachment(
        &self,
        scope: Scope,
        name: String,
        content_type: String,
        bytes: Vec<u8>,
        now_ms: u64,
    ) -> Result<(DocId, Attachment), StoreError> {
        let attachment = Attachment::check(&name, &content_type, &bytes)
            .map_err(|e| StoreError::Invalid(Words::from(&e)))?;
        self.write(move |ctx| {
            let id = attachment.doc_id(&scope.division());
            match ctx.doc_mut(&id) {
                Ok(held) => {
                    let (_, stored) =
                        doc::read_attachment_meta(held).map_err(|e| StoreError::Corrupt {
                            id: id.to_string(),
                            message: e.to_string(),
                        })?;
                    return Ok((id, stored));
                }
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            let (_, document) =
                doc::new_attachment(&ctx.origin, &scope, &attachment, &bytes, now_ms)
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
            ctx.insert_doc(id.clone(), document);
            ctx.persist_local_change(&id, DocKind::Attachment, &scope, now_ms)?;
            Ok((id, attachment))
        })
        .await
    }

    /// An attachment's record and bytes; `NotFound` for any id that is not an attachment
    /// held here.
    pub async fn get_attachment(&self, id: String) -> Result<(Attachment, Vec<u8>), StoreError> {
        self.read(move |conn| {
            let not_found = || StoreError::NotFound {
                what: format!("attachment {id}"),
            };
            let is_attachment = DocId::parse(&id)
                .and_then(|doc_id| DocKind::of_id(&doc_id))
                .is_some_and(|kind| kind == DocKind::Attachment);
            if !is_attachment {
                return Err(not_found());
            }
            let (document, _) = super::snapshot::load(conn, &id)?.ok_or_else(not_found)?;
            let (_, attachment, bytes) =
                doc::read_attachment(&document).map_err(|e| StoreError::Corrupt {
                    id: id.clone(),
                    message: e.to_string(),
                })?;
            Ok((attachment, bytes))
        })
        .await
    }
}
