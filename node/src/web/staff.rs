//! Staff accounts for admins (`/admin/users`): add one, reset a password, disable or
//! enable, set role and counter. The same rules as `yizhan user`: the user name's form
//! (`accounts::validate_username`), a generated password shown once and stored only as
//! its Argon2id hash, names and counters of one line of text, and the last enabled admin
//! stays one (the store refuses it).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::cases::{Fields, field};
use super::{Chrome, Ctx, StaffForm, WebState, render, store_failed};
use crate::accounts::{generate_password, hash_password, validate_username};
use crate::i18n::{Tr, Words};
use crate::store::{NewUser, Role, StoreError, UserRecord};

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    users: Vec<UserRecord>,
    /// The node's counters (窗口), offered for the counter fields.
    counters: Vec<crate::store::Counter>,
    /// The tree's accounts held here (written by a hall), shown read-only beside.
    tree: Vec<crate::store::TreeAccount>,
    /// What the last form did, or why it was refused.
    notice: Option<String>,
    error: Option<String>,
    /// A password just generated: `(user, password)`, shown this once.
    password: Option<(String, String)>,
}

impl UsersPage<'_> {
    fn role_key(&self, user: &UserRecord) -> String {
        format!("role.{}", user.role.as_str())
    }

    fn tree_role_key(&self, a: &crate::store::TreeAccount) -> String {
        format!("role.{}", a.account.role)
    }

    fn standing_key(&self, a: &crate::store::TreeAccount) -> String {
        format!("staff.standing.{}", a.standing.as_str())
    }

    /// The roles this kind of node offers (department staff only at halls).
    fn roles(&self) -> Vec<Role> {
        offered_roles(self.chrome.role)
    }
}

/// The roles accounts may have at a node of this role (`station`, `district`, …).
fn offered_roles(node_role: &str) -> Vec<Role> {
    yizhan_sync::auth::NodeRole::parse(node_role)
        .map(Role::offered_at)
        .unwrap_or_else(|| Role::ALL.to_vec())
}

/// The role a form names, if this node offers it.
fn offered_role(ctx: &Ctx, form: &Fields) -> Option<Role> {
    Role::parse(field(form, "role")).filter(|r| offered_roles(&ctx.node_role).contains(r))
}

/// The page, after a form or not.
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
    let listed = async {
        Ok::<_, StoreError>((
            state.store.list_users().await?,
            state.store.counters().await?,
            state.store.tree_accounts().await?,
        ))
    };
    match listed.await {
        Ok((users, counters, tree)) => render(
            ctx.t,
            status,
            UsersPage {
                chrome: ctx.chrome(),
                t: ctx.t,
                csrf: &staff.csrf,
                users,
                counters,
                tree,
                notice,
                error,
                password,
            },
        ),
        Err(e) => store_failed(ctx, e),
    }
}

/// `GET /admin/users`: the staff accounts and the forms to manage them (admins only).
pub async fn index(State(state): State<WebState>, ctx: Ctx) -> Response {
    page(&state, &ctx, StatusCode::OK, None, None, None).await
}

/// A refused form, on the page, in the page's language.
async fn refused(state: &WebState, ctx: &Ctx, e: StoreError) -> Response {
    let status =
        StatusCode::from_u16(e.class().status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    if status.is_server_error() {
        return store_failed(ctx, e);
    }
    let why = ctx.t.words(&e.words());
    page(state, ctx, status, None, Some(why), None).await
}

/// `POST /admin/users`: a new account; its generated password is shown once.
pub async fn add(
    State(state): State<WebState>,
    StaffForm { ctx, form, .. }: StaffForm<Fields>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let username = field(&form, "username").to_string();
    let Some(role) = offered_role(&ctx, &form) else {
        return refused(&state, &ctx, bad_form()).await;
    };
    if validate_username(&username).is_err() {
        let e = StoreError::Invalid(Words::new("bad_username").text("user", username));
        return refused(&state, &ctx, e).await;
    }
    let display_name = match field(&form, "display_name") {
        "" => username.clone(),
        name => name.to_string(),
    };
    let password = generate_password();
    let hash = match tokio::task::spawn_blocking({
        let password = password.clone();
        move || hash_password(&password)
    })
    .await
    {
        Ok(Ok(hash)) => hash,
        _ => return store_failed(&ctx, StoreError::Internal("hashing a password".into())),
    };
    let user = NewUser {
        username: username.clone(),
        display_name,
        role,
        counter: field(&form, "counter").to_string(),
        password_hash: hash,
    };
    match state.store.add_user(user, state.clock.now_ms()).await {
        Ok(_) => {
            tracing::info!(user.name = %username, "account added on the admin page");
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

/// `POST /admin/users/{username}/password`: a new generated password, shown once; the
/// account's sessions opened with the old one end.
pub async fn reset_password(
    State(state): State<WebState>,
    Path(username): Path<String>,
    StaffForm { ctx, .. }: StaffForm<Fields>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let password = generate_password();
    let hash = match tokio::task::spawn_blocking({
        let password = password.clone();
        move || hash_password(&password)
    })
    .await
    {
        Ok(Ok(hash)) => hash,
        _ => return store_failed(&ctx, StoreError::Internal("hashing a password".into())),
    };
    match state.store.set_password(username.clone(), hash).await {
        Ok(()) => {
            tracing::info!(user.name = %username, "password reset on the admin page");
            let notice = ctx.t.with("users.reset", "user", &username);
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

/// `POST /admin/users/{username}/state`: disable (`disabled=1`) or enable an account.
pub async fn set_state(
    State(state): State<WebState>,
    Path(username): Path<String>,
    StaffForm { ctx, form, .. }: StaffForm<Fields>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let disabled = field(&form, "disabled") == "1";
    match state.store.set_disabled(username.clone(), disabled).await {
        Ok(()) => Redirect::to("/admin/users").into_response(),
        Err(e) => refused(&state, &ctx, e).await,
    }
}

/// `POST /admin/users/{username}/role`: another role and counter.
pub async fn set_role(
    State(state): State<WebState>,
    Path(username): Path<String>,
    StaffForm { ctx, form, .. }: StaffForm<Fields>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let Some(role) = offered_role(&ctx, &form) else {
        return refused(&state, &ctx, bad_form()).await;
    };
    let counter = field(&form, "counter").to_string();
    match state
        .store
        .set_role_and_counter(username, role, counter)
        .await
    {
        Ok(()) => Redirect::to("/admin/users").into_response(),
        Err(e) => refused(&state, &ctx, e).await,
    }
}

/// A form that is not one the page sends (a role that does not exist).
fn bad_form() -> StoreError {
    StoreError::Invalid(Words::new("bad_form"))
}
