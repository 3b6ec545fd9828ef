//! Catalog items: publishing versions, listing and searching.

use rusqlite::{OptionalExtension, params};
use yizhan_sync::doc;
use yizhan_sync::domain::item::Item;
use yizhan_sync::ids::{DocId, DocKind, Scope};

use super::writer::store_item_row;
use super::{Store, StoreError};
use crate::i18n::Words;

/// Which items to list.
#[derive(Clone, Debug, Default)]
pub struct ItemFilter {
    /// Words that must all occur in the name, category, subject or code.
    pub q: Option<String>,
    pub category: Option<String>,
    pub include_cancelled: bool,
    pub limit: u32,
    pub offset: u32,
}

/// An item as lists show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemSummary {
    pub id: String,
    pub impl_code: String,
    pub name: String,
    pub category: String,
    pub kind: String,
    pub level: String,
    pub case_type: String,
    pub legal_days: u32,
    pub committed_days: u32,
    pub status: String,
    pub version: u32,
}

/// What a catalog import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportCounts {
    pub new: u32,
    pub changed: u32,
    pub unchanged: u32,
}

impl Store {
    /// Publishes an item in `scope`: creates its document, or stores a new version in it.
    /// Versions only go up, so a stale copy of the catalog can never overwrite a newer one.
    pub async fn publish_item(
        &self,
        scope: Scope,
        item: Item,
        now_ms: u64,
    ) -> Result<DocId, StoreError> {
        item.validate()?;
        self.write(move |ctx| publish_in(ctx, &scope, item, now_ms))
            .await
    }

