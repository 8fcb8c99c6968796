//! A paced send's way through its session's line: a ticket, the wait for its turn, the
//! release to the upstream, and the end of its turn ([`Turn`]), which lets the next one go.

use super::{Pacing, PacingError, Refusal};
use crate::db::Db;
use crate::domain::pacing::{chat_key, Hold, Line, Phase, Policy, Turn as When};
use crate::domain::{Mode, SessionName, UpstreamSession};
use crate::store::pacing::{self as store, NewTicket, Ticket, UsageCounts, UsageKey, Windows};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use std::time::Duration;
use uuid::Uuid;

/// How often a send whose predecessor is still in flight on another replica looks again,
/// should the announcement of its end be lost (it is usually woken at once).
const POLL: Duration = Duration::from_millis(250);

/// One send of a paced session.
pub struct PacedSend<'a> {
    pub tenant: Uuid,
    pub mode: Mode,
    pub session: &'a SessionName,
    pub upstream: &'a UpstreamSession,
    /// The body's `chatId`, as the tenant wrote it.
    pub chat_id: &'a str,
}

/// A send's turn: from its ticket on, it holds the line until it ends. `end` says whether
/// the call may have reached the upstream; dropped without it (a cancelled request), it ends
/// in the background, as a send that may have if it was released, else as one given up.
#[must_use = "a turn must be ended, or the line waits for it to expire"]
pub struct Turn {
    db: Db,
    upstream: String,
    ticket: i64,
    usage: Usage,
    /// How long the send waited for its turn, in milliseconds.
    pub waited_ms: u64,
    /// Whether a limit held it back.
    held: bool,
    /// Whether it was released to the upstream.
    released: bool,
    ended: bool,
}

/// Where the send's usage is counted.
#[derive(Clone)]
struct Usage {
    tenant: Uuid,
    day: chrono::NaiveDate,
    mode: Mode,
    session: String,
}

impl Pacing {
    /// Waits for the send's turn in its session's line and releases it, or refuses it when
    /// the wait would pass the maximum (then it reserved nothing, or gave back its ticket).
    pub async fn enter(&self, send: &PacedSend<'_>, policy: &Policy) -> Result<Turn, PacingError> {
        let chat = chat_key(send.chat_id);
        let gap = policy.gap_ms(rand::random::<f64>());
        let windows = Windows {
            per_minute: policy.max_per_minute,
            per_hour: policy.max_per_hour,
            new_chats: policy.max_new_chats_per_day,
        };
        let upstream = send.upstream.as_str();
        let reserved = store::reserve(&self.db, upstream, &chat, windows, |line| {
            self.place(policy, line, gap)
        })
        .await?;
        let ticket = match reserved {
            Ok(ticket) => ticket,
            Err(hold) => return Err(self.refuse(send, &chat, policy, hold).await),
        };
        let mut turn = Turn {
            db: self.db.clone(),
            upstream: upstream.to_owned(),
            ticket: ticket.number,
            usage: Usage {
                tenant: send.tenant,
                day: self.quotas.clock().now().date_naive(),
                mode: send.mode,
                session: send.session.as_str().to_owned(),
            },
            waited_ms: 0,
            held: false,
            released: false,
            ended: false,
        };
        let place = Place {
            upstream,
            chat: &chat,
            windows,
            gap,
        };
        let released = match self.wait_turn(&ticket, &place, policy).await {
            Ok(released) => released,
            Err(e) => {
                turn.end(false).await;
                return Err(match e {
                    Waited::Refused(hold) => self.refuse(send, &chat, policy, hold).await,
                    Waited::Failed(e) => e,
                });
            }
        };
        match store::release(&self.db, upstream, ticket.number, released.new_chat).await? {
            Some(waited) => turn.waited_ms = waited.max(0) as u64,
            None => {
                // The session was deleted meanwhile, and its line with it.
                turn.end(false).await;
                return Err(StoreError::NotFound("session").into());
            }
        }
        turn.held = released.held;
        turn.released = true;
        self.count("paced");
        Ok(turn)
    }

    /// A new ticket's slot, predicted from the line; refused (`Err`) when even the
    /// prediction waits past the maximum.
    fn place(
        &self,
        policy: &Policy,
        line: &Line,
        gap: u32,
    ) -> Result<NewTicket, (Hold, Option<Duration>)> {
        match policy.turn(line, gap, Phase::Reserve) {
            When::Never => Err((Hold::NewChats, None)),
            When::At { at, hold } if wait(line.now, at) > self.max_wait => {
                Err((hold, Some(wait(line.now, at))))
            }
            When::At { at, .. } => Ok(self.ticket_at(line, at, gap)),
            When::AfterPrevious => Ok(self.ticket_at(line, line.now, gap)),
        }
    }

    fn ticket_at(&self, line: &Line, slot_at: DateTime<Utc>, gap: u32) -> NewTicket {
        let held = self.max_wait + self.in_flight;
        NewTicket {
            slot_at,
            gap_ms: gap,
            new_chat: line.new_chat,
            expires_at: line.now + delta(held),
        }
    }

