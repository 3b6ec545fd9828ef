//! `/api/v1/staff`: the staff accounts a node's admin sees (its local accounts and the
//! tree's accounts held here), and at a hall the tree accounts its admin writes for the
//! whole subtree (SZDB/Z 176 §8.6.3), with their stand-in (AB 角, §7.4.1.3) and chief
//! representative (首席代表, §7.5). The same store rules and codes as the admin pages.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use utoipa::ToSchema;
use yizhan_sync::domain::codes::DivisionCode;

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Body, Path};
use crate::i18n::Words;
use crate::store::{NewStaff, Role, Staff, StaffPatch, StoreError, TreeAccount, UserRecord};

/// A staff account as the API shows it (never a password or its hash).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StaffView {
    pub username: String,
    pub display_name: String,
    /// `worker`, `lead`, `admin`, `supervisor` or `department`.
    pub role: String,
    /// The counter, or a department account's department.
    pub counter: String,
    pub disabled: bool,
    /// `local` (this node's own) or `tree` (written by a hall).
    pub source: String,
    /// For a tree account: the division of the hall that wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hall: Option<String>,
    /// For a tree account: whether this node's hall wrote it (and may change it here).
    pub own: bool,
    /// For a tree account: `here`, `not_here`, `shadowed_by_local` (a local account has
    /// its name here) or `clash` (two halls' accounts have its name here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standing: Option<String>,
    /// Divisions where it signs in; empty: the whole subtree of its hall.
    pub sign_in_at: Vec<String>,
    /// The generation, bumped by every password reset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u32>,
    /// Who stands in for it (its B角).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stand_in: Option<String>,
    /// Whether it is its department's chief representative.
    pub chief: bool,
}

impl StaffView {
    fn local(user: UserRecord) -> StaffView {
        StaffView {
            username: user.username,
            display_name: user.display_name,
            role: user.role.as_str().into(),
            counter: user.counter,
            disabled: user.disabled,
            source: "local".into(),
            hall: None,
            own: false,
            standing: None,
            sign_in_at: vec![],
            generation: None,
            stand_in: None,
            chief: false,
        }
    }

    fn tree(account: TreeAccount) -> StaffView {
        let a = account.account;
        StaffView {
            username: a.username,
            display_name: a.display_name,
            role: a.role,
            counter: a.counter,
            disabled: a.disabled,
            source: "tree".into(),
            hall: Some(account.hall_division),
            own: account.own,
            standing: Some(account.standing.as_str().into()),
            sign_in_at: a.sign_in_at.iter().map(ToString::to_string).collect(),
            generation: Some(a.generation),
            stand_in: a.stand_in,
            chief: a.chief,
        }
    }
}

/// The accounts of this node.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StaffList {
    pub accounts: Vec<StaffView>,
}

/// A tree account to write at this hall.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    pub role: String,
    #[serde(default)]
    pub counter: String,
    /// Divisions below the hall where it signs in; absent or empty: the whole subtree.
    #[serde(default)]
    pub sign_in_at: Vec<String>,
    /// At least 10 characters; absent: the node generates one and answers it once.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub stand_in: Option<String>,
    #[serde(default)]
    pub chief: bool,
}

/// What to change of a tree account this hall wrote; absent fields stay.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchStaff {
    pub display_name: Option<String>,
    pub role: Option<String>,
    pub counter: Option<String>,
    pub sign_in_at: Option<Vec<String>>,
    /// Disabling ends its sessions and tokens here at once and below once synced.
    pub disabled: Option<bool>,
    /// `true`: a new generated password, answered once; sessions and tokens end.
    #[serde(default)]
    pub reset_password: bool,
    /// A username, or `""` to remove the stand-in.
    pub stand_in: Option<String>,
    pub chief: Option<bool>,
}

/// An account, with its password when one was just made.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StaffWritten {
    pub account: StaffView,
    /// The new password, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

fn staff_of(user: &UserRecord) -> Staff {
    Staff {
        username: user.username.clone(),
        counter: user.counter.clone(),
        role: user.role,
    }
}

fn role(value: &str) -> ApiResult<Role> {
    Role::parse(value).ok_or_else(|| {
        ApiError::from(StoreError::Invalid(
            Words::new("staff_role").text("value", value),
        ))
    })
}

fn places(values: &[String]) -> ApiResult<Vec<DivisionCode>> {
    values
        .iter()
        .map(|v| {
            DivisionCode::parse(v)
                .map_err(|e| ApiError::words(StatusCode::UNPROCESSABLE_ENTITY, Words::from(&e)))
        })
        .collect()
}

/// The password to store: the caller's (checked) or a generated one, hashed off the
/// async threads.
async fn hashed(password: Option<String>) -> ApiResult<(String, Option<String>)> {
    let (password, generated) = match password {
        Some(p) => (p, false),
        None => (crate::accounts::generate_password(), true),
    };
    let hash = tokio::task::spawn_blocking({
        let password = password.clone();
        move || crate::accounts::hash_password(&password)
    })
    .await
    .map_err(|_| ApiError::from(StoreError::Internal("hashing a password".into())))?
    .map_err(|e| match e {
        crate::accounts::AccountError::WeakPassword => {
            ApiError::from(StoreError::Invalid(Words::new("weak_password")))
        }
        other => ApiError::from(StoreError::Internal(other.to_string())),
    })?;
    Ok((hash, generated.then_some(password)))
}

