//! The `tessera` binary: parse the command line, run it on a tokio runtime, report errors.
//!
//! Exit codes: 0 on success (including a reader closing stdout early, as in `| head`), 2 on a
//! usage error (clap's own exit), and otherwise the code `cli::failure` gives the error
//! (listed in `tessera --help`).

use clap::Parser;
use std::process::ExitCode;
use tessera::cli::{Cli, Failure, OutputError};

// The token path allocates many small, short-lived buffers per request (headers, claims, the
// JWT); mimalloc serves them markedly faster than the system allocator under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.format();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(tessera::cli::main(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if OutputError::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let failure = Failure::of(&err);
            // A failing stderr has nowhere left to be reported.
            let _ = failure.write(format, &mut std::io::stderr());
            ExitCode::from(failure.exit as u8)
        }
    }
}
