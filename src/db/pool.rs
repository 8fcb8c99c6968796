//! `Db`: the connection pool every module uses, with all of its sockets on one runtime.
//!
//! actix-web runs each HTTP worker on a single-threaded tokio runtime of its own, and a socket
//! belongs to the runtime it was opened on. With a plain shared pool, a connection opened while
//! serving a request on worker A dies when A's runtime stops; in a graceful shutdown workers
//! stop one by one while others still finish their requests, and those requests then failed on
//! a dead connection (503). So every operation that may open a connection (a query on the
//! pool, `begin`, `acquire`, a listener) is polled inside the context of a dedicated I/O
//! runtime, `DbRuntime`, which outlives the HTTP workers: every socket is registered there, and
//! the pool's own maintenance tasks and connection returns run there too. Queries on a
//! connection already taken (a transaction) poll that socket from any thread, which tokio
//! allows while its runtime lives.

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{Future, Stream};
use sqlx::postgres::{
    PgConnectOptions, PgListener, PgPoolOptions, PgQueryResult, PgRow, PgStatement, PgTypeInfo,
};
use sqlx::Either;
use sqlx::{Describe, Execute, Executor, PgPool, Postgres, Transaction};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::runtime::{Handle, Runtime};

/// The runtime database sockets live on; owned by whoever owns the pool (`Database`, the
/// webhook worker), shut down after the pool is closed.
pub struct DbRuntime {
    runtime: Option<Runtime>,
}

impl DbRuntime {
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wagw-db-io")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    pub fn handle(&self) -> Handle {
        self.runtime
            .as_ref()
            .expect("the runtime runs until dropped")
            .handle()
            .clone()
    }
}

impl Drop for DbRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed on an async thread.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A cloneable handle to the pool. `&Db` is a sqlx `Executor`, so queries read as usual:
/// `sqlx::query!(..).execute(&db)`.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    io: Handle,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("pool", &self.pool).finish()
    }
}

impl Db {
    /// Opens a pool whose connections live on `io`.
    pub async fn connect(
        options: PgPoolOptions,
        connect: PgConnectOptions,
        io: Handle,
    ) -> Result<Self, sqlx::Error> {
        let pool = OnRuntime::new(io.clone(), Box::pin(options.connect_with(connect))).await?;
        Ok(Self { pool, io })
    }

    /// Wraps a pool made elsewhere, its sockets on the calling runtime: for a program (a tool,
    /// a test) that runs on one runtime only.
    pub fn on_current_runtime(pool: PgPool) -> Self {
        Self {
            pool,
            io: Handle::current(),
        }
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.on_io(Box::pin(self.pool.begin())).await
    }

    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Postgres>, sqlx::Error> {
        self.on_io(Box::pin(self.pool.acquire())).await
    }

    /// A `LISTEN` connection of its own (not taken from the pool).
    pub async fn listener(&self) -> Result<PgListener, sqlx::Error> {
        self.on_io(Box::pin(PgListener::connect_with(&self.pool)))
            .await
    }

    /// Runs `task` on the I/O runtime: a background task of the database's (the ingress's
    /// group commit) runs beside the sockets it uses, whichever worker started it, and ends
    /// with the runtime.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.io.spawn(task)
    }

    pub async fn close(&self) {
        self.on_io(Box::pin(self.pool.close())).await
    }

    /// Connections open, and how many of them are idle.
    pub fn usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    fn on_io<T: Unpin>(&self, inner: T) -> OnRuntime<T> {
        OnRuntime::new(self.io.clone(), inner)
    }
}

impl<'c> Executor<'c> for &'c Db {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(self.on_io((&self.pool).fetch_many(query)))
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(self.on_io((&self.pool).fetch_optional(query)))
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(self.on_io((&self.pool).prepare_with(sql, parameters)))
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(self.on_io((&self.pool).describe(sql)))
    }
}

/// Polls `inner` with `handle`'s runtime entered, so that sockets, timers and tasks it creates
/// belong to that runtime whichever thread polls it.
struct OnRuntime<T> {
    handle: Handle,
    /// `None` only while being dropped.
    inner: Option<T>,
}

impl<T> OnRuntime<T> {
    fn new(handle: Handle, inner: T) -> Self {
        Self {
            handle,
            inner: Some(inner),
        }
    }

    fn enter_and<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let _entered = self.handle.enter();
        f(self.inner.as_mut().expect("polled after drop"))
    }
}

impl<T: Future + Unpin> Future for OnRuntime<T> {
    type Output = T::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        self.enter_and(|inner| Pin::new(inner).poll(cx))
    }
}

impl<T: Stream + Unpin> Stream for OnRuntime<T> {
    type Item = T::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        self.enter_and(|inner| Pin::new(inner).poll_next(cx))
    }
}

impl<T> Drop for OnRuntime<T> {
    fn drop(&mut self) {
        // A pool connection dropped with an unfinished operation (the client went away)
        // spawns its return to the pool: on the I/O runtime too.
        let _entered = self.handle.enter();
        self.inner.take();
    }
}
