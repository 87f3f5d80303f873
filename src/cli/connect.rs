//! `ds24-proxy connect`: get a key with Digistore24's developer-key flow
//! (API-FACTS §6) or take one from stdin, verify it, and store it encrypted
//! under a connection name.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use secrecy::SecretString;

use crate::call::direct::call_with_key;
use crate::config::{self, Config, Overrides, ProcessEnv};
use crate::credentials::ApiKey;
use crate::store::{ConnectionState, SqliteStore, Store};
use crate::upstream::Upstream;

/// Environment variable holding the developer key.
pub const DEVELOPER_KEY_VAR: &str = "DS24_DEVELOPER_KEY";

/// `ds24-proxy connect`
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Name to store the connection under.
    #[arg(long, default_value = "main")]
    pub name: String,
    /// Permissions to ask for.
    #[arg(long, value_parser = ["readonly", "writable"], default_value = "writable")]
    pub permissions: String,
    /// Store a key you already have, read from stdin, instead of running the flow.
    #[arg(long)]
    pub api_key_stdin: bool,
    /// Read the developer key from stdin instead of DS24_DEVELOPER_KEY.
    #[arg(long, conflicts_with = "api_key_stdin")]
    pub developer_key_stdin: bool,
    /// Where Digistore24 sends the browser after approval (public https).
    #[arg(long, default_value = "https://www.digistore24.com/")]
    pub return_url: String,
    /// Note stored with the key at Digistore24.
    #[arg(long, default_value = "ds24-proxy")]
    pub comment: String,
    /// Give up waiting for approval after this many seconds.
    #[arg(long, default_value_t = 480)]
    pub timeout_secs: u64,
    /// Seconds between polls of `retrieveApiKey`.
    #[arg(long, default_value_t = 2)]
    pub poll_secs: u64,
    /// Do not try to open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Configuration file (for the base URL and the data directory).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

fn read_stdin_secret(what: &str) -> anyhow::Result<ApiKey> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .with_context(|| format!("reading the {what} from stdin"))?;
    ApiKey::parse(&text).map_err(|e| anyhow::anyhow!("the {what} on stdin is unusable: {e}"))
}

/// Runs the command.
///
/// # Errors
/// Any failure of the flow, with what to do about it.
pub async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        config_file: args.config.clone(),
        ..Overrides::default()
    };
    let config = config::load(&ProcessEnv, &overrides)?;
    crate::telemetry::init_cli(config.log_format);
    // Before a key is asked for: one that cannot be stored is of no use.
    let data_dir = config.data_dir()?.to_owned();
    anyhow::ensure!(
        crate::proxy::path::is_connection_name(&args.name),
        "--name may only hold letters, digits, `-` and `_`"
    );
    let upstream = Upstream::new(&config.upstream)?;
    let base_url = config
        .connections
        .get(&args.name)
        .or_else(|| config.connections.get(config::DEFAULT_CONNECTION))
        .map(|c| c.base_url.clone())
        .context("no base URL configured")?;

    let key = if args.api_key_stdin {
        read_stdin_secret("API key")?
    } else {
        let developer = match (
            args.developer_key_stdin,
            ProcessEnv.var_secret(DEVELOPER_KEY_VAR),
        ) {
            (true, _) => read_stdin_secret("developer key")?,
            (false, Some(k)) => k,
            (false, None) => bail!(
                "no developer key: set {DEVELOPER_KEY_VAR} or pass --developer-key-stdin (create one in Digistore24: Settings → Account access → API keys → permission \"Developer\"), or use --api-key-stdin to store a key you already have"
            ),
        };
        approve(&args, &upstream, &base_url, &developer).await?
    };

    let info = call_with_key(&upstream, &base_url, "getUserInfo", &[], &key)
        .await
        .map_err(|e| {
            anyhow::anyhow!("Digistore24 did not accept the key, so it was not stored: {e}")
        })?;
    save(&config, &args.name, &key, &base_url)?;
    let permissions = info
        .data
        .get("permissions")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown");
    eprintln!(
        "Connected `{}`: key id {}, permissions {permissions}. Stored encrypted in {}.",
        args.name,
        key.id().unwrap_or("?"),
        data_dir.display()
    );
    Ok(())
}

