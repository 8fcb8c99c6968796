//! The real `wa-gateway` binary as a child process, for what only a process shows: signals,
//! logs, exit codes, resource limits and memory.

use super::{http_client, Vars};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The real `wa-gateway` binary, its stderr captured to a file.
pub struct GatewayProcess {
    child: Child,
    pub address: String,
    pub port: u16,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wa-gateway")
}

/// The binary with a clean environment (no settings leak in from the test's shell) plus `vars`.
pub fn command(vars: &Vars) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(vars)
        .stdin(Stdio::null());
    cmd
}

impl GatewayProcess {
    /// Starts `wa-gateway serve` and waits until `/readyz` answers 200.
    pub async fn start(vars: &Vars) -> Self {
        Self::start_args(vars, &["serve"]).await
    }

    pub async fn start_args(vars: &Vars, args: &[&str]) -> Self {
        Self::spawn(vars, |cmd| {
            cmd.args(args);
        })
        .await
    }

    /// Starts the binary as `configure` sets it up, its output in a log of its own, and waits
    /// until `/readyz` answers 200.
    async fn spawn(vars: &Vars, configure: impl FnOnce(&mut Command)) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let log_path = log_dir.path().join("gateway.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = command(vars);
        configure(&mut cmd);
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the wa-gateway binary");
        let mut process = Self {
            child,
            address: String::new(),
            port: 0,
            log_path,
            _log_dir: log_dir,
        };
        process.port = process.wait_for_port().await;
        process.address = format!("http://127.0.0.1:{}", process.port);
        process.wait_ready(Duration::from_secs(60)).await;
        process
    }

    /// The port from the start-up line `listening on http://IP:PORT`.
    async fn wait_for_port(&mut self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let logs = self.logs();
            if let Some(rest) = logs.split("listening on http://").nth(1) {
                let port = rest
                    .split(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
                    .next()
                    .and_then(|addr| addr.rsplit(':').next())
                    .and_then(|p| p.parse().ok());
                if let Some(port) = port {
                    return port;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("wa-gateway exited with {status} before listening:\n{logs}");
            }
            assert!(
                Instant::now() < deadline,
                "wa-gateway did not start listening:\n{logs}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await; // poll
        }
    }

    pub async fn wait_ready(&mut self, patience: Duration) {
        let client = http_client();
        let deadline = Instant::now() + patience;
        loop {
            let ok = client
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("wa-gateway exited with {status}:\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "wa-gateway never became ready:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await; // poll
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything the process wrote so far (stdout and stderr).
    pub fn logs(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal)
            .expect("signalling wa-gateway");
    }

    /// SIGTERM, then waits for the exit (bounded).
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(60)).await
    }

    /// SIGKILL: no clean-up at all.
    pub async fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn wait_exit(&mut self, patience: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for wa-gateway") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wa-gateway did not exit:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await; // poll
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl GatewayProcess {
    /// Starts `wa-gateway serve` with its soft open-file limit lowered to `soft` (the hard limit
    /// unchanged), as systemd and many shells hand a service 1024.
    pub async fn start_with_soft_nofile(vars: &Vars, soft: u64) -> Self {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        use std::os::unix::process::CommandExt;
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("reading RLIMIT_NOFILE");
        Self::spawn(vars, |cmd| {
            cmd.arg("serve");
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard).map_err(Into::into)
                });
            }
        })
        .await
    }

    /// The resident set size of the process, in KiB (`VmRSS` of /proc/<pid>/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }
}
