//! Send pacing's tables: the tenant's default and ceiling (`tenants.pacing_*`), each paced
//! session's own policy and ticket counter (`session_pacing`), the line of paced sends
//! (`paced_sends`), the chats a paced session has sent to (`paced_chats`) and the usage rollup
//! (`pacing_daily`). Every time here is PostgreSQL's: the one clock all replicas share
//! (`clock_timestamp()` where a moment is marked, since `now()` is when a transaction began).

use crate::db::Db;
use crate::domain::pacing::{Line, Policy, Previous, TenantPacing};
use crate::domain::Mode;
use crate::store::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// The channel pacing changes are announced on: `tenant:<id>` and `policy:<upstream>` (a
/// policy changed), `line:<upstream>` (a send of that session was answered or gave up).
pub const CHANNEL: &str = "wagw_pacing";

const SESSION_MISSING: &str = "session_pacing_upstream_name_fkey";
const SEND_SESSION_MISSING: &str = "paced_sends_upstream_name_fkey";

/// The tenant's default and ceiling; `None` when there is no such tenant.
pub async fn tenant_pacing<'e>(
    ex: impl PgExecutor<'e>,
    tenant: Uuid,
) -> Result<Option<TenantPacing>, StoreError> {
    let row = sqlx::query!(
        r#"SELECT pacing_default AS "default: Json<Policy>", pacing_ceiling AS "ceiling: Json<Policy>"
             FROM tenants WHERE id = $1"#,
        tenant
    )
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| pacing_of(r.default, r.ceiling)))
}

/// The tenant's default and ceiling, its row share-locked until the transaction ends: an
/// admin's change waits for the policy checked against them to be written.
pub async fn lock_tenant_pacing(
    conn: &mut PgConnection,
    tenant: Uuid,
) -> Result<Option<TenantPacing>, StoreError> {
    let row = sqlx::query!(
        r#"SELECT pacing_default AS "default: Json<Policy>", pacing_ceiling AS "ceiling: Json<Policy>"
             FROM tenants WHERE id = $1 FOR SHARE"#,
        tenant
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| pacing_of(r.default, r.ceiling)))
}

fn pacing_of(default: Option<Json<Policy>>, ceiling: Option<Json<Policy>>) -> TenantPacing {
    TenantPacing {
        default: default.map(|j| j.0),
        ceiling: ceiling.map(|j| j.0),
    }
}

pub async fn set_tenant_pacing<'e>(
    ex: impl PgExecutor<'e>,
    tenant: Uuid,
    pacing: &TenantPacing,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE tenants SET pacing_default = $2, pacing_ceiling = $3 WHERE id = $1",
        tenant,
        pacing.default.map(Json) as Option<Json<Policy>>,
        pacing.ceiling.map(Json) as Option<Json<Policy>>,
    )
    .execute(ex)
    .await?;
    Ok(())
}

/// The session's own policy, if it has one.
pub async fn own_policy<'e>(
    ex: impl PgExecutor<'e>,
    upstream: &str,
) -> Result<Option<Policy>, StoreError> {
    let policy = sqlx::query_scalar!(
        r#"SELECT policy AS "policy: Json<Policy>" FROM session_pacing WHERE upstream_name = $1"#,
        upstream
    )
    .fetch_optional(ex)
    .await?;
    Ok(policy.flatten().map(|j| j.0))
}

/// Sets (or, with `None`, removes) the session's own policy; its line is kept.
pub async fn set_own_policy<'e>(
    ex: impl PgExecutor<'e>,
    upstream: &str,
    policy: Option<&Policy>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO session_pacing (upstream_name, policy) VALUES ($1, $2)
         ON CONFLICT (upstream_name) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now()",
        upstream,
        policy.map(Json) as Option<Json<&Policy>>,
    )
    .execute(ex)
    .await
    .map_err(|e| missing_session(e, SESSION_MISSING))?;
    Ok(())
}

