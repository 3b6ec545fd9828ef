//! Node-local staff accounts and API tokens (never synced); sign-in and sessions also
//! find the tree's accounts (`store::staff`).

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError};
use crate::i18n::Words;

/// What a staff member may do: the engine's roles, so one rule decides everywhere.
pub use yizhan_sync::engine::StaffRole as Role;

/// A user to create; the password is already hashed.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub counter: String,
    pub password_hash: String,
}

/// A stored user, without the password hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub counter: String,
    pub disabled: bool,
    pub created_ms: i64,
}

/// The user a valid token belongs to.
pub type TokenOwner = UserRecord;

const USER_COLUMNS: &str = "id, username, display_name, role, counter, disabled, created_ms";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let role: String = r.get(3)?;
    Ok(UserRecord {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Worker),
        counter: r.get(4)?,
        disabled: r.get(5)?,
        created_ms: r.get(6)?,
    })
}

impl Store {
    pub async fn add_user(&self, user: NewUser, now_ms: u64) -> Result<UserRecord, StoreError> {
        crate::accounts::validate_names(&user.display_name, &user.counter)
            .map_err(account_refused)?;
        self.write(move |ctx| {
            let exists: bool = ctx
                .conn
                .query_row("SELECT EXISTS (SELECT 1 FROM users WHERE username = ?1)", [&user.username], |r| r.get(0))?;
            if exists {
                return Err(StoreError::Conflict(Words::new("user_exists").text("user", user.username.clone())));
            }
            // The tree's names are reserved here (store::staff).
            super::staff::name_free(&ctx.conn, &ctx.identity.record.division, &user.username)?;
            super::counters::ensure_counter(&ctx.conn, user.role, &user.counter, now_ms)?;
            ctx.conn.execute(
                "INSERT INTO users (username, display_name, role, counter, password_hash, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![user.username, user.display_name, user.role.as_str(), user.counter, user.password_hash, now_ms as i64],
            )?;
            Ok(ctx.conn.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
                [&user.username],
                user_from_row,
            )?)
        })
        .await
    }

    pub async fn set_password(
        &self,
        username: String,
        password_hash: String,
    ) -> Result<(), StoreError> {
        self.update_user(username, "password_hash = ?2", password_hash.into())
            .await
    }

    /// Disables or enables an account. The last enabled admin is never disabled: the node
    /// would have nobody left to manage its accounts.
    pub async fn set_disabled(&self, username: String, disabled: bool) -> Result<(), StoreError> {
        self.write(move |ctx| {
            if disabled {
                keep_an_admin(&ctx.conn, &username)?;
            }
            update_in(
                &ctx.conn,
                &username,
                "disabled = ?2",
                i64::from(disabled).into(),
            )
        })
        .await
    }

    /// Gives an account another role and counter (the same rules as `yizhan user set`):
    /// the counter is one line of text, and the last enabled admin stays an admin.
    pub async fn set_role_and_counter(
        &self,
        username: String,
        role: Role,
        counter: String,
    ) -> Result<(), StoreError> {
        crate::accounts::validate_names("-", &counter).map_err(account_refused)?;
        self.write(move |ctx| {
            if role != Role::Admin {
                keep_an_admin(&ctx.conn, &username)?;
            }
            update_in(
                &ctx.conn,
                &username,
                "role = ?2",
                role.as_str().to_string().into(),
            )?;
            super::counters::ensure_counter(&ctx.conn, role, &counter, 0)?;
            update_in(&ctx.conn, &username, "counter = ?2", counter.into())
        })
        .await
    }

    async fn update_user(
        &self,
        username: String,
        set: &'static str,
        value: rusqlite::types::Value,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| update_in(&ctx.conn, &username, set, value))
            .await
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username"
            ))?;
            Ok(stmt
                .query_map([], user_from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Whether a user may still act, in which role and at which counter (sessions check it
    /// on every page, so disabling an account or changing its role or counter takes effect
    /// at once).
    /// Also returns the password hash, so a session opened before a password change ends.
    /// A tree account's (negative `id`) counts as disabled once it no longer signs in
    /// here (`store::staff`).
    pub async fn user_standing(&self, id: i64) -> Result<Option<UserStanding>, StoreError> {
        let own = self.own_record().division.clone();
        self.read(move |conn| {
            if id < 0 {
                return Ok(
                    super::staff::by_number(conn, &own, id)?.map(|(record, account)| {
                        UserStanding {
                            disabled: record.disabled,
                            role: record.role,
                            password_hash: account.verifier,
                            counter: record.counter,
                        }
                    }),
                );
            }
            Ok(conn
                .prepare_cached(
                    "SELECT disabled, role, password_hash, counter FROM users WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    let role: String = r.get(1)?;
                    Ok(UserStanding {
                        disabled: r.get(0)?,
                        role: Role::parse(&role).unwrap_or(Role::Worker),
                        password_hash: r.get(2)?,
                        counter: r.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    /// A user and their password hash (a tree account's verifier), for signing in: the
    /// local account of that name, else the one tree account of that name that signs in
    /// here (`store::staff`).
    pub async fn user_with_password(
        &self,
        username: String,
    ) -> Result<Option<(UserRecord, String)>, StoreError> {
        let own = self.own_record().division.clone();
        self.read(move |conn| {
            let local = conn
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"
                ))?
                .query_row([&username], |r| Ok((user_from_row(r)?, r.get(7)?)))
                .optional()?;
            match local {
                Some(found) => Ok(Some(found)),
                None => super::staff::sign_in_account(conn, &own, &username),
            }
        })
        .await
    }

    /// Stores a new token for a user (only its hash).
    pub async fn add_token(
        &self,
        username: String,
        token_hash: [u8; 32],
        label: String,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let user_id: Option<i64> = ctx
                .conn
                .query_row("SELECT id FROM users WHERE username = ?1", [&username], |r| r.get(0))
                .optional()?;
            let Some(user_id) = user_id else {
                // A tree account's token is kept here only, under its generation.
                let own = ctx.identity.record.division.clone();
                if super::staff::add_tree_token(&ctx.conn, &own, &username, token_hash, &label, now_ms)? {
                    return Ok(());
                }
                return Err(StoreError::NotFound { what: format!("user {username}") });
            };
            ctx.conn.execute(
                "INSERT INTO api_tokens (user_id, token_hash, label, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![user_id, &token_hash[..], label, now_ms as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// The enabled user a token belongs to, if the token is known.
    pub async fn token_owner(
        &self,
        token_hash: [u8; 32],
    ) -> Result<Option<TokenOwner>, StoreError> {
        let own = self.own_record().division.clone();
        self.read(move |conn| {
            let local = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM api_tokens t JOIN users u ON u.id = t.user_id
                     WHERE t.token_hash = ?1 AND u.disabled = 0",
                    USER_COLUMNS
                        .split(", ")
                        .map(|c| format!("u.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))?
                .query_row([&token_hash[..]], user_from_row)
                .optional()?;
            match local {
                Some(owner) => Ok(Some(owner)),
                None => super::staff::tree_token_owner(conn, &own, token_hash),
            }
        })
        .await
    }
}

/// What an account's checks refused, as the store answers it: a control character with
/// the core's code, anything else as a bad request naming the rule.
fn account_refused(e: crate::accounts::AccountError) -> StoreError {
    use crate::accounts::AccountError;
    match e {
        AccountError::Text(refused) => {
            StoreError::Case(yizhan_sync::domain::case::CaseError::Text(refused))
        }
        AccountError::BadUsername(name) => {
            StoreError::Invalid(Words::new("bad_username").text("user", name))
        }
        AccountError::WeakPassword => StoreError::Invalid(Words::new("weak_password")),
        AccountError::Hash(detail) => StoreError::Internal(detail),
    }
}

/// Sets one column of a user (`set` is `column = ?2`).
fn update_in(
    conn: &rusqlite::Connection,
    username: &str,
    set: &str,
    value: rusqlite::types::Value,
) -> Result<(), StoreError> {
    let changed = conn.execute(
        &format!("UPDATE users SET {set} WHERE username = ?1"),
        params![username, value],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("user {username}"),
        });
    }
    Ok(())
}

/// Refuses a change that would leave no enabled admin: `username` stops being one.
fn keep_an_admin(conn: &rusqlite::Connection, username: &str) -> Result<(), StoreError> {
    let others: i64 = conn.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND username != ?1",
        [username],
        |r| r.get(0),
    )?;
    let is_admin: bool = conn
        .query_row(
            "SELECT role = 'admin' AND disabled = 0 FROM users WHERE username = ?1",
            [username],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false);
    if is_admin && others == 0 {
        return Err(StoreError::Conflict(
            Words::new("last_admin").text("user", username),
        ));
    }
    Ok(())
}

/// What a session checks of its account on every request: an admin may have disabled it,
/// given it a new password, or another role or counter since sign-in.
#[derive(Clone, Debug)]
pub struct UserStanding {
    pub disabled: bool,
    pub role: Role,
    pub password_hash: String,
    pub counter: String,
}
