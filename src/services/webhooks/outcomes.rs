//! The delivery workers' outcomes, recorded by group commit: the attempts that end while one
//! transaction commits are recorded together in the next ([`GroupCommit`]), so a busy relay
//! spends one commit on many deliveries rather than one each. Each attempt is still recorded by
//! its own statement, in one transaction, so the endpoint's health stays exact.
//!
//! A batch that fails while the database is away fails every attempt in it; one that fails for
//! another reason (a deadlock with another replica's batch) is recorded again one attempt at a
//! time. An attempt whose outcome is not recorded falls due again when its lease ends:
//! delivered at least once, never lost.

use crate::db::group_commit::GroupCommit;
use crate::db::Db;
use crate::services::webhooks::listing::SubscriptionLists;
use crate::store::webhooks::outbox::{self, Completed, Finished};
use crate::store::StoreError;
use std::time::Duration;

/// The outcome was not recorded (logged with the cause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRecorded;

/// The replica's group commit of attempt outcomes.
pub struct Outcomes {
    commits: GroupCommit<Finished, Result<bool, NotRecorded>>,
}

impl Outcomes {
    /// `in_flight` bounds the attempts that can end at once: a batch takes them all. An
    /// endpoint whose health changed has its tenant's list dropped from `lists` once recorded.
    pub fn start(
        db: Db,
        in_flight: usize,
        disable_after: Duration,
        lists: SubscriptionLists,
    ) -> Self {
        let commits = GroupCommit::start(
            &db.clone(),
            in_flight,
            in_flight,
            move |finished: Vec<Finished>| {
                let (db, lists) = (db.clone(), lists.clone());
                async move {
                    let recorded = record(&db, &finished, disable_after).await;
                    for (tenant, mode) in recorded.iter().flatten().filter_map(|c| c.health_changed)
                    {
                        lists.changed(tenant, mode).await;
                    }
                    recorded
                        .into_iter()
                        .map(|c| c.map(|c| c.failing_long))
                        .collect()
                }
            },
        );
        Self { commits }
    }

    /// Records `finished`; answers whether its endpoint has now been failing long.
    pub async fn record(&self, finished: Finished) -> Result<bool, NotRecorded> {
        self.commits
            .submit(finished)
            .await
            .map_err(|_| NotRecorded)?
    }
}

async fn record(
    db: &Db,
    finished: &[Finished],
    disable_after: Duration,
) -> Vec<Result<Completed, NotRecorded>> {
    let err = match outbox::complete_all(db, finished, disable_after).await {
        Ok(failing_long) => return failing_long.into_iter().map(Ok).collect(),
        Err(err) => err,
    };
    if matches!(err, StoreError::Unavailable(_)) || finished.len() == 1 {
        tracing::warn!(attempts = finished.len(), error = %err, "recording webhook attempts");
        return vec![Err(NotRecorded); finished.len()];
    }
    tracing::warn!(
        attempts = finished.len(),
        error = %err, "recording webhook attempts together failed; recording them one by one"
    );
    let mut outcomes = Vec::with_capacity(finished.len());
    for one in finished {
        outcomes.push(
            outbox::complete(db, one, disable_after)
                .await
                .map_err(|err| {
                    tracing::warn!(delivery = %one.id, error = %err, "recording a webhook attempt");
                    NotRecorded
                }),
        );
    }
    outcomes
}
