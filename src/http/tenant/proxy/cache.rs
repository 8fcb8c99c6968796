//! The `contacts/check-exists` cache: the seed advises calling it before every send.

use bytes::Bytes;
use moka::future::Cache;
use std::time::Duration;
use uuid::Uuid;

/// `contacts/check-exists` answers, bounded per tenant: each tenant has its own cache, so one
/// tenant's lookups can evict only its own entries (and a bounded number of tenants is kept).
pub struct CheckExistsCache {
    ttl: Duration,
    tenants: Cache<Uuid, Cache<(String, String), Bytes>>,
}

impl CheckExistsCache {
    const TENANTS: u64 = 10_000;
    const PER_TENANT: u64 = 10_000;

    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            tenants: Cache::builder()
                .max_capacity(Self::TENANTS)
                .time_to_idle(ttl)
                .build(),
        }
    }

    pub async fn get(&self, (tenant, session, phone): (Uuid, String, String)) -> Option<Bytes> {
        self.tenants
            .get(&tenant)
            .await?
            .get(&(session, phone))
            .await
    }

    pub async fn insert(&self, (tenant, session, phone): (Uuid, String, String), answer: Bytes) {
        let ttl = self.ttl;
        let cache = self
            .tenants
            .get_with(tenant, async move {
                Cache::builder()
                    .max_capacity(Self::PER_TENANT)
                    .time_to_live(ttl)
                    .build()
            })
            .await;
        cache.insert((session, phone), answer).await;
    }
}
