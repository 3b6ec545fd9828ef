//! The working-day calendar as data (issue "The station on its second day", 13): a hall
//! publishes a calendar year as a document (`y-<division>-<year>`, checked on arrival by
//! the engine), it flows down with the catalog, and deadlines count on it. The years
//! compiled into the binary are the fallback for a year nobody published.
//!
//! Which years apply to a case is decided by where the case is, not by which node derives
//! it, so a station and every hall above it derive the same deadlines: the years published
//! by a hall whose division contains the case's, the highest hall's first (the city's
//! over a district's). When the years a node holds change, the open cases (and closed ones
//! whose dates reach into a changed year) are derived again in the same transaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use yizhan_sync::doc;
use yizhan_sync::domain::calendar::Calendar;
use yizhan_sync::domain::codes::{DivisionCode, DivisionLevel};
use yizhan_sync::ids::DocId;

use super::StoreError;
use super::writer::store_case_rows;
use crate::i18n::Words;

/// One calendar year a hall published, as held here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedYear {
    pub doc_id: String,
    /// The hall that published it.
    pub division: DivisionCode,
    pub year: i32,
    /// The year's version as its file gives it (e.g. `2027.1`).
    pub version: String,
    /// Official, or provisional until the State Council's notice.
    pub official: bool,
    pub text: String,
    /// A short SHA-256 of `text`, taken once: it keys the built calendars on every
    /// derivation.
    pub digest: String,
}

/// Every calendar year this node holds, and the calendars built from them.
#[derive(Debug, Default)]
pub struct Calendars {
    years: Vec<PublishedYear>,
    /// Calendars by the documents they were built from: a node with a thousand cases in
    /// one division builds one.
    built: Mutex<HashMap<String, Arc<Calendar>>>,
}

/// The calendar-year documents, found by their ids' prefix (`y-`, through the primary key):
/// every start reads them, and filtering by kind alone would read every document's row
/// (1.7 s of a hall's start-up at 1,000,000 cases).
const LOAD_YEARS: &str = "SELECT id, bytes FROM documents
     WHERE id >= 'y-' AND id < 'y.' AND kind = 'calendar' ORDER BY id";

impl Calendars {
    /// Reads the calendar documents held here. A document that no longer reads (it was
    /// checked on arrival) is left out, loudly: deadlines then count on the others.
    pub fn load(conn: &Connection) -> Result<Calendars, StoreError> {
        let mut stmt = conn.prepare_cached(LOAD_YEARS)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut years = Vec::new();
        for row in rows {
            let (id, bytes) = row?;
            match read_year(&id, &bytes) {
                Ok(year) => years.push(year),
                Err(reason) => tracing::error!(
                    calendar.doc = %id,
                    error = %reason,
                    "a published calendar year cannot be read; deadlines count without it"
                ),
            }
        }
        Ok(Calendars {
            years,
            built: Mutex::default(),
        })
    }

    /// The years held, by year, then the highest hall first.
    pub fn years(&self) -> Vec<PublishedYear> {
        let mut years = self.years.clone();
        years.sort_by_key(|y| (y.year, rank(&y.division), y.division.to_string()));
        years
    }

    /// The calendar deadlines of a case in `division` count on.
    pub fn for_division(&self, division: &DivisionCode) -> Arc<Calendar> {
        let mut chosen: BTreeMap<i32, &PublishedYear> = BTreeMap::new();
        for year in &self.years {
            if !division.is_within(&year.division) {
                continue;
            }
            let better = chosen
                .get(&year.year)
                .is_none_or(|held| rank(&year.division) < rank(&held.division));
            if better {
                chosen.insert(year.year, year);
            }
        }
        if chosen.is_empty() {
            return shipped();
        }
        let key: String = chosen
            .values()
            .map(|y| format!("{}:{};", y.doc_id, y.digest))
            .collect();
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(calendar) = built.get(&key) {
            return calendar.clone();
        }
        let texts: Vec<&str> = chosen.values().map(|y| y.text.as_str()).collect();
        let calendar = match Calendar::china_with(&texts) {
            Ok(calendar) => Arc::new(calendar),
            Err(e) => {
                tracing::error!(error = %e, "the published calendar years do not combine; deadlines count on the shipped calendar");
                shipped()
            }
        };
        built.insert(key, calendar.clone());
        calendar
    }

