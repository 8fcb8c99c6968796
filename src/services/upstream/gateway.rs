//! The one way to call the upstream: every call, a tenant's or the gateway's own, is admitted
//! against the quotas (the organisation's per-second and monthly budget above all), sent, and
//! settled: counted once it may have reached the upstream, given back when it certainly did
//! not. A test key's call goes to the in-process simulator instead (the client it is given)
//! and is only counted in the test usage. Metrics are labelled with the upstream route the
//! call names.

use super::client::{UpstreamAnswer, UpstreamCall, UpstreamClient};
use super::error::{UpstreamError, UpstreamErrorKind};
use crate::domain::{Mode, Tenant};
use crate::services::quota::{Admission, QuotaError, Quotas};
use actix_web::http::StatusCode;
use bytes::Bytes;
use std::sync::Arc;

/// Whose budget a call spends.
#[derive(Clone, Copy)]
pub enum Payer<'a> {
    Tenant(&'a Tenant),
    /// The gateway's own calls (admin routes, clean-up, webhook registration without a
    /// tenant): only the organisation's budget applies.
    Gateway,
    /// A test key's call, to the simulator: it spends none of the tenant's month or rate nor
    /// the organisation's budget, and is counted apart.
    Test(&'a Tenant),
}

impl<'a> Payer<'a> {
    /// Who pays for a call of `tenant` made in `mode`.
    pub fn of(mode: Mode, tenant: &'a Tenant) -> Self {
        match mode {
            Mode::Live => Payer::Tenant(tenant),
            Mode::Test => Payer::Test(tenant),
        }
    }

    /// Who pays for a call the gateway makes of its own about `tenant`'s session in `mode`
    /// (registering its ingress): the organisation for a live one, nobody for a test one.
    pub fn own(mode: Mode, tenant: &'a Tenant) -> Self {
        match mode {
            Mode::Live => Payer::Gateway,
            Mode::Test => Payer::Test(tenant),
        }
    }
}

#[derive(Clone, Copy)]
pub struct Gateway<'a> {
    client: &'a UpstreamClient,
    quotas: &'a Arc<Quotas>,
}

/// What stops one of the gateway's own calls.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The quotas refused the call: nothing was sent.
    #[error("{0}")]
    Refused(QuotaError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// A whole answer to one of the gateway's own calls.
pub struct OwnAnswer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl<'a> Gateway<'a> {
    pub fn new(client: &'a UpstreamClient, quotas: &'a Arc<Quotas>) -> Self {
        Self { client, quotas }
    }

    /// Takes the call's share of every limit. Refused with the quota's own answer (429/503).
    pub async fn admit(
        &self,
        payer: Payer<'_>,
        operation: &'static str,
    ) -> Result<Admitted<'a>, QuotaError> {
        let admission = match payer {
            Payer::Tenant(tenant) => Some(self.quotas.admit(tenant, operation).await?),
            Payer::Gateway => Some(self.quotas.admit_own(operation).await?),
            Payer::Test(tenant) => {
                self.quotas.record_test_call(tenant.id, operation);
                None
            }
        };
        Ok(Admitted {
            gateway: *self,
            admission,
        })
    }

    /// One call of the gateway's own, admitted, sent and read whole. An upstream 401/403 is
    /// the organisation's credentials refused, whoever asked.
    pub async fn call_own(
        &self,
        operation: &'static str,
        call: &UpstreamCall,
    ) -> Result<OwnAnswer, GatewayError> {
        let admitted = self
            .admit(Payer::Gateway, operation)
            .await
            .map_err(GatewayError::Refused)?;
        let mut answer = admitted.send(call).await?;
        let status = answer.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(credentials_refused(status).into());
        }
        let body = answer.read_body().await?;
        Ok(OwnAnswer { status, body })
    }
}

/// The upstream refused the organisation's key or host: logged for the operator (the metric
/// is counted by `Quotas::observe_upstream`).
pub fn credentials_refused(status: StatusCode) -> UpstreamError {
    tracing::error!(
        upstream_status = status.as_u16(),
        "the upstream refused the gateway's credentials (WAGW_UPSTREAM_KEY / WAGW_UPSTREAM_HOST)"
    );
    UpstreamError::after_sending(UpstreamErrorKind::CredentialsRefused(status))
}

/// A call's claim on the quotas, until it is sent or given back. Dropped unsent (an error
/// between admission and sending, a cancelled request), it is given back.
#[must_use = "an admitted call must be sent or given back"]
pub struct Admitted<'a> {
    gateway: Gateway<'a>,
    admission: Option<Admission>,
}

impl Admitted<'_> {
    /// What the tenant's per-second limit has left after this call.
    pub fn rate_remaining(&self) -> Option<u32> {
        self.admission.as_ref().and_then(|a| a.rate_remaining)
    }

    /// Sends the call and settles the admission: it counts unless the request certainly never
    /// left. The upstream's rate-limit figures and credential refusals are noted here (never
    /// the simulator's, which a test call without admission reached).
    pub async fn send(mut self, call: &UpstreamCall) -> Result<UpstreamAnswer, UpstreamError> {
        let quotas = self.gateway.quotas;
        // Out of `self` before the await: a request dropped while in flight may have reached
        // the upstream, so it must not be given back (`Admission`'s own drop keeps the counts).
        let Some(admission) = self.admission.take() else {
            return self.gateway.client.send(call).await;
        };
        let sent = self.gateway.client.send(call).await;
        match &sent {
            Err(e) if !e.sent => quotas.cancel(admission).await,
            _ => quotas.commit(admission),
        }
        if let Ok(answer) = &sent {
            quotas.observe_upstream(answer.status().as_u16(), answer.headers());
        }
        sent
    }

    /// Gives the admission back: the call will not be sent.
    pub async fn give_back(mut self) {
        if let Some(admission) = self.admission.take() {
            self.gateway.quotas.cancel(admission).await;
        }
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let Some(admission) = self.admission.take() else {
            return;
        };
        let quotas = self.gateway.quotas.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { quotas.cancel(admission).await });
        }
    }
}
