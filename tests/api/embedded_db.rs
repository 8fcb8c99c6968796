//! The embedded default database: with no `DATABASE_URL` the gateway runs its own PostgreSQL
//! in the data directory, stops it on exit, reuses it on the next start, and recovers from
//! being killed.

use crate::helpers::{command, shared_tempdir, GatewayProcess, Vars};
use std::path::Path;
use wa_gateway::db::EmbeddedPostgres;

fn vars(data_dir: &Path) -> Vars {
    [
        ("WAGW_DATA_DIR", data_dir.to_str().unwrap()),
        ("WAGW_LISTEN", "127.0.0.1:0"),
        ("WAGW_UPSTREAM_URL", "http://127.0.0.1:9"),
        ("WAGW_WORKERS", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Stops the cluster whatever happens to the test.
struct Cluster(EmbeddedPostgres);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

#[tokio::test]
async fn starts_reuses_stops_and_survives_a_kill() {
    let dir = shared_tempdir();
    let cluster = Cluster(EmbeddedPostgres::locate(dir.path(), None).unwrap());
    let vars = vars(dir.path());

    // First start: initdb, start, migrate.
    let first = GatewayProcess::start(&vars).await;
    assert!(
        first
            .logs()
            .contains("initialising the embedded PostgreSQL"),
        "{}",
        first.logs()
    );
    assert!(cluster.0.is_running().unwrap());
    let status = first.terminate().await;
    assert!(status.success(), "clean exit: {status}");
    assert!(
        !cluster.0.is_running().unwrap(),
        "the cluster stops with the gateway"
    );

    // Second start: the same cluster, no initdb.
    let second = GatewayProcess::start(&vars).await;
    assert!(!second.logs().contains("initialising"), "{}", second.logs());
    // Killed: no chance to stop PostgreSQL, which keeps running.
    second.kill().await;
    assert!(cluster.0.is_running().unwrap());

    // Third start adopts the running cluster.
    let third = GatewayProcess::start(&vars).await;
    assert!(
        third.logs().contains("reusing the embedded PostgreSQL"),
        "{}",
        third.logs()
    );
    third.terminate().await;
    assert!(!cluster.0.is_running().unwrap());
}

#[tokio::test]
async fn a_stale_pid_file_is_cleared() {
    let dir = shared_tempdir();
    let cluster = Cluster(EmbeddedPostgres::locate(dir.path(), None).unwrap());
    let vars = vars(dir.path());
    let first = GatewayProcess::start(&vars).await;
    first.terminate().await;

    // A postmaster.pid naming a process that is gone, as after a crash of the machine.
    let pid_file = cluster.0.pg_dir().join("postmaster.pid");
    std::fs::write(&pid_file, "999999\n").unwrap();
    let again = GatewayProcess::start(&vars).await;
    assert!(cluster.0.is_running().unwrap());
    again.terminate().await;
}

#[test]
fn migrate_applies_and_exits() {
    let dir = shared_tempdir();
    let _cluster = Cluster(EmbeddedPostgres::locate(dir.path(), None).unwrap());
    let out = command(&vars(dir.path())).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("migrations applied"));
}

#[test]
fn no_binaries_and_no_url_is_a_clear_exit_2() {
    let dir = shared_tempdir();
    let empty = shared_tempdir();
    let out = command(&vars(dir.path()))
        .env("WAGW_POSTGRES_BIN", empty.path())
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(stderr.contains("apt-get install"), "{stderr}");
}
