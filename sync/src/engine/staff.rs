//! Who manages the tree's staff accounts, and what a chief representative authorizes:
//! decided once for the store, the API, the pages and every receiver of an account.

use crate::auth::NodeRecord;
use crate::doc::CaseDoc;
use crate::domain::case::{Action, ActionKind};
use crate::domain::staff::StaffError;
use crate::engine::StaffRole;

/// Whether a person of `role` at `node` writes the accounts of the tree below `node`
/// (§8.6.3: one identity for the whole subtree): an admin at a hall. A station's admin
/// manages only its node-local accounts.
pub fn may_manage_staff(node: &NodeRecord, role: StaffRole) -> Result<(), StaffError> {
    if node.role.is_hall() && role == StaffRole::Admin {
        Ok(())
    } else {
        Err(StaffError::NotAnAdminAtAHall)
    }
}

/// What a department's chief representative (首席代表, SZDB/Z 176 §7.5: authorized to
/// organise the department's service at the hall) may do beyond a department account:
/// approve or decline an extension of a case's limit (行政许可法 §42: 经本行政机关负责人
/// 批准), which otherwise only a lead does. Nothing else changes for the account.
pub fn chief_authorizes(role: StaffRole, chief: bool, kind: ActionKind) -> bool {
    role == StaffRole::Department
        && chief
        && matches!(kind, ActionKind::Extend | ActionKind::DeclineExtension)
}

/// Whom `actor` acts for on a case as a stand-in (B角, SZDB/Z 176 §7.4.1.3: AB 角工作制度):
/// the staff member who holds the case (who accepted it, or took it in while it is not
/// accepted) when that is someone whose stand-in `actor` is (`stands_in_for`, from the
/// accounts). The event records it; `None` when the actor acts on their own case or on one
/// they stand in for nobody on.
pub fn stand_in_for(case: &CaseDoc, actor: &str, stands_in_for: &[String]) -> Option<String> {
    let holder = case
        .events
        .iter()
        .filter(|e| matches!(e.action, Action::Accept { .. }))
        .max_by_key(|e| (e.at, e.node))
        .map_or(case.intake.staff.as_str(), |e| e.staff.as_str());
    (holder != actor && stands_in_for.iter().any(|first| first == holder))
        .then(|| holder.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::NodeRole;
    use crate::auth::tests::record;

    #[test]
    fn only_a_halls_admin_manages_the_trees_accounts() {
        for (node_role, division, role, ok) in [
            (NodeRole::District, "440304", StaffRole::Admin, true),
            (NodeRole::Subdistrict, "440304001", StaffRole::Admin, true),
            (NodeRole::District, "440304", StaffRole::Lead, false),
            (NodeRole::District, "440304", StaffRole::Supervisor, false),
            (NodeRole::District, "440304", StaffRole::Department, false),
            (NodeRole::Station, "440304001001", StaffRole::Admin, false),
        ] {
            let node = record(1, node_role, division);
            assert_eq!(
                may_manage_staff(&node, role).is_ok(),
                ok,
                "{division} {role:?}"
            );
        }
    }

    #[test]
    fn a_stand_in_acts_for_the_one_who_holds_the_case() {
        use crate::domain::case::tests::event;
        let station = record(4, NodeRole::Station, "440304001001");
        let scope = crate::ids::Scope::cases(&station.division);
        let intake = crate::effect::tests::intake(&station);
        let mut case = CaseDoc {
            scope,
            intake,
            events: vec![],
            newer: vec![],
        };
        let accept = |staff: &str| {
            let mut e = event(
                station.node,
                "2026-03-02",
                10,
                Action::Accept {
                    serial_no: crate::domain::serial::SerialNo::parse(
                        "11440399990000017K4000599301000202603029900100110001",
                    )
                    .unwrap(),
                    calendar: String::new(),
                },
            );
            e.staff = staff.into();
            e
        };
        let stands = ["li".to_string()];
        // (the case's events, the actor, whom it is recorded for)
        let table: Vec<(Vec<crate::domain::case::Event>, &str, Option<&str>)> = vec![
            // Taken in by "worker" (the intake's staff), not accepted yet.
            (vec![], "wang", None),
            (vec![accept("li")], "wang", Some("li")),
            (vec![accept("li")], "li", None),
            (vec![accept("zhao")], "wang", None),
        ];
        for (events, actor, expected) in table {
            case.events = events;
            assert_eq!(
                stand_in_for(&case, actor, &stands).as_deref(),
                expected,
                "{actor}"
            );
        }
        assert_eq!(stand_in_for(&case, "x", &[]), None);
    }

    #[test]
    fn a_chief_representative_approves_extensions_only() {
        for kind in ActionKind::ALL {
            let extension = matches!(kind, ActionKind::Extend | ActionKind::DeclineExtension);
            assert_eq!(
                chief_authorizes(StaffRole::Department, true, kind),
                extension
            );
            assert!(!chief_authorizes(StaffRole::Department, false, kind));
            assert!(!chief_authorizes(StaffRole::Worker, true, kind));
        }
    }
}
