//! Supervision notices (督办, §10.2) and the stations' replies: record documents in the
//! case scope of the station supervised, so a notice travels down to the station and a
//! reply up to every hall above it. Each is written once (`engine::may_supervise` decides
//! who may) and derived into `supervision_notices` / `supervision_replies` by one rule at
//! every node that holds it. Whether a notice is open, answered or overdue is counted at
//! read time on the issuing hall's calendar ([`reply_state`]), never stored.

use rusqlite::{Connection, OptionalExtension, params};
use yizhan_sync::doc::{self, RecordDoc};
use yizhan_sync::domain::calendar::Date;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::supervision::{
    ReplyState, SupervisionNotice, SupervisionReply, reply_state,
};
use yizhan_sync::engine::{SupervisionAct, may_supervise};
use yizhan_sync::ids::{DocId, DocKind, Scope};

use super::{Staff, Store, StoreError};
use crate::i18n::Words;

/// What a hall asks to issue.
#[derive(Clone, Debug)]
pub struct NewSupervision {
    /// The station supervised (its division).
    pub station: DivisionCode,
    /// The case it is about, if any; it must be one of the station's.
    pub case: Option<DocId>,
    pub reason: String,
    pub todo: String,
    pub reply_days: u32,
}

/// Which notices a list shows.
#[derive(Clone, Debug, Default)]
pub struct SupervisionFilter {
    /// Only those about this case.
    pub case_id: Option<String>,
    /// Only those in this state on the day of the list.
    pub state: Option<ReplyState>,
    /// Only those not answered yet (open or overdue).
    pub unanswered: bool,
}

/// A supervision notice as the lists show it, with its replies and where it stands.
#[derive(Clone, Debug)]
pub struct SupervisionView {
    pub notice: SupervisionNotice,
    pub id: String,
    pub station: DivisionCode,
    /// The last day to reply, on the station's calendar.
    pub due: Date,
    pub state: ReplyState,
    /// Oldest first.
    pub replies: Vec<SupervisionReply>,
    /// For a notice about a case: the case's step that is late today, if one is (§10.2),
    /// so the hall sees which step of the case holds it up.
    pub late_step: Option<super::LateStep>,
}

impl Store {
    /// Issues a supervision notice as `staff` at this hall: one record document in the
    /// station's case scope and its row, in one transaction.
    pub async fn issue_supervision(
        &self,
        new: NewSupervision,
        staff: Staff,
        now_ms: u64,
    ) -> Result<SupervisionView, StoreError> {
        let view = self
            .write(move |ctx| issue_in(ctx, new, &staff, now_ms))
            .await?;
        self.supervision_notice(view.to_string(), Date::from_unix_ms_cst(now_ms as i64))
            .await?
            .ok_or_else(|| StoreError::Internal("the issued notice is not held".into()))
    }

    /// Replies to a supervision notice as `staff` at the station it was sent to.
    pub async fn reply_supervision(
        &self,
        notice_id: String,
        text: String,
        staff: Staff,
        now_ms: u64,
    ) -> Result<SupervisionView, StoreError> {
        let id = notice_id.clone();
        self.write(move |ctx| {
            let station: Option<String> = ctx
                .conn
                .prepare_cached("SELECT station FROM supervision_notices WHERE id = ?1")?
                .query_row([&notice_id], |r| r.get(0))
                .optional()?;
            let (Some(station), Some(notice)) = (
                station.and_then(|s| DivisionCode::parse(&s).ok()),
                DocId::parse(&notice_id),
            ) else {
                return Err(StoreError::NotFound {
                    what: format!("supervision notice {notice_id}"),
                });
            };
            may_supervise(
                &ctx.identity.record,
                staff.role,
                &station,
                SupervisionAct::Reply,
            )
            .map_err(|e| StoreError::Forbidden(Words::from(&e)))?;
            let reply = SupervisionReply {
                at: ctx.tick(now_ms)?,
                node: ctx.identity.record.node,
                staff: staff.username,
                notice,
                text,
            };
            reply
                .validate()
                .map_err(|e| StoreError::Invalid(Words::from(&e)))?;
            let body =
                serde_json::to_string(&reply).map_err(|e| StoreError::Internal(e.to_string()))?;
            write_record(
                ctx,
                &reply.doc_id(),
                DocKind::Reply,
                &Scope::cases(&station),
                body,
                now_ms,
            )
        })
        .await?;
        self.supervision_notice(id, Date::from_unix_ms_cst(now_ms as i64))
            .await?
            .ok_or_else(|| StoreError::Internal("the answered notice is not held".into()))
    }

