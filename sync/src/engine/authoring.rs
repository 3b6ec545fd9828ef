//! Who authors the catalog (SZDB/Z 176 §8.4.1: items are added, changed, cancelled and
//! reviewed (审查) in one managed system; §9.1.1: each level publishes its own), decided
//! once for the store, the API and the pages.
//!
//! * **Which node**: district and city halls author the items handled at their level or
//!   below; a sub-district hall the items handled at its own level (§8.4.2: a
//!   sub-district's items are managed in the same system); a station never. The level is
//!   the 19th character of the implementation code. Every receiver checks the node's part
//!   again on the item it is sent ([`crate::effect`]).
//! * **Which person**: an item editor (事项编辑) or an admin drafts; an item reviewer
//!   (事项审核) approves or rejects; an admin publishes directly (`PUT`, `import-catalog`,
//!   the technician's bulk path).
//! * **Four eyes**: the reviewer is never the person who drafted or last edited the draft.

use crate::auth::{NodeRecord, NodeRole};
use crate::domain::codes::HandlingLevel;

use super::StaffRole;

/// Why a person may not author or review an item here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthoringError {
    /// Stations receive their catalog from the halls above them.
    #[error("a station receives its catalog from the halls above it and authors no item")]
    Station,
    /// The hall does not author items handled at this level.
    #[error("this hall does not author items handled at level {level}")]
    Level { level: char },
    /// Drafting is an item editor's or an admin's.
    #[error("drafting catalog items is for item editors and admins")]
    EditorsOnly,
    /// Reviewing is an item reviewer's.
    #[error("reviewing catalog items is for item reviewers")]
    ReviewersOnly,
    /// The reviewer drafted or last edited the draft.
    #[error("a draft is reviewed by a second person, not by whoever drafted or last edited it")]
    FourEyes,
    /// Publishing without review is an admin's.
    #[error("publishing an item without review is for admins")]
    AdminsOnly,
}

impl AuthoringError {
    /// Every code [`AuthoringError::code`] returns.
    pub const CODES: [&'static str; 6] = [
        "authoring_station",
        "authoring_level",
        "authoring_editors_only",
        "authoring_reviewers_only",
        "authoring_four_eyes",
        "authoring_admins_only",
    ];

    /// A stable name for the error, which the UI words in the reader's language.
    pub fn code(&self) -> &'static str {
        match self {
            AuthoringError::Station => "authoring_station",
            AuthoringError::Level { .. } => "authoring_level",
            AuthoringError::EditorsOnly => "authoring_editors_only",
            AuthoringError::ReviewersOnly => "authoring_reviewers_only",
            AuthoringError::FourEyes => "authoring_four_eyes",
            AuthoringError::AdminsOnly => "authoring_admins_only",
        }
    }

    /// One of each, for tests that word every code.
    pub fn examples() -> Vec<AuthoringError> {
        vec![
            AuthoringError::Station,
            AuthoringError::Level { level: '5' },
            AuthoringError::EditorsOnly,
            AuthoringError::ReviewersOnly,
            AuthoringError::FourEyes,
            AuthoringError::AdminsOnly,
        ]
    }
}

/// What a person does with the catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthoringAct {
    /// Create, edit or submit a draft.
    Draft,
    /// Approve or reject a submitted draft.
    Review,
    /// Publish a version without a draft (an admin's bulk path).
    Publish,
}

/// Whether a node of role `node` authors items handled at `level` (the node's part, which
/// every receiver checks again on a published item).
pub fn level_authored_by(node: NodeRole, level: HandlingLevel) -> bool {
    match node {
        NodeRole::Station => false,
        NodeRole::Subdistrict => level == HandlingLevel::Subdistrict,
        NodeRole::District => level >= HandlingLevel::District,
        NodeRole::City => level >= HandlingLevel::City,
    }
}

/// Whether a person of `role` at a node of role `node` does `act` on some item at all:
/// the pages link the drafts only then.
pub fn authoring_open_to(node: NodeRole, role: StaffRole, act: AuthoringAct) -> bool {
    node.is_hall() && person_may(role, act).is_ok()
}

/// Whether a person of `role` at `node` may do `act` on an item handled at `level`
/// (`None` while a new draft has no implementation code yet).
pub fn may_author(
    node: &NodeRecord,
    role: StaffRole,
    level: Option<HandlingLevel>,
    act: AuthoringAct,
) -> Result<(), AuthoringError> {
    if !node.role.is_hall() {
        return Err(AuthoringError::Station);
    }
    if let Some(level) = level
        && !level_authored_by(node.role, level)
    {
        return Err(AuthoringError::Level {
            level: level.digit(),
        });
    }
    person_may(role, act)
}

/// Whether `reviewer` (of `role`) may approve or reject a draft `drafted_by` one person and
/// last edited by another: the reviewer's role, and four eyes (§8.4.1 审查).
pub fn may_review(
    node: &NodeRecord,
    role: StaffRole,
    level: Option<HandlingLevel>,
    reviewer: &str,
    drafted_by: &str,
    edited_by: &str,
) -> Result<(), AuthoringError> {
    may_author(node, role, level, AuthoringAct::Review)?;
    if reviewer == drafted_by || reviewer == edited_by {
        return Err(AuthoringError::FourEyes);
    }
    Ok(())
}

