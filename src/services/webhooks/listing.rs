//! Each tenant's webhook subscriptions per mode, as every session answer shows them (`GET
//! /v1/sessions` and the single-session answers' `config`, `GET .../webhooks`), kept in memory
//! so a repeated list does not read PostgreSQL.
//!
//! A cached list is dropped two ways:
//! - here, at once, by every service of this replica that writes `webhook_subscriptions`
//!   (`changed`, after its write committed): a tenant reads its own writes, and this replica's
//!   delivery workers' health changes show on this replica before anything else can see them;
//! - on every replica, by the trigger of migration 0020, which announces each change on
//!   [`CHANNEL`] when it commits (the delivery workers of other replicas, cascades from a
//!   deleted tenant, a row changed by hand). This replica hears its own changes a second time:
//!   harmless.
//!
//! A read that began before a change and ends after it serves its caller but is not kept
//! (`InvalidatingCache::insert_read_at`). A lost `LISTEN` connection forgets every list.
//!
//! Nothing cached depends on the time it is shown at: a rotated secret's
//! `previous_secret_expires_at` is kept as stored and hidden once it has passed, by the
//! database's clock carried forward from the read ([`ReadClock`]).

use crate::db::{ChangeFeed, Db, Signal};
use crate::domain::Mode;
use crate::services::cache::InvalidatingCache;
use crate::store::webhooks::subscriptions::{self as store, Listing, Subscription};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The channel the trigger announces changes on (payload `tenant_id:mode`).
pub const CHANNEL: &str = "wagw_webhook_subscriptions";
/// Announcements are transactional and a lost connection forgets everything, so this only
/// bounds how long a list could outlive a change should something still be missed.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Tenants (per mode) whose lists are kept at most.
const CAPACITY: u64 = 10_000;

/// The tenants' subscription lists, one per (tenant, mode), shared by the replica's handlers
/// and workers.
#[derive(Clone)]
pub struct SubscriptionLists {
    pool: Db,
    lists: InvalidatingCache<(Uuid, Mode), Arc<Kept>>,
}

/// A listing as read, with the clock its time-dependent fields are judged by.
struct Kept {
    clock: ReadClock,
    subscriptions: Vec<Subscription>,
}

/// The database's clock at a read, carried forward by this process's monotonic clock: what
/// `now()` would say, without asking PostgreSQL again (and without trusting this machine's
/// wall clock to agree with it). The instant is taken before the query, so the estimate runs
/// ahead by at most the query's latency: a grace period may end that much early, never late.
#[derive(Debug, Clone, Copy)]
struct ReadClock {
    database_then: DateTime<Utc>,
    taken: Instant,
}

