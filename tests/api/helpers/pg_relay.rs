//! A TCP relay in front of the test database that a test can cut, as when PostgreSQL becomes
//! unreachable.

use std::sync::Arc;

/// A TCP relay in front of the test database that can be cut: then every connection through
/// it drops and new ones are refused, as when PostgreSQL becomes unreachable.
pub struct PgRelay {
    pub url: String,
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl PgRelay {
    /// Must run inside the tokio runtime (it spawns its accept loop).
    pub fn start(database_url: &str) -> Self {
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(database_url).unwrap();
        let port = options.get_port();
        let target = match options.get_socket() {
            Some(dir) => Target::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            None => Target::Tcp(format!("{}:{port}", options.get_host())),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let relay_port = listener.local_addr().unwrap().port();
        let mut url = url::Url::parse(database_url).unwrap();
        let query: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "host")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(relay_port)).unwrap();

        let tasks: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    match target {
                        Target::Unix(path) => {
                            if let Ok(mut out) = tokio::net::UnixStream::connect(path).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                            }
                        }
                        Target::Tcp(addr) => {
                            if let Ok(mut out) = tokio::net::TcpStream::connect(addr).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                            }
                        }
                    }
                });
                conns.lock().unwrap().push(conn.abort_handle());
            }
        });
        tasks.lock().unwrap().push(accept.abort_handle());
        Self {
            url: url.to_string(),
            tasks,
        }
    }

    /// PostgreSQL is unreachable from now on.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[derive(Clone)]
enum Target {
    Unix(std::path::PathBuf),
    Tcp(String),
}
