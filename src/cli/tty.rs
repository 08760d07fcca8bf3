//! The terminal, where there is one: a secret typed without echo, and the width tables must
//! fit in. Everything else in the CLI reads and writes plain streams.

use std::io::{self, Read, Write};

/// Asks for a secret on the controlling terminal (`/dev/tty`) with echo off, so that neither
/// the screen nor a recording of the session shows it. The terminal is put in non-canonical
/// mode without signals, and the line is edited here (Backspace, Ctrl-U; Ctrl-C and Ctrl-D
/// cancel), so that Ctrl-C does not kill the process with echo still off. The terminal's
/// settings are restored before returning, also on an error.
#[cfg(unix)]
pub fn read_hidden(prompt: &str) -> io::Result<String> {
    use rustix::termios::{self, LocalModes, OptionalActions};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let original = termios::tcgetattr(&tty)?;
    let mut hidden = original.clone();
    hidden
        .local_modes
        .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    termios::tcsetattr(&tty, OptionalActions::Flush, &hidden)?;
    // Buffered: a pasted key arrives in one read.
    let typed = edit_line(&mut io::BufReader::new(&tty).bytes());
    let restored = termios::tcsetattr(&tty, OptionalActions::Flush, &original);
    // The Enter (or the cancel) moves to the next line.
    let _ = (&tty).write_all(b"\n");
    let typed = typed?;
    restored?;
    String::from_utf8(typed)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the input is not UTF-8"))
}

/// The bytes of one line typed at a raw terminal, with its editing keys applied.
#[cfg_attr(not(unix), allow(dead_code))]
fn edit_line(input: &mut dyn Iterator<Item = io::Result<u8>>) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let Some(byte) = input.next().transpose()? else {
            return Ok(line);
        };
        match byte {
            b'\r' | b'\n' => return Ok(line),
            // Ctrl-C, or Ctrl-D on an empty line.
            0x03 => return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled")),
            0x04 if line.is_empty() => {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"))
            }
            // Backspace or Delete: one character, which may be several UTF-8 bytes.
            0x08 | 0x7f => while line.pop().is_some_and(|b| b & 0b1100_0000 == 0b1000_0000) {},
            // Ctrl-U: the whole line.
            0x15 => line.clear(),
            other => line.push(other),
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn typed(keys: &[u8]) -> io::Result<Vec<u8>> {
        edit_line(&mut keys.iter().map(|b| Ok(*b)))
    }

    #[test]
    fn line_editing_keys() {
        assert_eq!(typed(b"key\r").unwrap(), b"key");
        assert_eq!(typed(b"kex\x7fy\n").unwrap(), b"key");
        assert_eq!(typed("ké\x7fey\r".as_bytes()).unwrap(), b"key");
        assert_eq!(typed(b"junk\x15key\r").unwrap(), b"key");
        assert_eq!(
            typed(b"\x7fkey").unwrap(),
            b"key",
            "the end of input ends the line"
        );
        assert_eq!(
            typed(b"ke\x03y\r").unwrap_err().kind(),
            io::ErrorKind::Interrupted
        );
        assert_eq!(
            typed(b"\x04").unwrap_err().kind(),
            io::ErrorKind::Interrupted
        );
        assert_eq!(typed(b"k\x04\r").unwrap(), b"k\x04");
    }
}
