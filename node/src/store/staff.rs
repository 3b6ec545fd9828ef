//! Staff accounts across the tree (SZDB/Z 176 §8.6.3): a hall's admin writes them as
//! documents of the hall's catalog scope (`domain::staff`), and every node that holds one
//! derives its row in `staff_accounts` by one rule (`yizhan rebuild` gives it again).
//!
//! **Which account a name signs in to.** A node-local account (`users`) and the tree's
//! accounts share one namespace at a node, and neither ever takes the other's place:
//!
//! * a name the tree uses here is reserved: creating a local account (or a tree account
//!   at a hall) under it is refused (`staff_name_taken`), and so is a hall's new account
//!   under a name a hall above or below it (whose accounts reach it) already uses;
//! * a tree account that arrives under a name a local account already has here does not
//!   sign in here (the local account keeps it); the account is listed as a clash, on the
//!   admin page and in the API, and a warning names its document;
//! * two halls' accounts under one name that both apply here (written while the halls
//!   had not yet heard of each other's) sign in as neither, and are listed as a clash,
//!   until one hall disables or restricts its account.
//!
//! A tree account signs in only at the nodes its places name (`StaffAccount::signs_in_at`).
//! Its number in sessions is negative and fixed by its document id, so a session or token
//! of one never meets a local account's; sessions check the account on every request
//! (`Store::user_standing`), so disabling it or resetting its password at the hall ends
//! them at each node as soon as the change is applied there.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use yizhan_sync::doc;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::staff::{StaffAccount, StaffError, chief_clash};
use yizhan_sync::engine::may_manage_staff;
use yizhan_sync::ids::{DocId, DocKind, Scope};

use super::accounts::{Role, UserRecord};
use super::{Staff, Store, StoreError};
use crate::i18n::Words;

/// A tree account held here, as lists show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeAccount {
    /// Its number in sessions (negative).
    pub id: i64,
    pub doc_id: String,
    /// The division of the hall that wrote it.
    pub hall_division: String,
    /// Whether the hall that wrote it is this node.
    pub own: bool,
    pub account: StaffAccount,
    pub standing: Standing,
}

/// Whether a tree account signs in at this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// It signs in here (unless disabled).
    Here,
    /// Its places do not include this node.
    NotHere,
    /// A local account here has its name; the local one signs in.
    ShadowedByLocal,
    /// Another hall's account has its name here; neither signs in.
    Clash,
}

impl Standing {
    /// A stable name, for the API and the pages' words (`staff.standing.*`).
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Here => "here",
            Standing::NotHere => "not_here",
            Standing::ShadowedByLocal => "shadowed_by_local",
            Standing::Clash => "clash",
        }
    }
}

/// A tree account to create at this hall; the password is already hashed.
#[derive(Clone, Debug)]
pub struct NewStaff {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub counter: String,
    pub sign_in_at: Vec<DivisionCode>,
    pub password_hash: String,
    pub stand_in: Option<String>,
    pub chief: bool,
}

/// What to change of a tree account; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct StaffPatch {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    pub counter: Option<String>,
    pub sign_in_at: Option<Vec<DivisionCode>>,
    pub disabled: Option<bool>,
    /// A new password's hash: a reset, which bumps the generation.
    pub password_hash: Option<String>,
    /// `Some(None)` removes the stand-in.
    pub stand_in: Option<Option<String>>,
    pub chief: Option<bool>,
}

/// How an account's checks are worded, as the store answers them.
pub fn staff_refused(e: StaffError) -> StoreError {
    match e {
        StaffError::NotAnAdminAtAHall => StoreError::Forbidden(Words::from(&e)),
        StaffError::Control(refused) => {
            StoreError::Case(yizhan_sync::domain::case::CaseError::Text(refused))
        }
        _ => StoreError::Invalid(Words::from(&e)),
    }
}

