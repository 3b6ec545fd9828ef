//! A hall's notifications (通报, standard §10.3): what its checks of a month found,
//! published as record documents in the hall's catalog scope, so each reaches every node
//! below the hall, and derived into `notifications` by one rule wherever held. Publishing
//! one also issues, in the same transaction, a supervision notice to each station it names
//! for rectification, referring to its number: the reply, deadline and escalation are
//! supervision's.

use rusqlite::{Connection, params};
use yizhan_sync::doc::RecordDoc;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::supervision::Notification;
use yizhan_sync::engine::may_issue_supervision;
use yizhan_sync::ids::{DocId, DocKind, Scope};

use super::supervision::{NewSupervision, issue_in, write_record};
use super::{Staff, Store, StoreError};
use crate::i18n::Words;

/// What a hall's supervisor or admin asks to publish.
#[derive(Clone, Debug)]
pub struct NewNotification {
    pub month: String,
    pub title: String,
    pub text: String,
    pub figures: String,
    /// The stations named for rectification.
    pub rectify: Vec<DivisionCode>,
    /// Working days they have to reply to their supervision notices.
    pub reply_days: u32,
}

/// A notification as the lists show it.
#[derive(Clone, Debug)]
pub struct NotificationView {
    /// Its number (the document id).
    pub id: String,
    /// The division of the hall that published it.
    pub division: String,
    pub notification: Notification,
}

impl Store {
    /// Publishes a notification as `staff` at this hall, with a supervision notice to each
    /// station it names, in one transaction.
    pub async fn publish_notification(
        &self,
        new: NewNotification,
        staff: Staff,
        now_ms: u64,
    ) -> Result<NotificationView, StoreError> {
        let id = self
            .write(move |ctx| {
                let own = ctx.identity.record.clone();
                may_issue_supervision(&own, staff.role)
                    .map_err(|e| StoreError::Forbidden(Words::from(&e)))?;
                let notification = Notification {
                    at: ctx.tick(now_ms)?,
                    node: own.node,
                    staff: staff.username.clone(),
                    role: staff.role.as_str().to_string(),
                    month: new.month,
                    title: new.title,
                    text: new.text,
                    figures: new.figures,
                    rectify: new.rectify,
                    reply_days: new.reply_days,
                };
                notification
                    .validate()
                    .and_then(|()| notification.stations_below(&own.division))
                    .map_err(|e| StoreError::Invalid(Words::from(&e)))?;
                let id = notification.doc_id();
                let body = serde_json::to_string(&notification)
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                let scope = Scope::catalog(&own.division);
                write_record(
                    ctx,
                    &id,
                    DocKind::Notification,
                    &scope,
                    body.clone(),
                    now_ms,
                )?;
                store_notification_row(&ctx.conn, "", &id, &scope, &notification, &body)?;
                let words = crate::i18n::Tr::of(crate::i18n::Lang::Zh);
                for station in &notification.rectify {
                    let new = NewSupervision {
                        station: station.clone(),
                        case: None,
                        reason: words.with(
                            "record.notification_reason",
                            "number",
                            &format!("{}（{}）", notification.title, id),
                        ),
                        todo: words.get("record.notification_todo").into_owned(),
                        reply_days: notification.reply_days,
                    };
                    issue_in(ctx, new, &staff, now_ms)?;
                }
                Ok(id)
            })
            .await?;
        self.notifications(500)
            .await?
            .into_iter()
            .find(|n| n.id == id.as_str())
            .ok_or_else(|| StoreError::Internal("the published notification is not held".into()))
    }

    /// The notifications held here (a hall's own and its halls' above; at a station those
    /// of every hall above it), newest first, at most `limit`.
    pub async fn notifications(&self, limit: usize) -> Result<Vec<NotificationView>, StoreError> {
        self.read(move |conn| {
            let rows: Vec<(String, String, String)> = conn
                .prepare_cached(
                    "SELECT id, division, body_json FROM notifications
                     ORDER BY published_ms DESC, id LIMIT ?1",
                )?
                .query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(id, division, body)| {
                    let notification =
                        serde_json::from_str(&body).map_err(|_| StoreError::Corrupt {
                            id: id.clone(),
                            message: "the notification does not read".into(),
                        })?;
                    Ok(NotificationView {
                        id,
                        division,
                        notification,
                    })
                })
                .collect()
        })
        .await
    }
}

/// Writes the row of a notification document into `{prefix}notifications` (`rebuilt_`
/// while rebuilding), the same at every node; a row already there stays.
pub(super) fn notification_record_row(
    conn: &Connection,
    prefix: &str,
    id: &DocId,
    record: &RecordDoc,
) -> Result<(), StoreError> {
    let body = record.field("body");
    let notification: Notification =
        serde_json::from_str(body).map_err(|e| StoreError::Corrupt {
            id: id.to_string(),
            message: format!("the notification does not read: {e}"),
        })?;
    store_notification_row(conn, prefix, id, &record.scope, &notification, body)
}

fn store_notification_row(
    conn: &Connection,
    prefix: &str,
    id: &DocId,
    scope: &Scope,
    notification: &Notification,
    body: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {prefix}notifications
         (id, division, node, staff, month, title, published_ms, body_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        id.as_str(),
        scope.division().to_string(),
        notification.node.to_hex(),
        notification.staff,
        notification.month,
        notification.title,
        notification.at.unix_ms() as i64,
        body,
    ])?;
    Ok(())
}
