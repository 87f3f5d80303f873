//! The command line: argument definitions (clap derive) and dispatch.

/// `println!` for the commands' output: a stdout whose reader went away
/// (`ds24-proxy actions list | head`) ends the command with
/// [`StdoutClosed`] instead of a panic; any other write error is an error.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

mod actions;
mod audit;
mod connect;
mod connections;
mod events;
mod ipn;
mod local;
mod request;
mod serve;

pub use actions::ActionsCommand;
pub use audit::AuditCommand;
pub use connect::ConnectArgs;
pub use connections::ConnectionsCommand;
pub use events::EventsCommand;
pub use ipn::IpnCommand;
pub use request::RequestArgs;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// A local authenticating proxy for the Digistore24 vendor API.
#[derive(Debug, Parser)]
#[command(name = "ds24-proxy", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve(ServeArgs),
    /// Run only the sandbox: a local stand-in for the Digistore24 API.
    Sandbox(SandboxArgs),
    /// Get a key with the developer-key flow (or from stdin), verify it and
    /// store it encrypted.
    Connect(ConnectArgs),
    /// Manage connections; never prints a secret.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// The audit log of write and money calls.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Digistore24's events (IPN) the proxy received: list, show, replay.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Register the proxy's IPN URL with Digistore24 (ipnSetup), show or
    /// delete the registration.
    #[command(subcommand)]
    Ipn(IpnCommand),
    /// The action catalog: list, show and run named actions.
    #[command(subcommand)]
    Actions(ActionsCommand),
    /// One pass-through call from the shell, without a server.
    Request(RequestArgs),
    /// Check that a running proxy answers `/healthz` (exit 0) or not (exit
    /// 1). For container health checks: the runtime image has no curl.
    Health(HealthArgs),
}

/// `ds24-proxy health`
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// Address of the proxy (default: DS24_PROXY_LISTEN or 127.0.0.1:7424).
    #[arg(long, value_name = "ADDR", env = "DS24_PROXY_LISTEN", default_value = crate::config::DEFAULT_LISTEN)]
    pub addr: String,
}

/// `ds24-proxy serve`
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (default: config/default.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address (overrides DS24_PROXY_LISTEN and server.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Also start the built-in sandbox and point the `main` connection at
    /// it: works with no account and no network.
    #[arg(long)]
    pub sandbox: bool,
    /// Log format: text or json (overrides DS24_PROXY_LOG_FORMAT).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Start on a non-loopback address without inbound tokens. Anyone who
    /// can reach the address can then use the stored key: only for networks
    /// you control by other means.
    #[arg(long)]
    pub dangerously_allow_public_listen_without_token: bool,
}

/// `ds24-proxy sandbox`
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Listen address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7425")]
    pub listen: String,
    /// How errors are sent: `4xx` (HTTP status per error) or `200` (the
    /// historic style: HTTP 200 with `result: "error"`).
    #[arg(long, value_name = "STYLE", default_value = "4xx")]
    pub error_style: String,
    /// Log format: text or json.
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// Standard output was closed by its reader (a pipe into `head`): the
/// binary ends quietly with status 141, as a tool killed by SIGPIPE does.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// The exit status for [`StdoutClosed`]: 128 + SIGPIPE (13), what a shell
/// reports for any producer whose reader left early (`yes | head` under
/// `set -o pipefail`), so a script can still tell the output was cut off.
pub const STDOUT_CLOSED_STATUS: u8 = 141;

/// Turns a failed write to stdout into [`StdoutClosed`] when the reader
/// went away, else into an error saying what failed.
pub fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(e).context("cannot write to standard output")
    }
}

/// Writes `args` to stdout (see [`StdoutClosed`]).
///
/// # Errors
/// [`StdoutClosed`], or another write error.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_fmt(args)
        .map_err(stdout_error)
}

/// Runs a parsed command line.
///
/// # Errors
/// Any failure, with a message fit for the user.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Sandbox(args) => serve::sandbox(args).await,
        Command::Health(args) => serve::health(&args).await,
        Command::Actions(command) => actions::run(command).await,
        Command::Audit(command) => audit::run(command).await,
        Command::Events(command) => events::run(command).await,
        Command::Ipn(command) => ipn::run(command).await,
        Command::Connect(args) => connect::run(args).await,
        Command::Connections(command) => connections::run(command).await,
        Command::Request(args) => request::run(args).await,
    }
}

/// The configuration (from `config_file` or the defaults) and the store in
/// its data directory, for the commands that read the store directly.
///
/// # Errors
/// A configuration error, or a store that cannot be opened.
fn open_store(
    config_file: Option<PathBuf>,
) -> anyhow::Result<(crate::config::Config, crate::store::SqliteStore)> {
    let config = crate::config::load(
        &crate::config::ProcessEnv,
        &crate::config::Overrides {
            config_file,
            ..crate::config::Overrides::default()
        },
    )?;
    crate::telemetry::init_cli(config.log_format);
    let data_dir = config.data_dir()?;
    let store = crate::store::SqliteStore::open(data_dir, config.master_key.as_ref())
        .map_err(|e| anyhow::anyhow!("cannot open the store in {}: {e}", data_dir.display()))?;
    Ok((config, store))
}