/// The staff accounts of this node (admins)
///
/// Its local accounts and the tree's accounts held here, with whether each signs in here.
#[utoipa::path(get, path = "/api/v1/staff", tag = "staff",
    responses((status = 200, body = StaffList), (status = 403, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn index(
    State(state): State<ApiState>,
    user: Authenticated,
) -> ApiResult<Json<StaffList>> {
    user.administers()?;
    let mut accounts: Vec<StaffView> = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(StaffView::local)
        .collect();
    accounts.extend(
        state
            .store
            .tree_accounts()
            .await?
            .into_iter()
            .map(StaffView::tree),
    );
    Ok(Json(StaffList { accounts }))
}

/// One staff account (admins): this node's local one, else the tree's
#[utoipa::path(get, path = "/api/v1/staff/{username}", tag = "staff",
    params(("username" = String, Path)),
    responses((status = 200, body = StaffView), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(username): Path<String>,
) -> ApiResult<Json<StaffView>> {
    user.administers()?;
    if let Some(local) = state
        .store
        .list_users()
        .await?
        .into_iter()
        .find(|u| u.username == username)
    {
        return Ok(Json(StaffView::local(local)));
    }
    match state.store.tree_account(username.clone()).await? {
        Some(account) => Ok(Json(StaffView::tree(account))),
        None => Err(StoreError::NotFound {
            what: format!("user {username}"),
        }
        .into()),
    }
}

/// Write a staff account for the hall's subtree (a hall's admin)
///
/// It travels down to every node below the hall, where the person signs in with the same
/// password; the document holds only the password's Argon2id hash.
#[utoipa::path(post, path = "/api/v1/staff", tag = "staff",
    request_body = CreateStaff,
    responses(
        (status = 201, body = StaffWritten, description = "Written; a generated password is answered once"),
        (status = 403, body = ErrorBody, description = "Not an admin at a hall"),
        (status = 409, body = ErrorBody, description = "The name is used here, or the department has its chief representative"),
        (status = 422, body = ErrorBody),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    user: Authenticated,
    Body(body): Body<CreateStaff>,
) -> ApiResult<(
    StatusCode,
    [(header::HeaderName, String); 1],
    Json<StaffWritten>,
)> {
    user.administers()?;
    yizhan_sync::domain::staff::check_username(&body.username)
        .map_err(|e| ApiError::from(crate::store::staff_refused(e)))?;
    let role = role(&body.role)?;
    let sign_in_at = places(&body.sign_in_at)?;
    let (password_hash, password) = hashed(body.password).await?;
    let display_name = if body.display_name.is_empty() {
        body.username.clone()
    } else {
        body.display_name
    };
    let new = NewStaff {
        username: body.username,
        display_name,
        role,
        counter: body.counter,
        sign_in_at,
        password_hash,
        stand_in: body.stand_in.filter(|s| !s.is_empty()),
        chief: body.chief,
    };
    let account = state
        .store
        .create_staff(new, staff_of(&user.0), state.clock.now_ms())
        .await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/staff/{}", account.account.username),
        )],
        Json(StaffWritten {
            account: StaffView::tree(account),
            password,
        }),
    ))
}

/// Change a staff account this hall wrote (a hall's admin)
///
/// Disabling it or resetting its password ends its sessions and tokens here at once and
/// at every node below once synced.
#[utoipa::path(patch, path = "/api/v1/staff/{username}", tag = "staff",
    params(("username" = String, Path)),
    request_body = PatchStaff,
    responses(
        (status = 200, body = StaffWritten),
        (status = 403, body = ErrorBody, description = "Not an admin at a hall"),
        (status = 404, body = ErrorBody, description = "This hall wrote no account of that name"),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn update(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(username): Path<String>,
    Body(body): Body<PatchStaff>,
) -> ApiResult<Json<StaffWritten>> {
    user.administers()?;
    let (password_hash, password) = if body.reset_password {
        let (hash, password) = hashed(None).await?;
        (Some(hash), password)
    } else {
        (None, None)
    };
    let patch = StaffPatch {
        display_name: body.display_name,
        role: body.role.as_deref().map(role).transpose()?,
        counter: body.counter,
        sign_in_at: body.sign_in_at.as_deref().map(places).transpose()?,
        disabled: body.disabled,
        password_hash,
        stand_in: body.stand_in.map(|s| Some(s).filter(|s| !s.is_empty())),
        chief: body.chief,
    };
    let account = state
        .store
        .update_staff(username, patch, staff_of(&user.0), state.clock.now_ms())
        .await?;
    Ok(Json(StaffWritten {
        account: StaffView::tree(account),
        password,
    }))
}