    /// What the deadlines of this store were derived with: the shipped calendar and every
    /// published year held. Kept in `meta`, so a start after an upgrade or a change made
    /// while the node was down derives the rows again.
    pub fn fingerprint(&self) -> String {
        let mut out = Calendar::china().version().to_string();
        for year in self.years() {
            out.push_str(&format!(";{}@{}", year.doc_id, year.digest));
        }
        out
    }

    /// The first year whose published text differs between `self` and `other`.
    pub fn first_change(&self, other: &Calendars) -> Option<i32> {
        let key = |c: &Calendars| -> std::collections::BTreeSet<(i32, String, String)> {
            c.years
                .iter()
                .map(|y| (y.year, y.doc_id.clone(), y.digest.clone()))
                .collect()
        };
        let (a, b) = (key(self), key(other));
        a.symmetric_difference(&b).map(|(year, _, _)| *year).min()
    }
}

/// The shipped calendar, shared.
pub fn shipped() -> Arc<Calendar> {
    static SHIPPED: std::sync::OnceLock<Arc<Calendar>> = std::sync::OnceLock::new();
    SHIPPED
        .get_or_init(|| Arc::new(Calendar::china().clone()))
        .clone()
}

/// City first, then district, sub-district, community.
fn rank(division: &DivisionCode) -> u8 {
    match division.level() {
        DivisionLevel::City => 0,
        DivisionLevel::District => 1,
        DivisionLevel::Subdistrict => 2,
        DivisionLevel::Community => 3,
    }
}

fn digest(text: &str) -> String {
    yizhan_sync::ids::hex(&Sha256::digest(text.as_bytes())[..8])
}

fn read_year(id: &str, bytes: &[u8]) -> Result<PublishedYear, String> {
    let document = automerge::Automerge::load(bytes).map_err(|e| e.to_string())?;
    let record = doc::read_record(&document).map_err(|e| e.to_string())?;
    let text = record.field("text").to_string();
    let calendar = Calendar::from_files(&[&text]).map_err(|e| e.to_string())?;
    let year = calendar
        .years()
        .next()
        .ok_or("the document holds no year")?;
    Ok(PublishedYear {
        doc_id: id.to_string(),
        division: record.scope.division(),
        year: year.year,
        version: year.version.clone(),
        official: year.status == yizhan_sync::domain::calendar::YearStatus::Official,
        digest: digest(&text),
        text,
    })
}

/// Derives again, with `calendars`, every case whose dates may count on a year from
/// `from_year` on: the open ones, and the closed ones with a deadline in those years.
/// Returns how many.
pub(super) fn rederive_cases(
    conn: &Connection,
    calendars: &Calendars,
    from_year: i32,
) -> Result<u64, StoreError> {
    let since = format!("{from_year:04}-01-01");
    let mut stmt = conn.prepare(
        "SELECT c.id, d.bytes, d.upto FROM cases c JOIN documents d ON d.id = c.id
         WHERE c.closed_on IS NULL OR c.legal_due >= ?1 OR c.committed_due >= ?1 OR c.rectify_due >= ?1",
    )?;
    let mut rows = stmt.query([&since])?;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let (id, bytes, upto): (String, Vec<u8>, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let corrupt = |message: String| StoreError::Corrupt {
            id: id.clone(),
            message,
        };
        let doc_id = DocId::parse(&id).ok_or_else(|| corrupt("invalid id".into()))?;
        let (document, _) = super::snapshot::load_from(conn, &id, &bytes, upto)?;
        let case_doc = doc::read_case(&document).map_err(|e| corrupt(e.to_string()))?;
        let calendar = calendars.for_division(&case_doc.scope.division());
        let (case_row, events) = doc::case_rows(&doc_id, &case_doc, &calendar);
        store_case_rows(conn, "", &case_row, &events, &calendar)?;
        count += 1;
    }
    Ok(count)
}