/// The interactive part: request, show the approval URL, poll.
async fn approve(
    args: &ConnectArgs,
    upstream: &Upstream,
    base_url: &url::Url,
    developer: &ApiKey,
) -> anyhow::Result<ApiKey> {
    let requested = call_with_key(
        upstream,
        base_url,
        "requestApiKey",
        &[
            ("permissions", &args.permissions),
            ("return_url", &args.return_url),
            ("cancel_url", &args.return_url),
            ("comment", &args.comment),
        ],
        developer,
    )
    .await
    .map_err(|e| anyhow::anyhow!("requestApiKey failed: {}", e))?;
    let url = requested
        .data
        .get("request_url")
        .and_then(|v| v.as_str())
        .context("requestApiKey returned no request_url")?
        .to_owned();
    let token = requested
        .data
        .get("request_token")
        .and_then(|v| v.as_str())
        .context("requestApiKey returned no request_token")?
        .to_owned();
    eprintln!("Open this page, log in to Digistore24 and approve the key:\n\n    {url}\n");
    open_browser(&url, args.no_browser);

    let started = Instant::now();
    let spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let tty = std::io::stderr().is_terminal();
    for round in 0usize.. {
        let waited = started.elapsed();
        anyhow::ensure!(
            waited < Duration::from_secs(args.timeout_secs),
            "\nno approval within {} s; run `ds24-proxy connect` again",
            args.timeout_secs
        );
        let answer = call_with_key(
            upstream,
            base_url,
            "retrieveApiKey",
            &[("token", &token)],
            developer,
        )
        .await
        .map_err(|e| anyhow::anyhow!("retrieveApiKey failed: {}", e))?;
        let status = answer
            .data
            .get("request_status")
            .and_then(|v| v.as_str())
            .unwrap_or("pending");
        match status {
            "completed" => {
                let key = answer
                    .data
                    .get("api_key")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                if tty {
                    eprintln!("\r✓ approved after {} s          ", waited.as_secs());
                } else {
                    eprintln!("approved after {} s", waited.as_secs());
                }
                return ApiKey::parse(key).map_err(|_| {
                    anyhow::anyhow!(
                        "the request was completed but no key came back ({}); run connect again",
                        note(&answer.data)
                    )
                });
            }
            "aborted" => bail!(
                "the request was aborted in Digistore24 ({})",
                note(&answer.data)
            ),
            _ => {
                if tty {
                    eprint!(
                        "\r{} waiting for approval… {} s ",
                        spinner[round % spinner.len()],
                        waited.as_secs()
                    );
                    let _ = std::io::stderr().flush();
                } else if round % 5 == 0 {
                    eprintln!("waiting for approval… {} s", waited.as_secs());
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(args.poll_secs.max(1))).await;
    }
    unreachable!("the loop only ends by returning")
}

fn note(data: &serde_json::Value) -> String {
    data.get("note")
        .and_then(|v| v.as_str())
        .unwrap_or("no reason given")
        .to_owned()
}

/// Opens `url` in a browser when there is a desktop session.
fn open_browser(url: &str, disabled: bool) {
    let desktop = std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || cfg!(target_os = "macos");
    if disabled || !desktop {
        return;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn save(config: &Config, name: &str, key: &ApiKey, base_url: &url::Url) -> anyhow::Result<()> {
    let data_dir = config.data_dir()?;
    let store = SqliteStore::open(data_dir, config.master_key.as_ref())
        .map_err(|e| anyhow::anyhow!("cannot open the store in {}: {e}", data_dir.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let state = ConnectionState {
        connection: name.to_owned(),
        source_kind: "stored".into(),
        key_id: key.id().map(str::to_owned),
        expires_at: None,
        last_renewal_at: Some(now),
        last_error: None,
        needs_attention: false,
        updated_at: now,
        // Where the key was verified: it is used there, and only there.
        base_url: Some(base_url.as_str().to_owned()),
    };
    let secret: SecretString = key.to_secret();
    store.save(name, &[("api_key", &secret)], &state)?;
    Ok(())
}

trait SecretVar {
    fn var_secret(&self, name: &str) -> Option<ApiKey>;
}

impl SecretVar for ProcessEnv {
    fn var_secret(&self, name: &str) -> Option<ApiKey> {
        use crate::config::Env;
        ApiKey::parse(&self.var(name)?).ok()
    }
}
