//! The pacing phase: a send of a paced session waits its turn here, after every refusal of
//! the gateway's own (so a refused call never holds the line) and before any quota is taken
//! (so the wait counts nothing, and a pacing refusal spends nothing).

use super::ProxyCtx;
use crate::http::error::ApiError;
use crate::services::pacing::{PacedSend, Turn};
use serde_json::Value;

impl ProxyCtx<'_> {
    /// The send's turn, or `None` when the row sends nothing or nothing paces the session
    /// (known from the cache: then no database is asked).
    pub(super) async fn pace(&self) -> Result<Option<Turn>, ApiError> {
        if !self.endpoint.sends_message {
            return Ok(None);
        }
        let (Some(session), Some(upstream)) = (&self.session, &self.upstream) else {
            return Ok(None);
        };
        let pacing = &self.state.pacing;
        let Some(policy) = pacing.policy_for(self.tenant(), upstream.as_str()).await? else {
            return Ok(None);
        };
        // Validated: every row that sends a message requires its `chatId`.
        let chat_id = self
            .json
            .as_ref()
            .and_then(|body| body.get("chatId"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let send = PacedSend {
            tenant: self.tenant(),
            mode: self.mode(),
            session,
            upstream,
            chat_id,
        };
        let turn = pacing.enter(&send, &policy).await?;
        crate::http::quota_headers::note_pacing_wait(self.req, turn.waited_ms);
        Ok(Some(turn))
    }
}
