//! PLACEHOLDER — replaced by the real sandbox module.
#![allow(missing_docs, dead_code)]
use std::sync::Arc;
pub const WRITABLE_KEY: &str = "1000-SandboxWritableKey00000000000000000000000";
pub const READONLY_KEY: &str = "1001-SandboxReadonlyKey00000000000000000000000";
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ErrorStyle {
    #[default]
    Http4xx,
    Http200,
}
impl std::str::FromStr for ErrorStyle {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "4xx" => Ok(Self::Http4xx),
            "200" => Ok(Self::Http200),
            _ => Err(()),
        }
    }
}
#[derive(Clone, Debug, Default)]
pub struct SandboxOptions {
    pub error_style: ErrorStyle,
}
#[derive(Clone, Debug)]
pub struct Sandbox {
    inner: Arc<()>,
}
impl Sandbox {
    pub fn new(_o: SandboxOptions) -> Self {
        Self {
            inner: Arc::new(()),
        }
    }
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
    }
}
pub async fn serve(
    listener: tokio::net::TcpListener,
    sandbox: Sandbox,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, sandbox.router())
        .with_graceful_shutdown(shutdown)
        .await
}
