//! Staff accounts across the tree (统一身份认证, SZDB/Z 176 §8.6.3): a hall's admin
//! authors an account once, as a document in the hall's catalog scope, and it travels
//! down to every node of the hall's subtree, where the same person signs in with the same
//! password. The document holds a password *verifier* (the Argon2id PHC string), never the
//! password; resetting the password writes a new verifier and bumps the account's
//! generation, and disabling it sets a flag: either ends the account's sessions and tokens
//! at every node that receives the change.
//!
//! An account also carries who stands in for it (its B角, §7.4.1.3 AB 角工作制度) and
//! whether it is its department's chief representative (首席代表, §7.5).
//!
//! Everything here is checked alike where the account is written and by every receiver
//! (`effect`), so a node never holds an account it would not have let its own admin write.

use super::codes::DivisionCode;
use crate::engine::StaffRole;
use crate::ids::{DocId, NodeId};

/// A staff account as its document holds it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StaffAccount {
    /// The sign-in name, the same at every node of the subtree.
    pub username: String,
    pub display_name: String,
    /// The engine's role (`StaffRole::as_str`); the same rules apply to it everywhere.
    pub role: String,
    /// The counter (窗口) number, or for a `department` account the department it works
    /// for, as a local account's counter field.
    #[serde(default)]
    pub counter: String,
    /// The divisions below which the account may sign in; empty means the whole subtree
    /// of the hall that wrote it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sign_in_at: Vec<DivisionCode>,
    /// The Argon2id PHC string of the password: what checking a password needs, never the
    /// password.
    pub verifier: String,
    #[serde(default)]
    pub disabled: bool,
    /// Bumped by every password reset: a token issued under an older generation stops.
    pub generation: u32,
    /// The account that stands in for this one (its B角), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stand_in: Option<String>,
    /// Whether this account is its department's chief representative (首席代表) at the hall.
    #[serde(default)]
    pub chief: bool,
    /// The hall that wrote it: only that hall ever changes it.
    pub hall: NodeId,
    /// Who wrote this version (the admin's username) and in which role: every receiver
    /// checks the role against the one rule for who manages accounts
    /// (`engine::may_manage_staff`).
    pub by: String,
    pub by_role: String,
}

/// Why an account is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StaffError {
    #[error(
        "username must be 2-32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter: {0:?}"
    )]
    Username(String),
    #[error("display names are 1-64 characters, counters at most 64")]
    Length,
    #[error(transparent)]
    Control(#[from] super::text::Refused),
    #[error("{0:?} is not a staff role")]
    Role(String),
    #[error("the password verifier is not an Argon2id string")]
    Verifier,
    #[error("{0} is not a division below the hall")]
    Place(String),
    #[error("an account does not stand in for itself: {0}")]
    StandIn(String),
    #[error("only a department's account is its chief representative")]
    ChiefNotDepartment,
    #[error("a password changed without a new generation")]
    Generation,
    /// Only an admin at a hall writes the accounts of the tree.
    #[error("only an admin at a hall manages the tree's staff accounts")]
    NotAnAdminAtAHall,
}

impl StaffError {
    /// A stable name for the error, which the UI words in the reader's language.
    pub fn code(&self) -> &'static str {
        match self {
            StaffError::Username(_) => "bad_username",
            StaffError::Length => "staff_length",
            StaffError::Control(_) => super::text::Refused::CODE,
            StaffError::Role(_) => "staff_role",
            StaffError::Verifier => "staff_verifier",
            StaffError::Place(_) => "staff_place",
            StaffError::StandIn(_) => "staff_stand_in",
            StaffError::ChiefNotDepartment => "staff_chief_department",
            StaffError::Generation => "staff_generation",
            StaffError::NotAnAdminAtAHall => "staff_admins_only",
        }
    }
}