fn person_may(role: StaffRole, act: AuthoringAct) -> Result<(), AuthoringError> {
    let allowed = match act {
        AuthoringAct::Draft => matches!(role, StaffRole::ItemEditor | StaffRole::Admin),
        AuthoringAct::Review => role == StaffRole::ItemReviewer,
        AuthoringAct::Publish => role == StaffRole::Admin,
    };
    if allowed {
        return Ok(());
    }
    Err(match act {
        AuthoringAct::Draft => AuthoringError::EditorsOnly,
        AuthoringAct::Review => AuthoringError::ReviewersOnly,
        AuthoringAct::Publish => AuthoringError::AdminsOnly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::codes::DivisionCode;
    use crate::ids::NodeId;

    fn node(division: &str, role: NodeRole) -> NodeRecord {
        let id = NodeId([division.len() as u8; 16]);
        NodeRecord {
            node: id,
            public_key: [0; 32],
            role,
            division: DivisionCode::parse(division).unwrap(),
            name: String::new(),
            enrolled_by: id,
            enrolled_ms: 0,
            revoked: None,
            segment: None,
        }
    }

    /// Node, role, level, act, and the engine's answer.
    type Row<'a> = (
        &'a NodeRecord,
        StaffRole,
        Option<HandlingLevel>,
        AuthoringAct,
        Result<(), AuthoringError>,
    );

    #[test]
    fn who_drafts_reviews_and_publishes_which_items() {
        use AuthoringAct::{Draft, Publish, Review};
        use HandlingLevel::{City, Community, District, Subdistrict};
        use StaffRole::{Admin, ItemEditor, ItemReviewer, Lead, Supervisor, Worker};
        let city = node("440300", NodeRole::City);
        let district = node("440304", NodeRole::District);
        let sub = node("440304001", NodeRole::Subdistrict);
        let station = node("440304001001", NodeRole::Station);
        let table: &[Row] = &[
            (&district, ItemEditor, Some(District), Draft, Ok(())),
            (&district, Admin, Some(District), Draft, Ok(())),
            (&district, ItemEditor, None, Draft, Ok(())),
            (&district, ItemEditor, Some(Subdistrict), Draft, Ok(())),
            (&district, ItemEditor, Some(Community), Draft, Ok(())),
            (
                &district,
                ItemEditor,
                Some(City),
                Draft,
                Err(AuthoringError::Level { level: '3' }),
            ),
            (
                &district,
                ItemReviewer,
                Some(District),
                Draft,
                Err(AuthoringError::EditorsOnly),
            ),
            (
                &district,
                Lead,
                Some(District),
                Draft,
                Err(AuthoringError::EditorsOnly),
            ),
            (
                &district,
                Worker,
                Some(District),
                Draft,
                Err(AuthoringError::EditorsOnly),
            ),
            (
                &district,
                Supervisor,
                Some(District),
                Draft,
                Err(AuthoringError::EditorsOnly),
            ),
            (&district, ItemReviewer, Some(District), Review, Ok(())),
            (
                &district,
                ItemEditor,
                Some(District),
                Review,
                Err(AuthoringError::ReviewersOnly),
            ),
            (
                &district,
                Admin,
                Some(District),
                Review,
                Err(AuthoringError::ReviewersOnly),
            ),
            (&district, Admin, Some(District), Publish, Ok(())),
            (
                &district,
                ItemEditor,
                Some(District),
                Publish,
                Err(AuthoringError::AdminsOnly),
            ),
            (&city, ItemEditor, Some(City), Draft, Ok(())),
            (&city, ItemEditor, Some(District), Draft, Ok(())),
            (&sub, ItemEditor, Some(Subdistrict), Draft, Ok(())),
            (&sub, ItemReviewer, Some(Subdistrict), Review, Ok(())),
            (
                &sub,
                ItemEditor,
                Some(District),
                Draft,
                Err(AuthoringError::Level { level: '4' }),
            ),
            (
                &sub,
                ItemEditor,
                Some(Community),
                Draft,
                Err(AuthoringError::Level { level: '6' }),
            ),
            (
                &sub,
                Admin,
                Some(District),
                Publish,
                Err(AuthoringError::Level { level: '4' }),
            ),
            (
                &station,
                ItemEditor,
                Some(Community),
                Draft,
                Err(AuthoringError::Station),
            ),
            (&station, Admin, None, Publish, Err(AuthoringError::Station)),
            (
                &station,
                ItemReviewer,
                None,
                Review,
                Err(AuthoringError::Station),
            ),
        ];
        for (node, role, level, act, expected) in table {
            assert_eq!(
                &may_author(node, *role, *level, *act),
                expected,
                "{:?} {role:?} {level:?} {act:?}",
                node.role
            );
            assert_eq!(
                authoring_open_to(node.role, *role, *act),
                node.role.is_hall() && person_may(*role, *act).is_ok()
            );
        }
    }

    #[test]
    fn a_second_person_reviews() {
        let district = node("440304", NodeRole::District);
        let level = Some(HandlingLevel::District);
        let reviewer = StaffRole::ItemReviewer;
        let table = [
            ("rev", "ed", "ed", Ok(())),
            ("rev", "ed", "ed2", Ok(())),
            ("ed", "ed", "ed", Err(AuthoringError::FourEyes)),
            ("ed2", "ed", "ed2", Err(AuthoringError::FourEyes)),
            ("ed", "ed", "ed2", Err(AuthoringError::FourEyes)),
        ];
        for (who, drafted, edited, expected) in table {
            assert_eq!(
                may_review(&district, reviewer, level, who, drafted, edited),
                expected,
                "{who} {drafted} {edited}"
            );
        }
        assert_eq!(
            may_review(&district, StaffRole::ItemEditor, level, "rev", "ed", "ed"),
            Err(AuthoringError::ReviewersOnly)
        );
        for e in AuthoringError::examples() {
            assert!(AuthoringError::CODES.contains(&e.code()));
        }
    }
}
