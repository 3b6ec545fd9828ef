//! The hall's view of its subtree (issue 14): the stations and sub-districts below a
//! hall, each with its open cases by warning level, the month's on-time rate and
//! satisfaction, open rectifications, and when the hall last heard from it.
//!
//! A case's station is the division of its scope (`case/<division>`): the node of that
//! division received it. Every figure is counted from the derived case rows with the
//! same definitions as the lead dashboard (`stats`): due soon is the yellow level, overdue
//! the red one, a legal breach past the legal limit; on time is completed on or before
//! the committed date; satisfied is a rating of 4 or 5.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use yizhan_sync::auth::NodeRecord;
use yizhan_sync::domain::calendar::Date;
use yizhan_sync::domain::codes::{DivisionCode, DivisionLevel};
use yizhan_sync::domain::hlc::Hlc;
use yizhan_sync::feed::Ack;
use yizhan_sync::ids::Scope;
use yizhan_sync::wire::Message;

use super::stats::Month;
use super::sync::{count_lacking, load_vector};
use super::{Store, StoreError};

/// The indexes only a hall's pages read: prefixed by a case's scope (its station), or
/// covering a month of a whole subtree for the assessment; at a station, which holds one
/// scope and a few thousand cases a month, they would only cost page writes on every case
/// write. Kept at halls and dropped at stations whenever the store opens
/// ([`keep_hall_indexes`]); migration 013 made eight at every node (two since retired:
/// [`RETIRED_HALL_INDEXES`]). A query that names one with `INDEXED BY` asks
/// [`hall_index`] first, so it still runs (by a scan) at a station.
const HALL_INDEXES: [(&str, &str); 9] = [
    (
        "cases_scope_red",
        "ON cases (scope, red_on, id) WHERE red_on IS NOT NULL",
    ),
    (
        "cases_scope_breach",
        "ON cases (scope, breach_on, id) WHERE breach_on IS NOT NULL",
    ),
    (
        "cases_scope_deadline",
        "ON cases (scope, COALESCE(committed_due, '9999-12-31'), id)
         WHERE status IN ('submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided')",
    ),
    (
        "cases_open_levels",
        "ON cases (scope, status, yellow_on, red_on, breach_on)
         WHERE status IN ('submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided')",
    ),
    (
        "cases_rectify_scope",
        "ON cases (scope, rectified_on, rating) WHERE rectify_due IS NOT NULL",
    ),
    ("cases_scope_updated", "ON cases (scope, updated_hlc)"),
    // The month's assessment (`store::assessment`) reads one month of the subtree from these
    // alone, in date order, without touching the case rows (a random read each in a file
    // of gigabytes at 1 M cases): the cases received, completed and rated in the month with
    // the columns they are grouped and counted by.
    (
        "cases_assess_received",
        "ON cases (created_ms, scope, counter, staff, holder)",
    ),
    (
        "cases_assess_completed",
        "ON cases (closed_on, scope, counter, staff, holder, accepted_on, committed_due, legal_due, status)
         WHERE status = 'completed'",
    ),
    (
        "cases_assess_rated",
        "ON cases (rated_on, scope, counter, staff, holder, rating, rectify_due, rectified_on)
         WHERE rating IS NOT NULL",
    ),
];

/// Hall indexes no longer made, dropped at every node when the store opens: each held a
/// prefix of an assessment index's columns under the same condition
/// (`cases_assess_completed`, `cases_assess_rated`), which the overview reads instead, and
/// each cost every completion or rating a write on a random page (the catch-up's).
const RETIRED_HALL_INDEXES: [&str; 2] = ["cases_completed_scope", "cases_rated_scope"];

/// Makes the hall's indexes exist at a hall and not at a station (the node's role is
/// fixed by its config, so this changes something only at the first open after an
/// upgrade, or after a role change).
pub(super) fn keep_hall_indexes(conn: &Connection, is_hall: bool) -> rusqlite::Result<()> {
    for (name, definition) in HALL_INDEXES {
        if is_hall {
            conn.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {name} {definition}"))?;
        } else {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
        }
    }
    for name in RETIRED_HALL_INDEXES {
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
    }
    Ok(())
}

/// `" INDEXED BY name"` at a hall, where the hall's index `name` exists; nothing at a
/// station, where the query reads its one scope without it.
pub(super) fn hall_index(own: &NodeRecord, name: &str) -> String {
    debug_assert!(HALL_INDEXES.iter().any(|(n, _)| *n == name));
    if own.role.is_hall() {
        format!(" INDEXED BY {name}")
    } else {
        String::new()
    }
}