/// Tells every replica (this one too) about a pacing change; delivered on commit when `ex`
/// is a transaction.
pub async fn announce<'e>(ex: impl PgExecutor<'e>, payload: &str) -> Result<(), StoreError> {
    sqlx::query!("SELECT pg_notify($1, $2)", CHANNEL, payload)
        .execute(ex)
        .await?;
    Ok(())
}

/// How many earlier sends each window looks back over: the policy's counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Windows {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub new_chats: Option<u32>,
}

/// A send's place in the line, once reserved.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    pub number: i64,
    pub reserved_at: DateTime<Utc>,
}

/// What a reservation writes for the new ticket.
#[derive(Debug, Clone, Copy)]
pub struct NewTicket {
    pub slot_at: DateTime<Utc>,
    pub gap_ms: u32,
    pub new_chat: bool,
    pub expires_at: DateTime<Utc>,
}

/// Takes the session's next ticket, in arrival order across replicas: the session's row is
/// locked, the line behind it read afresh (a statement after the lock sees every ticket
/// committed before), and `decide` either places the send (`Ok`) or refuses it, in which
/// case nothing is written.
pub async fn reserve<R>(
    db: &Db,
    upstream: &str,
    chat: &str,
    windows: Windows,
    decide: impl FnOnce(&Line) -> Result<NewTicket, R>,
) -> Result<Result<Ticket, R>, StoreError> {
    let mut tx = db.begin().await?;
    let number = sqlx::query_scalar!(
        "INSERT INTO session_pacing (upstream_name, last_ticket) VALUES ($1, 1)
         ON CONFLICT (upstream_name) DO UPDATE SET last_ticket = session_pacing.last_ticket + 1
         RETURNING last_ticket",
        upstream
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| missing_session(e, SESSION_MISSING))?;
    let line = read_line(&mut *tx, upstream, number, chat, windows).await?;
    let new = match decide(&line) {
        Ok(new) => new,
        // Dropping the transaction rolls the ticket back.
        Err(refused) => return Ok(Err(refused)),
    };
    sqlx::query!(
        "INSERT INTO paced_sends (upstream_name, ticket, chat_id, new_chat, gap_ms, reserved_at, slot_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        upstream,
        number,
        chat,
        new.new_chat,
        new.gap_ms as i32,
        line.now,
        new.slot_at,
        new.expires_at,
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| missing_session(e, SEND_SESSION_MISSING))?;
    tx.commit().await?;
    Ok(Ok(Ticket {
        number,
        reserved_at: line.now,
    }))
}

