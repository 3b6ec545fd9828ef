//! A hall's drafts of catalog items (§8.4.1: items are added, changed and cancelled, and
//! reviewed, in one managed system): what a draft is for, the states it passes through,
//! the §9.2.2 simplification checklist the drafter answers, and the field-by-field
//! difference the reviewer reads.
//!
//! A draft is the hall's local working copy, never synced: only the version a reviewer
//! approves is published, through the same path as any item version.

use std::collections::BTreeSet;

use super::calendar::Date;
use super::item::Item;

/// What a draft does to the catalog (§8.4.1 新增、变更、取消).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DraftKind {
    /// A new item (新增).
    New,
    /// A new version of a published item (变更).
    Change,
    /// The cancellation of a published item (取消): a version with status cancelled.
    Cancel,
}

impl DraftKind {
    pub const ALL: [DraftKind; 3] = [DraftKind::New, DraftKind::Change, DraftKind::Cancel];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftKind::New => "new",
            DraftKind::Change => "change",
            DraftKind::Cancel => "cancel",
        }
    }

    pub fn parse(s: &str) -> Option<DraftKind> {
        DraftKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a draft stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DraftStatus {
    /// Being written; its editors may change it.
    Editing,
    /// Waiting for a reviewer; nobody changes it now.
    Submitted,
    /// Sent back with a reason; its editors may change it and submit again.
    Rejected,
    /// Approved and published as the version it names; kept as the record of the review.
    Published,
}

impl DraftStatus {
    pub const ALL: [DraftStatus; 4] = [
        DraftStatus::Editing,
        DraftStatus::Submitted,
        DraftStatus::Rejected,
        DraftStatus::Published,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftStatus::Editing => "editing",
            DraftStatus::Submitted => "submitted",
            DraftStatus::Rejected => "rejected",
            DraftStatus::Published => "published",
        }
    }

    pub fn parse(s: &str) -> Option<DraftStatus> {
        DraftStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What a person does with a draft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DraftAct {
    Edit,
    Submit,
    Approve,
    Reject,
}

impl DraftAct {
    pub fn as_str(self) -> &'static str {
        match self {
            DraftAct::Edit => "edit",
            DraftAct::Submit => "submit",
            DraftAct::Approve => "approve",
            DraftAct::Reject => "reject",
        }
    }
}

/// Why a draft may not move on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DraftError {
    /// The act does not fit the draft's state (editing a submitted draft, approving one
    /// never submitted).
    #[error("a {status} draft cannot be {act}ed", status = .status.as_str(), act = .act.as_str())]
    State { status: DraftStatus, act: DraftAct },
    /// Someone saved the draft since the editor loaded it.
    #[error(
        "the draft was changed by someone else since it was opened (now at revision {revision})"
    )]
    Edited { revision: u32 },
    /// The published version moved on since the draft was made from it.
    #[error(
        "the published item is at version {current} now; the draft was made from version {base}"
    )]
    Stale { base: u32, current: u32 },
    /// A rejection needs its reason.
    #[error("a rejection needs a reason")]
    ReasonMissing,
    /// The §9.2.2 checklist is not fully answered.
    #[error("answer every situation of the §9.2.2 checklist (missing: {missing})")]
    Checklist { missing: String },
    /// A situation that applies needs a note saying what was done about it.
    #[error("say what was done about situation {situation} of §9.2.2")]
    ChecklistNote { situation: String },
    /// A draft of a new item names an item that exists, or a change names one that does not.
    #[error("item {item} is already in the catalog; draft a change of it")]
    Exists { item: String },
    /// A change is in force from its approval, so it is approved on or after its date.
    #[error("a change is in force from its approval: approve it on or after {date}")]
    EffectiveLater { date: String },
}

impl DraftError {
    /// Every code [`DraftError::code`] returns.
    pub const CODES: [&'static str; 8] = [
        "draft_state",
        "draft_edited",
        "draft_stale",
        "draft_reason",
        "draft_checklist",
        "draft_checklist_note",
        "draft_exists",
        "draft_effective_later",
    ];

