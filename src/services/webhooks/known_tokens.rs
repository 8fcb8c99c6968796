//! The ingress tokens that exist, held in memory, so that a stranger guessing tokens costs no
//! database round trip (review M7).
//!
//! A cache of unknown tokens would not do: every guess is a new token. Instead each replica
//! holds the whole (small: one per upstream session) set of tokens and answers "unknown" from
//! memory. A token it does not hold makes it read the set again, at most once per
//! [`MIN_REFRESH`] whatever the number of callers, so a token registered a moment ago on any
//! replica is recognised within about a second (the upstream retries sooner than it gives up).
//! A token removed since the last read only costs the lookup that then finds no row.
//!
//! The session behind each token used is kept too, so that an event costs no look-up of its
//! own: dropped whenever any replica announces a change to sessions or tenants (a session
//! deleted, a tenant deleted), and after [`INGRESS_TTL`] at most should an announcement be
//! lost.

use crate::db::{ChangeFeed, Db};
use crate::services::cache::InvalidatingCache;
use crate::store::webhooks::ingress::{self, Ingress};
use crate::store::StoreError;
use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The set is read again for an unknown token at most this often.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
/// The longest a token's session is kept without being read again.
pub const INGRESS_TTL: Duration = Duration::from_secs(30);
/// Tokens the gateway issues are 43 alphanumerics; anything unlike a token is refused at once.
const MAX_TOKEN_LEN: usize = 64;

pub struct KnownTokens {
    known: RwLock<Known>,
    /// One reader of the set at a time; the others wait for its result.
    refreshing: tokio::sync::Mutex<()>,
    /// Token → the session it belongs to, for tokens in use.
    ingresses: InvalidatingCache<String, Ingress>,
}

impl Default for KnownTokens {
    fn default() -> Self {
        Self {
            known: RwLock::default(),
            refreshing: tokio::sync::Mutex::default(),
            ingresses: InvalidatingCache::with_ttl(100_000, INGRESS_TTL),
        }
    }
}

#[derive(Default)]
struct Known {
    tokens: HashSet<String>,
    read_at: Option<Instant>,
}

impl KnownTokens {
    /// The session `token` belongs to (with the key its events are signed with), from memory
    /// when it was read since the last announced change.
    pub async fn ingress(&self, db: &Db, token: &str) -> Result<Option<Ingress>, StoreError> {
        if let Some(hit) = self.ingresses.get(token).await {
            return Ok(Some(hit));
        }
        let since = self.ingresses.generation();
        let found = ingress::lookup(db, token).await?;
        if let Some(found) = &found {
            // Read across an announced change, it serves this event and is not kept.
            self.ingresses
                .insert_read_at(token.to_owned(), found.clone(), since)
                .await;
        }
        Ok(found)
    }

    /// Drops every kept session on each announcement of `channels` (the sessions' and the
    /// tenants'), and whenever announcements may have been missed.
    pub fn follow(&self, feed: &ChangeFeed, channels: &[&'static str]) {
        for channel in channels {
            let ingresses = self.ingresses.clone();
            feed.on(channel, move |_| {
                ingresses.invalidate_all();
                std::future::ready(())
            });
        }
    }

    /// A token this replica is about to register: the upstream may post to it at once, before
    /// the set is read again.
    pub fn learn(&self, token: &str) {
        let mut known = self
            .known
            .write()
            .expect("the token set's lock is never poisoned");
        known.tokens.insert(token.to_owned());
    }

    /// Whether `token` is (as far as this replica can tell cheaply) a session's ingress token.
    /// `false` is definite; `true` still needs the row.
    pub async fn may_exist(&self, db: &Db, token: &str) -> Result<bool, StoreError> {
        if token.is_empty()
            || token.len() > MAX_TOKEN_LEN
            || !token.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Ok(false);
        }
        let seen_read_at = {
            let known = self
                .known
                .read()
                .expect("the token set's lock is never poisoned");
            if known.tokens.contains(token) {
                return Ok(true);
            }
            known.read_at
        };
        if seen_read_at.is_some_and(|at| at.elapsed() < MIN_REFRESH) {
            return Ok(false);
        }
        let _reading = self.refreshing.lock().await;
        {
            let known = self
                .known
                .read()
                .expect("the token set's lock is never poisoned");
            if known.read_at != seen_read_at {
                // Read by another caller while this one waited.
                return Ok(known.tokens.contains(token));
            }
        }
        let tokens = ingress::tokens(db).await?;
        let mut known = self
            .known
            .write()
            .expect("the token set's lock is never poisoned");
        known.tokens = tokens.into_iter().collect();
        known.read_at = Some(Instant::now());
        Ok(known.tokens.contains(token))
    }
}