/// The line of sends before ticket `before`, as `domain::pacing::Line` describes it.
pub async fn read_line<'e>(
    ex: impl PgExecutor<'e>,
    upstream: &str,
    before: i64,
    chat: &str,
    windows: Windows,
) -> Result<Line, StoreError> {
    let as_int = |n: Option<u32>| n.map(|n| n as i32);
    let row = sqlx::query!(
        r#"WITH earlier AS (
             SELECT ticket, coalesce(sent_at, slot_at) AS at, new_chat, chat_id, done_at, slot_at, expires_at
               FROM paced_sends
              WHERE upstream_name = $1 AND ticket < $2 AND state <> 'abandoned')
           SELECT clock_timestamp() AS "now!",
                  p.done_at AS "previous_done_at?", p.slot_at AS "previous_slot_at?",
                  p.expires_at AS "previous_expires_at?",
                  (SELECT at FROM earlier WHERE $3::int IS NOT NULL
                    ORDER BY ticket DESC OFFSET greatest($3::int - 1, 0) LIMIT 1) AS minute_anchor,
                  (SELECT at FROM earlier WHERE $4::int IS NOT NULL
                    ORDER BY ticket DESC OFFSET greatest($4::int - 1, 0) LIMIT 1) AS hour_anchor,
                  (SELECT at FROM earlier WHERE new_chat AND $5::int IS NOT NULL
                    ORDER BY ticket DESC OFFSET greatest($5::int - 1, 0) LIMIT 1) AS new_chat_anchor,
                  ($5::int IS NOT NULL AND NOT (
                      EXISTS (SELECT 1 FROM paced_chats c WHERE c.upstream_name = $1 AND c.chat_id = $6)
                   OR EXISTS (SELECT 1 FROM earlier WHERE chat_id = $6)
                   OR EXISTS (SELECT 1 FROM (
                         SELECT convert_from(w.body, 'UTF8')::jsonb -> 'payload' AS payload
                           FROM webhook_events w
                          WHERE w.upstream_session = $1 AND w.event LIKE 'message%') heard
                       WHERE heard.payload ->> 'from' = $6 OR heard.payload ->> 'to' = $6)
                  )) AS "new_chat!"
             FROM (SELECT 1) AS one
             LEFT JOIN LATERAL (
                  SELECT done_at, slot_at, expires_at FROM earlier ORDER BY ticket DESC LIMIT 1) p ON true"#,
        upstream,
        before,
        as_int(windows.per_minute),
        as_int(windows.per_hour),
        as_int(windows.new_chats),
        chat,
    )
    .fetch_one(ex)
    .await?;
    let previous = match (row.previous_slot_at, row.previous_expires_at) {
        (Some(slot_at), Some(expires_at)) => Some(Previous {
            done_at: row.previous_done_at,
            slot_at,
            expires_at,
        }),
        _ => None,
    };
    Ok(Line {
        now: row.now,
        previous,
        minute_anchor: row.minute_anchor,
        hour_anchor: row.hour_anchor,
        new_chat: row.new_chat,
        new_chat_anchor: row.new_chat_anchor,
    })
}

/// The ticket goes to the upstream now: released, its chat known from now on. Answers how
/// long it waited (ms), or `None` when the ticket is no longer waiting (its session is gone).
pub async fn release(
    db: &Db,
    upstream: &str,
    ticket: i64,
    new_chat: bool,
) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"WITH released AS (
             UPDATE paced_sends SET state = 'sending', sent_at = clock_timestamp(), new_chat = $3
              WHERE upstream_name = $1 AND ticket = $2 AND state = 'waiting'
              RETURNING chat_id, sent_at, reserved_at),
           known AS (
             INSERT INTO paced_chats (upstream_name, chat_id) SELECT $1, chat_id FROM released
             ON CONFLICT DO NOTHING)
           SELECT (extract(epoch FROM sent_at - reserved_at) * 1000)::bigint AS "waited_ms!"
             FROM released"#,
        upstream,
        ticket,
        new_chat,
    )
    .fetch_optional(db)
    .await?)
}

/// The ticket's send is over: answered or failed after it may have reached the upstream
/// (`sent`), or given up before (`abandoned`, and the line behind it moves on at once).
/// Announced, so the sends waiting behind it on every replica look again.
pub async fn finish(db: &Db, upstream: &str, ticket: i64, sent: bool) -> Result<(), StoreError> {
    sqlx::query!(
        "WITH done AS (
           UPDATE paced_sends SET state = CASE WHEN $3 THEN 'sent' ELSE 'abandoned' END, done_at = clock_timestamp()
            WHERE upstream_name = $1 AND ticket = $2 AND state IN ('waiting', 'sending')
            RETURNING 1)
         SELECT pg_notify($4, 'line:' || $1) FROM done",
        upstream,
        ticket,
        sent,
        CHANNEL,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Whose usage a paced send or a refusal counts in.
#[derive(Debug, Clone, Copy)]
pub struct UsageKey<'a> {
    pub tenant: Uuid,
    pub day: NaiveDate,
    pub mode: Mode,
    pub session: &'a str,
}

/// What one paced send or refusal adds to the day's rollup.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageCounts {
    pub sends: i64,
    pub waited: i64,
    pub wait_ms: i64,
    pub refusals: i64,
}

