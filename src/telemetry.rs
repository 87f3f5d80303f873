//! Tracing setup. Level from `RUST_LOG` (default `info`), text or JSON lines
//! on stderr. What is never logged is listed in docs/LOGGING.md.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Calling it twice is harmless (the second
/// call does nothing), which keeps tests that start several servers simple.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: escape codes in a log file or a test's
        // captured stderr make lines hard to search.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// Logging for one-shot commands (`request`, `actions run`): warnings and
/// errors only unless `RUST_LOG` says otherwise, so stdout stays the
/// command's output and stderr stays quiet.
///
/// The in-process server and call pipeline (`ds24_proxy::server`,
/// `ds24_proxy::call`) log a failed call at `warn` where it becomes an
/// error answer ("upstream request failed", "rejected the API key"); the
/// command then prints that answer as its own error, so those two layers
/// log only at `error` here, and an ordinary failure is one line.
pub fn init_cli(format: LogFormat) {
    if std::env::var_os("RUST_LOG").is_none() {
        let filter = EnvFilter::new("warn,ds24_proxy::server=error,ds24_proxy::call=error");
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false);
        let _ = match format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        return;
    }
    init(format);
}
