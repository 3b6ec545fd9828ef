//! Parallel approval (并联审批, SZDB/Z 176 §7.5 并联审批和协同办理制度; 行政许可法 §26): an
//! item that two or more departments each decide a part of.
//!
//! One acceptance makes one parent case, the one the applicant sees (one query code, one
//! receipt), and one sub-case per part: an ordinary case document bound at creation to
//! its parent and to the department that decides its part ([`PartOf`], the sub-case's
//! `decided_by`). The binding lives in the intake, which never changes after creation,
//! so it cannot be rebound; every receiver checks it ([`check_binding`]).
//!
//! The parent's progress is never recorded as an event of its own: [`combine`] derives it
//! from the parent's own events and the states of the sub-cases a node holds, so nodes
//! that receive the parent and its parts in any order agree once they hold the same
//! documents. The rule (行政许可法 §26: a combined approval grants the whole): the parent
//! is decided only when every part is decided, and approved only when every part is
//! approved; one part's denial makes the whole a denial, reported once all parts are in.

use super::case::{CaseState, Intake, ItemSnapshot, Status};
use super::department::Decider;
use super::item::Item;

/// 行政许可法 §26 (统一办理、联合办理、集中办理): 45 days for the whole.
pub const WHOLE_LIMIT_DAYS: u32 = 45;
/// 行政许可法 §26: the 45 days may be extended by 15 with the head of government's
/// approval.
pub const WHOLE_EXTENSION_DAYS: u32 = 15;

/// A part of a combined item, as the catalog names it: the department that decides it,
/// what the part is, and its own limit when shorter than the whole's.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ItemPart {
    /// The code of the deciding department at the hall (`domain::department`).
    pub department: String,
    /// What this department decides, e.g. 消防验收.
    pub name: String,
    /// The part's own limit in working days, at most the whole's; absent: the whole's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_days: Option<u32>,
}

/// A part as a case freezes it at intake: the department resolved to its hall, and the
/// part's limit in days.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartSnapshot {
    pub decider: Decider,
    pub name: String,
    pub limit_days: u32,
}

/// What binds a sub-case to its parent: the parent case's id and the part's place in
/// the parent's item (`ItemSnapshot::parts`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartOf {
    pub parent: String,
    pub index: u32,
}

/// Why a combined item's parts are not valid: a stable code and the English words the
/// item's problem list carries (as every other problem of `Item::validate`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PartsInvalid {
    #[error("a combined item needs at least two parts")]
    TooFew,
    #[error("part {index}: {code:?} is not a department code")]
    BadDepartment { index: usize, code: String },
    #[error("part {index}: department {code} decides another part already")]
    DepartmentTwice { index: usize, code: String },
    #[error("part {index}: the part needs a name")]
    NoName { index: usize },
    #[error("part {index}: its limit of {days} days is not 1 to the whole's {whole}")]
    Limit { index: usize, days: u32, whole: u32 },
    #[error("a combined item is decided by its parts' departments, not by one")]
    DecidedByOne,
    #[error("a combined item is a committed item (承诺件)")]
    Instant,
}

impl PartsInvalid {
    /// The stable code: the key of its words in `web/i18n`.
    pub fn code(&self) -> &'static str {
        match self {
            PartsInvalid::TooFew => "too_few",
            PartsInvalid::BadDepartment { .. } => "bad_department",
            PartsInvalid::DepartmentTwice { .. } => "department_twice",
            PartsInvalid::NoName { .. } => "no_name",
            PartsInvalid::Limit { .. } => "limit",
            PartsInvalid::DecidedByOne => "decided_by_one",
            PartsInvalid::Instant => "instant",
        }
    }
}

/// The limits of a whole combined case (行政许可法 §26): the item's, but never more than
/// 45 working days, extendable by at most 15; the committed limit never above the legal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WholeLimits {
    pub committed_days: u32,
    pub legal_days: u32,
    pub extension_days: u32,
}

/// [`WholeLimits`] of an item's own limits.
pub fn whole_limits(committed: u32, legal: u32, extension: u32) -> WholeLimits {
    let legal_days = legal.min(WHOLE_LIMIT_DAYS);
    WholeLimits {
        committed_days: committed.min(legal_days),
        legal_days,
        extension_days: extension.min(WHOLE_EXTENSION_DAYS),
    }
}