pub async fn count_usage(
    db: &Db,
    key: UsageKey<'_>,
    counts: UsageCounts,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO pacing_daily (tenant_id, day, mode, session_name, sends, waited, wait_ms, refusals)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, day, mode, session_name) DO UPDATE SET
           sends = pacing_daily.sends + EXCLUDED.sends,
           waited = pacing_daily.waited + EXCLUDED.waited,
           wait_ms = pacing_daily.wait_ms + EXCLUDED.wait_ms,
           refusals = pacing_daily.refusals + EXCLUDED.refusals",
        key.tenant,
        key.day,
        key.mode.as_str(),
        key.session,
        counts.sends,
        counts.waited,
        counts.wait_ms,
        counts.refusals,
    )
    .execute(db)
    .await
    .map(drop)
    .or_else(|e| {
        // The tenant is gone: its usage goes with it.
        if crate::db::constraint_violated(&e, "pacing_daily_tenant_id_fkey") {
            Ok(())
        } else {
            Err(e.into())
        }
    })
}

/// A session's pacing usage over some days.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionPacing {
    /// The tenant's name for the session.
    pub session: String,
    /// `live`, or `test` for a session of a test key.
    pub mode: String,
    /// Paced sends that went to the upstream.
    pub sends: i64,
    /// How many of them had to wait.
    pub waited: i64,
    /// Their waits, in all (milliseconds).
    pub wait_ms: i64,
    /// Sends refused because they would have waited too long.
    pub refusals: i64,
}

/// Each session's pacing usage of `tenant` in `[from, until)`, by session name.
pub async fn usage(
    db: &Db,
    tenant: Uuid,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<SessionPacing>, StoreError> {
    Ok(sqlx::query_as!(
        SessionPacing,
        r#"SELECT session_name AS session, mode, sum(sends)::bigint AS "sends!",
                  sum(waited)::bigint AS "waited!", sum(wait_ms)::bigint AS "wait_ms!",
                  sum(refusals)::bigint AS "refusals!"
             FROM pacing_daily WHERE tenant_id = $1 AND day >= $2 AND day < $3
            GROUP BY session_name, mode ORDER BY mode, session_name"#,
        tenant,
        from,
        until
    )
    .fetch_all(db)
    .await?)
}

/// Where a session's line stands.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineStanding {
    /// Sends waiting for their turn.
    pub waiting: i64,
    /// Sends released to the upstream in the last minute, hour and 24 hours.
    pub sent_last_minute: i64,
    pub sent_last_hour: i64,
    pub sent_last_day: i64,
    /// Of those of the last 24 hours, how many went to new chats.
    pub new_chats_last_day: i64,
}

pub async fn standing(db: &Db, upstream: &str) -> Result<LineStanding, StoreError> {
    Ok(sqlx::query_as!(
        LineStanding,
        r#"SELECT count(*) FILTER (WHERE state = 'waiting' AND expires_at > now()) AS "waiting!",
                  count(*) FILTER (WHERE sent_at > now() - interval '1 minute' AND state <> 'abandoned') AS "sent_last_minute!",
                  count(*) FILTER (WHERE sent_at > now() - interval '1 hour' AND state <> 'abandoned') AS "sent_last_hour!",
                  count(*) FILTER (WHERE sent_at > now() - interval '1 day' AND state <> 'abandoned') AS "sent_last_day!",
                  count(*) FILTER (WHERE new_chat AND sent_at > now() - interval '1 day' AND state <> 'abandoned') AS "new_chats_last_day!"
             FROM paced_sends WHERE upstream_name = $1"#,
        upstream
    )
    .fetch_one(db)
    .await?)
}

/// Forgets sends older than the longest window (a day), with an hour to spare.
pub async fn purge(db: &Db) -> Result<u64, StoreError> {
    Ok(
        sqlx::query!("DELETE FROM paced_sends WHERE reserved_at < now() - interval '25 hours'")
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// A foreign key to `sessions` refused the write: the session was deleted meanwhile.
fn missing_session(err: sqlx::Error, constraint: &str) -> StoreError {
    if crate::db::constraint_violated(&err, constraint) {
        StoreError::NotFound("session")
    } else {
        err.into()
    }
}
