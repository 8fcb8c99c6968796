//! The command line: `serve` (the default), `migrate`, and the tools later issues add.

use crate::config::{Config, ConfigError};
use crate::db::embedded::ServerBinariesMissing;
use crate::db::Database;
use crate::startup::Application;
use crate::telemetry;
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
}

/// Exit code for a start refused because of its configuration.
const EXIT_CONFIG: u8 = 2;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The document needs no configuration, database or runtime.
    if let Some(Command::Openapi) = cli.command {
        print!("{}", crate::openapi::document_json());
        return ExitCode::SUCCESS;
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