/// A node below this one, as the hall's lists name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtreeNode {
    /// The node id in hex; empty for a division whose cases arrived but whose node the
    /// registries here do not name.
    pub node: String,
    pub name: String,
    pub division: String,
    /// `station`, `subdistrict`, … (empty when unknown).
    pub role: String,
}

/// One station's (or, summed, one sub-district's) figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StationFigures {
    pub open: u64,
    pub due_soon: u64,
    pub overdue: u64,
    pub legal_breach: u64,
    /// Completed this month with a committed deadline, and how many on or before it.
    pub completed_month: u64,
    pub on_time_month: u64,
    /// Ratings given this month, and how many were 4 or 5.
    pub rated_month: u64,
    pub satisfied_month: u64,
    /// Bad ratings whose rectification is not closed.
    pub open_rectifications: u64,
}

impl StationFigures {
    fn add(&mut self, other: &StationFigures) {
        self.open += other.open;
        self.due_soon += other.due_soon;
        self.overdue += other.overdue;
        self.legal_breach += other.legal_breach;
        self.completed_month += other.completed_month;
        self.on_time_month += other.on_time_month;
        self.rated_month += other.rated_month;
        self.satisfied_month += other.satisfied_month;
        self.open_rectifications += other.open_rectifications;
    }

    /// The month's on-time rate, `None` when nothing was completed with a deadline.
    pub fn on_time_rate(&self) -> Option<f64> {
        (self.completed_month > 0).then(|| self.on_time_month as f64 / self.completed_month as f64)
    }

    /// The month's share of satisfied ratings, `None` when nobody rated.
    pub fn satisfaction(&self) -> Option<f64> {
        (self.rated_month > 0).then(|| self.satisfied_month as f64 / self.rated_month as f64)
    }
}

/// One line of the overview: a station, or a sub-district with its stations summed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverviewLine {
    pub node: SubtreeNode,
    pub figures: StationFigures,
    /// The last time this hall heard from it: the newest event on its cases, or, for a
    /// child of this hall, its last sync session here, whichever is later. A
    /// sub-district's line takes the latest of its own and its stations'.
    pub last_heard_ms: Option<i64>,
    /// For a child of this hall: the changes here it has not yet taken, counted against
    /// the vector it last told this hall. `None` for nodes further down.
    pub pending: Option<u64>,
    /// For a station under a sub-district at a district: that sub-district's division.
    pub parent_division: Option<String>,
}

/// The per-station overview: sub-districts (with their stations summed) and stations,
/// each station listed after its sub-district.
#[derive(Clone, Debug, Default)]
pub struct Overview {
    pub month: Option<Month>,
    pub lines: Vec<OverviewLine>,
    pub total: StationFigures,
}

impl Store {
    /// The nodes below this one that the registries here name, by division.
    pub async fn subtree_nodes(&self) -> Result<Vec<SubtreeNode>, StoreError> {
        let own = self.own_record().clone();
        self.read(move |conn| Ok(subtree(conn, &own)?.into_values().collect()))
            .await
    }

    /// The overview of every station and sub-district below this node as of `today`
    /// (this month's figures for the month `today` falls in).
    pub async fn station_overview(&self, today: Date) -> Result<Overview, StoreError> {
        let own = self.own_record().clone();
        self.read(move |conn| overview(conn, &own, today)).await
    }
}

impl Store {
    /// The departments cases here were sent to (转办), for the subtree list's filter: one
    /// index seek each, at most 500.
    pub async fn case_departments(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut next = conn.prepare_cached(
                "SELECT min(holder) FROM cases INDEXED BY cases_holder_name
                 WHERE holder IS NOT NULL AND holder > ?1",
            )?;
            let mut found: Vec<String> = Vec::new();
            let mut from = String::new();
            for _ in 0..500 {
                let Some(holder) = next.query_row([&from], |r| r.get::<_, Option<String>>(0))?
                else {
                    break;
                };
                from.clone_from(&holder);
                found.push(holder);
            }
            Ok(found)
        })
        .await
    }
}

