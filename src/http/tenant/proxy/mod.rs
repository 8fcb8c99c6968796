//! A tenant call as named phases over one `ProxyCtx` (pingora's `ProxyHttp` shape):
//! scope → resolve_session → validate → idempotency → pace → admit → upstream_request →
//! response_filter → settle. Authentication happened in the `TenantCaller` extractor, so
//! nothing here runs for an unauthenticated request; the quota headers are stamped on the
//! answer by `http::quota_headers`, whatever it is.

mod answer;
mod cache;
mod pace;
mod request;
mod special;

use crate::domain::webhooks::NewSubscription as NewWebhook;
use crate::domain::{Mode, SessionName, UpstreamSession};
use crate::http::error::ApiError;
use crate::http::extract::TenantCaller;
use crate::http::routes::endpoints::{Endpoint, Tag};
use crate::http::state::AppState;
use crate::http::tenant::ownership::owned_session;
use crate::http::tenant::rewrite::{rename_in_text, rename_session_fields};
use crate::http::tenant::session_config;
use crate::http::tenant::webhooks::{self, SessionTarget};
use crate::services::idempotency::{self, Claim, Claimed};
use crate::services::sessions::OwnedSession;
use crate::services::upstream::client::{check_json, parse_json};
use crate::services::upstream::gateway::credentials_refused;
use crate::services::upstream::{
    Admitted, Gateway, Payer, UpstreamAnswer, UpstreamCall, UpstreamError,
};
use crate::services::webhooks::registration::{Registrar, SessionRef};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use answer::Answer;
use bytes::Bytes;
use cache::CheckExistsCache;
use serde_json::Value;
use special::Special;
use std::collections::HashMap;
use std::time::Duration;

/// The proxy's own state, shared by every worker: everything else it uses is the app's.
pub struct ProxyState {
    /// `contacts/check-exists` answers per tenant, session and phone number.
    check_exists: CheckExistsCache,
    /// How long a concurrent twin of an idempotent request waits for the first one's answer.
    idempotency_wait: Duration,
}

impl ProxyState {
    /// `longest_call`: the most a call may take (its pacing wait and the upstream's timeout).
    pub fn new(check_exists_ttl: Duration, longest_call: Duration) -> Self {
        Self {
            check_exists: CheckExistsCache::new(check_exists_ttl),
            idempotency_wait: longest_call + Duration::from_secs(1),
        }
    }
}

/// The call as the phases see it, filled in as they run.
pub struct ProxyCtx<'a> {
    endpoint: &'static Endpoint,
    special: &'static dyn Special,
    req: &'a HttpRequest,
    caller: &'a TenantCaller,
    state: &'a AppState,
    /// The parsed body, when the endpoint takes one; in the upstream's names once the call
    /// is built (`request::upstream_call`).
    json: Option<Value>,
    raw_body: Bytes,
    /// `config.webhooks` of a create or start body, checked and taken out of `json`: relayed
    /// subscriptions once the upstream has the session.
    config_webhooks: Vec<NewWebhook>,
    /// The tenant's name for the session the call names.
    session: Option<SessionName>,
    /// Its upstream session: resolved, or recorded once a creation is admitted.
    upstream: Option<UpstreamSession>,
    /// The upstream path, its session renamed.
    call_path: String,
    /// The Idempotency-Key this call holds: its answer is buffered to be recorded there.
    claim: Option<Claimed>,
}

/// Serves one row of the table.
pub async fn handle(
    endpoint: &'static Endpoint,
    req: HttpRequest,
    payload: web::Payload,
    caller: TenantCaller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // The row's scope was checked by the extractor (`http::extract::requiring`): the body is
    // read only once the caller may call this row.
    let limit = request::body_limit(endpoint, &state.config);
    let body = crate::http::body::read(&req, payload, limit).await?;
    let mut ctx = ProxyCtx::new(endpoint, &req, &caller, &state, body)?;
    ctx.resolve_session().await?;
    ctx.validate().await?;
    if let Some(hit) = ctx.cached_answer().await {
        return Ok(hit);
    }
    if let Some(stored) = ctx.idempotency().await? {
        return Ok(answer::replay(stored));
    }
    let outcome = match ctx.pace().await {
        Ok(turn) => {
            let outcome = ctx.forward().await;
            if let Some(turn) = turn {
                // `Err`: nothing reached the upstream, so the next send need not keep its
                // distance from this one.
                turn.end(outcome.is_ok()).await;
            }
            outcome
        }
        Err(refused) => Err(refused),
    };
    settle(ctx.claim.take(), outcome).await
}

