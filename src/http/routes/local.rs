//! The routes the gateway serves itself: the local `/v1` rows (deliveries, redelivery, a
//! session's pacing, `/v1/me`, `/v1/usage`, the event log and its streams), the admin API, the operations probes, the web console and the upstream's
//! webhook ingress. With
//! the forwarded table ([`super::endpoints`]) this is the whole HTTP surface: `super::routes`
//! registers both, and the OpenAPI document is built from both.
//!
//! Where a route's method and path come from: its handler's `#[utoipa::path(...)]`, read back
//! through the `utoipa::Path` struct the macro generates (`__path_<handler>`). The annotation
//! must state them for the document in any case (utoipa 4 takes them as literals, and without
//! actix's `#[get]` macros, which would answer 404 where 405 is wanted), so reading them back
//! leaves exactly one place that says them; writing them here as well would be a second copy
//! that nothing keeps in step. Two kinds of route have no annotation:
//! - the webhook rows of the forwarded table (`Handling::WebhookRelay`): served by handlers
//!   named here ([`relayed`]), while the row gives their method, path, scope and document;
//! - the ingress, which is not part of the API a client calls and is not documented: its
//!   path is the relay's own constant.
//!
//! The guard says who may call a route. The document's security and the answers every guarded
//! route can give (401, 503...) come from it, not from path prefixes. A tenant route's scope
//! is checked from its row too: the registration wraps the route (`http::extract::requiring`)
//! so that the `TenantCaller` extractor refuses a key without it, after authentication and
//! before the handler reads anything; no handler states its scope.

use crate::domain::Scope;
use crate::http::admin::{admins, audit, keys, sessions, tenants, usage};
use crate::http::routes::endpoints::Endpoint;
use crate::http::tenant::{events, me, pacing, webhook_endpoints, webhooks};
use actix_web::http::Method;
use actix_web::web;
use std::sync::LazyLock;
use utoipa::openapi::path::{Operation, PathItemType};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A tenant key; with a scope, one that grants it.
    Tenant(Option<Scope>),
    /// A tenant key granting the scope, which may also come in the `x-api-key` query
    /// parameter: the event streams, which a browser opens without headers.
    Stream(Scope),
    /// An admin token from `POST /admin/v1/login`.
    Admin,
    /// Anyone: the admin login, which issues the admin token (and reads the database).
    AdminLogin,
    /// Anyone, and the answer never depends on credentials: the probes.
    Open,
    /// Open unless the operator set `WAGW_METRICS_TOKEN`.
    MetricsToken,
    /// The upstream delivering events: the URL's token and the HMAC authenticate it.
    Ingress,
}

/// Builds the actix route of a handler (the method is added by the registration).
pub type Handler = fn() -> actix_web::Route;

pub struct Route {
    pub method: Method,
    pub path: String,
    pub guard: Guard,
    pub handler: Handler,
    /// The operation as the handler's annotation documents it; `None` for an undocumented route.
    pub operation: Option<(PathItemType, Operation)>,
}

impl Route {
    /// A route documented by its handler's `#[utoipa::path]`, which gives its method and path.
    pub fn documented<P: utoipa::Path>(guard: Guard, handler: Handler) -> Self {
        let item = P::path_item(None);
        let mut operations = item.operations.into_iter();
        let (kind, operation) = operations
            .next()
            .expect("an annotated handler documents an operation");
        assert!(operations.next().is_none(), "one operation per handler");
        Self {
            method: method_of(&kind),
            path: P::path(),
            guard,
            handler,
            operation: Some((kind, operation)),
        }
    }
}

/// A documented route: `route!(guard, module::handler, __path_handler)`, the last being the
/// struct its annotation generates (checked at compile time: `macro_rules!` cannot build the
/// name itself).
macro_rules! route {
    ($guard:expr, $module:ident :: $handler:ident, $doc:ident) => {{
        const _: () = assert!(
            same(stringify!($doc), concat!("__path_", stringify!($handler))),
            "the annotation struct must be the handler's"
        );
        Route::documented::<$module::$doc>($guard, || web::route().to($module::$handler))
    }};
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Every route of this table.
pub fn all() -> &'static [Route] {
    static TABLE: LazyLock<Vec<Route>> = LazyLock::new(|| {
        [tenant_rows(), admin_rows(), service_rows()]
            .into_iter()
            .flatten()
            .collect()
    });
    &TABLE
}

/// The tenant's own rows under /v1, and its event log.
fn tenant_rows() -> Vec<Route> {
    use Guard::{Stream, Tenant};
    use Scope::{EventsRead, SessionsRead, SessionsWrite, UsageRead, WebhooksRead, WebhooksWrite};
    vec![
        // The tenant's own rows under /v1
        route!(Tenant(None), me::me, __path_me),
        route!(
            Tenant(Some(UsageRead)),
            usage::tenant_usage,
            __path_tenant_usage
        ),
        route!(
            Tenant(Some(WebhooksRead)),
            webhooks::deliveries,
            __path_deliveries
        ),
        route!(
            Tenant(Some(WebhooksWrite)),
            webhooks::redeliver,
            __path_redeliver
        ),
        route!(
            Tenant(Some(WebhooksWrite)),
            webhook_endpoints::rotate_secret,
            __path_rotate_secret
        ),
        route!(
            Tenant(Some(WebhooksWrite)),
            webhook_endpoints::enable,
            __path_enable
        ),
        route!(
            Tenant(Some(WebhooksWrite)),
            webhook_endpoints::recover,
            __path_recover
        ),
        route!(
            Tenant(Some(SessionsRead)),
            pacing::get_pacing,
            __path_get_pacing
        ),
        route!(
            Tenant(Some(SessionsWrite)),
            pacing::set_pacing,
            __path_set_pacing
        ),
        route!(
            Tenant(Some(SessionsWrite)),
            pacing::delete_pacing,
            __path_delete_pacing
        ),
        // The event log
        route!(Tenant(Some(EventsRead)), events::list, __path_list),
        route!(Stream(EventsRead), events::stream, __path_stream),
        route!(Stream(EventsRead), events::websocket, __path_websocket),
    ]
}