    /// A stable name for the error, which the UI words in the reader's language.
    pub fn code(&self) -> &'static str {
        match self {
            DraftError::State { .. } => "draft_state",
            DraftError::Edited { .. } => "draft_edited",
            DraftError::Stale { .. } => "draft_stale",
            DraftError::ReasonMissing => "draft_reason",
            DraftError::Checklist { .. } => "draft_checklist",
            DraftError::ChecklistNote { .. } => "draft_checklist_note",
            DraftError::Exists { .. } => "draft_exists",
            DraftError::EffectiveLater { .. } => "draft_effective_later",
        }
    }

    /// The error's parameters, by name, shown as they are.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            DraftError::State { status, act } => vec![
                ("status", status.as_str().to_string()),
                ("act", act.as_str().to_string()),
            ],
            DraftError::Edited { revision } => vec![("revision", revision.to_string())],
            DraftError::Stale { base, current } => {
                vec![("base", base.to_string()), ("current", current.to_string())]
            }
            DraftError::ReasonMissing => Vec::new(),
            DraftError::Checklist { missing } => vec![("missing", missing.clone())],
            DraftError::ChecklistNote { situation } => vec![("situation", situation.clone())],
            DraftError::Exists { item } => vec![("item", item.clone())],
            DraftError::EffectiveLater { date } => vec![("date", date.clone())],
        }
    }

    /// Whether the draft's state (not the request) stands in the way.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            DraftError::State { .. }
                | DraftError::Edited { .. }
                | DraftError::Stale { .. }
                | DraftError::Exists { .. }
                | DraftError::EffectiveLater { .. }
        )
    }

    /// One of each, for tests that word every code.
    pub fn examples() -> Vec<DraftError> {
        vec![
            DraftError::State {
                status: DraftStatus::Submitted,
                act: DraftAct::Edit,
            },
            DraftError::Edited { revision: 3 },
            DraftError::Stale {
                base: 1,
                current: 2,
            },
            DraftError::ReasonMissing,
            DraftError::Checklist {
                missing: "1, 2".into(),
            },
            DraftError::ChecklistNote {
                situation: "2".into(),
            },
            DraftError::Exists { item: "x".into() },
            DraftError::EffectiveLater {
                date: "2027-01-01".into(),
            },
        ]
    }
}

/// Whether a draft in `status` allows `act`: editors change a draft being written or sent
/// back and submit it; a reviewer approves or rejects only a submitted one; a published
/// draft never changes again.
pub fn draft_allows(status: DraftStatus, act: DraftAct) -> Result<(), DraftError> {
    let allowed = match act {
        DraftAct::Edit | DraftAct::Submit => {
            matches!(status, DraftStatus::Editing | DraftStatus::Rejected)
        }
        DraftAct::Approve | DraftAct::Reject => status == DraftStatus::Submitted,
    };
    if allowed {
        Ok(())
    } else {
        Err(DraftError::State { status, act })
    }
}

/// The effective date (生效日期) the version an approval publishes carries: a new item's
/// own date, whenever it is (before it no station takes applications for it), or the
/// approval day; a change or cancellation is in force from its approval (the item
/// document holds one version, so a later version cannot wait beside the one in force),
/// so its date is the approval day, and a date after it refuses the approval until then.
pub fn effective_on_approval(
    kind: DraftKind,
    drafted: Option<Date>,
    today: Date,
) -> Result<Date, DraftError> {
    match (kind, drafted) {
        (_, None) => Ok(today),
        (DraftKind::New, Some(date)) => Ok(date),
        (_, Some(date)) if date > today => Err(DraftError::EffectiveLater {
            date: date.to_string(),
        }),
        (_, Some(_)) => Ok(today),
    }
}

/// The six situations of §9.2.2 in which an approval step is to be removed or adjusted;
/// the drafter says for each whether it applies to the item's steps, the reviewer reads
/// the answers. Keys are stable; the pages word them from `web/i18n` (`checklist.KEY`).
pub const SIMPLIFICATION: [&str; 6] = [
    // 通过技术标准、管理规范能够有效管理的
    "standards_suffice",
    // 没有法律、法规、规章依据，自行设定审批环节的，或者原有依据调整或者取消的
    "no_legal_basis",
    // 因法律、法规和规章设立、修改、废止，需调整行政职权的
    "law_changed",
    // 有依据，但存在重复审查或者非必要审查环节的
    "duplicate_review",
    // 前置审批行政机关或者其他行政机关已经审核把关的
    "checked_before",
    // 对同一审批事项，可在一个环节审查，但在多个环节分别审查的
    "one_step_enough",
];

