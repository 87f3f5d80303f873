//! The `command` source: runs a program (no shell) that prints
//! `{"api_key": "…", "expires_at": "RFC3339"}` (`expires_at` optional), the
//! way secret managers are usually wired in.

use std::process::Stdio;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::source::{Fetched, SourceContext};
use super::{ApiKey, CredentialError};

/// More output than this is not a key reply.
const MAX_OUTPUT_BYTES: u64 = 64 * 1024;

#[derive(Deserialize)]
struct Reply {
    api_key: String,
    #[serde(default)]
    expires_at: Option<String>,
}

/// Runs `argv` with `timeout` and parses its output.
///
/// # Errors
/// When the program cannot start, times out, fails, or prints something else.
pub(super) async fn run(
    argv: &[String],
    timeout: Duration,
    ctx: &SourceContext,
) -> Result<Fetched, CredentialError> {
    let err = |reason: String| ctx.error("command", reason);
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| err("the command is empty".into()))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A command that outlives its timeout is killed, not left behind.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("cannot start `{program}`: {e}")))?;
    let mut stdout = child.stdout.take().ok_or_else(|| err("no stdout".into()))?;
    let mut stderr = child.stderr.take().ok_or_else(|| err("no stderr".into()))?;
    let work = async {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut out_reader = (&mut stdout).take(MAX_OUTPUT_BYTES);
        let mut err_reader = (&mut stderr).take(MAX_OUTPUT_BYTES);
        let (read_out, read_err) = tokio::join!(
            out_reader.read_to_end(&mut out),
            err_reader.read_to_end(&mut errors)
        );
        read_out.map_err(|e| err(format!("reading its output: {e}")))?;
        let _ = read_err;
        let status = child.wait().await.map_err(|e| err(e.to_string()))?;
        Ok::<_, CredentialError>((status, out, errors))
    };
    let (status, out, errors) = tokio::time::timeout(timeout, work).await.map_err(|_| {
        err(format!(
            "`{program}` did not finish within {} s",
            timeout.as_secs()
        ))
    })??;
    if !status.success() {
        // The first line of stderr helps; the command's output could hold
        // the key, so it is never shown.
        let first = String::from_utf8_lossy(&errors)
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>();
        return Err(err(format!("`{program}` exited with {status}: {first}")));
    }
    let reply: Reply = serde_json::from_slice(&out)
        .map_err(|e| err(format!("`{program}` must print {{\"api_key\": \"…\", \"expires_at\": \"RFC 3339\"}}; its output is not that ({})", e.classify_name())))?;
    let key = ApiKey::parse(&reply.api_key)
        .map_err(|e| err(format!("`{program}` printed an unusable api_key: {e}")))?;
    let expires_at = reply
        .expires_at
        .as_deref()
        .map(parse_rfc3339)
        .transpose()
        .map_err(|e| err(format!("expires_at: {e}")))?;
    Ok(Fetched {
        key,
        expires_at,
        file_stamp: None,
    })
}

/// Parses an RFC 3339 timestamp.
///
/// # Errors
/// A message naming the expected form.
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|_| {
            format!(
                "`{}` is not an RFC 3339 time like 2026-11-28T12:00:00Z",
                text.chars().take(40).collect::<String>()
            )
        })
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "missing or wrong fields",
            serde_json::error::Category::Eof => "cut short",
        }
    }
}
