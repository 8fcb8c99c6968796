//! The command line: `serve` (the default), `migrate`, and the tools later issues add.

use crate::config::{Config, ConfigError};
use crate::db::embedded::ServerBinariesMissing;
use crate::db::Database;
use crate::domain::{Plan, Quota};
use crate::services::tenancy::{admins, keys, tenants};
use crate::startup::Application;
use crate::store::audit::Actor;
use crate::telemetry;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "wa-gateway",
    version,
    about = "Multi-tenant gateway in front of the hosted WhatsApp Messaging REST API",
    long_about = "Multi-tenant gateway in front of the hosted WhatsApp Messaging REST API.\n\n\
Settings come from the environment (see README.md). With no DATABASE_URL an embedded \
PostgreSQL is started in WAGW_DATA_DIR; with no WAGW_UPSTREAM_KEY the built-in simulator is \
the upstream (sandbox mode)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI 3.0 document (the one served at /openapi.json) and exit.
    Openapi,
    /// Run the upstream simulator (the hosted API, faithfully, on this machine).
    Sim(SimArgs),
    /// Scripted set-up against DATABASE_URL: admins, tenants and keys.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub listen: std::net::SocketAddr,
    /// The subscription key expected in `x-rapidapi-key` (none: any caller is accepted).
    #[arg(long, env = "WAGW_SIM_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The value expected in `x-rapidapi-host`.
    #[arg(long, default_value = crate::sim::DEFAULT_HOST)]
    pub host: String,
    /// Requests per second before 429.
    #[arg(long)]
    pub rps: Option<u32>,
    /// Requests per calendar month before 429.
    #[arg(long)]
    pub monthly: Option<u64>,
    /// Scan each session by itself S seconds after its QR or pairing code is first fetched.
    #[arg(long, value_name = "S")]
    pub auto_scan: Option<f64>,
    /// Send no webhook events (registrations are still kept): for benchmarks of forwarding.
    #[arg(long)]
    pub no_webhooks: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin; the password is read from standard input (one line), never argv.
    CreateAdmin {
        #[arg(long)]
        username: String,
    },
    /// Create a tenant and print it as JSON.
    CreateTenant {
        #[arg(long)]
        name: String,
        /// basic, pro, ultra, mega or custom.
        #[arg(long, default_value = "basic")]
        plan: String,
        /// With plan custom: the limits; omitted means unlimited.
        #[arg(long)]
        monthly_requests: Option<i64>,
        #[arg(long)]
        requests_per_second: Option<i32>,
        #[arg(long)]
        max_sessions: Option<i32>,
    },
    /// Issue a key for a tenant (by id or name) and print it, with its plaintext, once.
    CreateKey {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Comma-separated scopes, e.g. `messages:send,sessions:read` or `*`.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Comma-separated session names the key is limited to.
        #[arg(long, value_delimiter = ',')]
        sessions: Option<Vec<String>>,
        /// A test key (`wagw_test_...`): served by the built-in simulator, spends nothing.
        #[arg(long)]
        test: bool,
        /// RFC 3339 expiry, e.g. 2027-01-01T00:00:00Z.
        #[arg(long)]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// Exit code for a start refused because of its configuration.
const EXIT_CONFIG: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The document needs no configuration, database or runtime.
    if let Some(Command::Openapi) = cli.command {
        print!("{}", crate::http::openapi::document_json());
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Sim(args)) = cli.command {
        return run_sim(args);
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return config_error(&e),
    };
    telemetry::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(config).await,
            Command::Sim(_) => unreachable!("handled before the configuration is read"),
            Command::Admin(command) => admin(config, command).await,
            Command::Openapi => unreachable!("handled before configuration"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<ServerBinariesMissing>() => {
            eprintln!("wa-gateway: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("wa-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("wa-gateway: invalid configuration: {e}");
    ExitCode::from(EXIT_CONFIG)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = Application::build(config).await?;
    tracing::info!(
        "wa-gateway listening on http://{}:{}",
        listen.ip(),
        app.port()
    );
    app.run_until_stopped().await
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let database = Database::connect(&config).await?;
    let result = database.migrate().await;
    database.shutdown().await;
    result?;
    tracing::info!("migrations applied");
    Ok(())
}

/// `wa-gateway sim`: needs none of the gateway's settings, so it runs before they are read.
fn run_sim(args: SimArgs) -> ExitCode {
    telemetry::init(crate::config::LogFormat::Pretty);
    let auto_scan = match args.auto_scan {
        Some(s) if !(0.0..=86_400.0).contains(&s) => {
            eprintln!("wa-gateway: --auto-scan must be 0 to 86400 seconds");
            return ExitCode::from(EXIT_CONFIG);
        }
        s => s.map(std::time::Duration::from_secs_f64),
    };
    let ip = args.listen.ip();
    let options = crate::sim::SimOptions {
        listen: args.listen,
        key: args.key,
        host: args.host,
        rps: args.rps,
        monthly: args.monthly,
        auto_scan,
        send_webhooks: !args.no_webhooks,
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let result = runtime.block_on(async move {
        let sim = crate::sim::Simulator::start(options).await?;
        tracing::info!("upstream simulator listening on http://{ip}:{}", sim.port());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("simulator stopping");
        sim.stop().await;
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wa-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn admin(config: Config, command: AdminCommand) -> anyhow::Result<()> {
    let database = Database::connect(&config).await?;
    let result = match database.migrate().await {
        Ok(()) => run_admin(&database.pool, command).await,
        Err(e) => Err(e),
    };
    database.shutdown().await;
    result
}

async fn run_admin(pool: &crate::db::Db, command: AdminCommand) -> anyhow::Result<()> {
    let printed = match command {
        AdminCommand::CreateAdmin { username } => create_admin(pool, &username).await?,
        AdminCommand::CreateTenant {
            name,
            plan,
            monthly_requests,
            requests_per_second,
            max_sessions,
        } => {
            let plan = Plan::parse(&plan).ok_or_else(|| {
                anyhow::anyhow!("--plan must be basic, pro, ultra, mega or custom")
            })?;
            let quota = (plan == Plan::Custom).then_some(Quota {
                monthly_requests,
                requests_per_second,
                max_sessions,
            });
            let new = tenants::NewTenant { name, plan, quota };
            let created = tenants::create(pool, &Actor::cli(), new)
                .await
                .context("creating the tenant")?;
            serde_json::to_string_pretty(&created)?
        }
        AdminCommand::CreateKey {
            tenant,
            name,
            scopes,
            sessions,
            test,
            expires_at,
        } => {
            let request = keys::NewKeyRequest {
                name,
                scopes,
                sessions,
                expires_at,
                mode: if test {
                    crate::domain::Mode::Test
                } else {
                    crate::domain::Mode::Live
                },
            };
            create_key(pool, &tenant, request).await?
        }
    };
    println!("{printed}");
    Ok(())
}

/// The password is read from standard input (one line), never argv.
async fn create_admin(pool: &crate::db::Db, username: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = secrecy::SecretString::from(line.trim_end_matches(['\r', '\n']));
    let created = admins::create(pool, &Actor::cli(), username, &password)
        .await
        .context("creating the admin")?;
    Ok(serde_json::to_string_pretty(&created)?)
}

/// `tenant` is the tenant's id or its name.
async fn create_key(
    pool: &crate::db::Db,
    tenant: &str,
    request: keys::NewKeyRequest,
) -> anyhow::Result<String> {
    let tenant_id = match tenant.parse() {
        Ok(id) => id,
        Err(_) => crate::store::tenants::id_named(pool, tenant)
            .await
            .context("looking the tenant up")?
            .ok_or_else(|| anyhow::anyhow!("no tenant named `{tenant}`"))?,
    };
    let created = keys::create(pool, &Actor::cli(), tenant_id, request)
        .await
        .context("creating the key")?;
    Ok(serde_json::to_string_pretty(&created)?)
}
