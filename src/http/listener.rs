//! The listening socket and the connection limits, set explicitly rather than left to
//! defaults (see README, "Security model").

use crate::config::HttpConfig;
use actix_web::http::KeepAlive;
use std::net::{SocketAddr, TcpListener};

/// The listener, bound with an explicit backlog (`std` would use 128, too few for a burst of
/// thousands of connections).
pub fn bind_listener(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As `std` does: a restart may rebind while old connections linger in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Connection limits and timeouts are set explicitly rather than left to actix's defaults
/// (5 s keep-alive, 25,600 connections per worker); `WAGW_MAX_CONNECTIONS` is per replica and
/// shared out among the workers. `max_connection_rate` is left alone: it bounds TLS
/// handshakes, and TLS ends in front of the gateway.
pub fn log_connection_limits(http: &HttpConfig, workers: usize) {
    tracing::info!(
        max_connections = http.max_connections,
        workers,
        keep_alive_secs = http.keep_alive.as_secs(),
        request_head_timeout_secs = http.request_head_timeout.as_secs(),
        body_timeout_secs = http.body_timeout.as_secs(),
        backlog = http.backlog,
        "connection limits"
    );
}

/// Keep-alive as actix takes it: zero closes each connection after its answer.
pub fn keep_alive(http: &HttpConfig) -> KeepAlive {
    if http.keep_alive.is_zero() {
        KeepAlive::Disabled
    } else {
        KeepAlive::Timeout(http.keep_alive)
    }
}

/// Raises the soft open-file limit to the hard one: every connection holds a descriptor, and
/// the soft limit a service is often started with (1024) would cap a replica far below
/// `WAGW_MAX_CONNECTIONS`. Logs the limit it ends with.
pub fn raise_open_file_limit(max_connections: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        tracing::warn!("could not read the open-file limit (RLIMIT_NOFILE)");
        return;
    };
    // An unlimited hard limit is not a value the kernel accepts as a soft one.
    let target = hard.min(1 << 20);
    let limit = if soft < target && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
        target
    } else {
        soft
    };
    // Files, the database pool and the upstream's connections need some descriptors too.
    let wanted = max_connections as u64 + 256;
    if limit < wanted {
        tracing::warn!(
            open_files = limit,
            "the open-file limit is below WAGW_MAX_CONNECTIONS ({max_connections}) plus the \
             gateway's own files: connections beyond it wait in the listen backlog"
        );
    } else {
        tracing::info!(open_files = limit, "open-file limit");
    }
}
