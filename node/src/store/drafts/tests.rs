//! Drafts on a district's store in a temporary file: four eyes, stale drafts, concurrent
//! edits, and an approval that publishes through the one publication path.

use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::draft::{ChecklistAnswer, DraftKind, DraftStatus, SIMPLIFICATION};
use yizhan_sync::ids::Scope;

use super::super::tests::{at, identity, options};
use super::*;
use crate::demo::demo_catalog;
use crate::store::Role;

fn district() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options();
    opts.identity = identity(9, NodeRole::District, "440399");
    let store = Store::open(&dir.path().join("yizhan.db"), opts).unwrap();
    (dir, store)
}

fn person(name: &str, role: Role) -> Staff {
    Staff {
        username: name.into(),
        counter: String::new(),
        role,
    }
}

fn editor() -> Staff {
    person("editor", Role::ItemEditor)
}

fn reviewer() -> Staff {
    person("reviewer", Role::ItemReviewer)
}

fn answers() -> Vec<ChecklistAnswer> {
    SIMPLIFICATION
        .iter()
        .map(|key| ChecklistAnswer {
            situation: key.to_string(),
            applies: false,
            note: String::new(),
        })
        .collect()
}

/// A district item of the demo catalog, and the district store holding it published.
async fn with_item() -> (tempfile::TempDir, Store, Item) {
    let (dir, store) = district();
    let item = demo_catalog()
        .into_iter()
        .find(|i| i.level() == HandlingLevel::District)
        .unwrap();
    store
        .publish_item(
            Scope::catalog(&store.own_record().division),
            item.clone(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    (dir, store, item)
}

fn code(e: &StoreError) -> &'static str {
    e.words().code
}

#[tokio::test]
async fn a_change_is_published_only_by_a_second_person() {
    let (_dir, store, item) = with_item().await;
    let t = at("2026-03-03");
    let draft = store
        .create_draft(
            DraftKind::Change,
            Some(item.impl_code.to_string()),
            editor(),
            t,
        )
        .await
        .unwrap();
    assert_eq!(
        (draft.base_version, draft.status),
        (1, DraftStatus::Editing)
    );
    let mut body = draft.body.clone();
    body["name"] = serde_json::json!(format!("{}（变更）", item.name));
    let saved = store
        .save_draft(
            draft.id,
            DraftEdit {
                body,
                checklist: answers(),
                revision: draft.revision,
            },
            editor(),
            t,
        )
        .await
        .unwrap();
    let submitted = store
        .submit_draft(draft.id, saved.revision, editor(), t)
        .await
        .unwrap();
    assert_eq!(submitted.status, DraftStatus::Submitted);
    // Nobody edits a submitted draft.
    let err = store
        .save_draft(
            draft.id,
            DraftEdit {
                body: submitted.body.clone(),
                checklist: answers(),
                revision: submitted.revision,
            },
            editor(),
            t,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "draft_state");
    // The editor may not review; a reviewer who edited it may not either.
    let table = [
        (editor(), "authoring_reviewers_only"),
        (person("editor", Role::ItemReviewer), "authoring_four_eyes"),
        (person("admin", Role::Admin), "authoring_reviewers_only"),
    ];
    for (who, expected) in table {
        let err = store
            .review_draft(draft.id, submitted.revision, Review::Approve, who, t)
            .await
            .unwrap_err();
        assert_eq!(code(&err), expected);
        assert_eq!(err.class(), super::super::ErrorClass::Forbidden);
    }
    assert_eq!(
        store
            .get_item(item.impl_code.to_string())
            .await
            .unwrap()
            .version,
        1
    );
    // A rejection needs a reason, then sends it back to its editors.
    let err = store
        .review_draft(
            draft.id,
            submitted.revision,
            Review::Reject { reason: " ".into() },
            reviewer(),
            t,
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "draft_reason");
    let (rejected, _) = store
        .review_draft(
            draft.id,
            submitted.revision,
            Review::Reject {
                reason: "承诺时限须经局务会确定".into(),
            },
            reviewer(),
            t,
        )
        .await
        .unwrap();
    assert_eq!(
        (rejected.status, rejected.reason.as_str()),
        (DraftStatus::Rejected, "承诺时限须经局务会确定")
    );
    let again = store
        .submit_draft(draft.id, rejected.revision, editor(), t)
        .await
        .unwrap();
    let (published, doc) = store
        .review_draft(draft.id, again.revision, Review::Approve, reviewer(), t)
        .await
        .unwrap();
    assert_eq!(
        (
            published.status,
            published.published_version,
            published.reviewed_by.as_str()
        ),
        (DraftStatus::Published, Some(2), "reviewer")
    );
    assert!(doc.is_some());
    let now = store.get_item(item.impl_code.to_string()).await.unwrap();
    assert_eq!(
        (now.version, now.name),
        (2, format!("{}（变更）", item.name))
    );
    // The checklist stays with the version it published.
    let (kept, _) = store.draft(draft.id).await.unwrap();
    assert_eq!(kept.checklist, answers());
    // A published draft never changes again.
    let err = store
        .review_draft(draft.id, kept.revision, Review::Approve, reviewer(), t)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "draft_state");
}

