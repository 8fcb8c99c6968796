//! Prometheus metrics. Each application owns its registry (no global state), so several
//! gateways in one test process do not mix their numbers.

use actix_web::http::{Method, StatusCode};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::time::Duration;

/// The methods the gateway serves. actix accepts any token as a method; each distinct one
/// would otherwise reach routing, the logs and (before labels were fixed) the metrics.
pub const SERVED_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Events per ingress transaction, up to well past the default `WAGW_INGRESS_BATCH` (256).
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    upstream_requests: IntCounterVec,
    upstream_latency: HistogramVec,
    /// The upstream refusing the organisation's credentials (401/403): an operator's alarm.
    upstream_credential_refusals: prometheus::IntCounter,
    pub pool_connections: IntGaugeVec,
    pub webhook_deliveries: IntCounterVec,
    pub webhook_attempt_latency: HistogramVec,
    pub webhook_outbox_depth: IntGauge,
    /// Sends by how pacing treated them: `unpaced`, `paced` (waited their turn), `refused`.
    pub pacing_sends: IntCounterVec,
    /// Reads of pacing policies from the database (cache misses): an unpaced session's sends
    /// cost none once its "no policy" is cached.
    pub pacing_policy_reads: prometheus::IntCounter,
    /// Events per ingress commit: `_count` is the transactions, `_sum` the events they stored.
    webhook_ingress_batch: prometheus::Histogram,
    webhook_ingress_commit: prometheus::Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("wagw".into()), None).expect("valid prefix");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "Requests served, by route and status",
            ),
            &["method", "route", "status"],
        )
        .unwrap();
        let http_latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Time to serve a request")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .unwrap();
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "upstream_requests_total",
                "Calls to the hosted API, by route and outcome",
            ),
            &["route", "status"],
        )
        .unwrap();
        let upstream_latency = HistogramVec::new(
            HistogramOpts::new(
                "upstream_request_duration_seconds",
                "Time the hosted API took",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .unwrap();
        let upstream_credential_refusals = prometheus::IntCounter::new(
            "upstream_credential_refusals_total",
            "Calls the hosted API refused for the organisation's credentials (401/403)",
        )
        .unwrap();
        let pool_connections = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )
        .unwrap();
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts by outcome",
            ),
            &["outcome"],
        )
        .unwrap();
        let webhook_attempt_latency = HistogramVec::new(
            HistogramOpts::new(
                "webhook_attempt_duration_seconds",
                "Time a tenant receiver took",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["outcome"],
        )
        .unwrap();
        let webhook_outbox_depth =
            IntGauge::new("webhook_outbox_depth", "Deliveries waiting to be attempted").unwrap();
        let (pacing_sends, pacing_policy_reads) = pacing_metrics(&registry);
        let (webhook_ingress_batch, webhook_ingress_commit) = ingress_metrics(&registry);
        for c in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_latency.clone()),
            Box::new(upstream_requests.clone()),
            Box::new(upstream_latency.clone()),
            Box::new(upstream_credential_refusals.clone()),
            Box::new(pool_connections.clone()),
            Box::new(webhook_deliveries.clone()),
            Box::new(webhook_attempt_latency.clone()),
            Box::new(webhook_outbox_depth.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            http_requests,
            http_latency,
            upstream_requests,
            upstream_latency,
            upstream_credential_refusals,
            pool_connections,
            webhook_deliveries,
            webhook_attempt_latency,
            webhook_outbox_depth,
            pacing_sends,
            pacing_policy_reads,
            webhook_ingress_batch,
            webhook_ingress_commit,
        }
    }

    /// One ingress transaction committed `events` events in `elapsed`.
    pub fn observe_ingress_commit(&self, events: usize, elapsed: Duration) {
        self.webhook_ingress_batch.observe(events as f64);
        self.webhook_ingress_commit.observe(elapsed.as_secs_f64());
    }

    /// `route` is a route template (or `unmatched`), never a client's path: every label comes
    /// from a fixed set, so no caller can add series.
    pub fn observe_request(
        &self,
        method: &Method,
        route: &str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        self.http_requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.http_latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// `outcome` is the upstream's status code, or `error`/`timeout` when it did not answer.
    pub fn observe_upstream(&self, route: &str, outcome: &str, elapsed: Duration) {
        self.upstream_requests
            .with_label_values(&[route, outcome])
            .inc();
        self.upstream_latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        if matches!(outcome, "401" | "403") {
            self.upstream_credential_refusals.inc();
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("exposition is UTF-8")
    }
}

/// The ingress's group commit: events per transaction and each transaction's time, registered.
fn ingress_metrics(registry: &Registry) -> (prometheus::Histogram, prometheus::Histogram) {
    let webhook_ingress_batch = prometheus::Histogram::with_opts(
        HistogramOpts::new(
            "webhook_ingress_batch_events",
            "Upstream events committed together by one ingress transaction",
        )
        .buckets(BATCH_BUCKETS.to_vec()),
    )
    .unwrap();
    let webhook_ingress_commit = prometheus::Histogram::with_opts(
        HistogramOpts::new(
            "webhook_ingress_commit_duration_seconds",
            "Time one ingress transaction took to store its events",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
    )
    .unwrap();
    for h in [&webhook_ingress_batch, &webhook_ingress_commit] {
        registry
            .register(Box::new(h.clone()))
            .expect("metric names are unique");
    }
    (webhook_ingress_batch, webhook_ingress_commit)
}

/// Pacing's metrics, registered in `registry`.
fn pacing_metrics(registry: &Registry) -> (IntCounterVec, prometheus::IntCounter) {
    let sends = IntCounterVec::new(
        Opts::new(
            "pacing_sends_total",
            "Sends by how pacing treated them (unpaced, paced, refused)",
        ),
        &["outcome"],
    )
    .unwrap();
    let policy_reads = prometheus::IntCounter::new(
        "pacing_policy_reads_total",
        "Pacing policies read from the database (cache misses)",
    )
    .unwrap();
    registry
        .register(Box::new(sends.clone()))
        .expect("metric names are unique");
    registry
        .register(Box::new(policy_reads.clone()))
        .expect("metric names are unique");
    (sends, policy_reads)
}

/// The methods the gateway serves, as labels; any other is `other` (the edge refuses them
/// before the metrics see them, so this is the second fence).
fn method_label(method: &Method) -> &'static str {
    SERVED_METHODS
        .iter()
        .find(|known| *known == method)
        .map_or("other", |known| known.as_str())
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_seven_methods_become_labels() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let odd = Method::from_bytes(b"M1AAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::TRACE), "other");
    }
}
