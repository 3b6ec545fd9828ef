//! `/api/v1/stations`: the per-station overview of a hall's subtree, for the
//! departments' and the city's systems (the same figures as `/hall/stations`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use utoipa::ToSchema;

use super::ApiState;
use super::cases::StationRef;
use super::error::{ApiResult, ErrorBody};
use super::extract::Authenticated;
use crate::clock::rfc3339_cst;

/// The overview: one entry per station and sub-district below this node.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StationList {
    /// The day the figures are for (China time); "this month" is its month.
    pub as_of: String,
    /// Hours without news after which a station is `stale` (`[service] stale_sync_hours`).
    pub stale_after_hours: u32,
    pub stations: Vec<StationEntry>,
}

/// One station's (or, summed with its stations, one sub-district's) figures.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StationEntry {
    pub station: StationRef,
    /// `station`, `subdistrict`, … (empty when no registry here names the node).
    pub role: String,
    /// For a station under a sub-district: that sub-district's division code.
    pub subdistrict: Option<String>,
    /// Open cases (在办) and, of them, yellow, red and past the legal limit today.
    pub open: u64,
    pub due_soon: u64,
    pub overdue: u64,
    pub legal_breach: u64,
    /// Completed this month with a committed deadline, and of them on time.
    pub completed_this_month: u64,
    pub on_time_this_month: u64,
    /// `on_time_this_month / completed_this_month`; absent when nothing was completed.
    pub on_time_rate: Option<f64>,
    /// Ratings given this month, and of them 4 or 5 (满意, 非常满意).
    pub rated_this_month: u64,
    pub satisfied_this_month: u64,
    pub satisfaction: Option<f64>,
    /// Bad ratings whose rectification is still open.
    pub open_rectifications: u64,
    /// When this node last heard from it (RFC 3339): the newest change on its cases, or
    /// its last sync session here.
    pub last_synced_at: Option<String>,
    /// For a child of this node: changes here it has not taken yet.
    pub pending_changes: Option<u64>,
    /// Not heard from for longer than `stale_after_hours`.
    pub stale: bool,
}

/// Per-station overview
#[utoipa::path(get, path = "/api/v1/stations", tag = "cases",
    responses((status = 200, body = StationList), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn index(
    State(state): State<ApiState>,
    _user: Authenticated,
) -> ApiResult<Json<StationList>> {
    let today = state.today();
    let overview = state.store.station_overview(today).await?;
    let now_ms = state.clock.now_ms() as i64;
    let stale_ms = i64::from(state.stale_sync_hours) * 3_600_000;
    let stations = overview
        .lines
        .into_iter()
        .map(|l| {
            let f = &l.figures;
            StationEntry {
                role: l.node.role.clone(),
                subdistrict: l.parent_division.clone(),
                open: f.open,
                due_soon: f.due_soon,
                overdue: f.overdue,
                legal_breach: f.legal_breach,
                completed_this_month: f.completed_month,
                on_time_this_month: f.on_time_month,
                on_time_rate: f.on_time_rate(),
                rated_this_month: f.rated_month,
                satisfied_this_month: f.satisfied_month,
                satisfaction: f.satisfaction(),
                open_rectifications: f.open_rectifications,
                last_synced_at: l.last_heard_ms.map(rfc3339_cst),
                pending_changes: l.pending,
                stale: l.last_heard_ms.is_none_or(|ms| now_ms - ms > stale_ms),
                station: StationRef {
                    node: l.node.node,
                    name: l.node.name,
                    division: l.node.division,
                },
            }
        })
        .collect();
    Ok(Json(StationList {
        as_of: today.to_string(),
        stale_after_hours: state.stale_sync_hours,
        stations,
    }))
}

/// This node and the nodes below it, by division, to name the station of listed cases.
pub(super) async fn station_refs(state: &ApiState) -> ApiResult<HashMap<String, StationRef>> {
    let mut refs: HashMap<String, StationRef> = state
        .store
        .subtree_nodes()
        .await?
        .into_iter()
        .map(|n| {
            (
                n.division.clone(),
                StationRef {
                    node: n.node,
                    name: n.name,
                    division: n.division,
                },
            )
        })
        .collect();
    refs.insert(
        state.node.division.clone(),
        StationRef {
            node: state.node.node_id.clone(),
            name: state.node.name.clone(),
            division: state.node.division.clone(),
        },
    );
    Ok(refs)
}
