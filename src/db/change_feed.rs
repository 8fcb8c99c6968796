//! One `LISTEN` connection per replica for every channel the replica follows, and the one
//! rule for a lost connection: whatever was announced meanwhile is unknown, so every
//! follower is told to forget everything (on every reconnect, too).
//!
//! Followers register before the feed runs (`on` for a handler, `subscribe` for a wake-up);
//! a channel registered later is listened to from the next reconnect.

use crate::db::Db;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Pause before reconnecting after the connection failed.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// What a follower hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A notification on the channel, with its payload.
    Notified(String),
    /// Notifications may have been missed: forget everything derived from them.
    Missed,
}

type Handler = Arc<dyn Fn(Signal) -> BoxFuture<'static, ()> + Send + Sync>;

pub struct ChangeFeed {
    pool: Db,
    followers: Mutex<HashMap<&'static str, Vec<Handler>>>,
}

impl ChangeFeed {
    pub fn new(pool: Db) -> Arc<Self> {
        Arc::new(Self {
            pool,
            followers: Mutex::default(),
        })
    }

    /// Calls `handler` with every signal of `channel`, one at a time, in order.
    pub fn on<F, Fut>(&self, channel: &'static str, handler: F)
    where
        F: Fn(Signal) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |signal| Box::pin(handler(signal)));
        self.followers
            .lock()
            .expect("followers poisoned")
            .entry(channel)
            .or_default()
            .push(handler);
    }

    /// A wake-up for every notification on `channel` and for every loss (so a waiter
    /// re-reads its table). It works across runtimes: a worker thread may wait on it.
    pub fn subscribe(&self, channel: &'static str) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        let notify = wake.clone();
        self.on(channel, move |_| {
            notify.notify_one();
            std::future::ready(())
        });
        wake
    }

    /// Listens until `stop`, reconnecting whenever the connection is lost.
    pub async fn run(&self, stop: CancellationToken) {
        loop {
            let listened = tokio::select! {
                _ = stop.cancelled() => return,
                listened = self.listen() => listened,
            };
            if let Err(e) = listened {
                tracing::warn!("change feed failed, reconnecting: {e:#}");
            }
            self.dispatch_all(Signal::Missed).await;
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RECONNECT_PAUSE) => {}
            }
        }
    }

    async fn listen(&self) -> anyhow::Result<()> {
        let mut listener = self.pool.listener().await?;
        let channels = self.channels();
        listener.listen_all(channels.iter().copied()).await?;
        // Anything may have changed while we were not listening.
        self.dispatch_all(Signal::Missed).await;
        loop {
            match listener.try_recv().await? {
                Some(note) => {
                    let handlers = self.handlers(note.channel());
                    for handler in handlers {
                        handler(Signal::Notified(note.payload().to_owned())).await;
                    }
                }
                // The connection dropped (the listener reconnects on the next call):
                // announcements may have been missed meanwhile.
                None => self.dispatch_all(Signal::Missed).await,
            }
        }
    }

    fn channels(&self) -> Vec<&'static str> {
        let followers = self.followers.lock().expect("followers poisoned");
        followers.keys().copied().collect()
    }

    fn handlers(&self, channel: &str) -> Vec<Handler> {
        let followers = self.followers.lock().expect("followers poisoned");
        followers.get(channel).cloned().unwrap_or_default()
    }

    async fn dispatch_all(&self, signal: Signal) {
        let handlers: Vec<Handler> = {
            let followers = self.followers.lock().expect("followers poisoned");
            followers.values().flatten().cloned().collect()
        };
        for handler in handlers {
            handler(signal.clone()).await;
        }
    }
}
