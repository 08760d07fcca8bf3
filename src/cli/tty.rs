//! The terminal, where there is one: a secret typed without echo, and the width tables must
//! fit in. Everything else in the CLI reads and writes plain streams.

use std::io::{self, BufRead, Write};

/// Asks for a secret on the controlling terminal (`/dev/tty`) with echo off, so that neither
/// the screen nor a recording of the session shows it. Echo is restored before returning,
/// also on a read error.
#[cfg(unix)]
pub fn read_hidden(prompt: &str) -> io::Result<String> {
    use rustix::termios::{self, LocalModes, OptionalActions};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let original = termios::tcgetattr(&tty)?;
    let mut hidden = original.clone();
    hidden.local_modes.remove(LocalModes::ECHO);
    // The Enter still moves to the next line.
    hidden.local_modes.insert(LocalModes::ECHONL);
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    termios::tcsetattr(&tty, OptionalActions::Flush, &hidden)?;
    let mut line = String::new();
    let read = io::BufReader::new(&tty).read_line(&mut line);
    let restored = termios::tcsetattr(&tty, OptionalActions::Flush, &original);
    read?;
    restored?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}

#[cfg(not(unix))]
pub fn read_hidden(_prompt: &str) -> io::Result<String> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "cannot turn off echo here: pipe the secret to standard input",
    ))
}

/// The width of the terminal standard output is, or `None` when it is not a terminal (a pipe,
/// a file: then nothing is truncated). `COLUMNS` wins over the terminal's own size.
pub fn stdout_width(columns_env: Option<&str>) -> Option<usize> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() {
        return None;
    }
    if let Some(columns) = columns_env.and_then(|c| c.trim().parse::<usize>().ok()) {
        return Some(columns).filter(|c| *c > 0);
    }
    #[cfg(unix)]
    {
        rustix::termios::tcgetwinsize(io::stdout())
            .ok()
            .map(|size| usize::from(size.ws_col))
            .filter(|c| *c > 0)
    }
    #[cfg(not(unix))]
    {
        None
    }
}
