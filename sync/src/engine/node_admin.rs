//! Who runs the node itself — its local accounts and API tokens, counters, backups and
//! status, the calendar years a hall publishes — and who reads its dashboard: decided once
//! for the API and the pages, which word the refusal from its code.

use super::StaffRole;

/// Why a person may not do something to the node itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeAdminError {
    /// The node's set-up (accounts, tokens, counters, backups, calendars) is an admin's.
    #[error("this is an admin's: the node's accounts, counters, backups and calendars")]
    AdminsOnly,
    /// The dashboard's figures are a lead's or an admin's (SZDB/Z 176 §7.4.1.4: 现场负责人).
    #[error("the dashboard is for station leads and admins")]
    DashboardLeadsOnly,
}

impl NodeAdminError {
    /// Stable and machine-readable (worded under `err.CODE`).
    pub fn code(self) -> &'static str {
        match self {
            NodeAdminError::AdminsOnly => "admins_only",
            NodeAdminError::DashboardLeadsOnly => "dashboard_leads_only",
        }
    }
}

/// Whether a person of `role` sets up this node: its local accounts and tokens, counters,
/// backups and restores, its status page, and (at a hall) the calendar years it publishes.
pub fn may_administer(role: StaffRole) -> Result<(), NodeAdminError> {
    if role == StaffRole::Admin {
        Ok(())
    } else {
        Err(NodeAdminError::AdminsOnly)
    }
}

/// Whether a person of `role` reads the node's dashboard (its figures, by counter and
/// staff member): a lead or an admin.
pub fn may_read_dashboard(role: StaffRole) -> Result<(), NodeAdminError> {
    if role.leads() {
        Ok(())
    } else {
        Err(NodeAdminError::DashboardLeadsOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_set_up_the_node_and_leads_read_the_dashboard() {
        for role in StaffRole::ALL {
            let admin = role == StaffRole::Admin;
            let lead = matches!(role, StaffRole::Lead | StaffRole::Admin);
            assert_eq!(may_administer(role).is_ok(), admin, "{role:?}");
            assert_eq!(may_read_dashboard(role).is_ok(), lead, "{role:?}");
        }
        assert_eq!(
            may_administer(StaffRole::Lead).unwrap_err().code(),
            "admins_only"
        );
        assert_eq!(
            may_read_dashboard(StaffRole::Worker).unwrap_err().code(),
            "dashboard_leads_only"
        );
    }
}