/// The rule for sign-in names, at every node and for local and tree accounts alike.
pub fn check_username(name: &str) -> Result<(), StaffError> {
    let ok = (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StaffError::Username(name.to_string()))
    }
}

impl StaffAccount {
    /// The document id of `username`'s account written by the hall of `hall`:
    /// `u-<division>-<username>`, with `_` (which ids do not take) written `:`. One
    /// account per name per hall, fixed at creation.
    pub fn doc_id_for(hall: &DivisionCode, username: &str) -> Option<DocId> {
        DocId::parse(&format!("u-{hall}-{}", username.replace('_', ":")))
    }

    /// The account's role, if it is one the engine knows.
    pub fn staff_role(&self) -> Option<StaffRole> {
        StaffRole::parse(&self.role)
    }

    /// Everything an account must hold, for the hall of `hall` that writes it.
    pub fn validate(&self, hall: &DivisionCode) -> Result<(), StaffError> {
        check_username(&self.username)?;
        let n = self.display_name.trim().chars().count();
        if n == 0 || self.display_name.chars().count() > 64 || self.counter.chars().count() > 64 {
            return Err(StaffError::Length);
        }
        super::text::line("display_name", &self.display_name)?;
        super::text::line("counter", &self.counter)?;
        let role = self
            .staff_role()
            .ok_or_else(|| StaffError::Role(self.role.clone()))?;
        // A PHC string of Argon2id: printable ASCII, of a sane length.
        if !self.verifier.starts_with("$argon2id$")
            || self.verifier.len() > 256
            || !self.verifier.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(StaffError::Verifier);
        }
        if let Some(place) = self.sign_in_at.iter().find(|d| !d.is_within(hall)) {
            return Err(StaffError::Place(place.to_string()));
        }
        if let Some(stand_in) = &self.stand_in {
            check_username(stand_in)?;
            if *stand_in == self.username {
                return Err(StaffError::StandIn(stand_in.clone()));
            }
        }
        // §7.5: the chief representative is a department's (进驻部门) person.
        if self.chief && role != StaffRole::Department {
            return Err(StaffError::ChiefNotDepartment);
        }
        check_username(&self.by).map_err(|_| StaffError::Username(self.by.clone()))?;
        Ok(())
    }

    /// Whether the account signs in at a node of `node`'s division: inside the hall's
    /// subtree and, if it names places, inside one of them.
    pub fn signs_in_at(&self, hall: &DivisionCode, node: &DivisionCode) -> bool {
        node.is_within(hall)
            && (self.sign_in_at.is_empty() || self.sign_in_at.iter().any(|d| node.is_within(d)))
    }

    /// Whether `self` may replace `held` as the next version of the same account: the
    /// same name and hall, and a new verifier only with a higher generation (a reset), so
    /// tokens issued before it stop everywhere.
    pub fn may_follow(&self, held: &StaffAccount) -> Result<(), StaffError> {
        if self.username != held.username {
            return Err(StaffError::Username(self.username.clone()));
        }
        if self.generation < held.generation
            || (self.verifier != held.verifier && self.generation == held.generation)
        {
            return Err(StaffError::Generation);
        }
        Ok(())
    }
}

