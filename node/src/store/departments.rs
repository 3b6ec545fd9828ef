//! Departments (进驻部门) and their approval seals (审批专用章, SZDB/Z 176 §9.6): record
//! documents in their hall's catalog scope, so each reaches every node below the hall, and
//! derived into `departments` by one rule wherever held ([`store_department_row`]). A
//! hall's admin creates one (a seal key made here, its private half in the data dir's
//! `seals.key` before the certificate commits, the public half certified by the hall's
//! node key) and rotates its seal (a new key number; the older keys stay certified, so
//! notices sealed with them still verify).

use ed25519_dalek::Signer;
use rusqlite::{Connection, OptionalExtension, params};
use yizhan_sync::doc::{self, RecordDoc};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::department::{
    self, Department, DepartmentError, NoticeSeal, SealCertificate, certificate_message,
};
use yizhan_sync::engine::may_manage_departments;
use yizhan_sync::ids::{DocId, DocKind, Scope};

use super::{Staff, Store, StoreError};
use crate::i18n::Words;
use crate::seals::SealKeys;

impl Store {
    /// The seal keys of this node's data dir (beside its database).
    pub fn seal_keys(&self) -> SealKeys {
        SealKeys::in_dir(
            self.inner
                .path
                .parent()
                .unwrap_or_else(|| std::path::Path::new(".")),
        )
    }

