//! The outbox's upkeep, among the application's jobs (`services::jobs`; none of it calls out,
//! so it needs no thread of its own): the retention purge of deliveries and of the event log,
//! and every second the outbox's
//! bounds: pending deliveries of disabled endpoints end failed, and no tenant keeps more than
//! `WAGW_WEBHOOK_MAX_PENDING_PER_TENANT` pending (the oldest past it end failed, recorded on
//! the delivery and counted as `dropped`). Each step is safe on several replicas at once.

use crate::config::WebhookConfig;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::services::jobs::Jobs;
use crate::store::webhooks::{health, outbox};
use std::sync::Arc;
use std::time::Duration;

const PURGE_EVERY: Duration = Duration::from_secs(600);
const BOUNDS_EVERY: Duration = Duration::from_secs(1);

/// Adds the upkeep loops to `jobs`; events stay in the log for `event_retention`.
pub fn schedule(
    jobs: &mut Jobs,
    db: &Db,
    config: &WebhookConfig,
    event_retention: Duration,
    metrics: &Arc<Metrics>,
) {
    let retention = outbox::Retention {
        delivered: config.delivered_retention,
        failed: config.failed_retention,
        events: event_retention,
    };
    let pool = db.clone();
    jobs.every("webhook purge", purge_period(&retention), move || {
        let pool = pool.clone();
        async move { purge(&pool, retention).await }
    });
    let (pool, cap, metrics) = (db.clone(), config.max_pending_per_tenant, metrics.clone());
    jobs.every("webhook outbox bounds", BOUNDS_EVERY, move || {
        let (pool, metrics) = (pool.clone(), metrics.clone());
        async move { bound(&pool, cap, &metrics).await }
    });
}

async fn purge(pool: &Db, retention: outbox::Retention) {
    match outbox::purge(pool, retention).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "purged old webhook deliveries and events"),
        Err(e) => tracing::warn!("purging webhook deliveries: {e}"),
    }
}

/// Every [`PURGE_EVERY`], or a tenth of the shortest retention when that is shorter (an
/// operator keeping events for minutes sees them go within seconds of it).
fn purge_period(retention: &outbox::Retention) -> Duration {
    let shortest = retention
        .delivered
        .min(retention.failed)
        .min(retention.events);
    (shortest / 10).clamp(Duration::from_secs(1), PURGE_EVERY)
}

async fn bound(pool: &Db, cap: i64, metrics: &Metrics) {
    match health::end_disabled_pending(pool).await {
        Ok(0) => {}
        Ok(n) => metrics
            .webhook_deliveries
            .with_label_values(&["disabled"])
            .inc_by(n),
        Err(e) => tracing::warn!("ending deliveries of disabled webhooks: {e}"),
    }
    let error = format!("dropped: the tenant had more than {cap} deliveries pending");
    match health::drop_over_cap(pool, cap, &error).await {
        Ok(dropped) => {
            for (tenant, n) in dropped {
                tracing::warn!(%tenant, dropped = n, cap, "{error}");
                metrics
                    .webhook_deliveries
                    .with_label_values(&["dropped"])
                    .inc_by(n as u64);
            }
        }
        Err(e) => tracing::warn!("bounding pending webhook deliveries: {e}"),
    }
}