impl Store {
    /// Writes a new tree account as `by` at this hall: a document of the hall's catalog
    /// scope, with its row, in one transaction.
    pub async fn create_staff(
        &self,
        new: NewStaff,
        by: Staff,
        now_ms: u64,
    ) -> Result<TreeAccount, StoreError> {
        self.write(move |ctx| {
            let own = ctx.identity.record.clone();
            may_manage_staff(&own, by.role).map_err(staff_refused)?;
            let account = StaffAccount {
                username: new.username,
                display_name: new.display_name,
                role: new.role.as_str().to_string(),
                counter: new.counter,
                sign_in_at: new.sign_in_at,
                verifier: new.password_hash,
                disabled: false,
                generation: 1,
                stand_in: new.stand_in,
                chief: new.chief,
                hall: own.node,
                by: by.username,
                by_role: by.role.as_str().to_string(),
            };
            account.validate(&own.division).map_err(staff_refused)?;
            name_free(&ctx.conn, &own.division, &account.username)?;
            areas_free(&ctx.conn, &own.division, &account.username)?;
            check_chief(&ctx.conn, &own.division, &account)?;
            check_stand_in(&ctx.conn, &own.division, &account)?;
            let id = StaffAccount::doc_id_for(&own.division, &account.username)
                .ok_or_else(|| StoreError::Internal("staff document id".into()))?;
            if ctx.take_doc(&id)?.is_some() {
                return Err(StoreError::Conflict(
                    Words::new("user_exists").text("user", account.username.clone()),
                ));
            }
            let scope = Scope::catalog(&own.division);
            let text = to_json(&account)?;
            let document = doc::new_record(
                &ctx.origin,
                &scope,
                DocKind::Staff,
                &[("account", text.clone())],
                now_ms,
            )
            .map_err(|e| StoreError::Internal(e.to_string()))?;
            ctx.insert_doc(id.clone(), document);
            ctx.persist_local_change(&id, DocKind::Staff, &scope, now_ms)?;
            store_staff_row(&ctx.conn, "", &id, &scope, &text)?;
            tree_account_in(&ctx.conn, &own.division, Some(&own.node), &id)
        })
        .await
    }

    /// Writes the next version of this hall's account `username` as `by`: disabling it or
    /// resetting its password ends its sessions and tokens here at once and, once synced,
    /// at every node below.
    pub async fn update_staff(
        &self,
        username: String,
        patch: StaffPatch,
        by: Staff,
        now_ms: u64,
    ) -> Result<TreeAccount, StoreError> {
        self.write(move |ctx| {
            let own = ctx.identity.record.clone();
            may_manage_staff(&own, by.role).map_err(staff_refused)?;
            let not_found = || StoreError::NotFound {
                what: format!("user {username}"),
            };
            let id = StaffAccount::doc_id_for(&own.division, &username).ok_or_else(not_found)?;
            let Some((mut document, since)) = ctx.take_doc(&id)? else {
                return Err(not_found());
            };
            let held: Option<StaffAccount> = doc::read_record(&document)
                .ok()
                .and_then(|r| serde_json::from_str(r.field("account")).ok());
            let Some(held) = held else {
                ctx.put_back(id.clone(), document, since);
                return Err(StoreError::Corrupt {
                    id: id.to_string(),
                    message: "the account does not read".into(),
                });
            };
            let mut next = held.clone();
            if let Some(v) = patch.display_name {
                next.display_name = v;
            }
            if let Some(v) = patch.role {
                next.role = v.as_str().to_string();
            }
            if let Some(v) = patch.counter {
                next.counter = v;
            }
            if let Some(v) = patch.sign_in_at {
                next.sign_in_at = v;
            }
            if let Some(v) = patch.disabled {
                next.disabled = v;
            }
            if let Some(v) = patch.password_hash {
                next.verifier = v;
                next.generation = held.generation.saturating_add(1);
            }
            if let Some(v) = patch.stand_in {
                next.stand_in = v;
            }
            if let Some(v) = patch.chief {
                next.chief = v;
            }
            next.by = by.username;
            next.by_role = by.role.as_str().to_string();
            let checked = next
                .validate(&own.division)
                .and_then(|()| next.may_follow(&held))
                .map_err(staff_refused)
                .and_then(|()| check_chief(&ctx.conn, &own.division, &next))
                .and_then(|()| check_stand_in(&ctx.conn, &own.division, &next));
            if let Err(e) = checked {
                ctx.put_back(id.clone(), document, since);
                return Err(e);
            }
            let text = to_json(&next)?;
            doc::put_record_field(&mut document, &ctx.origin, "account", &text, now_ms)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            ctx.put_back(id.clone(), document, since);
            let scope = Scope::catalog(&own.division);
            ctx.persist_local_change(&id, DocKind::Staff, &scope, now_ms)?;
            store_staff_row(&ctx.conn, "", &id, &scope, &text)?;
            tree_account_in(&ctx.conn, &own.division, Some(&own.node), &id)
        })
        .await
    }