impl Store {
    /// The last time this node heard from the node of `division`: the newest event on its
    /// cases, or its last sync session here if it is a child, whichever is later.
    pub async fn last_heard(&self, division: DivisionCode) -> Result<Option<i64>, StoreError> {
        let indexed = hall_index(self.own_record(), "cases_scope_updated");
        self.read(move |conn| {
            let scope = Scope::cases(&division).to_string();
            let heard: Option<String> = conn
                .prepare_cached(&format!(
                    "SELECT max(updated_hlc) FROM cases{indexed} WHERE scope = ?1"
                ))?
                .query_row([&scope], |r| r.get(0))?;
            let heard = heard
                .as_deref()
                .and_then(Hlc::parse_hex)
                .map(|h| h.unix_ms() as i64);
            let mut session: Option<i64> = None;
            let mut stmt = conn.prepare_cached(
                "SELECT record_json, max(coalesce(last_ok_ms, 0), coalesce(known_vector_ms, 0))
                 FROM peers WHERE relation = 'child'",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let json: String = row.get(0)?;
                if serde_json::from_str::<NodeRecord>(&json).is_ok_and(|r| r.division == division) {
                    session = session.max(Some(row.get(1)?).filter(|ms: &i64| *ms > 0));
                }
            }
            Ok(heard.max(session))
        })
        .await
    }
}

/// The records below `own` in the registries and pins here, by division; the newest
/// record of a division wins (a re-enrolled node).
fn subtree(
    conn: &Connection,
    own: &NodeRecord,
) -> Result<BTreeMap<String, SubtreeNode>, StoreError> {
    let mut found: BTreeMap<String, (u64, SubtreeNode)> = BTreeMap::new();
    for sql in [
        "SELECT record_json FROM registry_records",
        "SELECT record_json FROM peers WHERE relation = 'child'",
    ] {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let json: String = row.get(0)?;
            let Ok(record) = serde_json::from_str::<NodeRecord>(&json) else {
                continue;
            };
            if record.division == own.division
                || !record.division.is_within(&own.division)
                || record.revoked.is_some()
            {
                continue;
            }
            let key = record.division.to_string();
            let newer = found
                .get(&key)
                .is_none_or(|(enrolled, _)| record.enrolled_ms >= *enrolled);
            if newer {
                found.insert(
                    key.clone(),
                    (
                        record.enrolled_ms,
                        SubtreeNode {
                            node: record.node.to_hex(),
                            name: record.name.clone(),
                            division: key,
                            role: record.role.as_str().to_string(),
                        },
                    ),
                );
            }
        }
    }
    Ok(found.into_iter().map(|(k, (_, n))| (k, n)).collect())
}

const OPEN: &str =
    "status IN ('submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided')";

