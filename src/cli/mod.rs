//! The `tessera` command line.
//!
//! Two stages, as in ripgrep: [`args`] only parses (clap derive), then [`resolve`] turns the
//! parsed arguments, the environment and the saved profiles into a [`resolve::Plan`] (endpoint,
//! credentials, operation), which [`run`] executes against the server with `tessera_client`.
//! Keeping the stages apart is what makes flag parsing and credential precedence testable
//! without a server, a terminal or the process environment.

pub mod args;
pub mod config;
pub mod failure;
pub mod output;
pub mod resolve;
pub mod run;
pub mod tty;

pub use args::Cli;
pub use failure::Failure;
pub use run::OutputError;

use std::io::{self, IsTerminal};

/// Runs a parsed command line with the process's environment, stdin and stdout.
pub async fn main(cli: Cli) -> anyhow::Result<()> {
    let env = resolve::Env::from_process();
    output::set_terminal_width(tty::stdout_width(env.columns.as_deref()));
    let plan = resolve::Plan::resolve(cli, &env)?;
    let stdin = io::stdin();
    let interactive = stdin.is_terminal();
    let mut input = stdin.lock();
    let mut out = io::stdout();
    run::execute(
        plan,
        &mut run::Io {
            out: &mut out,
            input: &mut input,
            interactive,
        },
    )
    .await
}