    /// Creates a department at this hall as `staff`, with its first seal key.
    pub async fn create_department(
        &self,
        code: String,
        name: String,
        staff: Staff,
        now_ms: u64,
    ) -> Result<Department, StoreError> {
        let keys = self.seal_keys();
        self.write(move |ctx| {
            let own = ctx.identity.record.clone();
            may_manage_departments(&own, staff.role).map_err(forbidden)?;
            let id = department::doc_id(&own.division, &code)
                .ok_or_else(|| StoreError::Invalid(Words::from(&DepartmentError::Code)))?;
            department::check_name(&name).map_err(invalid)?;
            let taken: Option<String> = ctx
                .conn
                .query_row(
                    "SELECT code FROM departments WHERE id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            let name_taken: Option<String> = ctx
                .conn
                .query_row(
                    "SELECT code FROM departments WHERE division = ?1 AND name = ?2",
                    params![own.division.as_str(), &name],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(code) = taken.or(name_taken) {
                return Err(StoreError::Conflict(Words::from(
                    &DepartmentError::Exists { code },
                )));
            }
            let seal = SealKeys::generate();
            keys.add(id.as_str(), 1, &seal).map_err(internal)?;
            let first = certify(ctx, id.as_str(), &name, &seal, 1, now_ms);
            let department = Department {
                code,
                name,
                hall: own.node,
                division: own.division.clone(),
                role: staff.role.as_str().to_string(),
                seals: vec![first],
            };
            // The rule every receiver applies, here first.
            department
                .check(&own.public_key)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let body = body_of(&department)?;
            let scope = Scope::catalog(&own.division);
            let document = doc::new_record(
                &ctx.origin,
                &scope,
                DocKind::Department,
                &[("body", body.clone())],
                now_ms,
            )
            .map_err(|e| StoreError::Internal(e.to_string()))?;
            ctx.insert_doc(id.clone(), document);
            ctx.persist_local_change(&id, DocKind::Department, &scope, now_ms)?;
            store_department_row(&ctx.conn, "", &id, &department, &body)?;
            Ok(department)
        })
        .await
    }

    /// Gives the department `code` of this hall a new seal key, numbered after the last;
    /// notices sealed with the older keys still verify.
    pub async fn rotate_department_seal(
        &self,
        code: String,
        staff: Staff,
        now_ms: u64,
    ) -> Result<Department, StoreError> {
        let keys = self.seal_keys();
        self.write(move |ctx| {
            let own = ctx.identity.record.clone();
            may_manage_departments(&own, staff.role).map_err(forbidden)?;
            let unknown = || StoreError::NotFound {
                what: format!("department {code}"),
            };
            let id = department::doc_id(&own.division, &code).ok_or_else(unknown)?;
            let Some((mut document, since)) = ctx.take_doc(&id)? else {
                return Err(unknown());
            };
            let before = read_department(&id, &document);
            let mut department = match before {
                Ok(d) => d,
                Err(e) => {
                    ctx.put_back(id.clone(), document, since);
                    return Err(e);
                }
            };
            let key_no = department.seals.len() as u32 + 1;
            let seal = SealKeys::generate();
            let certified = keys
                .add(id.as_str(), key_no, &seal)
                .map_err(internal)
                .map(|()| certify(ctx, id.as_str(), &department.name, &seal, key_no, now_ms));
            let certificate = match certified {
                Ok(c) => c,
                Err(e) => {
                    ctx.put_back(id.clone(), document, since);
                    return Err(e);
                }
            };
            department.seals.push(certificate);
            department.role = staff.role.as_str().to_string();
            let body = body_of(&department)?;
            doc::put_record_field(&mut document, &ctx.origin, "body", &body, now_ms)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            ctx.put_back(id.clone(), document, since);
            let scope = Scope::catalog(&own.division);
            ctx.persist_local_change(&id, DocKind::Department, &scope, now_ms)?;
            store_department_row(&ctx.conn, "", &id, &department, &body)?;
            Ok(department)
        })
        .await
    }

    /// The departments this node holds: its own hall's and those of the halls above (and,
    /// at a hall, of the halls below), by division and code.
    pub async fn departments(&self) -> Result<Vec<Department>, StoreError> {
        self.read(|conn| {
            let rows: Vec<(String, String)> = conn
                .prepare_cached("SELECT id, body_json FROM departments ORDER BY division, code")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(id, body)| parse_department(&id, &body))
                .collect()
        })
        .await
    }

    /// The department `code` as this node's division sees it: its own hall's, else the
    /// nearest hall's above, else (at a hall) the first of a hall below.
    pub async fn department(&self, code: String) -> Result<Option<Department>, StoreError> {
        let division = self.inner.division.clone();
        self.read(move |conn| {
            if let Some(found) = department_for(conn, &code, &division)? {
                return Ok(Some(found));
            }
            let below: Option<(String, String)> = conn
                .prepare_cached(
                    "SELECT id, body_json FROM departments WHERE code = ?1 COLLATE NOCASE
                     ORDER BY length(division), division LIMIT 1",
                )?
                .query_row([&code], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            below
                .map(|(id, body)| parse_department(&id, &body))
                .transpose()
        })
        .await
    }

    /// The current seal of this hall's department `code`: what a notice carries of it and
    /// the private key that signs. A key the data dir lost is a failure of the node, named
    /// so a technician restores `seals.key` from a backup.
    pub(super) async fn current_seal(
        &self,
        code: String,
    ) -> Result<(NoticeSeal, ed25519_dalek::SigningKey), StoreError> {
        let own = self.own_record().clone();
        let keys = self.seal_keys();
        let department = self
            .read(move |conn| department_for(conn, &code, &own.division))
            .await?
            .filter(|d| d.hall == self.own_record().node)
            .ok_or_else(|| StoreError::NotFound {
                what: "the deciding department at this hall".into(),
            })?;
        let certificate = department
            .current_seal()
            .cloned()
            .ok_or_else(|| StoreError::Internal("a department without a seal".into()))?;
        let key = keys
            .get(&certificate.department, certificate.key_no)
            .map_err(internal)?
            .filter(|k| k.verifying_key().to_bytes() == certificate.public_key)
            .ok_or_else(|| {
                StoreError::Internal(format!(
                    "seal key {} of {} is not in {}; restore it from a backup",
                    certificate.key_no,
                    certificate.department,
                    crate::seals::FILE
                ))
            })?;
        Ok((
            NoticeSeal {
                department: department.code,
                certificate,
            },
            key,
        ))
    }

    /// The seal certificates of the departments of the hall `hall` (32 hex digits) this
    /// node holds: what checks a printed code sealed by one of them.
    pub async fn seals_of_hall(&self, hall: String) -> Result<Vec<SealCertificate>, StoreError> {
        self.read(move |conn| {
            let rows: Vec<(String, String)> = conn
                .prepare_cached("SELECT id, body_json FROM departments WHERE hall = ?1")?
                .query_map([hall.to_ascii_lowercase()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut seals = Vec::new();
            for (id, body) in rows {
                seals.extend(parse_department(&id, &body)?.seals);
            }
            Ok(seals)
        })
        .await
    }
}

/// The department `code` seen from `division`: the one of the nearest hall at or above it.
pub(super) fn department_for(
    conn: &Connection,
    code: &str,
    division: &DivisionCode,
) -> Result<Option<Department>, StoreError> {
    let rows: Vec<(String, String, String)> = conn
        .prepare_cached(
            "SELECT id, division, body_json FROM departments WHERE code = ?1 COLLATE NOCASE",
        )?
        .query_map([code], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let nearest = rows
        .into_iter()
        .filter(|(_, d, _)| DivisionCode::parse(d).is_ok_and(|hall| division.is_within(&hall)))
        .max_by_key(|(_, d, _)| d.len());
    nearest
        .map(|(id, _, body)| parse_department(&id, &body))
        .transpose()
}

/// The hall's certificate of a seal key, signed with this node's key.
fn certify(
    ctx: &super::writer::WriteCtx,
    id: &str,
    name: &str,
    seal: &ed25519_dalek::SigningKey,
    key_no: u32,
    now_ms: u64,
) -> SealCertificate {
    let hall = ctx.identity.record.node;
    let public_key = seal.verifying_key().to_bytes();
    let message = certificate_message(id, name, &hall, &public_key, key_no, now_ms);
    SealCertificate {
        department: id.to_string(),
        name: name.to_string(),
        hall,
        public_key,
        key_no,
        valid_from_ms: now_ms,
        signature: ctx.identity.key.sign(&message).to_bytes(),
    }
}

fn body_of(department: &Department) -> Result<String, StoreError> {
    serde_json::to_string(department).map_err(|e| StoreError::Internal(e.to_string()))
}

fn read_department(id: &DocId, document: &automerge::Automerge) -> Result<Department, StoreError> {
    let record = doc::read_record(document).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        message: e.to_string(),
    })?;
    parse_department(id.as_str(), record.field("body"))
}

fn parse_department(id: &str, body: &str) -> Result<Department, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        message: format!("the department does not read: {e}"),
    })
}