/// A part's limits: its own limit where given, else the whole's; its committed limit is
/// the whole's committed one when that is shorter. The extension is the whole's.
pub fn part_limits(whole: WholeLimits, own: Option<u32>) -> WholeLimits {
    let legal_days = own.unwrap_or(whole.legal_days).min(whole.legal_days);
    WholeLimits {
        committed_days: whole.committed_days.min(legal_days),
        legal_days,
        extension_days: whole.extension_days,
    }
}

/// Checks a combined item's parts (none: not a combined item).
pub fn check_parts(item: &Item) -> Result<(), PartsInvalid> {
    let parts = &item.parts;
    if parts.is_empty() {
        return Ok(());
    }
    if parts.len() < 2 {
        return Err(PartsInvalid::TooFew);
    }
    if item.decided_by.is_some() {
        return Err(PartsInvalid::DecidedByOne);
    }
    if item.case_type == super::item::CaseType::Instant {
        return Err(PartsInvalid::Instant);
    }
    let whole = whole_limits(
        item.committed_limit_days,
        item.legal_limit_days,
        item.legal_extension_days,
    );
    for (index, part) in parts.iter().enumerate() {
        if !super::department::code_ok(&part.department) {
            return Err(PartsInvalid::BadDepartment {
                index,
                code: part.department.clone(),
            });
        }
        if parts[..index]
            .iter()
            .any(|p| p.department.eq_ignore_ascii_case(&part.department))
        {
            return Err(PartsInvalid::DepartmentTwice {
                index,
                code: part.department.clone(),
            });
        }
        if part.name.trim().is_empty() || part.name.chars().count() > 100 {
            return Err(PartsInvalid::NoName { index });
        }
        if let Some(days) = part.limit_days
            && !(1..=whole.legal_days).contains(&days)
        {
            return Err(PartsInvalid::Limit {
                index,
                days,
                whole: whole.legal_days,
            });
        }
    }
    Ok(())
}

impl ItemSnapshot {
    /// Whether this is the snapshot of a whole combined case (it has parts and no single
    /// deciding department); a sub-case's has both.
    pub fn is_combined_parent(&self) -> bool {
        !self.parts.is_empty() && self.decided_by.is_none()
    }
}

impl Intake {
    /// Whether this is the intake of a combined item's parent case.
    pub fn is_parent(&self) -> bool {
        self.part_of.is_none() && self.item.is_combined_parent()
    }

    /// The intake of the sub-case for part `index` of this parent, created by the same
    /// node at `submitted_at`: the parent's intake, bound to the parent and decided by the
    /// part's department under the part's limits.
    pub fn part(&self, parent: &str, index: usize, submitted_at: super::hlc::Hlc) -> Intake {
        let part = &self.item.parts[index];
        let whole = WholeLimits {
            committed_days: self.item.committed_limit_days,
            legal_days: self.item.legal_limit_days,
            extension_days: self.item.legal_extension_days,
        };
        let limits = part_limits(whole, Some(part.limit_days));
        let mut intake = self.clone();
        intake.item.decided_by = Some(part.decider.clone());
        intake.item.committed_limit_days = limits.committed_days;
        intake.item.legal_limit_days = limits.legal_days;
        intake.part_of = Some(PartOf {
            parent: parent.to_string(),
            index: index as u32,
        });
        intake.submitted_at = submitted_at;
        intake
    }
}