impl super::Store {
    /// Publishes a calendar year (one year file, the format of the shipped
    /// `calendars/cn-2026.txt`) as this hall's document for that year, or a new text for
    /// a year it published before. It travels down with the catalog; here and at every
    /// node below, the deadlines that count on that year are derived again.
    pub async fn publish_calendar_year(
        &self,
        text: String,
        now_ms: u64,
    ) -> Result<PublishedYear, StoreError> {
        let calendar = Calendar::from_files(&[&text]).map_err(|e| {
            StoreError::Invalid(Words::new("calendar_unreadable").text("detail", e.to_string()))
        })?;
        let years: Vec<i32> = calendar.years().map(|y| y.year).collect();
        let [year] = years[..] else {
            return Err(StoreError::Invalid(
                Words::new("calendar_one_year").text("value", years.len().to_string()),
            ));
        };
        self.write(move |ctx| {
            let scope = yizhan_sync::ids::Scope::catalog(&ctx.division);
            if !ctx.identity.record.role.is_hall()
                || !yizhan_sync::auth::may_write(&ctx.identity.record, &scope)
            {
                return Err(StoreError::Forbidden(Words::new("calendar_not_author")));
            }
            let id = DocId::parse(&format!("y-{}-{year}", ctx.division))
                .ok_or_else(|| StoreError::Internal("calendar document id".into()))?;
            let origin = ctx.origin;
            match ctx.take_doc(&id)? {
                Some((mut document, since)) => {
                    let held = doc::read_record(&document).map_err(|e| StoreError::Corrupt {
                        id: id.to_string(),
                        message: e.to_string(),
                    })?;
                    if held.field("text") == text {
                        ctx.put_back(id.clone(), document, since);
                        return Err(StoreError::Conflict(
                            Words::new("calendar_unchanged").text("value", year.to_string()),
                        ));
                    }
                    doc::put_record_field(&mut document, &origin, "text", &text, now_ms)
                        .map_err(|e| StoreError::Internal(e.to_string()))?;
                    ctx.put_back(id.clone(), document, since);
                }
                None => {
                    let document = doc::new_record(
                        &origin,
                        &scope,
                        yizhan_sync::ids::DocKind::Calendar,
                        &[("text", text)],
                        now_ms,
                    )
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                    ctx.insert_doc(id.clone(), document);
                }
            }
            ctx.persist_local_change(&id, yizhan_sync::ids::DocKind::Calendar, &scope, now_ms)?;
            ctx.calendars_changed()?;
            ctx.calendar_years()
                .into_iter()
                .find(|y| y.doc_id == id.as_str())
                .ok_or_else(|| StoreError::Internal("the published year is not held".into()))
        })
        .await
    }
}

#[cfg(test)]
pub(crate) const OFFICIAL_2027: &str = "calendar cn-mainland\nyear 2027\nversion 2027.1\nstatus official\nsource 国务院办公厅关于2027年部分节假日安排的通知\noff 2027-01-01 元旦\nwork 2027-02-20 春节调休上班\noff 2027-02-05 2027-02-11 春节\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// Start-up must not grow with the cases held: the years are found by an index seek.
    #[test]
    fn the_years_are_found_without_reading_every_document() {
        assert_eq!(yizhan_sync::ids::DocKind::Calendar.id_prefix(), "y");
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("y.db")).unwrap();
        crate::store::migrations::run(&mut conn, &dir.path().join("y.db")).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {LOAD_YEARS}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.starts_with("SEARCH documents")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|p| p.starts_with("SCAN documents")),
            "{plan:?}"
        );
    }

    #[test]
    fn the_highest_hall_containing_the_case_decides_a_year() {
        let year = |division: &str, text: &str| PublishedYear {
            doc_id: format!("y-{division}-2027"),
            division: DivisionCode::parse(division).unwrap(),
            year: 2027,
            version: "2027.1".into(),
            official: true,
            digest: digest(text),
            text: text.into(),
        };
        let city = OFFICIAL_2027;
        let district = city.replace("2027.1", "2027.2");
        let calendars = Calendars {
            years: vec![year("440304", &district), year("440300", city)],
            built: Mutex::default(),
        };
        let station = DivisionCode::parse("440304001001").unwrap();
        assert!(
            calendars
                .for_division(&station)
                .version()
                .contains("2027.1")
        );
        let elsewhere = DivisionCode::parse("440305001001").unwrap();
        assert!(
            calendars
                .for_division(&elsewhere)
                .version()
                .contains("2027.1")
        );
        let only_district = Calendars {
            years: vec![year("440304", &district)],
            built: Mutex::default(),
        };
        assert!(
            only_district
                .for_division(&station)
                .version()
                .contains("2027.2")
        );
        assert_eq!(
            only_district.for_division(&elsewhere).version(),
            Calendar::china().version(),
            "another district's year is not this case's"
        );
        assert_eq!(only_district.first_change(&calendars), Some(2027));
        assert_eq!(calendars.first_change(&calendars), None);
    }
}
