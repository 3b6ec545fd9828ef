//! The tree's staff accounts for admins (`/admin/staff`, SZDB/Z 176 §8.6.3): at a hall its
//! admin writes the accounts of the whole subtree (create, disable or enable, reset the
//! password, stand-in (AB 角, §7.4.1.3), chief representative (首席代表, §7.5)); at any
//! node the admin sees which of the tree's accounts sign in here, read-only, beside the
//! local ones on `/admin/users`. Who may write is the engine's rule
//! (`engine::may_manage_staff`), which the store applies again.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use yizhan_sync::domain::codes::DivisionCode;

use super::cases::{Fields, field};
use super::{Chrome, Ctx, StaffForm, WebState, render, store_failed};
use crate::accounts::{generate_password, hash_password};
use crate::i18n::{Tr, Words};
use crate::store::{NewStaff, Role, Staff, StaffPatch, StoreError, TreeAccount};

#[derive(Template)]
#[template(path = "admin_staff.html")]
struct TreeStaffPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    accounts: Vec<TreeAccount>,
    /// Whether this person writes the tree's accounts here (an admin at a hall).
    writes: bool,
    notice: Option<String>,
    error: Option<String>,
    /// A password just generated: `(user, password)`, shown this once.
    password: Option<(String, String)>,
}

impl TreeStaffPage<'_> {
    fn roles(&self) -> Vec<Role> {
        Role::ALL.to_vec()
    }

    fn role_key(&self, a: &TreeAccount) -> String {
        format!("role.{}", a.account.role)
    }

    fn standing_key(&self, a: &TreeAccount) -> String {
        format!("staff.standing.{}", a.standing.as_str())
    }

    fn places(&self, a: &TreeAccount) -> String {
        a.account
            .sign_in_at
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn staff_of(ctx: &Ctx) -> Option<Staff> {
    ctx.session.as_ref().map(|s| Staff {
        username: s.username.clone(),
        counter: s.counter.clone(),
        role: s.role,
    })
}

async fn page(
    state: &WebState,
    ctx: &Ctx,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    password: Option<(String, String)>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let Some(staff) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let writes =
        yizhan_sync::engine::may_manage_staff(state.store.own_record(), staff.role).is_ok();
    match state.store.tree_accounts().await {
        Ok(accounts) => render(
            ctx.t,
            status,
            TreeStaffPage {
                chrome: ctx.chrome(),
                t: ctx.t,
                csrf: &staff.csrf,
                // A hall's admin manages its own; every admin sees those that apply here.
                accounts,
                writes,
                notice,
                error,
                password,
            },
        ),
        Err(e) => store_failed(ctx, e),
    }
}

/// `GET /admin/staff`: the tree's accounts held here (admins only).
pub async fn index(State(state): State<WebState>, ctx: Ctx) -> Response {
    page(&state, &ctx, StatusCode::OK, None, None, None).await
}

async fn refused(state: &WebState, ctx: &Ctx, e: StoreError) -> Response {
    let status =
        StatusCode::from_u16(e.class().status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    if status.is_server_error() {
        return store_failed(ctx, e);
    }
    let why = ctx.t.words(&e.words());
    page(state, ctx, status, None, Some(why), None).await
}

async fn new_hash() -> Result<(String, String), StoreError> {
    let password = generate_password();
    let hash = tokio::task::spawn_blocking({
        let password = password.clone();
        move || hash_password(&password)
    })
    .await
    .map_err(|_| StoreError::Internal("hashing a password".into()))?
    .map_err(|e| StoreError::Internal(e.to_string()))?;
    Ok((hash, password))
}

/// The divisions a form names, space- or comma-separated.
fn places(text: &str) -> Result<Vec<DivisionCode>, StoreError> {
    text.split([' ', ',', '，'])
        .filter(|s| !s.is_empty())
        .map(|s| DivisionCode::parse(s).map_err(|e| StoreError::Invalid(Words::from(&e))))
        .collect()
}

fn role_of(form: &Fields) -> Result<Role, StoreError> {
    let value = field(form, "role");
    Role::parse(value)
        .ok_or_else(|| StoreError::Invalid(Words::new("staff_role").text("value", value)))
}

/// `POST /admin/staff`: a new account for the subtree; its generated password is shown once.
pub async fn add(
    State(state): State<WebState>,
    StaffForm { ctx, form, .. }: StaffForm<Fields>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let Some(by) = staff_of(&ctx) else {
        return ctx.to_signin();
    };
    let username = field(&form, "username").to_string();
    let built = async {
        yizhan_sync::domain::staff::check_username(&username)
            .map_err(crate::store::staff_refused)?;
        let role = role_of(&form)?;
        let sign_in_at = places(field(&form, "sign_in_at"))?;
        let (hash, password) = new_hash().await?;
        let display_name = match field(&form, "display_name") {
            "" => username.clone(),
            name => name.to_string(),
        };
        let new = NewStaff {
            username: username.clone(),
            display_name,
            role,
            counter: field(&form, "counter").to_string(),
            sign_in_at,
            password_hash: hash,
            stand_in: Some(field(&form, "stand_in").to_string()).filter(|s| !s.is_empty()),
            chief: field(&form, "chief") == "1",
        };
        state
            .store
            .create_staff(new, by, state.clock.now_ms())
            .await?;
        Ok::<_, StoreError>(password)
    };
    match built.await {
        Ok(password) => {
            tracing::info!(user.name = %username, "tree account written on the admin page");
            let notice = ctx.t.with("users.added", "user", &username);
            page(
                &state,
                &ctx,
                StatusCode::OK,
                Some(notice),
                None,
                Some((username, password)),
            )
            .await
        }
        Err(e) => refused(&state, &ctx, e).await,
    }
}

/// `POST /admin/staff/{username}`: `action` is `disable`, `enable`, `reset` (a new
/// password, shown once) or `save` (role, counter, places, stand-in, chief).
pub async fn change(
    State(state): State<WebState>,
    Path(username): Path<String>,
    StaffForm { ctx, form, .. }: StaffForm<Fields>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let Some(by) = staff_of(&ctx) else {
        return ctx.to_signin();
    };
    let mut password = None;
    let patch = match field(&form, "action") {
        "disable" | "enable" => Ok(StaffPatch {
            disabled: Some(field(&form, "action") == "disable"),
            ..Default::default()
        }),
        "reset" => new_hash().await.map(|(hash, new)| {
            password = Some(new);
            StaffPatch {
                password_hash: Some(hash),
                ..Default::default()
            }
        }),
        "save" => (|| {
            Ok(StaffPatch {
                role: Some(role_of(&form)?),
                counter: Some(field(&form, "counter").to_string()),
                sign_in_at: Some(places(field(&form, "sign_in_at"))?),
                stand_in: Some(
                    Some(field(&form, "stand_in").to_string()).filter(|s| !s.is_empty()),
                ),
                chief: Some(field(&form, "chief") == "1"),
                ..Default::default()
            })
        })(),
        _ => Err(StoreError::Invalid(Words::new("bad_form"))),
    };
    let result = match patch {
        Ok(patch) => {
            state
                .store
                .update_staff(username.clone(), patch, by, state.clock.now_ms())
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            tracing::info!(user.name = %username, "tree account changed on the admin page");
            let notice = ctx.t.with("staff.changed", "user", &username);
            page(
                &state,
                &ctx,
                StatusCode::OK,
                Some(notice),
                None,
                password.map(|p| (username, p)),
            )
            .await
        }
        Err(e) => refused(&state, &ctx, e).await,
    }
}