/// Checks what a case's intake says of parallel approval, by itself: every receiver runs
/// it on a new case, so a station cannot bind a sub-case to a department other than its
/// part's, give it other limits, or make a whole longer than the law allows. `Err` says
/// what is wrong, for the refusal's log line. The parent must be a case of the same node
/// made earlier (`parent_ok`, from the ids).
pub fn check_binding(
    intake: &Intake,
    parent_ok: impl Fn(&str) -> bool,
) -> Result<(), &'static str> {
    let item = &intake.item;
    let Some(part_of) = &intake.part_of else {
        if item.parts.is_empty() {
            return Ok(());
        }
        if item.decided_by.is_some() {
            return Err("a combined case is decided by its parts, not by one department");
        }
        if item.parts.len() < 2 {
            return Err("a combined case has at least two parts");
        }
        if item.legal_limit_days > WHOLE_LIMIT_DAYS
            || item.legal_extension_days > WHOLE_EXTENSION_DAYS
            || item.committed_limit_days > item.legal_limit_days
        {
            return Err("a combined case's limits exceed 45 (+15) working days (行政许可法 §26)");
        }
        for (i, part) in item.parts.iter().enumerate() {
            if part.limit_days == 0 || part.limit_days > item.legal_limit_days {
                return Err("a part's limit exceeds the whole's");
            }
            if item.parts[..i]
                .iter()
                .any(|p| p.decider.code.eq_ignore_ascii_case(&part.decider.code))
            {
                return Err("a department decides two parts");
            }
        }
        return Ok(());
    };
    let Some(part) = item.parts.get(part_of.index as usize) else {
        return Err("a sub-case names a part its item does not have");
    };
    if item.decided_by.as_ref() != Some(&part.decider) {
        return Err("a sub-case is decided by another department than its part's");
    }
    if item.legal_limit_days != part.limit_days
        || item.committed_limit_days > part.limit_days
        || item.legal_extension_days > WHOLE_EXTENSION_DAYS
    {
        return Err("a sub-case has other limits than its part's");
    }
    if !parent_ok(&part_of.parent) {
        return Err("a sub-case names a parent that is not an earlier case of its node");
    }
    Ok(())
}

/// What a parent needs of one sub-case, as this node holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartState {
    pub status: Status,
    pub decision: Option<bool>,
}

impl PartState {
    /// The part is concluded once its department decided it (and it stays so when the
    /// result is delivered).
    pub fn concluded(&self) -> Option<bool> {
        match self.status {
            Status::Decided | Status::Completed => self.decision,
            _ => None,
        }
    }
}

/// Whether a held sub-case counts as part `index` of the parent `parent`: bound to it,
/// of the same item version, decided by the department the parent's item names there.
pub fn counts_for(parent_id: &str, parent: &Intake, sub: &Intake) -> Option<usize> {
    let part_of = sub.part_of.as_ref()?;
    let index = part_of.index as usize;
    let part = parent.item.parts.get(index)?;
    (part_of.parent == parent_id
        && sub.node == parent.node
        && sub.item.impl_code == parent.item.impl_code
        && sub.item.version == parent.item.version
        && sub.item.decided_by.as_ref() == Some(&part.decider))
    .then_some(index)
}

/// The state of a parent case: its own (reception, acceptance, suspension, extension,
/// delivery) with its decision derived from its parts, one entry per part of the item
/// (`None`: this node holds no sub-case for it yet).
///
/// * Until every part is concluded the parent is in progress (办理中), even when a
///   completion (办结) recorded elsewhere, where all parts were in, has already arrived:
///   it shows once the parts do.
/// * When every part is concluded the parent is decided (已决定), approved only if every
///   part was approved; the station's completion then closes it.
///
/// A case that is not a parent is returned as it is.
pub fn combine(intake: &Intake, own: CaseState, parts: &[Option<PartState>]) -> CaseState {
    if !intake.is_parent() {
        return own;
    }
    let running = matches!(
        own.status,
        Status::Accepted | Status::Suspended | Status::Completed
    );
    if !running {
        return own;
    }
    let concluded: Option<Vec<bool>> = (0..intake.item.parts.len())
        .map(|i| parts.get(i).cloned().flatten().and_then(|p| p.concluded()))
        .collect();
    let mut state = own;
    match concluded {
        Some(decisions) => {
            state.decision = Some(decisions.iter().all(|approved| *approved));
            if state.status != Status::Completed && state.status != Status::Suspended {
                state.status = Status::Decided;
            }
        }
        None => {
            state.decision = None;
            if state.status == Status::Completed {
                state.status = Status::Accepted;
                state.closed_on = None;
            }
        }
    }
    state
}

#[cfg(test)]
mod tests;
