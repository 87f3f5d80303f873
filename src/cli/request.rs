//! `ds24-proxy request PATH`: one pass-through call from the shell, with the
//! flags people know from curl and similar tools.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::local::{self, CallOptions};

/// Characters left as they are in a query or path value.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `ds24-proxy request`
#[derive(Debug, clap::Args)]
pub struct RequestArgs {
    /// Function path, e.g. `/listProducts` or `/api/call/getProduct`; `{name}`
    /// placeholders are filled from --path-param.
    pub path: String,
    /// HTTP method (default GET, or POST when a body is given).
    #[arg(short = 'X', long = "method", value_name = "METHOD")]
    pub method: Option<String>,
    /// Header `Name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "K:V")]
    pub headers: Vec<String>,
    /// Form data (`a=1`, `@file`, or `-` for stdin); repeatable, joined with `&`.
    #[arg(short = 'd', long = "data", value_name = "DATA", conflicts_with_all = ["json", "raw_data"])]
    pub data: Vec<String>,
    /// Send this JSON as the body (`Content-Type: application/json`).
    #[arg(long, value_name = "JSON", conflicts_with = "raw_data")]
    pub json: Option<String>,
    /// Send this body exactly as given.
    #[arg(long = "raw-data", value_name = "DATA")]
    pub raw_data: Option<String>,
    /// Query parameter `K=V` (V is percent-encoded); repeatable.
    #[arg(long = "query", value_name = "K=V")]
    pub query: Vec<String>,
    /// Fill `{K}` in PATH with V; repeatable.
    #[arg(long = "path-param", value_name = "K=V")]
    pub path_params: Vec<String>,
    /// Print the status line and headers before the body.
    #[arg(short = 'i', long)]
    pub include: bool,
    #[command(flatten)]
    pub call: CallOptions,
}

fn split_pair<'a>(pair: &'a str, flag: &str, sep: char) -> anyhow::Result<(&'a str, &'a str)> {
    pair.split_once(sep)
        .with_context(|| format!("{flag} `{pair}` must look like K{sep}V"))
}

fn read_data(value: &str) -> anyhow::Result<Vec<u8>> {
    if value == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else if let Some(path) = value.strip_prefix('@') {
        std::fs::read(path).with_context(|| format!("cannot read {path}"))
    } else {
        Ok(value.as_bytes().to_vec())
    }
}

/// Builds the request the flags describe.
///
/// # Errors
/// A malformed flag.
pub fn build(args: &RequestArgs) -> anyhow::Result<Request<Body>> {
    let mut path = args.path.clone();
    for pair in &args.path_params {
        let (k, v) = split_pair(pair, "--path-param", '=')?;
        let placeholder = format!("{{{k}}}");
        if !path.contains(&placeholder) {
            bail!("--path-param {k}: the path has no `{placeholder}`");
        }
        path = path.replace(&placeholder, &utf8_percent_encode(v, VALUE).to_string());
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let mut query: Vec<String> = Vec::new();
    for pair in &args.query {
        let (k, v) = split_pair(pair, "--query", '=')?;
        query.push(format!(
            "{}={}",
            utf8_percent_encode(k, VALUE)
                .to_string()
                .replace("%5B", "[")
                .replace("%5D", "]"),
            utf8_percent_encode(v, VALUE)
        ));
    }
    if !query.is_empty() {
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str(&query.join("&"));
    }
    let (body, content_type): (Option<Vec<u8>>, Option<&str>) = if !args.data.is_empty() {
        let parts = args
            .data
            .iter()
            .map(|d| read_data(d))
            .collect::<anyhow::Result<Vec<_>>>()?;
        (
            Some(parts.join(&b'&')),
            Some("application/x-www-form-urlencoded; charset=utf-8"),
        )
    } else if let Some(json) = &args.json {
        serde_json::from_str::<serde_json::Value>(json).context("--json is not valid JSON")?;
        (Some(json.as_bytes().to_vec()), Some("application/json"))
    } else {
        (args.raw_data.as_ref().map(|d| d.as_bytes().to_vec()), None)
    };
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .context("-X must be an HTTP method")?,
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut request = Request::builder()
        .method(method)
        .uri(&path)
        .body(Body::from(body.unwrap_or_default()))
        .context("the path is not a valid request target")?;
    if let Some(ct) = content_type {
        request
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    for h in &args.headers {
        let (k, v) = split_pair(h, "-H", ':')?;
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .with_context(|| format!("-H: `{k}` is not a header name"))?;
        let value = HeaderValue::from_str(v.trim())
            .with_context(|| format!("-H {k}: the value is not a valid header value"))?;
        request.headers_mut().append(name, value);
    }
    // Content-Length is set by `local::send`, for every in-process call.
    Ok(request)
}

fn write_reply(reply: &local::Reply, include: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if include {
        writeln!(out, "HTTP/1.1 {}", reply.status)?;
        for (k, v) in &reply.headers {
            writeln!(out, "{k}: {}", v.to_str().unwrap_or("<binary>"))?;
        }
        writeln!(out)?;
    }
    out.write_all(&reply.body)?;
    if !reply.body.ends_with(b"\n") {
        writeln!(out)?;
    }
    out.flush()
}

/// Runs the command: the body to stdout, non-zero exit for an error status.
///
/// # Errors
/// Bad flags, or an error status.
pub async fn run(args: RequestArgs) -> anyhow::Result<()> {
    let request = build(&args)?;
    let reply = local::send(&args.call, request).await?;
    // An error made by the proxy goes to stderr (with a non-zero exit);
    // Digistore24's own reply, error or not, is the command's output.
    if !reply.from_upstream && reply.status.as_u16() >= 400 {
        local::check(reply)?;
        return Ok(());
    }
    write_reply(&reply, args.include).map_err(super::stdout_error)?;
    if reply.status.as_u16() >= 400 {
        bail!("HTTP {}", reply.status);
    }
    Ok(())
}
