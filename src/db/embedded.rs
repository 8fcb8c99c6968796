//! A private PostgreSQL started from the machine's installed server binaries, so the first run
//! needs no database set up by hand.
//!
//! The cluster lives in `$WAGW_DATA_DIR/pg`, listens on a unix socket only (no TCP), runs as
//! the `postgres` user when we are root (PostgreSQL refuses to run as root), and is stopped on
//! exit. A cluster left running by a gateway that was killed is found and reused; a stale
//! `postmaster.pid` is cleared.

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The port only names the socket file (`.s.PGSQL.<port>`): nothing listens on TCP.
const SOCKET_PORT: u16 = 5432;
/// `sun_path` holds 108 bytes with the terminating NUL; stay clear of it.
const MAX_SOCKET_PATH: usize = 100;

/// The server binaries were not found: the message says how to get them.
#[derive(Debug, thiserror::Error)]
#[error(
    "no DATABASE_URL is set and no PostgreSQL server binaries (initdb, pg_ctl, postgres) were found \
on PATH or under /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install -y postgresql`, \
or run scripts/install-postgres.sh) or set DATABASE_URL=postgres://user:pass@host:5432/db"
)]
pub struct ServerBinariesMissing;

#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A handle on the private cluster; `stop` shuts it down.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    pg_dir: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<RunAs>,
}