/// Whether `new` may be written beside `others` (the hall's other accounts): one chief
/// representative per department per hall (§7.5).
pub fn chief_clash<'a>(
    new: &StaffAccount,
    others: impl IntoIterator<Item = &'a StaffAccount>,
) -> Option<&'a StaffAccount> {
    if !new.chief || new.disabled {
        return None;
    }
    others
        .into_iter()
        .find(|o| o.username != new.username && o.chief && !o.disabled && o.counter == new.counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn account() -> StaffAccount {
        StaffAccount {
            username: "li.ming".into(),
            display_name: "李明".into(),
            role: "worker".into(),
            counter: "3".into(),
            sign_in_at: vec![],
            verifier: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
            disabled: false,
            generation: 1,
            stand_in: None,
            chief: false,
            hall: NodeId([2; 16]),
            by: "admin".into(),
            by_role: "admin".into(),
        }
    }

    fn d(code: &str) -> DivisionCode {
        DivisionCode::parse(code).unwrap()
    }

    #[test]
    fn accounts_are_checked_field_by_field() {
        let hall = d("440304");
        assert_eq!(account().validate(&hall), Ok(()));
        let table: Vec<(StaffAccount, &str)> = vec![
            (
                StaffAccount {
                    username: "Li".into(),
                    ..account()
                },
                "bad_username",
            ),
            (
                StaffAccount {
                    display_name: " ".into(),
                    ..account()
                },
                "staff_length",
            ),
            (
                StaffAccount {
                    display_name: "李\u{202E}明".into(),
                    ..account()
                },
                "control_character",
            ),
            (
                StaffAccount {
                    role: "root".into(),
                    ..account()
                },
                "staff_role",
            ),
            (
                StaffAccount {
                    verifier: "password123".into(),
                    ..account()
                },
                "staff_verifier",
            ),
            (
                StaffAccount {
                    sign_in_at: vec![d("440305001001")],
                    ..account()
                },
                "staff_place",
            ),
            (
                StaffAccount {
                    stand_in: Some("li.ming".into()),
                    ..account()
                },
                "staff_stand_in",
            ),
            (
                StaffAccount {
                    chief: true,
                    ..account()
                },
                "staff_chief_department",
            ),
        ];
        for (bad, code) in table {
            assert_eq!(
                bad.validate(&hall).map_err(|e| e.code()),
                Err(code),
                "{bad:?}"
            );
        }
        assert_eq!(
            StaffAccount::doc_id_for(&hall, "wang_fang")
                .unwrap()
                .as_str(),
            "u-440304-wang:fang"
        );
    }

    #[test]
    fn an_account_signs_in_inside_its_places() {
        let hall = d("440304");
        let everywhere = account();
        let one_street = StaffAccount {
            sign_in_at: vec![d("440304001")],
            ..account()
        };
        for (node, anywhere, street) in [
            ("440304", true, false),
            ("440304001", true, true),
            ("440304001001", true, true),
            ("440304002001", true, false),
            ("440305001001", false, false),
            ("440300", false, false),
        ] {
            assert_eq!(everywhere.signs_in_at(&hall, &d(node)), anywhere, "{node}");
            assert_eq!(one_street.signs_in_at(&hall, &d(node)), street, "{node}");
        }
    }

    #[test]
    fn a_new_verifier_needs_a_new_generation() {
        let held = account();
        let reset = StaffAccount {
            verifier: "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$bmV3aGFzaA".into(),
            generation: 2,
            ..account()
        };
        assert_eq!(reset.may_follow(&held), Ok(()));
        let sneaky = StaffAccount {
            generation: 1,
            ..reset.clone()
        };
        assert_eq!(sneaky.may_follow(&held), Err(StaffError::Generation));
        let back = StaffAccount {
            generation: 0,
            ..account()
        };
        assert_eq!(back.may_follow(&held), Err(StaffError::Generation));
        let disabled = StaffAccount {
            disabled: true,
            ..account()
        };
        assert_eq!(disabled.may_follow(&held), Ok(()));
    }

    #[test]
    fn one_chief_representative_per_department() {
        let chief = |name: &str, dept: &str| StaffAccount {
            username: name.into(),
            role: "department".into(),
            counter: dept.into(),
            chief: true,
            ..account()
        };
        let others = [chief("wang", "民政局"), chief("zhao", "人社局")];
        assert_eq!(
            chief_clash(&chief("li", "民政局"), &others).map(|a| a.username.as_str()),
            Some("wang")
        );
        assert!(chief_clash(&chief("li", "卫健局"), &others).is_none());
        assert!(chief_clash(&chief("wang", "民政局"), &others).is_none());
    }
}