    /// One supervision notice with its replies, as of today.
    pub async fn supervision_notice(
        &self,
        id: String,
        today: Date,
    ) -> Result<Option<SupervisionView>, StoreError> {
        let rows = self
            .read(move |conn| read_notices(conn, "WHERE id = ?1", &[&id as &dyn rusqlite::ToSql]))
            .await?;
        Ok(self.views(rows, today, None).await?.into_iter().next())
    }

    /// The supervision notices this node holds (a hall: those it and the halls below it
    /// issued to its stations; a station: those it received), newest first, each with
    /// where it stands on `today`. At most `limit`.
    pub async fn supervision_list(
        &self,
        filter: SupervisionFilter,
        today: Date,
        limit: usize,
    ) -> Result<Vec<SupervisionView>, StoreError> {
        // Whether a notice has a reply is a row; whether it is overdue is counted on the
        // calendar below. Without a state the newest `limit` are read, no more.
        let answered = match filter.state {
            Some(ReplyState::Open | ReplyState::Overdue) => Some(false),
            Some(ReplyState::AnsweredOnTime | ReplyState::AnsweredLate) => Some(true),
            None => filter.unanswered.then_some(false),
        };
        let sql_limit = if filter.state.is_some() {
            i64::MAX
        } else {
            limit as i64
        };
        let case_id = filter.case_id.clone();
        let rows = self
            .read(move |conn| {
                let mut conditions = Vec::new();
                let mut params: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
                if let Some(case) = case_id {
                    params.push(Box::new(case));
                    conditions.push(format!("case_id = ?{}", params.len()));
                }
                let exists = "EXISTS (SELECT 1 FROM supervision_replies r WHERE r.notice_id = supervision_notices.id)";
                match answered {
                    Some(true) => conditions.push(exists.to_string()),
                    Some(false) => conditions.push(format!("NOT {exists}")),
                    None => {}
                }
                let filter = if conditions.is_empty() {
                    String::new()
                } else {
                    format!("WHERE {}", conditions.join(" AND "))
                };
                params.push(Box::new(sql_limit));
                let filter = format!("{filter} ORDER BY issued_ms DESC, id LIMIT ?{}", params.len());
                let params: Vec<&dyn rusqlite::ToSql> = params.iter().map(|p| p.as_ref()).collect();
                read_notices(conn, &filter, &params)
            })
            .await?;
        let mut views = self.views(rows, today, filter.state).await?;
        views.truncate(limit);
        Ok(views)
    }