fn overview(conn: &Connection, own: &NodeRecord, today: Date) -> Result<Overview, StoreError> {
    let mut nodes = subtree(conn, own)?;
    let month = Month::of(today);
    let (from, to) = (month.first_day().to_string(), month.last_day().to_string());
    let today_s = today.to_string();
    let mut figures: BTreeMap<String, StationFigures> = BTreeMap::new();
    let division_of = |scope: String| Scope::parse(&scope).map(|s| s.division().to_string());
    let count = |n: i64| n.max(0) as u64;
    // Open cases and their levels. The parts of a combined application (并联审批, §7.5) are
    // its departments' work: the station's figures count the application once, as its
    // whole, so the parts (few: counted on their own) are taken out again.
    for (source, sign) in [
        (hall_index(own, "cases_open_levels"), 1),
        (
            " JOIN case_parts ON case_parts.id = cases.id".to_string(),
            -1,
        ),
    ] {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT scope, count(*),
                    coalesce(sum(yellow_on <= ?1 AND red_on > ?1), 0),
                    coalesce(sum(red_on <= ?1 AND breach_on > ?1), 0),
                    coalesce(sum(breach_on <= ?1), 0)
             FROM cases{source} WHERE {OPEN} GROUP BY scope"
        ))?;
        let mut rows = stmt.query(params![today_s])?;
        while let Some(row) = rows.next()? {
            let Some(division) = division_of(row.get(0)?) else {
                continue;
            };
            let f = figures.entry(division).or_default();
            let add = |figure: &mut u64, n: i64| {
                *figure = if sign > 0 {
                    *figure + count(n)
                } else {
                    figure.saturating_sub(count(n))
                }
            };
            add(&mut f.open, row.get(1)?);
            add(&mut f.due_soon, row.get(2)?);
            add(&mut f.overdue, row.get(3)?);
            add(&mut f.legal_breach, row.get(4)?);
        }
    }
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT scope, count(*), coalesce(sum(closed_on <= committed_due), 0)
             FROM cases{}
             WHERE status = 'completed' AND closed_on BETWEEN ?1 AND ?2
               AND committed_due IS NOT NULL
             GROUP BY scope",
            hall_index(own, "cases_assess_completed")
        ))?;
        let mut rows = stmt.query(params![from, to])?;
        while let Some(row) = rows.next()? {
            let Some(division) = division_of(row.get(0)?) else {
                continue;
            };
            let f = figures.entry(division).or_default();
            f.completed_month = count(row.get(1)?);
            f.on_time_month = count(row.get(2)?);
        }
    }
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT scope, count(*), coalesce(sum(rating >= 4), 0)
             FROM cases{}
             WHERE rating IS NOT NULL AND rated_on BETWEEN ?1 AND ?2 AND rating BETWEEN 1 AND 5
             GROUP BY scope",
            hall_index(own, "cases_assess_rated")
        ))?;
        let mut rows = stmt.query(params![from, to])?;
        while let Some(row) = rows.next()? {
            let Some(division) = division_of(row.get(0)?) else {
                continue;
            };
            let f = figures.entry(division).or_default();
            f.rated_month = count(row.get(1)?);
            f.satisfied_month = count(row.get(2)?);
        }
    }
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT scope, count(*) FROM cases{}
             WHERE rectify_due IS NOT NULL AND rectified_on IS NULL AND rating <= 2
             GROUP BY scope",
            hall_index(own, "cases_rectify_scope")
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let Some(division) = division_of(row.get(0)?) else {
                continue;
            };
            figures.entry(division).or_default().open_rectifications = count(row.get(1)?);
        }
    }
    // Divisions whose cases are here though no registry names their node.
    for division in figures.keys() {
        if division == own.division.as_str() {
            continue;
        }
        nodes
            .entry(division.clone())
            .or_insert_with(|| SubtreeNode {
                node: String::new(),
                name: division.clone(),
                division: division.clone(),
                role: String::new(),
            });
    }
    // The children's last sessions here and what they have yet to take.
    let local = load_vector(conn)?;
    let mut children: BTreeMap<String, (Option<i64>, Option<u64>)> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT record_json, last_ok_ms, known_vector, known_vector_ms FROM peers
             WHERE relation = 'child'",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (json, last_ok_ms, known, known_ms) in rows {
            let Ok(record) = serde_json::from_str::<NodeRecord>(&json) else {
                continue;
            };
            let pending = match known.as_deref().map(Ack::decode) {
                Some(Ok(ack)) => Some(count_lacking(conn, &local, &record, &ack.have)?),
                _ => None,
            };
            children.insert(
                record.division.to_string(),
                (last_ok_ms.max(known_ms), pending),
            );
        }
    }
    let mut newest = conn.prepare_cached(&format!(
        "SELECT max(updated_hlc) FROM cases{} WHERE scope = ?1",
        hall_index(own, "cases_scope_updated")
    ))?;
    let mut lines: Vec<OverviewLine> = Vec::with_capacity(nodes.len());
    for (division, node) in nodes {
        let scope = DivisionCode::parse(&division)
            .map(|d| Scope::cases(&d).to_string())
            .unwrap_or_default();
        let heard: Option<String> = newest.query_row([&scope], |r| r.get(0))?;
        let heard_ms = heard
            .as_deref()
            .and_then(Hlc::parse_hex)
            .map(|h| h.unix_ms() as i64);
        let (session_ms, pending) = children.get(&division).cloned().unwrap_or((None, None));
        let parent_division = DivisionCode::parse(&division)
            .ok()
            .filter(|d| {
                d.level() == DivisionLevel::Community
                    && own.division.level() != DivisionLevel::Subdistrict
            })
            .map(|d| d.as_str()[..9].to_string());
        lines.push(OverviewLine {
            figures: figures.get(&division).cloned().unwrap_or_default(),
            node,
            last_heard_ms: heard_ms.max(session_ms),
            pending,
            parent_division,
        });
    }
    // A sub-district's line sums its own cases and its stations'.
    let mut sums: BTreeMap<String, (StationFigures, Option<i64>)> = BTreeMap::new();
    for line in &lines {
        if let Some(parent) = &line.parent_division {
            let (sum, heard) = sums.entry(parent.clone()).or_default();
            sum.add(&line.figures);
            *heard = (*heard).max(line.last_heard_ms);
        }
    }
    for line in &mut lines {
        if let Some((sum, heard)) = sums.get(&line.node.division) {
            line.figures.add(sum);
            line.last_heard_ms = line.last_heard_ms.max(*heard);
        }
    }
    let mut total = StationFigures::default();
    // The total counts every case below once: the top-level lines (sub-districts, which
    // hold their stations, and stations directly below this hall).
    let top: Vec<&OverviewLine> = lines
        .iter()
        .filter(|l| {
            l.parent_division
                .as_ref()
                .is_none_or(|p| !lines.iter().any(|o| &o.node.division == p))
        })
        .collect();
    for line in top {
        total.add(&line.figures);
    }
    Ok(Overview {
        month: Some(month),
        lines,
        total,
    })
}
