//! `serve` and `sandbox`: bind, log where, run until a shutdown signal.

use anyhow::Context;
use tokio::net::TcpListener;
use url::Url;

use super::{HealthArgs, SandboxArgs, ServeArgs};
use crate::config::{self, LogFormat, Overrides, ProcessEnv};
use crate::credentials::ApiKey;
use crate::sandbox::{self, Sandbox, SandboxOptions};

pub(super) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        config_file: args.config,
        listen: args.listen,
        log_format: args.log_format,
        allow_public_without_token: args.dangerously_allow_public_listen_without_token,
    };
    let mut config = config::load(&ProcessEnv, &overrides)?;
    // Refuse to start rather than fail the first write: every write and
    // money call is audited in the store before it is sent.
    config.data_dir()?;
    crate::telemetry::init(config.log_format);
    if args.sandbox {
        let url = start_sandbox().await?;
        config.use_sandbox(
            url.clone(),
            ApiKey::parse(sandbox::WRITABLE_KEY).context("sandbox key")?,
        );
        tracing::info!(sandbox.url = %url, store = %config.data_dir()?.display(), "sandbox started; connection `main` points at it, with a store of its own");
    }
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (set --listen or DS24_PROXY_LISTEN to a free address)",
            config.listen
        )
    })?;
    tracing::info!(listen = %listener.local_addr()?, "ds24-proxy listening");
    if !config.listen.ip().is_loopback() && config.tokens.is_empty() {
        tracing::warn!(
            "LISTENING ON A PUBLIC ADDRESS WITHOUT INBOUND TOKENS: anyone who can reach it can use the stored Digistore24 key"
        );
    }
    crate::run(listener, config, crate::shutdown_signal()).await
}

/// Starts the sandbox in-process on a free loopback port.
async fn start_sandbox() -> anyhow::Result<Url> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the sandbox")?;
    let url = Url::parse(&format!("http://{}/api/call", listener.local_addr()?))?;
    let sandbox = Sandbox::new(SandboxOptions::default());
    tokio::spawn(async move {
        if let Err(e) = sandbox::serve(listener, sandbox, std::future::pending()).await {
            tracing::error!(error = %e, "sandbox stopped");
        }
    });
    Ok(url)
}

pub(super) async fn sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    let format = match args.log_format.as_deref() {
        Some("json") => LogFormat::Json,
        None | Some("text") => LogFormat::Text,
        Some(other) => {
            anyhow::bail!("--log-format `{other}` is not a log format; use text or json")
        }
    };
    crate::telemetry::init(format);
    let error_style = args.error_style.parse().map_err(|_| {
        anyhow::anyhow!(
            "--error-style `{}` is unknown; use 4xx or 200",
            args.error_style
        )
    })?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (choose another --listen)", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, writable_key = sandbox::WRITABLE_KEY, readonly_key = sandbox::READONLY_KEY, developer_key = sandbox::DEVELOPER_KEY, "sandbox listening; base URL http://{addr}/api/call");
    sandbox::serve(
        listener,
        Sandbox::new(SandboxOptions { error_style }),
        crate::shutdown_signal(),
    )
    .await?;
    Ok(())
}

pub(super) async fn health(args: &HealthArgs) -> anyhow::Result<()> {
    // A wildcard listen address is reached on loopback.
    let addr = args
        .addr
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    let client = crate::upstream::client_builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let response = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .with_context(|| format!("no proxy answers on {addr}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "/healthz on {addr} answered {}",
        response.status()
    );
    out!("ok");
    Ok(())
}