    /// Every tree account held here (this hall's own, and those of the halls above),
    /// with whether it signs in here.
    pub async fn tree_accounts(&self) -> Result<Vec<TreeAccount>, StoreError> {
        let own = self.own_record().clone();
        self.read(move |conn| {
            let ids: Vec<String> = conn
                .prepare_cached("SELECT doc_id FROM staff_accounts ORDER BY username, doc_id")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.iter()
                .filter_map(|id| DocId::parse(id))
                .map(|id| tree_account_in(conn, &own.division, Some(&own.node), &id))
                .collect()
        })
        .await
    }

    /// The tree account `username` as this node sees it: this hall's own if it wrote
    /// one, else the one that signs in here, else any held.
    pub async fn tree_account(&self, username: String) -> Result<Option<TreeAccount>, StoreError> {
        let all = self.tree_accounts().await?;
        let mut named: Vec<TreeAccount> = all
            .into_iter()
            .filter(|a| a.account.username == username)
            .collect();
        named.sort_by_key(|a| (!a.own, a.standing != Standing::Here));
        Ok(named.into_iter().next())
    }
}

fn to_json(account: &StaffAccount) -> Result<String, StoreError> {
    serde_json::to_string(account).map_err(|e| StoreError::Internal(e.to_string()))
}

/// The number sessions know a tree account by: negative, from its document id.
fn number_of(doc_id: &str) -> i64 {
    let digest = Sha256::digest(doc_id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    -((u64::from_be_bytes(bytes) >> 2) as i64).max(1)
}

/// Writes the row of a staff document into `{prefix}staff_accounts` (`rebuilt_` while
/// rebuilding), replacing the one of an earlier version: the same at every node.
pub(super) fn store_staff_row(
    conn: &Connection,
    prefix: &str,
    id: &DocId,
    scope: &Scope,
    text: &str,
) -> Result<(), StoreError> {
    let account: StaffAccount = serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        message: format!("the account does not read: {e}"),
    })?;
    conn.prepare_cached(&format!(
        "INSERT INTO {prefix}staff_accounts (doc_id, id, username, hall_division, account_json)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (doc_id) DO UPDATE SET username = excluded.username,
             account_json = excluded.account_json"
    ))?
    .execute(params![
        id.as_str(),
        number_of(id.as_str()),
        account.username,
        scope.division().to_string(),
        text,
    ])?;
    Ok(())
}

/// A received staff document's row, with a warning when its name clashes here (the
/// account is then listed as a clash and does not sign in here).
pub(super) fn received_staff_row(
    conn: &Connection,
    own: &DivisionCode,
    id: &DocId,
    record: &yizhan_sync::doc::RecordDoc,
) -> Result<(), StoreError> {
    store_staff_row(conn, "", id, &record.scope, record.field("account"))?;
    let account = tree_account_in(conn, own, None, id)?;
    if matches!(
        account.standing,
        Standing::ShadowedByLocal | Standing::Clash
    ) {
        tracing::warn!(
            doc.id = %id,
            standing = account.standing.as_str(),
            "a staff account of the tree has a name already used here; it does not sign in here"
        );
    }
    Ok(())
}

/// The account and standing of a staff row.
fn tree_account_in(
    conn: &Connection,
    own: &DivisionCode,
    own_node: Option<&yizhan_sync::ids::NodeId>,
    id: &DocId,
) -> Result<TreeAccount, StoreError> {
    let (number, hall, text): (i64, String, String) = conn
        .prepare_cached(
            "SELECT id, hall_division, account_json FROM staff_accounts WHERE doc_id = ?1",
        )?
        .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("account {id}"),
        })?;
    let account = parse(id.as_str(), &text)?;
    let hall_code = DivisionCode::parse(&hall).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        message: e.to_string(),
    })?;
    let standing = standing_of(conn, own, &hall_code, id.as_str(), &account)?;
    Ok(TreeAccount {
        id: number,
        doc_id: id.to_string(),
        own: own_node == Some(&account.hall),
        hall_division: hall,
        account,
        standing,
    })
}

fn parse(id: &str, text: &str) -> Result<StaffAccount, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        message: format!("the account does not read: {e}"),
    })
}