/// The admin API.
fn admin_rows() -> Vec<Route> {
    use Guard::{Admin, AdminLogin};
    vec![
        // Admin
        route!(AdminLogin, admins::login, __path_login),
        route!(Admin, admins::list_admins, __path_list_admins),
        route!(Admin, admins::create_admin, __path_create_admin),
        route!(Admin, admins::delete_admin, __path_delete_admin),
        route!(
            Admin,
            admins::change_own_password,
            __path_change_own_password
        ),
        route!(Admin, tenants::create_tenant, __path_create_tenant),
        route!(Admin, tenants::list_tenants, __path_list_tenants),
        route!(Admin, tenants::get_tenant, __path_get_tenant),
        route!(Admin, tenants::update_tenant, __path_update_tenant),
        route!(Admin, tenants::delete_tenant, __path_delete_tenant),
        route!(Admin, tenants::get_tenant_pacing, __path_get_tenant_pacing),
        route!(Admin, keys::create_key, __path_create_key),
        route!(Admin, keys::list_keys, __path_list_keys),
        route!(Admin, keys::revoke_key, __path_revoke_key),
        route!(Admin, keys::rotate_key, __path_rotate_key),
        route!(Admin, audit::list_audit, __path_list_audit),
        route!(Admin, usage::admin_tenant_usage, __path_admin_tenant_usage),
        route!(Admin, usage::top_up, __path_top_up),
        route!(Admin, usage::reset_month, __path_reset_month),
        route!(Admin, usage::upstream_standing, __path_upstream_standing),
        route!(Admin, sessions::list_sessions, __path_list_sessions),
        route!(Admin, sessions::adopt_session, __path_adopt_session),
        route!(Admin, sessions::delete_session, __path_delete_session),
        route!(Admin, webhooks::admin_deliveries, __path_admin_deliveries),
        route!(Admin, webhooks::admin_redeliver, __path_admin_redeliver),
    ]
}

/// Operations, the web console's files and the upstream's events.
fn service_rows() -> Vec<Route> {
    use crate::http::ops;
    use Guard::{MetricsToken, Open};
    vec![
        // Operations
        route!(Open, ops::healthz, __path_healthz),
        route!(Open, ops::readyz, __path_readyz),
        route!(MetricsToken, ops::metrics, __path_metrics),
        // The web console: its page and files, open (it holds no data; the APIs it calls
        // take the credentials the user types in)
        Route {
            method: Method::GET,
            path: crate::http::console::CONSOLE_PATH.to_owned(),
            guard: Open,
            handler: || web::route().to(crate::http::console::page),
            operation: None,
        },
        Route {
            method: Method::GET,
            path: format!("{}/{{asset:.*}}", crate::http::console::CONSOLE_PATH),
            guard: Open,
            handler: || web::route().to(crate::http::console::file),
            operation: None,
        },
        // The upstream's events
        Route {
            method: Method::POST,
            path: format!("{}{{token}}", crate::services::webhooks::INGRESS_PREFIX),
            guard: Guard::Ingress,
            handler: || web::route().to(crate::http::ingress::receive),
            operation: None,
        },
    ]
}

/// The handler of a forwarded-table row the gateway serves itself (`Handling::WebhookRelay`):
/// the webhook relay keeps the subscriptions, the upstream never sees a tenant's URL.
pub fn relayed(row: &Endpoint) -> Handler {
    match row.operation_id {
        "listWebhooks" => || web::route().to(webhooks::list),
        "addWebhook" => || web::route().to(webhooks::add),
        "deleteWebhooks" => || web::route().to(webhooks::remove),
        other => panic!("the relayed row `{other}` has no handler in routes::local"),
    }
}

fn method_of(kind: &PathItemType) -> Method {
    match kind {
        PathItemType::Get => Method::GET,
        PathItemType::Post => Method::POST,
        PathItemType::Put => Method::PUT,
        PathItemType::Delete => Method::DELETE,
        PathItemType::Options => Method::OPTIONS,
        PathItemType::Head => Method::HEAD,
        PathItemType::Patch => Method::PATCH,
        PathItemType::Trace => Method::TRACE,
        PathItemType::Connect => Method::CONNECT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::endpoints::{self, Handling};

    #[test]
    fn every_relayed_row_has_a_handler() {
        for row in endpoints::all() {
            if row.handling == Handling::WebhookRelay {
                relayed(row);
            }
        }
    }

    #[test]
    fn no_route_is_declared_twice() {
        let mut seen = Vec::new();
        let forwarded = endpoints::all().iter().map(|e| (e.method.clone(), e.path));
        let local = all().iter().map(|r| (r.method.clone(), r.path.as_str()));
        for key in forwarded.chain(local) {
            assert!(!seen.contains(&key), "{key:?} is declared twice");
            seen.push(key);
        }
    }
}