#[tokio::test]
async fn a_draft_of_a_version_that_moved_on_is_stale() {
    let (_dir, store, item) = with_item().await;
    let t = at("2026-03-03");
    let first = store
        .create_draft(
            DraftKind::Change,
            Some(item.impl_code.to_string()),
            editor(),
            t,
        )
        .await
        .unwrap();
    let second = store
        .create_draft(
            DraftKind::Cancel,
            Some(item.impl_code.to_string()),
            editor(),
            t,
        )
        .await
        .unwrap();
    for draft in [&first, &second] {
        store
            .save_draft(
                draft.id,
                DraftEdit {
                    body: draft.body.clone(),
                    checklist: answers(),
                    revision: draft.revision,
                },
                editor(),
                t,
            )
            .await
            .unwrap();
        store
            .submit_draft(draft.id, draft.revision + 1, editor(), t)
            .await
            .unwrap();
    }
    let (cancelled, _) = store
        .review_draft(
            second.id,
            second.revision + 1,
            Review::Approve,
            reviewer(),
            t,
        )
        .await
        .unwrap();
    assert_eq!(cancelled.published_version, Some(2));
    let now = store.get_item(item.impl_code.to_string()).await.unwrap();
    assert_eq!(now.status, yizhan_sync::domain::item::ItemStatus::Cancelled);
    let err = store
        .review_draft(first.id, first.revision + 1, Review::Approve, reviewer(), t)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "draft_stale");
    assert_eq!(err.class(), super::super::ErrorClass::Conflict);
    assert_eq!(
        store.get_item(item.impl_code.to_string()).await.unwrap(),
        now
    );
}

#[tokio::test]
async fn concurrent_edits_never_overwrite_each_other_unseen() {
    let (_dir, store, item) = with_item().await;
    let t = at("2026-03-03");
    let draft = store
        .create_draft(
            DraftKind::Change,
            Some(item.impl_code.to_string()),
            editor(),
            t,
        )
        .await
        .unwrap();
    let mut mine = draft.body.clone();
    mine["name"] = serde_json::json!("甲的改动");
    let mut theirs = draft.body.clone();
    theirs["name"] = serde_json::json!("乙的改动");
    let edits = [
        (mine, editor()),
        (theirs, person("editor2", Role::ItemEditor)),
    ];
    let results = futures_join(&store, draft.id, draft.revision, edits, t).await;
    let ok: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(code(refused), "draft_edited");
    let (stored, _) = store.draft(draft.id).await.unwrap();
    assert_eq!(stored.revision, draft.revision + 1);
    assert_eq!(Some(&stored.body), ok[0].as_ref().ok().map(|d| &d.body));
    // The second editor's save is refused, the first one's stands; the reviewer of a
    // draft two people edited is neither of them (the last editor is one of the four eyes).
    assert!(matches!(stored.edited_by.as_str(), "editor" | "editor2"));
}

