//! Who may issue a supervision notice (督办, §10.2) and who may reply to one, decided once
//! for the store, the API and the pages: a hall above the station, by a supervisor or an
//! admin, issues; the station itself, by its lead or admin, replies. Every receiver checks
//! the node's part again on what it is sent ([`crate::effect`]).

use crate::auth::{self, CaseRelation, NodeRecord, NodeRole};
use crate::domain::codes::DivisionCode;
use crate::domain::supervision::SupervisionError;

use super::StaffRole;

/// What a person does with supervision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SupervisionAct {
    /// Issue a notice to the station of `station`'s division.
    Issue,
    /// Reply to a notice the station received.
    Reply,
}

/// Whether a person of `role` at `node` issues supervision notices at all (to some
/// station below): the pages offer the form for a station only then.
pub fn may_issue_supervision(node: &NodeRecord, role: StaffRole) -> Result<(), SupervisionError> {
    if !node.role.is_hall() {
        return Err(SupervisionError::NotAbove);
    }
    if !matches!(role, StaffRole::Supervisor | StaffRole::Admin) {
        return Err(SupervisionError::SupervisorsOnly);
    }
    Ok(())
}

/// Whether a person of `role` at `node` reads the month's assessment (§10.1): at a hall
/// its supervisors and admins (of every station below), at a station its lead and admin
/// (of its own counters and staff), since the figures rank people and places.
pub fn may_assess(node: &NodeRecord, role: StaffRole) -> Result<(), SupervisionError> {
    if assessment_open_to(node.role, role) {
        Ok(())
    } else {
        Err(SupervisionError::AssessmentRole)
    }
}

/// The rule of [`may_assess`] by the node's role alone (what the pages' navigation offers).
pub fn assessment_open_to(node: NodeRole, role: StaffRole) -> bool {
    if node.is_hall() {
        matches!(role, StaffRole::Supervisor | StaffRole::Admin)
    } else {
        role.leads()
    }
}

/// Whether a person of `role` at `node` may do `act` for the station of `station`.
pub fn may_supervise(
    node: &NodeRecord,
    role: StaffRole,
    station: &DivisionCode,
    act: SupervisionAct,
) -> Result<(), SupervisionError> {
    let relation = auth::case_relation(node, station);
    match act {
        SupervisionAct::Issue => {
            if relation != Some(CaseRelation::Above) {
                return Err(SupervisionError::NotAbove);
            }
            may_issue_supervision(node, role)?;
        }
        SupervisionAct::Reply => {
            if relation != Some(CaseRelation::Owner) {
                return Err(SupervisionError::NotTheStation);
            }
            if !role.leads() {
                return Err(SupervisionError::LeadsReply);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::NodeRole;
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

    #[test]
    fn supervisors_at_halls_and_leads_at_stations_read_the_assessment() {
        use StaffRole::{Admin, Department, Lead, Supervisor, Worker};
        let district = node("440304", NodeRole::District);
        let station = node("440304001001", NodeRole::Station);
        let table = [
            (&district, Supervisor, true),
            (&district, Admin, true),
            (&district, Lead, false),
            (&district, Worker, false),
            (&district, Department, false),
            (&station, Lead, true),
            (&station, Admin, true),
            (&station, Worker, false),
            (&station, Supervisor, false),
        ];
        for (node, role, allowed) in table {
            let got = may_assess(node, role);
            assert_eq!(got.is_ok(), allowed, "{} {role:?}", node.division);
            if let Err(e) = got {
                assert_eq!(e.code(), "assessment_role");
            }
        }
    }

    #[test]
    fn halls_above_issue_and_the_station_replies() {
        use StaffRole::{Admin, Lead, Supervisor, Worker};
        use SupervisionAct::{Issue, Reply};
        let station = DivisionCode::parse("440304001001").unwrap();
        let district = node("440304", NodeRole::District);
        let subdistrict = node("440304001", NodeRole::Subdistrict);
        let own = node("440304001001", NodeRole::Station);
        let other_district = node("440305", NodeRole::District);
        // (node, role, act, code or None when allowed)
        let table: [(&NodeRecord, StaffRole, SupervisionAct, Option<&str>); 12] = [
            (&district, Supervisor, Issue, None),
            (&district, Admin, Issue, None),
            (&subdistrict, Supervisor, Issue, None),
            (&district, Lead, Issue, Some("supervision_supervisors_only")),
            (
                &district,
                Worker,
                Issue,
                Some("supervision_supervisors_only"),
            ),
            (
                &other_district,
                Supervisor,
                Issue,
                Some("supervision_not_above"),
            ),
            (&own, Admin, Issue, Some("supervision_not_above")),
            (&own, Lead, Reply, None),
            (&own, Admin, Reply, None),
            (&own, Worker, Reply, Some("supervision_leads_reply")),
            (&own, Supervisor, Reply, Some("supervision_leads_reply")),
            (&district, Admin, Reply, Some("supervision_not_the_station")),
        ];
        for (node, role, act, expected) in table {
            let got = may_supervise(node, role, &station, act)
                .err()
                .map(|e| e.code());
            assert_eq!(got, expected, "{} {role:?} {act:?}", node.division);
        }
    }
}