fn forbidden(e: DepartmentError) -> StoreError {
    StoreError::Forbidden(Words::from(&e))
}

fn invalid(e: DepartmentError) -> StoreError {
    StoreError::Invalid(Words::from(&e))
}

fn internal(e: crate::seals::SealKeyError) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// Writes the row of a department document into `{prefix}departments` (`rebuilt_` while
/// rebuilding), the same at every node; a republished one replaces its row.
pub(super) fn department_record_row(
    conn: &Connection,
    prefix: &str,
    id: &DocId,
    record: &RecordDoc,
) -> Result<(), StoreError> {
    let body = record.field("body");
    let department = parse_department(id.as_str(), body)?;
    store_department_row(conn, prefix, id, &department, body)
}

pub(super) fn store_department_row(
    conn: &Connection,
    prefix: &str,
    id: &DocId,
    department: &Department,
    body: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {prefix}departments (id, division, code, name, hall, body_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    ))?
    .execute(params![
        id.as_str(),
        department.division.as_str(),
        department.code,
        department.name,
        department.hall.to_hex(),
        body,
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use yizhan_sync::auth::NodeRole;

    use super::*;
    use crate::store::Role;
    use crate::store::tests::{at, identity, options};

    fn admin() -> Staff {
        Staff {
            username: "admin".into(),
            counter: String::new(),
            role: Role::Admin,
        }
    }

    fn hall() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options();
        opts.identity = identity(9, NodeRole::Subdistrict, "440399001");
        let store = Store::open(&dir.path().join("yizhan.db"), opts).unwrap();
        (dir, store)
    }

    /// A hall's admin creates a department: its seal key lands in the data dir's key file
    /// (never in the database), its certificate holds under the hall's key, a rotation adds
    /// key 2 and keeps key 1, and a rebuild derives the same row.
    #[tokio::test]
    async fn a_halls_admin_creates_a_department_and_rotates_its_seal() {
        let (dir, store) = hall();
        let hall_key = store.own_record().public_key;
        let made = store
            .create_department("MZJ".into(), "区民政局".into(), admin(), at("2026-03-02"))
            .await
            .unwrap();
        assert_eq!(made.check(&hall_key), Ok(()));
        let id = made.doc_id().unwrap();
        let key = store
            .seal_keys()
            .get(id.as_str(), 1)
            .unwrap()
            .expect("the seal key is kept in the data dir");
        assert_eq!(key.verifying_key().to_bytes(), made.seals[0].public_key);
        assert!(dir.path().join(crate::seals::FILE).exists());
        // The private key is in no table.
        let secret = yizhan_sync::ids::hex(key.as_bytes());
        let leaked: i64 = store
            .read(move |conn| {
                Ok(conn.query_row(
                    "SELECT count(*) FROM departments WHERE body_json LIKE '%' || ?1 || '%'",
                    [&secret],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(leaked, 0);

        let rotated = store
            .rotate_department_seal("mzj".into(), admin(), at("2026-03-03"))
            .await
            .unwrap();
        assert_eq!(rotated.seals.len(), 2);
        assert_eq!(rotated.continues(&made), Ok(()));
        assert_eq!(rotated.check(&hall_key), Ok(()));
        assert!(store.seal_keys().get(id.as_str(), 2).unwrap().is_some());
        assert_eq!(
            store.department("MZJ".into()).await.unwrap(),
            Some(rotated.clone())
        );
        assert_eq!(store.departments().await.unwrap(), vec![rotated.clone()]);
        assert_eq!(
            store
                .seals_of_hall(store.own_record().node.to_hex())
                .await
                .unwrap(),
            rotated.seals
        );
        let report = store.rebuild().await.unwrap();
        assert_eq!(report.rows_differing, 0, "{report:?}");
        assert_eq!(store.departments().await.unwrap(), vec![rotated]);
    }

    /// Refusals, each a code: not an admin, not a hall, a bad code or name, a code or
    /// name taken, an unknown department to rotate.
    #[tokio::test]
    async fn departments_are_refused_with_codes() {
        let (_dir, store) = hall();
        store
            .create_department("MZJ".into(), "区民政局".into(), admin(), at("2026-03-02"))
            .await
            .unwrap();
        let lead = Staff {
            role: Role::Lead,
            ..admin()
        };
        let code_of = |e: StoreError| match e {
            StoreError::Forbidden(w) | StoreError::Invalid(w) | StoreError::Conflict(w) => {
                w.code.to_string()
            }
            StoreError::NotFound { .. } => "not_found".to_string(),
            other => panic!("{other:?}"),
        };
        for (code, name, staff, expected) in [
            ("RSJ", "区人社局", lead.clone(), "departments_admins_only"),
            ("a b", "区人社局", admin(), "department_code"),
            ("RSJ", "", admin(), "department_name"),
            ("RSJ", "区\u{202e}人社局", admin(), "department_name"),
            ("mzj", "区人社局", admin(), "department_exists"),
            ("RSJ", "区民政局", admin(), "department_exists"),
        ] {
            let err = store
                .create_department(code.into(), name.into(), staff, at("2026-03-02"))
                .await
                .unwrap_err();
            assert_eq!(code_of(err), expected, "{code} {name}");
        }
        let err = store
            .rotate_department_seal("RSJ".into(), admin(), at("2026-03-02"))
            .await
            .unwrap_err();
        assert_eq!(code_of(err), "not_found");
        let err = store
            .rotate_department_seal("MZJ".into(), lead, at("2026-03-02"))
            .await
            .unwrap_err();
        assert_eq!(code_of(err), "departments_admins_only");
        // A station has no departments of its own.
        let (_dir, station) = crate::store::tests::open_temp();
        let err = station
            .create_department("MZJ".into(), "民政局".into(), admin(), at("2026-03-02"))
            .await
            .unwrap_err();
        assert_eq!(code_of(err), "departments_halls_only");
    }
}