    /// Opens a supervision notice, as this hall, for every case below it whose warning
    /// has reached `threshold` (red, or only a legal breach) and that this hall has not
    /// supervised yet ([supervision] auto); at red, also for a case whose step is past its
    /// limit though the case may still be on time (环节超时, §10.2; DOMAIN §7), the notice
    /// naming the step. One notice per case and hall, its words the
    /// record words (Chinese, as every node reads them), issued by `staff` through the
    /// same rule as a person's (`engine::may_supervise`). At most `limit` per call; returns
    /// how many it opened.
    pub async fn auto_supervise(
        &self,
        threshold: yizhan_sync::domain::calendar::WarningLevel,
        reply_days: u32,
        staff: Staff,
        now_ms: u64,
        limit: usize,
    ) -> Result<u32, StoreError> {
        use yizhan_sync::domain::calendar::WarningLevel;
        let today = Date::from_unix_ms_cst(now_ms as i64).to_string();
        let own = self.own_record().clone();
        let own_scope = Scope::cases(&own.division).to_string();
        let red = threshold != WarningLevel::LegalBreach;
        #[allow(clippy::type_complexity)]
        let candidates: Vec<(String, String, bool, bool, Option<u32>, Option<String>)> = self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT c.id, c.scope, coalesce(c.breach_on <= ?1, 0),
                                coalesce(c.red_on <= ?1, 0), c.step_no, c.step_name
                         FROM cases c
                         WHERE (c.breach_on <= ?1 OR (?2 AND (c.red_on <= ?1 OR c.step_red_on <= ?1)))
                           AND c.scope <> ?3
                           AND NOT EXISTS (SELECT 1 FROM supervision_notices s
                                           WHERE s.case_id = c.id AND s.node = ?4)
                         ORDER BY c.breach_on, c.red_on, c.step_red_on, c.id LIMIT ?5",
                    )?
                    .query_map(
                        params![today, red, own_scope, own.node.to_hex(), limit as i64],
                        |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                            ))
                        },
                    )?
                    .collect::<Result<_, _>>()?)
            })
            .await?;
        let words = crate::i18n::Tr::of(crate::i18n::Lang::Zh);
        let mut opened = 0;
        for (id, scope, breach, case_red, step_no, step_name) in candidates {
            let (Some(case), Some(scope)) = (DocId::parse(&id), Scope::parse(&scope)) else {
                continue;
            };
            let reason = if breach {
                words.get("record.auto_supervision_breach").into_owned()
            } else if case_red {
                words.get("record.auto_supervision_red").into_owned()
            } else {
                // Only its step is late: the notice names the step.
                words
                    .get("record.auto_supervision_step")
                    .replace("{n}", &step_no.unwrap_or_default().to_string())
                    .replace("{name}", step_name.as_deref().unwrap_or_default())
            };
            let new = NewSupervision {
                station: scope.division(),
                case: Some(case),
                reason,
                todo: words.get("record.auto_supervision_todo").into_owned(),
                reply_days,
            };
            match self.issue_supervision(new, staff.clone(), now_ms).await {
                Ok(_) => opened += 1,
                // A case this hall may not supervise (none should reach here) is skipped.
                Err(StoreError::Forbidden(_) | StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(opened)
    }

    /// The notices issued from `from_ms` (inclusive) to `to_ms` (exclusive), each with
    /// where it stands on `today`, counted as the lists count it (the month's assessment
    /// reads them here, so a notice answered on time is the same everywhere).
    pub(super) async fn supervision_issued_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        today: Date,
    ) -> Result<Vec<SupervisionView>, StoreError> {
        let rows = self
            .read(move |conn| {
                read_notices(
                    conn,
                    "WHERE issued_ms >= ?1 AND issued_ms < ?2 ORDER BY issued_ms, id",
                    &[&from_ms, &to_ms],
                )
            })
            .await?;
        self.views(rows, today, None).await
    }

    /// Where each notice stands on `today`. Its reply deadline counts on the calendar of
    /// the hall that issued it (`calendar_for` its division): every node holding the
    /// notice holds that hall's calendar years and its ancestors' (they travel down with
    /// the catalog), so the station, the hall and the halls between count the same day.
    async fn views(
        &self,
        rows: Vec<NoticeWithReplies>,
        today: Date,
        state: Option<ReplyState>,
    ) -> Result<Vec<SupervisionView>, StoreError> {
        let mut halls: std::collections::HashMap<yizhan_sync::ids::NodeId, DivisionCode> =
            std::collections::HashMap::new();
        for (notice, _, _) in &rows {
            if !halls.contains_key(&notice.node)
                && let Some(record) = self.node_record(notice.node.to_hex()).await?
            {
                halls.insert(notice.node, record.division);
            }
        }
        let mut views: Vec<SupervisionView> = rows
            .into_iter()
            .filter_map(|(notice, station, replies)| {
                // A hall whose record this node lacks (none should be): the station's.
                let calendar = self.calendar_for(halls.get(&notice.node).unwrap_or(&station));
                let now = reply_state(&notice, &replies, today, &calendar);
                if state.is_some_and(|s| s != now) {
                    return None;
                }
                Some(SupervisionView {
                    id: notice.doc_id().to_string(),
                    due: notice.reply_due(&calendar),
                    state: now,
                    notice,
                    station,
                    replies,
                    late_step: None,
                })
            })
            .collect();
        for view in &mut views {
            if let Some(case) = &view.notice.case {
                view.late_step = self.late_step(case.to_string(), today).await?;
            }
        }
        Ok(views)
    }
}

/// Issues a supervision notice inside the writer's transaction: the engine's rule, the
/// case (if any) one of the station's, one record document and its row.
pub(super) fn issue_in(
    ctx: &mut super::writer::WriteCtx,
    new: NewSupervision,
    staff: &Staff,
    now_ms: u64,
) -> Result<DocId, StoreError> {
    may_supervise(
        &ctx.identity.record,
        staff.role,
        &new.station,
        SupervisionAct::Issue,
    )
    .map_err(|e| StoreError::Forbidden(Words::from(&e)))?;
    let scope = Scope::cases(&new.station);
    if let Some(case) = &new.case {
        let held: Option<String> = ctx
            .conn
            .prepare_cached("SELECT scope FROM documents WHERE id = ?1 AND kind = 'case'")?
            .query_row([case.as_str()], |r| r.get(0))
            .optional()?;
        if held.as_deref() != Some(scope.as_str()) {
            return Err(StoreError::NotFound {
                what: format!("case {case} of {}", new.station),
            });
        }
    }
    let notice = SupervisionNotice {
        at: ctx.tick(now_ms)?,
        node: ctx.identity.record.node,
        staff: staff.username.clone(),
        case: new.case,
        reason: new.reason,
        todo: new.todo,
        reply_days: new.reply_days,
    };
    notice
        .validate()
        .map_err(|e| StoreError::Invalid(Words::from(&e)))?;
    let id = notice.doc_id();
    let body = serde_json::to_string(&notice).map_err(|e| StoreError::Internal(e.to_string()))?;
    write_record(ctx, &id, DocKind::Supervision, &scope, body, now_ms)?;
    Ok(id)
}