impl<'a> ProxyCtx<'a> {
    fn new(
        endpoint: &'static Endpoint,
        req: &'a HttpRequest,
        caller: &'a TenantCaller,
        state: &'a AppState,
        raw_body: Bytes,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            endpoint,
            special: special::of(endpoint.handling),
            json: request::parse_body(endpoint, req, &raw_body)?,
            req,
            caller,
            state,
            raw_body,
            config_webhooks: Vec::new(),
            session: None,
            upstream: None,
            call_path: String::new(),
            claim: None,
        })
    }

    /// Ownership before validation: a session the tenant does not own is 404, whatever the
    /// body. A session the call creates needs only a valid name the key may use.
    async fn resolve_session(&mut self) -> Result<(), ApiError> {
        let Some(name) = request::tenant_session_name(self)? else {
            return Ok(());
        };
        if self.special.creates_session() {
            let name = SessionName::parse_new(&name)?;
            if !self.caller.may_use_session(name.as_str()) {
                return Err(ApiError::forbidden(format!(
                    "this key may not use a session named `{name}`"
                )));
            }
            self.session = Some(name);
            return Ok(());
        }
        let (name, upstream) = owned_session(&self.state.sessions, self.caller, &name).await?;
        self.session = Some(name);
        self.upstream = Some(upstream);
        Ok(())
    }

    /// The body and query against the row's schema, `config.webhooks` taken out, and the
    /// upstream path checked: every refusal of the gateway's own comes before any quota.
    async fn validate(&mut self) -> Result<(), ApiError> {
        request::validate(self)?;
        if let (Some(json), true) = (self.json.as_mut(), request::takes_config(self.endpoint)) {
            let allow_private = self.state.relay.allow_private;
            self.config_webhooks = session_config::take_webhooks(json, allow_private).await?;
        }
        self.call_path = crate::http::routes::path_params::upstream_path(
            self.endpoint.path,
            self.req.uri().path(),
            self.upstream.as_ref().map(UpstreamSession::as_str),
        )?;
        Ok(())
    }

    async fn cached_answer(&self) -> Option<HttpResponse> {
        if !self.special.cached() {
            return None;
        }
        let hit = self.state.proxy.check_exists.get(self.cache_key()).await?;
        Some(answer::cached(hit))
    }

    /// Claims the Idempotency-Key, when the row takes one and the call carries it; the first
    /// answer to replay, if the key has one.
    async fn idempotency(&mut self) -> Result<Option<idempotency::StoredAnswer>, ApiError> {
        let raw = match (
            self.endpoint.idempotent,
            self.req.headers().get(idempotency::HEADER),
        ) {
            (true, Some(raw)) => raw,
            _ => return Ok(None),
        };
        let key = idempotency::parse_key(raw)?;
        // A test key's Idempotency-Keys are its own: the same key sent live is a new call. The
        // space cannot occur in a key (printable ASCII only), so no live key looks like this.
        let key = match self.mode() {
            Mode::Live => key,
            Mode::Test => format!("test {key}"),
        };
        let fingerprint = idempotency::fingerprint(self.endpoint.operation_id, &self.raw_body);
        let wait = self.state.proxy.idempotency_wait;
        match idempotency::claim(&self.state.db, self.tenant(), key, &fingerprint, wait).await? {
            Claim::Replay(stored) => Ok(Some(stored)),
            Claim::Fresh(claimed) => {
                self.claim = Some(claimed);
                Ok(None)
            }
        }
    }

    /// Admits, sends and filters the answer. `Err`: nothing reached the upstream, and what the
    /// call took of the quotas was given back. Once it may have, every outcome is an `Answer`.
    async fn forward(&mut self) -> Result<Answer, ApiError> {
        let gateway = self.gateway();
        let admitted = self.admit(&gateway).await?;
        let call = match self.upstream_request().await {
            Ok(call) => call,
            Err(refused) => {
                admitted.give_back().await;
                return Err(refused);
            }
        };
        if let Some(claim) = &mut self.claim {
            claim.sending(answer::lost());
        }
        let sent = admitted.send(&call).await;
        match self.after_send(sent).await {
            Ok(answer) => Ok(answer),
            Err(e) if !e.sent => Err(e.into()),
            Err(e) => Ok(Answer::failed(&e.into())),
        }
    }

    /// The upstream this call goes to: the hosted API for a live key, the replica's simulator
    /// for a test key (which then spends no quota: `Payer::Test`).
    fn gateway(&self) -> Gateway<'a> {
        let state = self.state;
        Gateway::new(state.upstreams().of(self.mode()), &state.quotas)
    }

    fn mode(&self) -> Mode {
        self.caller.key.mode
    }

    /// A replayed answer spends no quota: admission comes after the idempotency check.
    async fn admit(&self, gateway: &Gateway<'a>) -> Result<Admitted<'a>, ApiError> {
        let payer = Payer::of(self.mode(), &self.caller.tenant);
        let admitted = gateway.admit(payer, self.endpoint.operation_id).await?;
        crate::http::quota_headers::note_rate_remaining(self.req, admitted.rate_remaining());
        Ok(admitted)
    }

    /// Records a new session first, so the tenant's `max_sessions` is enforced atomically,
    /// then builds the call in upstream names.
    async fn upstream_request(&mut self) -> Result<UpstreamCall, ApiError> {
        if let (Some(name), true) = (&self.session, self.special.creates_session()) {
            let org_max = self.state.quotas.upstream_max_sessions;
            let upstream = self
                .state
                .sessions
                .create(self.tenant(), self.mode(), name, org_max)
                .await?;
            self.upstream = Some(upstream);
        }
        request::upstream_call(self)
    }

    /// Keeps the sessions table in step with what the upstream now has, registers a new
    /// session's ingress, subscribes `config.webhooks`, and filters the answer.
    async fn after_send(
        &self,
        sent: Result<UpstreamAnswer, UpstreamError>,
    ) -> Result<Answer, UpstreamError> {
        let answered = sent.as_ref().ok().map(UpstreamAnswer::status);
        if let (Some(name), true) = (&self.session, self.special.forgets_session(self, answered)) {
            let forgotten = self.state.sessions.forget(self.tenant(), self.mode(), name);
            if let Err(e) = forgotten.await {
                let was_sent = sent.as_ref().map_or_else(|e| e.sent, |_| true);
                return Err(UpstreamError::internal(was_sent, ApiError::from(e)));
            }
        }
        let upstream = sent?;
        if upstream.status().is_success() && self.special.creates_session() {
            self.register_ingress().await;
        }
        if upstream.status().is_success() && !self.config_webhooks.is_empty() {
            if let Err(error) = self.subscribe_config_webhooks().await {
                return Ok(Answer::failed(&error));
            }
        }
        self.response_filter(upstream).await
    }

    /// The answer in the tenant's terms: the error shape for errors, its session names, only
    /// its own sessions in a list; cached for check-exists.
    async fn response_filter(&self, mut upstream: UpstreamAnswer) -> Result<Answer, UpstreamError> {
        let status = upstream.status();
        if !upstream.is_json() {
            return Ok(match (status.is_success(), self.claim.is_some()) {
                (true, true) => Answer::buffered(status, upstream.read_body().await?, &upstream),
                (true, false) => Answer::streamed(upstream),
                (false, _) => Answer::upstream_error(status, None, &upstream),
            });
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(credentials_refused(status));
        }
        let raw = upstream.read_body().await?;
        let body = if status.is_success() && !self.rewrites_answer(&raw) {
            check_json(&raw)?;
            raw
        } else {
            let value = self
                .rename_answer(parse_json(&raw)?)
                .await
                .map_err(UpstreamError::internal_after_sending)?;
            if !status.is_success() {
                return Ok(Answer::upstream_error(status, Some(&value), &upstream));
            }
            let body = serde_json::to_vec(&value).map_err(UpstreamError::internal_after_sending)?;
            Bytes::from(body)
        };
        if self.special.cached() {
            let key = self.cache_key();
            self.state
                .proxy
                .check_exists
                .insert(key, body.clone())
                .await;
        }
        Ok(Answer::json(status, body, &upstream))
    }

    /// Whether a successful answer needs `rename_answer`, or goes on byte for byte (most
    /// sends: parsing and writing them again was a tenth of the gateway's own work per call).
    /// A list is kept to the tenant's sessions and a session answer shows `config`, always;
    /// otherwise only the upstream session's name needs renaming, and it can occur only where
    /// its bytes do: a name is `A-Za-z0-9_-`, which no JSON escape but `\u` can spell, so an
    /// answer with a `\u` escape is rewritten whatever it holds.
    fn rewrites_answer(&self, raw: &[u8]) -> bool {
        if self.special.lists_sessions() || self.endpoint.tag == Tag::Sessions {
            return true;
        }
        let Some(upstream) = &self.upstream else {
            return false;
        };
        let occurs = |needle: &[u8]| memchr::memmem::find(raw, needle).is_some();
        occurs(upstream.as_str().as_bytes()) || occurs(b"\\u")
    }

    /// Session fields renamed (error texts too), a list kept to the tenant's sessions, and
    /// the relayed subscriptions shown in `config`.
    async fn rename_answer(&self, mut value: Value) -> Result<Value, ApiError> {
        match (&self.session, &self.upstream) {
            (Some(name), Some(upstream)) => {
                rename_session_fields(&mut value, upstream.as_str(), name.as_str());
                // Error messages quote the session inside their text: rename it there too.
                for field in ["message", "error", "detail"] {
                    if let Some(text) = value.get_mut(field) {
                        rename_message(text, upstream.as_str(), name.as_str());
                    }
                }
            }
            _ if self.special.lists_sessions() => {
                // A key limited to some sessions sees only those.
                let owned = self.state.sessions.list(self.tenant(), self.mode()).await?;
                let visible: Vec<_> = owned
                    .iter()
                    .filter(|s| self.caller.may_use_session(&s.name))
                    .collect();
                value = own_sessions_only(value, &visible);
            }
            _ => {}
        }
        if self.endpoint.tag == Tag::Sessions {
            // Only session answers carry `config`; the tenant's one cached list covers them all.
            let one = self.session.as_ref().map(SessionName::as_str);
            let by_session = if value.get("config").is_some() || value.is_array() {
                let lists = &self.state.relay.subscriptions;
                webhooks::views_by_session(lists, self.tenant(), self.mode(), one).await?
            } else {
                HashMap::new()
            };
            session_config::show_subscriptions(&mut value, &by_session);
        }
        Ok(value)
    }

    /// The tenant's `config.webhooks`, subscribed exactly as `POST
    /// /v1/sessions/{session}/webhooks` would, now that the upstream has the session. A failure
    /// is reported with the session created: its webhooks can be added again through the
    /// relay's own route.
    async fn subscribe_config_webhooks(&self) -> Result<(), ApiError> {
        let (Some(name), Some(upstream)) = (&self.session, &self.upstream) else {
            return Ok(());
        };
        let target = SessionTarget {
            caller: self.caller,
            name,
            upstream,
        };
        webhooks::subscribe(&self.registrar(), &target, &self.config_webhooks)
            .await
            .map(drop)
            .map_err(|e| {
                ApiError::new(
                    e.status(),
                    format!("the session was created upstream, but config.webhooks could not be subscribed: {}", e.message()),
                )
            })
    }

    /// Registers the new session's ingress with the upstream for every event before the
    /// creation answers, so the tenant's event log misses none of the session's events. A
    /// failure is logged and left to the reconciler: the session exists either way.
    async fn register_ingress(&self) {
        let (Some(name), Some(upstream)) = (&self.session, &self.upstream) else {
            return;
        };
        let session = SessionRef {
            tenant: &self.caller.tenant,
            mode: self.mode(),
            name: name.as_str(),
            upstream,
        };
        if let Err(e) = self.registrar().resync(&session).await {
            tracing::warn!(session = %name, "registering a new session's ingress: {e:?}");
        }
    }

    fn registrar(&self) -> Registrar<'_> {
        let state = self.state;
        Registrar {
            db: &state.db,
            upstreams: state.upstreams(),
            quotas: &state.quotas,
            relay: &state.relay,
        }
    }

    fn tenant(&self) -> uuid::Uuid {
        self.caller.tenant.id
    }

    /// Cached check-exists answers are per tenant, upstream session and phone number.
    fn cache_key(&self) -> (uuid::Uuid, String, String) {
        let upstream = self.upstream.as_ref().map(|u| u.as_str().to_owned());
        let phone = crate::http::tenant::rewrite::query_param(self.req.query_string(), "phone");
        (
            self.tenant(),
            upstream.unwrap_or_default(),
            phone.unwrap_or_default(),
        )
    }
}