    /// Waits until the ticket's turn: the send before it answered, the interval after that
    /// passed, every window open.
    async fn wait_turn(
        &self,
        ticket: &Ticket,
        place: &Place<'_>,
        policy: &Policy,
    ) -> Result<Released, Waited> {
        let deadline = ticket.reserved_at + delta(self.max_wait);
        let mut held = false;
        loop {
            // Listening before reading: an end announced in between still wakes this send.
            let moved = self.line_moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            let line = store::read_line(
                &self.db,
                place.upstream,
                ticket.number,
                place.chat,
                place.windows,
            )
            .await
            .map_err(|e| Waited::Failed(e.into()))?;
            match policy.turn(&line, place.gap, Phase::Release) {
                When::Never => return Err(Waited::Refused((Hold::NewChats, None))),
                When::AfterPrevious if line.now >= deadline => {
                    let gap =
                        Duration::from_millis(u64::from(place.gap)).max(Duration::from_secs(1));
                    return Err(Waited::Refused((Hold::Interval, Some(self.max_wait + gap))));
                }
                When::AfterPrevious => {
                    held = true;
                    tokio::select! {
                        _ = moved => {}
                        _ = tokio::time::sleep(POLL) => {}
                    }
                }
                When::At { at, hold } if at > deadline => {
                    return Err(Waited::Refused((hold, Some(wait(line.now, at)))))
                }
                When::At { at, .. } if at > line.now => {
                    held = true;
                    tokio::time::sleep(wait(line.now, at)).await;
                }
                When::At { .. } => {
                    return Ok(Released {
                        new_chat: line.new_chat,
                        held,
                    })
                }
            }
        }
    }

    /// Counts a refusal and words it.
    async fn refuse(
        &self,
        send: &PacedSend<'_>,
        chat: &str,
        policy: &Policy,
        (hold, wait): (Hold, Option<Duration>),
    ) -> PacingError {
        self.count("refused");
        self.quotas.record_refusal(send.tenant, "pacing");
        let key = UsageKey {
            tenant: send.tenant,
            day: self.quotas.clock().now().date_naive(),
            mode: send.mode,
            session: send.session.as_str(),
        };
        let counts = UsageCounts {
            refusals: 1,
            ..UsageCounts::default()
        };
        if let Err(e) = store::count_usage(&self.db, key, counts).await {
            tracing::warn!("counting a pacing refusal: {e}");
        }
        PacingError::Refused(Refusal {
            session: send.session.as_str().to_owned(),
            chat: chat.to_owned(),
            policy: *policy,
            hold,
            wait,
            max_wait: self.max_wait,
        })
    }
}

/// Where a ticket stands in the line, and what its turn looks at.
struct Place<'a> {
    upstream: &'a str,
    chat: &'a str,
    windows: Windows,
    /// Its least distance from the send before (interval and jitter), in milliseconds.
    gap: u32,
}

/// A send whose turn came.
struct Released {
    new_chat: bool,
    /// Whether a limit held it back (more than the database's round trips).
    held: bool,
}

/// Why a send stopped waiting.
enum Waited {
    Refused((Hold, Option<Duration>)),
    Failed(PacingError),
}

/// From `now` until `at` (zero if `at` has passed).
fn wait(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or_default()
}

fn delta(duration: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
}

impl Turn {
    fn wait(&self) -> Wait {
        Wait {
            held: self.held,
            ms: self.waited_ms,
        }
    }

    /// Ends the turn: `sent` when the call may have reached the upstream (it is counted, and
    /// the next send's interval runs from now), else the line moves on at once.
    pub async fn end(mut self, sent: bool) {
        self.ended = true;
        finish(
            &self.db,
            &self.upstream,
            self.ticket,
            sent,
            &self.usage,
            self.wait(),
        )
        .await;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let (db, upstream, ticket) = (self.db.clone(), self.upstream.clone(), self.ticket);
        let (usage, wait, sent) = (self.usage.clone(), self.wait(), self.released);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { finish(&db, &upstream, ticket, sent, &usage, wait).await });
        }
    }
}

/// How long a send waited, and whether a limit held it.
#[derive(Clone, Copy)]
struct Wait {
    held: bool,
    ms: u64,
}

async fn finish(db: &Db, upstream: &str, ticket: i64, sent: bool, usage: &Usage, wait: Wait) {
    if let Err(e) = store::finish(db, upstream, ticket, sent).await {
        // The ticket expires instead: the line behind it waits until then.
        tracing::warn!("ending a paced send's turn: {e}");
    }
    if !sent {
        return;
    }
    let key = UsageKey {
        tenant: usage.tenant,
        day: usage.day,
        mode: usage.mode,
        session: &usage.session,
    };
    let counts = UsageCounts {
        sends: 1,
        waited: i64::from(wait.held),
        wait_ms: wait.ms as i64,
        refusals: 0,
    };
    if let Err(e) = store::count_usage(db, key, counts).await {
        tracing::warn!("counting a paced send: {e}");
    }
}