/// The rule of the module's doc: whether a tree account signs in here.
fn standing_of(
    conn: &Connection,
    own: &DivisionCode,
    hall: &DivisionCode,
    doc_id: &str,
    account: &StaffAccount,
) -> Result<Standing, StoreError> {
    if !account.signs_in_at(hall, own) {
        return Ok(Standing::NotHere);
    }
    if local_exists(conn, &account.username)? {
        return Ok(Standing::ShadowedByLocal);
    }
    let others = applying(conn, own, &account.username)?;
    if others.iter().any(|(other, _)| other != doc_id) {
        return Ok(Standing::Clash);
    }
    Ok(Standing::Here)
}

fn local_exists(conn: &Connection, username: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)")?
        .query_row([username], |r| r.get(0))?)
}

/// A tree account that signs in here: its document id, number and account.
type Applying = (String, (i64, StaffAccount));

/// The tree accounts named `username` that sign in at a node of `own`.
fn applying(
    conn: &Connection,
    own: &DivisionCode,
    username: &str,
) -> Result<Vec<Applying>, StoreError> {
    let rows: Vec<(String, i64, String, String)> = conn
        .prepare_cached(
            "SELECT doc_id, id, hall_division, account_json FROM staff_accounts WHERE username = ?1",
        )?
        .query_map([username], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (doc_id, number, hall, text) in rows {
        let account = parse(&doc_id, &text)?;
        if DivisionCode::parse(&hall).is_ok_and(|hall| account.signs_in_at(&hall, own)) {
            out.push((doc_id, (number, account)));
        }
    }
    Ok(out)
}

/// Refuses a name the tree (or a local account) already uses here.
pub(super) fn name_free(
    conn: &Connection,
    own: &DivisionCode,
    username: &str,
) -> Result<(), StoreError> {
    if local_exists(conn, username)? || !applying(conn, own, username)?.is_empty() {
        return Err(StoreError::Conflict(
            Words::new("staff_name_taken").text("user", username),
        ));
    }
    Ok(())
}

/// Refuses a name a hall above or below (whose accounts reach this hall, catalogs travel
/// both ways) already gives an account: their areas overlap, so the two would clash at
/// the nodes of the smaller one.
fn areas_free(conn: &Connection, own: &DivisionCode, username: &str) -> Result<(), StoreError> {
    let halls: Vec<String> = conn
        .prepare_cached("SELECT hall_division FROM staff_accounts WHERE username = ?1")?
        .query_map([username], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let overlaps = halls
        .iter()
        .filter_map(|h| DivisionCode::parse(h).ok())
        .any(|hall| hall != *own && (hall.is_within(own) || own.is_within(&hall)));
    if overlaps {
        return Err(StoreError::Conflict(
            Words::new("staff_name_taken").text("user", username),
        ));
    }
    Ok(())
}

/// A stand-in (B角, §7.4.1.3) is another account of the same hall.
fn check_stand_in(
    conn: &Connection,
    hall: &DivisionCode,
    account: &StaffAccount,
) -> Result<(), StoreError> {
    let Some(stand_in) = &account.stand_in else {
        return Ok(());
    };
    let known: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM staff_accounts WHERE hall_division = ?1 AND username = ?2)",
        )?
        .query_row(params![hall.as_str(), stand_in], |r| r.get(0))?;
    if !known {
        return Err(StoreError::Invalid(
            Words::new("staff_stand_in_unknown").text("user", stand_in.clone()),
        ));
    }
    Ok(())
}