impl EmbeddedPostgres {
    /// Finds the binaries (in `bin_dir` when given, else on PATH or under
    /// /usr/lib/postgresql) and decides where the cluster lives; touches nothing yet.
    pub fn locate(data_dir: &Path, bin_dir: Option<&Path>) -> anyhow::Result<Self> {
        let bin_dir = match bin_dir {
            Some(dir) => has_server_binaries(dir).then(|| dir.to_owned()),
            None => find_bin_dir(),
        }
        .ok_or(ServerBinariesMissing)?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let data_dir = data_dir.canonicalize()?;
        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")?.context(
                "running as root, the embedded PostgreSQL needs a `postgres` system user to run as \
                 (it refuses to run as root); install the postgresql package or set DATABASE_URL",
            )?;
            Some(RunAs {
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            })
        } else {
            None
        };

        let mut pg_dir = data_dir.join("pg");
        if let Some(who) = run_as {
            // PostgreSQL must traverse every ancestor of its data directory; one under /root
            // (mode 0700) is unreachable for it, so such clusters live in a directory of its own.
            if !traversable_by(&data_dir, who) {
                pg_dir = Path::new("/var/lib/wa-gateway")
                    .join(short_hash(&data_dir))
                    .join("pg");
                tracing::warn!(
                    pg_dir = %pg_dir.display(),
                    "the data directory is not reachable by the postgres user; keeping the embedded cluster elsewhere"
                );
            }
        }
        // Beside the cluster, not in it: initdb wants an empty directory.
        let mut socket_dir = pg_dir.with_file_name("pg-socket");
        if socket_dir
            .join(format!(".s.PGSQL.{SOCKET_PORT}"))
            .as_os_str()
            .len()
            > MAX_SOCKET_PATH
        {
            socket_dir = std::env::temp_dir().join(format!("wagw-{}", short_hash(&pg_dir)));
        }
        Ok(Self {
            bin_dir,
            pg_dir,
            socket_dir,
            run_as,
        })
    }

    pub fn pg_dir(&self) -> &Path {
        &self.pg_dir
    }

    /// How to connect: over the private socket as the bootstrap superuser.
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(SOCKET_PORT)
            .username("postgres")
            .database("postgres")
    }

    /// The same as a URL, for `DATABASE_URL` (the socket directory travels as `host`).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost:{SOCKET_PORT}/postgres?host={}",
            self.socket_dir.display()
        )
    }

    /// initdb on first use, then start (or adopt a cluster a killed gateway left running).
    pub fn start(&self) -> anyhow::Result<()> {
        self.prepare_dir(&self.pg_dir)?;
        self.prepare_dir(&self.socket_dir)?;
        if !self.pg_dir.join("PG_VERSION").exists() {
            tracing::info!(pg_dir = %self.pg_dir.display(), "initialising the embedded PostgreSQL cluster");
            self.run(
                "initdb",
                &[
                    "-D",
                    path_str(&self.pg_dir)?,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
            )?;
        }
        if self.is_running()? {
            tracing::info!(pg_dir = %self.pg_dir.display(), "reusing the embedded PostgreSQL left running");
            return Ok(());
        }
        self.clear_stale_pid_file()?;
        let options = format!(
            "-c listen_addresses='' -k {} -p {SOCKET_PORT}",
            path_str(&self.socket_dir)?
        );
        let log = self.pg_dir.join("server.log");
        tracing::info!(pg_dir = %self.pg_dir.display(), "starting the embedded PostgreSQL");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.pg_dir)?,
                "-l",
                path_str(&log)?,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )
        .with_context(|| format!("starting PostgreSQL (its log: {})", log.display()))?;
        Ok(())
    }

    /// Fast shutdown: open sessions are ended, the data is flushed.
    pub fn stop(&self) -> anyhow::Result<()> {
        if !self.is_running()? {
            return Ok(());
        }
        tracing::info!("stopping the embedded PostgreSQL");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.pg_dir)?,
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "stop",
            ],
        )
    }

    /// Whether the postmaster named in `postmaster.pid` is alive.
    pub fn is_running(&self) -> anyhow::Result<bool> {
        Ok(self.postmaster_pid()?.is_some_and(process_alive))
    }

    fn postmaster_pid(&self) -> anyhow::Result<Option<i32>> {
        let pid_file = self.pg_dir.join("postmaster.pid");
        match std::fs::read_to_string(&pid_file) {
            Ok(text) => Ok(text.lines().next().and_then(|l| l.trim().parse().ok())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", pid_file.display())),
        }
    }

    fn clear_stale_pid_file(&self) -> anyhow::Result<()> {
        let pid_file = self.pg_dir.join("postmaster.pid");
        if pid_file.exists() {
            tracing::warn!("removing a stale postmaster.pid left by a server that is gone");
            std::fs::remove_file(&pid_file)?;
        }
        Ok(())
    }

    fn prepare_dir(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(who) = self.run_as {
            let meta = std::fs::metadata(dir)?;
            if meta.uid() != who.uid {
                std::os::unix::fs::chown(dir, Some(who.uid), Some(who.gid))
                    .with_context(|| format!("handing {} to the postgres user", dir.display()))?;
            }
        }
        // initdb insists on 0700 for the cluster; the socket directory is private too.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(())
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.args(args)
            .current_dir(&self.pg_dir)
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C in the terminal reaches the gateway, which then
            // stops PostgreSQL cleanly, instead of killing the server under it.
            .process_group(0);
        if let Some(who) = self.run_as {
            cmd.uid(who.uid).gid(who.gid);
        }
        let out = cmd.output().with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!(
                "{program} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        Ok(())
    }
}

/// Waits until the cluster answers, for up to `timeout`.
pub async fn wait_until_ready(options: &PgConnectOptions, timeout: Duration) -> anyhow::Result<()> {
    use sqlx::ConnectOptions;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match options.connect().await {
            Ok(conn) => {
                let _ = sqlx::Connection::close(conn).await;
                return Ok(());
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e).context("the embedded PostgreSQL does not accept connections")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

fn find_bin_dir() -> Option<PathBuf> {
    let has_all = has_server_binaries;
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_all(&dir) {
                return Some(dir);
            }
        }
    }
    // Debian keeps the server binaries off PATH; take the newest major version.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_all(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// Can `who` reach `dir`, through the execute bit of every ancestor?
fn traversable_by(dir: &Path, who: RunAs) -> bool {
    dir.ancestors().all(|p| match std::fs::metadata(p) {
        Ok(m) => {
            let mode = m.mode();
            if m.uid() == who.uid {
                mode & 0o100 != 0
            } else if m.gid() == who.gid {
                mode & 0o010 != 0
            } else {
                mode & 0o001 != 0
            }
        }
        Err(_) => false,
    })
}

fn process_alive(pid: i32) -> bool {
    // Signal 0 checks existence; EPERM means it exists but is not ours.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    }
}

fn short_hash(path: &Path) -> String {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..6])
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not valid UTF-8", p.display()))
}