    /// Publishes a catalog file's items in this hall's catalog in one transaction (all or
    /// nothing): new and changed items are published, unchanged ones left; an item that
    /// differs from its published version but keeps its version number refuses the whole
    /// import. Importing is an admin's direct publication (`engine::may_author`, the
    /// technician's bulk path of §8.4.1), so a station imports nothing and a sub-district
    /// only items at its level.
    pub async fn import_catalog(
        &self,
        items: Vec<Item>,
        now_ms: u64,
    ) -> Result<ImportCounts, StoreError> {
        use yizhan_sync::engine::{AuthoringAct, StaffRole, may_author};
        let node = self.own_record().clone();
        for item in &items {
            may_author(
                &node,
                StaffRole::Admin,
                Some(item.level()),
                AuthoringAct::Publish,
            )
            .map_err(super::authoring_refused)?;
            item.validate()?;
        }
        let scope = Scope::catalog(&node.division);
        self.write(move |ctx| {
            let mut counts = ImportCounts::default();
            for item in items {
                let current: Option<String> = ctx
                    .conn
                    .prepare_cached("SELECT body_json FROM items WHERE impl_code = ?1")?
                    .query_row([item.impl_code.as_str()], |r| r.get(0))
                    .optional()?;
                let current: Option<Item> = current
                    .map(|body| {
                        serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                            id: item.impl_code.to_string(),
                            message: e.to_string(),
                        })
                    })
                    .transpose()?;
                match current {
                    Some(current) if current == item => counts.unchanged += 1,
                    Some(current) if current.version >= item.version => {
                        return Err(StoreError::Conflict(
                            Words::new("item_version")
                                .text("item", item.impl_code.to_string())
                                .text("version", current.version.to_string())
                                .text("next", current.version.saturating_add(1).to_string()),
                        ));
                    }
                    Some(_) => {
                        publish_in(ctx, &scope, item, now_ms)?;
                        counts.changed += 1;
                    }
                    None => {
                        publish_in(ctx, &scope, item, now_ms)?;
                        counts.new += 1;
                    }
                }
            }
            Ok(counts)
        })
        .await
    }

    pub async fn list_items(
        &self,
        filter: ItemFilter,
    ) -> Result<(Vec<ItemSummary>, u64), StoreError> {
        self.read(move |conn| {
            let mut sql = String::from(" FROM items WHERE 1 = 1");
            let mut args: Vec<String> = Vec::new();
            if !filter.include_cancelled {
                sql.push_str(" AND status = 'published'");
            }
            if let Some(category) = filter.category.filter(|c| !c.is_empty()) {
                args.push(category);
                sql.push_str(&format!(" AND category = ?{}", args.len()));
            }
            for word in filter.q.iter().flat_map(|q| q.split_whitespace()).take(8) {
                args.push(word.to_string());
                sql.push_str(&format!(" AND instr(search_text, ?{}) > 0", args.len()));
            }
            let total: i64 = conn.query_row(&format!("SELECT count(*){sql}"), rusqlite::params_from_iter(&args), |r| r.get(0))?;
            let select = format!(
                "SELECT id, impl_code, name, category, kind, level, case_type, legal_days, committed_days, status, version
                 {sql} ORDER BY category, name, id LIMIT {} OFFSET {}",
                filter.limit.clamp(1, 500),
                filter.offset
            );
            let mut stmt = conn.prepare_cached(&select)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(&args), |r| {
                    Ok(ItemSummary {
                        id: r.get(0)?,
                        impl_code: r.get(1)?,
                        name: r.get(2)?,
                        category: r.get(3)?,
                        kind: r.get(4)?,
                        level: r.get(5)?,
                        case_type: r.get(6)?,
                        legal_days: r.get(7)?,
                        committed_days: r.get(8)?,
                        status: r.get(9)?,
                        version: r.get(10)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((rows, total as u64))
        })
        .await
    }

    /// An item by its document id or its implementation code.
    pub async fn get_item(&self, key: String) -> Result<Item, StoreError> {
        self.read(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body_json FROM items WHERE id = ?1 OR impl_code = ?1")?
                .query_row(params![key], |r| r.get(0))
                .optional()?;
            let body = body.ok_or_else(|| StoreError::NotFound {
                what: format!("item {key}"),
            })?;
            serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                id: key,
                message: e.to_string(),
            })
        })
        .await
    }

    /// Every version of an item this node holds, oldest first, read from its document's
    /// history (derived, never stored beside it), by the item's id or implementation code.
    pub async fn item_versions(&self, key: String) -> Result<Vec<Item>, StoreError> {
        self.read(move |conn| {
            let id: Option<String> = conn
                .prepare_cached("SELECT id FROM items WHERE id = ?1 OR impl_code = ?1")?
                .query_row(params![key], |r| r.get(0))
                .optional()?;
            let not_found = || StoreError::NotFound {
                what: format!("item {key}"),
            };
            let id = id.ok_or_else(not_found)?;
            let (document, _) = super::snapshot::load(conn, &id)?.ok_or_else(not_found)?;
            doc::item_versions(&document).map_err(|e| StoreError::Corrupt {
                id,
                message: e.to_string(),
            })
        })
        .await
    }

    /// Every item held here, published or cancelled, by implementation code: the catalog
    /// as its spreadsheets export it.
    pub async fn all_items(&self) -> Result<Vec<Item>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, body_json FROM items ORDER BY impl_code")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, body)| {
                    serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                        id,
                        message: e.to_string(),
                    })
                })
                .collect()
        })
        .await
    }

    /// The categories of published items, with how many items each has.
    pub async fn item_categories(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT category, count(*) FROM items WHERE status = 'published' GROUP BY category ORDER BY category",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

/// Publishes `item` in `scope` inside the running write: the one path every publication
/// takes (a direct one, an import, an approved draft), so versions only go up and the
/// item's row and the intake cache follow the document.
pub(super) fn publish_in(
    ctx: &mut super::WriteCtx,
    scope: &Scope,
    item: Item,
    now_ms: u64,
) -> Result<DocId, StoreError> {
    item.validate()?;
    // A guide offers only files this node holds: a blank form or sample must be
    // published (`POST /api/v1/attachments`) before the item that names it.
    for attachment in item
        .materials
        .iter()
        .chain(item.situations.iter().flat_map(|s| &s.adds))
        .flat_map(|m| [&m.blank_form, &m.sample])
        .flatten()
    {
        let held: bool = ctx.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM documents WHERE id = ?1 AND kind = 'attachment')",
            params![attachment],
            |r| r.get(0),
        )?;
        if !held {
            return Err(StoreError::Invalid(
                Words::new("attachment_unknown")
                    .text("item", item.impl_code.to_string())
                    .text("name", attachment.clone()),
            ));
        }
    }
    let id = Item::doc_id_for(&item.impl_code);
    let origin = ctx.origin;
    match ctx.doc_mut(&id) {
        Ok(document) => {
            let current = doc::read_item(document).map_err(|e| StoreError::Corrupt {
                id: id.to_string(),
                message: e.to_string(),
            })?;
            if &current.scope != scope {
                return Err(StoreError::Conflict(
                    Words::new("item_other_scope")
                        .text("item", item.impl_code.to_string())
                        .text("scope", current.scope.to_string())
                        .text("wanted", scope.to_string()),
                ));
            }
            if item.version <= current.item.version {
                return Err(StoreError::Conflict(
                    Words::new("item_version")
                        .text("item", item.impl_code.to_string())
                        .text("version", current.item.version.to_string())
                        .text("next", current.item.version.saturating_add(1).to_string()),
                ));
            }
            doc::put_item(document, &origin, &item, now_ms)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
        }
        Err(StoreError::NotFound { .. }) => {
            let (_, document) = doc::new_item(&origin, scope, &item, now_ms)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            ctx.insert_doc(id.clone(), document);
        }
        Err(e) => return Err(e),
    }
    ctx.persist_local_change(&id, DocKind::Item, scope, now_ms)?;
    let item_doc = doc::ItemDoc {
        scope: scope.clone(),
        item,
    };
    store_item_row(&ctx.conn, "", &doc::item_row(&id, &item_doc))?;
    // New applications must snapshot the new version from now on.
    ctx.remember_item(std::sync::Arc::new(item_doc.item));
    Ok(id)
}
