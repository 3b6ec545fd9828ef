//! Who manages the tree's staff accounts, and what a chief representative authorizes:
//! decided once for the store, the API, the pages and every receiver of an account.

use crate::auth::NodeRecord;
use crate::domain::case::ActionKind;
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