/// A notice, its station and its replies.
type NoticeWithReplies = (SupervisionNotice, DivisionCode, Vec<SupervisionReply>);

/// The notices selected by `filter` (a `WHERE` clause, its order and limit), with their
/// replies.
fn read_notices(
    conn: &Connection,
    filter: &str,
    params: &[&dyn rusqlite::ToSql],
) -> Result<Vec<NoticeWithReplies>, StoreError> {
    let rows: Vec<(String, String, String)> = conn
        .prepare_cached(&format!(
            "SELECT id, station, body_json FROM supervision_notices {filter}"
        ))?
        .query_map(params, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, station, body) in rows {
        let corrupt = |message: &str| StoreError::Corrupt {
            id: id.clone(),
            message: message.to_string(),
        };
        let notice: SupervisionNotice =
            serde_json::from_str(&body).map_err(|_| corrupt("the notice does not read"))?;
        let station =
            DivisionCode::parse(&station).map_err(|_| corrupt("the station is not a division"))?;
        let replies = conn
            .prepare_cached(
                "SELECT body_json FROM supervision_replies WHERE notice_id = ?1
                 ORDER BY replied_ms, id",
            )?
            .query_map([&id], |r| r.get::<_, String>(0))?
            .map(|body| {
                serde_json::from_str::<SupervisionReply>(&body?)
                    .map_err(|_| corrupt("a reply does not read"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((notice, station, replies));
    }
    Ok(out)
}

/// Creates a supervision record this node writes, as its document and its row.
pub(super) fn write_record(
    ctx: &mut super::writer::WriteCtx,
    id: &DocId,
    kind: DocKind,
    scope: &Scope,
    body: String,
    now_ms: u64,
) -> Result<(), StoreError> {
    let document = doc::new_record(&ctx.origin, scope, kind, &[("body", body)], now_ms)
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    let record = doc::read_record(&document).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        message: e.to_string(),
    })?;
    ctx.insert_doc(id.clone(), document);
    ctx.persist_local_change(id, kind, scope, now_ms)?;
    store_supervision_rows(&ctx.conn, "", id, &record)
}

/// Writes the row of a supervision notice or reply document into `{prefix}supervision_*`
/// (`rebuilt_` while rebuilding): the same at every node that holds it. A row already
/// there stays (records never change).
pub(super) fn store_supervision_rows(
    conn: &Connection,
    prefix: &str,
    id: &DocId,
    record: &RecordDoc,
) -> Result<(), StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        id: id.to_string(),
        message,
    };
    let body = record.field("body");
    match record.kind {
        DocKind::Supervision => {
            let notice: SupervisionNotice = serde_json::from_str(body)
                .map_err(|e| corrupt(format!("the supervision notice does not read: {e}")))?;
            conn.prepare_cached(&format!(
                "INSERT OR IGNORE INTO {prefix}supervision_notices
                 (id, station, case_id, node, staff, reason, todo, reply_days, issued_ms, body_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ))?
            .execute(params![
                id.as_str(),
                record.scope.division().to_string(),
                notice.case.as_ref().map(DocId::as_str),
                notice.node.to_hex(),
                notice.staff,
                notice.reason,
                notice.todo,
                notice.reply_days,
                notice.at.unix_ms() as i64,
                body,
            ])?;
        }
        DocKind::Reply => {
            let reply: SupervisionReply = serde_json::from_str(body)
                .map_err(|e| corrupt(format!("the reply does not read: {e}")))?;
            conn.prepare_cached(&format!(
                "INSERT OR IGNORE INTO {prefix}supervision_replies
                 (id, notice_id, node, staff, text, replied_ms, body_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))?
            .execute(params![
                id.as_str(),
                reply.notice.as_str(),
                reply.node.to_hex(),
                reply.staff,
                reply.text,
                reply.at.unix_ms() as i64,
                body,
            ])?;
        }
        _ => {}
    }
    Ok(())
}