impl ReadClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed =
            chrono::Duration::from_std(self.taken.elapsed()).unwrap_or(chrono::TimeDelta::MAX);
        self.database_then
            .checked_add_signed(elapsed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl Kept {
    /// The subscriptions (of one session, or all), as the list query would show them now.
    fn as_of_now(&self, session: Option<&str>) -> Vec<Subscription> {
        let now = self.clock.now();
        self.subscriptions
            .iter()
            .filter(|s| session.is_none_or(|name| s.session_name == name))
            .map(|s| {
                let mut shown = s.clone();
                // The previous secret no longer signs once its grace period has passed.
                let health = &mut shown.health;
                health.previous_secret_expires_at = health
                    .previous_secret_expires_at
                    .filter(|until| *until > now);
                shown
            })
            .collect()
    }
}

impl SubscriptionLists {
    pub fn new(pool: Db) -> Self {
        Self {
            pool,
            lists: InvalidatingCache::with_ttl(CAPACITY, CACHE_TTL),
        }
    }

    /// The tenant's subscriptions in `mode`, all its sessions' or one's, oldest first.
    pub async fn list(
        &self,
        tenant: Uuid,
        mode: Mode,
        session: Option<&str>,
    ) -> Result<Vec<Subscription>, StoreError> {
        let key = (tenant, mode);
        if let Some(kept) = self.lists.get(&key).await {
            return Ok(kept.as_of_now(session));
        }
        let since = self.lists.generation();
        let taken = Instant::now();
        let Listing {
            read_at,
            subscriptions,
        } = store::list(&self.pool, tenant, mode).await?;
        let kept = Arc::new(Kept {
            clock: ReadClock {
                database_then: read_at,
                taken,
            },
            subscriptions,
        });
        // Kept only if no change was announced while it was read.
        self.lists.insert_read_at(key, kept.clone(), since).await;
        Ok(kept.as_of_now(session))
    }

    /// Drops the tenant's list here: called by this replica's writers once their change has
    /// committed (every other replica hears of it from the trigger).
    pub async fn changed(&self, tenant: Uuid, mode: Mode) {
        self.lists.invalidate(&(tenant, mode)).await;
    }

    /// Follows the trigger's announcements (every replica's changes, this one's included).
    pub fn follow(&self, feed: &ChangeFeed) {
        let lists = self.clone();
        feed.on(CHANNEL, move |signal| {
            let lists = lists.clone();
            async move {
                match signal {
                    Signal::Notified(payload) => match parse_payload(&payload) {
                        Some((tenant, mode)) => lists.changed(tenant, mode).await,
                        None => tracing::warn!(
                            payload,
                            "ignoring an unknown webhook subscription change notification"
                        ),
                    },
                    // Changes may have been missed: no list can be trusted.
                    Signal::Missed => lists.lists.invalidate_all(),
                }
            }
        });
    }
}

/// `tenant_id:mode`, as the trigger writes it.
fn parse_payload(payload: &str) -> Option<(Uuid, Mode)> {
    let (tenant, mode) = payload.split_once(':')?;
    Some((tenant.parse().ok()?, Mode::parse(mode)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhook_signing::Scheme;
    use crate::domain::webhooks::RetryPolicy;
    use crate::store::webhooks::subscriptions::Health;

    fn rotated(session: &str, previous_until: DateTime<Utc>) -> Subscription {
        Subscription {
            id: Uuid::now_v7(),
            session_name: session.to_owned(),
            url: "https://8.8.8.8/".to_owned(),
            events: vec!["message".to_owned()],
            signing: Scheme::Standard,
            signed: true,
            retries: RetryPolicy::default(),
            custom_headers: Vec::new(),
            created_at: previous_until,
            health: Health {
                previous_secret_expires_at: Some(previous_until),
                ..Health::default()
            },
        }
    }

    #[test]
    fn a_kept_list_hides_grace_periods_that_passed_since_it_was_read() {
        let database_then = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let seconds = chrono::Duration::seconds;
        let kept = Kept {
            clock: ReadClock {
                database_then,
                taken: Instant::now().checked_sub(Duration::from_secs(10)).unwrap(),
            },
            subscriptions: vec![
                rotated("a", database_then + seconds(5)),
                rotated("b", database_then + seconds(3600)),
            ],
        };
        let shown = kept.as_of_now(None);
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[0].health.previous_secret_expires_at, None, "passed");
        assert_eq!(
            shown[1].health.previous_secret_expires_at,
            Some(database_then + seconds(3600))
        );
        let one = kept.as_of_now(Some("b"));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].session_name, "b");
        assert!(kept.as_of_now(Some("c")).is_empty());
    }

    #[test]
    fn reads_the_triggers_payload() {
        let tenant = Uuid::now_v7();
        assert_eq!(
            parse_payload(&format!("{tenant}:test")),
            Some((tenant, Mode::Test))
        );
        assert_eq!(parse_payload(&format!("{tenant}:other")), None);
        assert_eq!(parse_payload("nonsense:live"), None);
        assert_eq!(parse_payload(""), None);
    }

    #[test]
    fn the_read_clock_runs_on_from_the_databases_time() {
        let database_then = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let taken = Instant::now().checked_sub(Duration::from_secs(5)).unwrap();
        let now = ReadClock {
            database_then,
            taken,
        }
        .now();
        assert!(now >= database_then + chrono::Duration::seconds(5), "{now}");
        assert!(now < database_then + chrono::Duration::seconds(60), "{now}");
    }
}
