//! The command's exit statuses, their meaning (printed by `--help` and the man page) and which
//! error gets which.
//!
//! Three statuses, as grep and diff have them, so a show script can tell "the master did not take
//! the cue" (retry, or tell the operator) from "this command line is wrong" (fix the script):
//! 0 done; 1 the command ran but the answer is no; 2 it could not do its job (usage, setup, I/O).
//! clap's own usage errors are 2 as well.

use std::fmt;

/// Exit status when the command did what was asked.
pub const DONE: u8 = 0;
/// Exit status when the command ran but the answer is no (see [`NotDone`]).
pub const NOT_DONE: u8 = 1;
/// Exit status for a usage or setup error, and any other error.
pub const ERROR: u8 = 2;

/// The exit statuses as `--help` and the man page list them (an "Exit status:" section).
pub const HELP: &str = "\
Exit status:
  0  done: converted, acknowledged, or ended by Ctrl-C
  1  ran, but not done: the master refused a cue or did not answer it, --at could
     not be placed on the master's timeline, or some lines of standard input could
     not be converted (the others were)
  2  usage or setup error: a bad flag, value, environment variable or config file,
     a port that cannot be opened, a failed read or write
Errors are one line on standard error.";

/// The error of a command that ran but whose answer is no: the master refused the cue or did
/// not answer it, or some input values could not be converted. Exit status [`NOT_DONE`]; every
/// other error is [`ERROR`].
///
/// Raise it with `bail!(NotDone::new(...))`, so it stays the error itself and [`status`] finds it.
#[derive(Debug)]
pub struct NotDone(String);

impl NotDone {
    /// What was not done and why, as the one line the user reads.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for NotDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotDone {}

/// The exit status for `error`: [`NOT_DONE`] when a [`NotDone`] is anywhere in its chain, else
/// [`ERROR`].
pub fn status(error: &anyhow::Error) -> u8 {
    if error.chain().any(|cause| cause.is::<NotDone>()) { NOT_DONE } else { ERROR }
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[test]
    fn not_done_is_one_and_everything_else_two() {
        let cases: [(anyhow::Error, u8); 4] = [
            (anyhow::anyhow!(NotDone::new("no /ack")), NOT_DONE),
            (Err::<(), _>(NotDone::new("refused")).context("while sending").unwrap_err(), NOT_DONE),
            (anyhow::anyhow!("bad flag"), ERROR),
            (anyhow::Error::new(std::io::Error::other("port in use")), ERROR),
        ];
        for (error, want) in cases {
            assert_eq!(status(&error), want, "{error:#}");
        }
    }

    #[test]
    fn the_message_is_the_line_the_user_reads() {
        let error = anyhow::anyhow!(NotDone::new("no /ack from 127.0.0.1:5005"));
        assert_eq!(format!("{error:#}"), "no /ack from 127.0.0.1:5005");
    }

    #[test]
    fn the_help_lists_every_status() {
        for status in [DONE, NOT_DONE, ERROR] {
            assert!(HELP.lines().any(|l| l.starts_with(&format!("  {status}  "))), "{status} in {HELP}");
        }
    }
}
