//! Thin binary: parse the command line, run it, turn an error into a message
//! on stderr and a non-zero exit status.

use std::process::ExitCode;

use clap::Parser;

// mimalloc rather than glibc's malloc: a request allocates and frees many
// small buffers across two worker threads, and glibc's arenas showed up as
// about a fifth of the proxy's CPU under load (perf, docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = ds24_proxy::cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ds24_proxy::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`… | head`): nothing to say, and
        // no one to say it to on stdout.
        Err(e) if e.is::<ds24_proxy::cli::StdoutClosed>() => {
            ExitCode::from(ds24_proxy::cli::STDOUT_CLOSED_STATUS)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