/// One chief representative per department per hall (§7.5).
fn check_chief(
    conn: &Connection,
    hall: &DivisionCode,
    account: &StaffAccount,
) -> Result<(), StoreError> {
    if !account.chief {
        return Ok(());
    }
    let texts: Vec<(String, String)> = conn
        .prepare_cached("SELECT doc_id, account_json FROM staff_accounts WHERE hall_division = ?1")?
        .query_map([hall.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let others = texts
        .iter()
        .map(|(id, text)| parse(id, text))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(chief) = chief_clash(account, &others) {
        return Err(StoreError::Conflict(
            Words::new("staff_chief_taken")
                .text("user", chief.username.clone())
                .text("name", account.counter.clone()),
        ));
    }
    Ok(())
}

/// The staff members `username` stands in for (their accounts name it as their B角),
/// for `engine::stand_in_for`.
pub(super) fn stands_in_for(conn: &Connection, username: &str) -> Result<Vec<String>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT username FROM staff_accounts
             WHERE json_extract(account_json, '$.stand_in') = ?1 ORDER BY username",
        )?
        .query_map([username], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Whether `username` is, here, the tree account of a department's chief representative
/// (首席代表, §7.5) and not disabled: read at each act, so a flag taken away at the hall
/// counts from the next sync on. A local account never is one.
pub(super) fn is_chief(
    conn: &Connection,
    own: &DivisionCode,
    username: &str,
) -> Result<bool, StoreError> {
    if local_exists(conn, username)? {
        return Ok(false);
    }
    let found = applying(conn, own, username)?;
    Ok(matches!(found.as_slice(), [(_, (_, account))] if account.chief && !account.disabled))
}

/// A tree account signing in by name here: `None` when a local account has the name
/// (the caller found it first), when none or several apply here.
pub(super) fn sign_in_account(
    conn: &Connection,
    own: &DivisionCode,
    username: &str,
) -> Result<Option<(UserRecord, String)>, StoreError> {
    if local_exists(conn, username)? {
        return Ok(None);
    }
    let mut found = applying(conn, own, username)?;
    if found.len() != 1 {
        return Ok(None);
    }
    let (_, (number, account)) = found.remove(0);
    let verifier = account.verifier.clone();
    Ok(Some((user_record(number, account), verifier)))
}

fn user_record(number: i64, account: StaffAccount) -> UserRecord {
    UserRecord {
        id: number,
        role: account.staff_role().unwrap_or(Role::Worker),
        username: account.username,
        display_name: account.display_name,
        counter: account.counter,
        disabled: account.disabled,
        created_ms: 0,
    }
}

/// A tree account by its number, as a session checks it: `None` if it is not held; its
/// record counts as disabled when it no longer signs in here.
pub(super) fn by_number(
    conn: &Connection,
    own: &DivisionCode,
    number: i64,
) -> Result<Option<(UserRecord, StaffAccount)>, StoreError> {
    let doc_id: Option<String> = conn
        .prepare_cached("SELECT doc_id FROM staff_accounts WHERE id = ?1")?
        .query_row([number], |r| r.get(0))
        .optional()?;
    let Some(doc_id) = doc_id.and_then(|d| DocId::parse(&d)) else {
        return Ok(None);
    };
    let account = tree_account_in(conn, own, None, &doc_id)?;
    let mut record = user_record(number, account.account.clone());
    record.disabled |= account.standing != Standing::Here;
    Ok(Some((record, account.account)))
}

/// Stores a token for the tree account `username` under its current generation, if one
/// signs in here.
pub(super) fn add_tree_token(
    conn: &Connection,
    own: &DivisionCode,
    username: &str,
    token_hash: [u8; 32],
    label: &str,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let Some((record, _)) = sign_in_account(conn, own, username)? else {
        return Ok(false);
    };
    let Some((record, account)) = by_number(conn, own, record.id)? else {
        return Ok(false);
    };
    let doc_id: String = conn.query_row(
        "SELECT doc_id FROM staff_accounts WHERE id = ?1",
        [record.id],
        |r| r.get(0),
    )?;
    conn.execute(
        "INSERT INTO staff_tokens (token_hash, account_doc, generation, label, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            &token_hash[..],
            doc_id,
            account.generation,
            label,
            now_ms as i64
        ],
    )?;
    Ok(true)
}

/// The tree account a token belongs to, if the token is known, its account signs in here,
/// is enabled and still at the generation the token was issued under.
pub(super) fn tree_token_owner(
    conn: &Connection,
    own: &DivisionCode,
    token_hash: [u8; 32],
) -> Result<Option<UserRecord>, StoreError> {
    let found: Option<(i64, u32)> = conn
        .prepare_cached(
            "SELECT a.id, t.generation FROM staff_tokens t
             JOIN staff_accounts a ON a.doc_id = t.account_doc WHERE t.token_hash = ?1",
        )?
        .query_row([&token_hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((number, generation)) = found else {
        return Ok(None);
    };
    Ok(by_number(conn, own, number)?
        .filter(|(record, account)| !record.disabled && account.generation == generation)
        .map(|(record, _)| record))
}

#[cfg(test)]
mod tests;