/// Both saves, sent at once against the same revision.
async fn futures_join(
    store: &Store,
    id: i64,
    revision: u32,
    edits: [(serde_json::Value, Staff); 2],
    t: u64,
) -> Vec<Result<Draft, StoreError>> {
    let [(a, by_a), (b, by_b)] = edits;
    let save = |body, by| {
        store.save_draft(
            id,
            DraftEdit {
                body,
                checklist: answers(),
                revision,
            },
            by,
            t,
        )
    };
    let (x, y) = tokio::join!(save(a, by_a), save(b, by_b));
    vec![x, y]
}

#[tokio::test]
async fn submission_needs_a_valid_item_a_full_checklist_and_the_right_node() {
    let (_dir, store, item) = with_item().await;
    let t = at("2026-03-03");
    let blank = store
        .create_draft(DraftKind::New, None, editor(), t)
        .await
        .unwrap();
    // A blank draft does not read as an item yet.
    let err = store
        .submit_draft(blank.id, blank.revision, editor(), t)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "draft_unreadable");
    // The published item again as a new one: it exists.
    let mut body = serde_json::to_value(&item).unwrap();
    let saved = store
        .save_draft(
            blank.id,
            DraftEdit {
                body: body.clone(),
                checklist: answers()[1..].to_vec(),
                revision: blank.revision,
            },
            editor(),
            t,
        )
        .await
        .unwrap();
    let err = store
        .submit_draft(blank.id, saved.revision, editor(), t)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "draft_checklist");
    // Another item code, but an invalid item: every problem named.
    let other = demo_catalog()
        .into_iter()
        .filter(|i| i.level() == HandlingLevel::District)
        .nth(1)
        .unwrap();
    body["impl_code"] = serde_json::json!(other.impl_code.as_str());
    body["committed_limit_days"] = serde_json::json!(item.legal_limit_days + 1);
    let saved = store
        .save_draft(
            blank.id,
            DraftEdit {
                body: body.clone(),
                checklist: answers(),
                revision: saved.revision,
            },
            editor(),
            t,
        )
        .await
        .unwrap();
    let err = store
        .submit_draft(blank.id, saved.revision, editor(), t)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "invalid_item");
    body["committed_limit_days"] = serde_json::json!(item.committed_limit_days);
    body["impl_code"] = serde_json::json!(item.impl_code.as_str());
    let saved = store
        .save_draft(
            blank.id,
            DraftEdit {
                body,
                checklist: answers(),
                revision: saved.revision,
            },
            editor(),
            t,
        )
        .await
        .unwrap();
    let err = store
        .submit_draft(blank.id, saved.revision, editor(), t)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "draft_exists");
    // A worker drafts nothing; a station authors nothing.
    let err = store
        .create_draft(DraftKind::New, None, person("w", Role::Worker), t)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "authoring_editors_only");
    let (_station_dir, station) = super::super::tests::open_temp();
    let err = station
        .create_draft(DraftKind::New, None, editor(), t)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "authoring_station");
}

#[tokio::test]
async fn a_change_is_in_force_from_its_approval_and_never_before_its_date() {
    let (_dir, store, item) = with_item().await;
    let t = at("2026-03-03");
    let draft = store
        .create_draft(
            DraftKind::Change,
            Some(item.impl_code.to_string()),
            editor(),
            t,
        )
        .await
        .unwrap();
    let mut body = draft.body.clone();
    body["effective_date"] = serde_json::json!("2026-03-04");
    store
        .save_draft(
            draft.id,
            DraftEdit {
                body,
                checklist: answers(),
                revision: draft.revision,
            },
            editor(),
            t,
        )
        .await
        .unwrap();
    let submitted = store
        .submit_draft(draft.id, draft.revision + 1, editor(), t)
        .await
        .unwrap();
    let err = store
        .review_draft(draft.id, submitted.revision, Review::Approve, reviewer(), t)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "draft_effective_later");
    assert_eq!(
        store
            .get_item(item.impl_code.to_string())
            .await
            .unwrap()
            .version,
        1
    );
    store
        .review_draft(
            draft.id,
            submitted.revision,
            Review::Approve,
            reviewer(),
            at("2026-03-04"),
        )
        .await
        .unwrap();
    let now = store.get_item(item.impl_code.to_string()).await.unwrap();
    assert_eq!(
        (now.version, now.effective_date.map(|d| d.to_string())),
        (2, Some("2026-03-04".into()))
    );
}
