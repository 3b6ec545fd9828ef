//! Who manages a hall's departments (进驻部门) and their approval seals (SZDB/Z 176
//! §9.6), decided once for the store, the API and the pages; every receiver checks the
//! same rule on the role a department document names ([`crate::effect`]).

use crate::auth::NodeRecord;
use crate::domain::department::DepartmentError;

use super::StaffRole;

/// Whether a person of `role` at `node` creates a department or rotates its seal: a
/// hall's admin, since a seal binds the department's approvals (§9.6.1).
pub fn may_manage_departments(node: &NodeRecord, role: StaffRole) -> Result<(), DepartmentError> {
    if !node.role.is_hall() {
        return Err(DepartmentError::HallsOnly);
    }
    if role != StaffRole::Admin {
        return Err(DepartmentError::AdminsOnly);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::NodeRole;
    use crate::auth::tests::record;

    #[test]
    fn only_a_halls_admin_manages_departments() {
        let hall = record(1, NodeRole::Subdistrict, "440304001");
        let station = record(2, NodeRole::Station, "440304001001");
        for (node, role, expected) in [
            (&hall, StaffRole::Admin, Ok(())),
            (&hall, StaffRole::Lead, Err(DepartmentError::AdminsOnly)),
            (
                &hall,
                StaffRole::Department,
                Err(DepartmentError::AdminsOnly),
            ),
            (
                &hall,
                StaffRole::Supervisor,
                Err(DepartmentError::AdminsOnly),
            ),
            (&hall, StaffRole::Worker, Err(DepartmentError::AdminsOnly)),
            (&station, StaffRole::Admin, Err(DepartmentError::HallsOnly)),
        ] {
            assert_eq!(may_manage_departments(node, role), expected, "{role:?}");
        }
    }
}