/// The drafter's answer for one situation of §9.2.2.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecklistAnswer {
    /// One of [`SIMPLIFICATION`].
    pub situation: String,
    /// Whether the situation applies to the item's approval steps.
    pub applies: bool,
    /// What was done about it (needed when it applies), or why it does not apply.
    #[serde(default)]
    pub note: String,
}

/// Checks that every situation of §9.2.2 is answered once, and that each one that applies
/// says what was done: a draft is submitted only then (§9.2.2 应及时取消或调整审批环节).
pub fn check_checklist(answers: &[ChecklistAnswer]) -> Result<(), DraftError> {
    let answered: BTreeSet<&str> = answers.iter().map(|a| a.situation.as_str()).collect();
    let missing: Vec<String> = SIMPLIFICATION
        .iter()
        .enumerate()
        .filter(|(_, key)| !answered.contains(*key))
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !missing.is_empty() {
        return Err(DraftError::Checklist {
            missing: missing.join(", "),
        });
    }
    for (i, key) in SIMPLIFICATION.iter().enumerate() {
        let applies_without_note = answers
            .iter()
            .any(|a| a.situation == *key && a.applies && a.note.trim().is_empty());
        if applies_without_note {
            return Err(DraftError::ChecklistNote {
                situation: (i + 1).to_string(),
            });
        }
    }
    Ok(())
}

/// One field that differs between two versions of an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// The item's field, as in the catalog file (`name`, `materials`, …).
    pub field: String,
    /// The field before, as text (empty when it was absent).
    pub before: String,
    /// The field after, as text (empty when it is absent).
    pub after: String,
}

/// The fields that differ between `before` (the published version, if any) and `after`
/// (the draft), field by field in the order of the fields' names; the version number
/// itself is left out. Works on the item's JSON form, so every field an item carries is compared.
pub fn diff(before: Option<&serde_json::Value>, after: &serde_json::Value) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let before = before.and_then(|b| b.as_object()).unwrap_or(&empty);
    let after_map = after.as_object().unwrap_or(&empty);
    let mut fields: Vec<&String> = after_map.keys().collect();
    for key in before.keys() {
        if !after_map.contains_key(key) {
            fields.push(key);
        }
    }
    fields
        .into_iter()
        .filter(|field| field.as_str() != "version")
        .filter_map(|field| {
            let old = before.get(field.as_str());
            let new = after_map.get(field.as_str());
            (old != new).then(|| FieldChange {
                field: field.clone(),
                before: old.map(as_text).unwrap_or_default(),
                after: new.map(as_text).unwrap_or_default(),
            })
        })
        .collect()
}

/// The same for two items.
pub fn diff_items(before: Option<&Item>, after: &Item) -> Vec<FieldChange> {
    let to_json = |item: &Item| serde_json::to_value(item).unwrap_or_default();
    diff(before.map(to_json).as_ref(), &to_json(after))
}