/// Records what the upstream answered under the Idempotency-Key, or frees the key when
/// nothing reached the upstream.
async fn settle(
    claim: Option<Claimed>,
    outcome: Result<Answer, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let Some(claim) = claim else {
        return outcome.map(|a| a.response);
    };
    match &outcome {
        Ok(Answer {
            response,
            recorded: Some(body),
        }) => {
            let content_type = response
                .headers()
                .get(actix_web::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            claim
                .complete(response.status().as_u16(), content_type, body)
                .await?;
        }
        // Nothing reached the upstream (a held key's answer is always recorded otherwise).
        _ => claim.release().await,
    }
    outcome.map(|a| a.response)
}

/// Keeps the entries of the upstream's session list that the tenant owns, renamed.
fn own_sessions_only(value: Value, owned: &[&OwnedSession]) -> Value {
    let names: HashMap<&str, &str> = owned
        .iter()
        .map(|s| (s.upstream_name.as_str(), s.name.as_str()))
        .collect();
    let Value::Array(items) = value else {
        return Value::Array(Vec::new());
    };
    let mine = items
        .into_iter()
        .filter_map(|mut item| {
            let upstream = item.get("name")?.as_str()?.to_owned();
            let tenant_name = names.get(upstream.as_str())?;
            rename_session_fields(&mut item, &upstream, tenant_name);
            Some(item)
        })
        .collect();
    Value::Array(mine)
}

fn rename_message(message: &mut Value, from: &str, to: &str) {
    match message {
        Value::String(s) => *s = rename_in_text(s, from, to),
        Value::Array(parts) => parts.iter_mut().for_each(|p| rename_message(p, from, to)),
        _ => {}
    }
}