/// A field's value as a person reads it: text as it is, a list one entry per line, any
/// structure as compact JSON.
fn as_text(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(entries) => entries
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::item::tests::sample_item;

    #[test]
    fn the_effective_date_an_approval_publishes() {
        let d = |s: &str| s.parse::<Date>().unwrap();
        let today = d("2026-03-10");
        let table = [
            (DraftKind::New, None, Ok(today)),
            (DraftKind::New, Some(d("2026-04-01")), Ok(d("2026-04-01"))),
            (DraftKind::New, Some(d("2026-03-01")), Ok(d("2026-03-01"))),
            (DraftKind::Change, None, Ok(today)),
            (DraftKind::Change, Some(d("2026-03-10")), Ok(today)),
            (DraftKind::Change, Some(d("2026-03-01")), Ok(today)),
            (
                DraftKind::Change,
                Some(d("2026-03-11")),
                Err("draft_effective_later"),
            ),
            (
                DraftKind::Cancel,
                Some(d("2026-04-01")),
                Err("draft_effective_later"),
            ),
        ];
        for (kind, drafted, expected) in table {
            assert_eq!(
                effective_on_approval(kind, drafted, today).map_err(|e| e.code()),
                expected,
                "{kind:?} {drafted:?}"
            );
        }
    }

    #[test]
    fn which_acts_each_state_allows() {
        use DraftAct::{Approve, Edit, Reject, Submit};
        use DraftStatus::{Editing, Published, Rejected, Submitted};
        let table = [
            (Editing, [true, true, false, false]),
            (Rejected, [true, true, false, false]),
            (Submitted, [false, false, true, true]),
            (Published, [false, false, false, false]),
        ];
        for (status, allowed) in table {
            for (act, ok) in [Edit, Submit, Approve, Reject].into_iter().zip(allowed) {
                assert_eq!(draft_allows(status, act).is_ok(), ok, "{status:?} {act:?}");
            }
        }
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

    #[test]
    fn the_checklist_is_answered_in_full() {
        type Edit = fn(&mut Vec<ChecklistAnswer>);
        let table: &[(&str, Edit, Option<&str>)] = &[
            ("all answered", |_| {}, None),
            ("none", |a| a.clear(), Some("draft_checklist")),
            (
                "the second missing",
                |a| {
                    a.remove(1);
                },
                Some("draft_checklist"),
            ),
            (
                "applies without a note",
                |a| a[3].applies = true,
                Some("draft_checklist_note"),
            ),
            (
                "applies with a note",
                |a| {
                    a[3].applies = true;
                    a[3].note = "合并初审与复审".into()
                },
                None,
            ),
            (
                "an unknown situation only",
                |a| a[0].situation = "other".into(),
                Some("draft_checklist"),
            ),
        ];
        for (why, edit, code) in table {
            let mut a = answers();
            edit(&mut a);
            assert_eq!(check_checklist(&a).err().map(|e| e.code()), *code, "{why}");
        }
        assert_eq!(
            check_checklist(&answers()[1..]),
            Err(DraftError::Checklist {
                missing: "1".into()
            })
        );
    }

    #[test]
    fn the_diff_names_each_changed_field() {
        let before = sample_item();
        let mut after = before.clone();
        after.version = 2;
        assert_eq!(diff_items(Some(&before), &after), Vec::new());
        after.name = "最低生活保障".into();
        after.committed_limit_days = 15;
        after.conditions.push("户籍在本区".into());
        let changes = diff_items(Some(&before), &after);
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["committed_limit_days", "conditions", "name"]);
        assert_eq!(changes[2].before, "最低生活保障申请");
        assert_eq!(changes[2].after, "最低生活保障");
        assert_eq!(
            changes[1].after,
            "家庭人均收入低于当地最低生活保障标准\n户籍在本区"
        );
        assert_eq!(
            (changes[0].before.as_str(), changes[0].after.as_str()),
            ("20", "15")
        );
        // A new item: every field it has is new.
        let new = diff_items(None, &after);
        assert!(new.iter().all(|c| c.before.is_empty()));
        assert!(new.iter().any(|c| c.field == "materials"));
        for e in DraftError::examples() {
            assert!(DraftError::CODES.contains(&e.code()));
        }
    }

    /// The guide elements beyond §9.1.2 (DOMAIN §4) are fields of the diff too: a
    /// reviewer sees a situation, a way to apply, booking, the deciding department, the
    /// yellow rule and a material's source, issuer or blank form change.
    #[test]
    fn the_diff_names_the_guide_elements() {
        use crate::domain::calendar::YellowThreshold;
        use crate::domain::item::{HandlingForm, Material, MaterialSource, Situation};
        let before = sample_item();
        let mut after = before.clone();
        after.situations.push(Situation {
            name: "委托他人代办".into(),
            adds: vec![Material {
                name: "授权委托书".into(),
                originals: 1,
                required: true,
                ..Material::default()
            }],
            not_needed: Vec::new(),
        });
        after.handling_forms = vec![HandlingForm::Window, HandlingForm::Post];
        after.booking = !before.booking;
        after.decided_by = Some("MZJ".into());
        after.yellow = YellowThreshold::PercentUsed(80);
        after.materials[0].source = Some(MaterialSource::Government);
        after.materials[0].issuer = Some("区公安分局".into());
        after.materials[0].blank_form = Some("a-440399-00".into());
        let changes = diff_items(Some(&before), &after);
        let mut fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "booking",
                "decided_by",
                "handling_forms",
                "materials",
                "situations",
                "yellow"
            ]
        );
        let situations = changes.iter().find(|c| c.field == "situations").unwrap();
        assert!(
            situations.after.contains("授权委托书"),
            "{}",
            situations.after
        );
        let materials = changes.iter().find(|c| c.field == "materials").unwrap();
        assert!(materials.after.contains("区公安分局") && !materials.before.contains("区公安分局"));
    }
}
