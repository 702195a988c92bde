//! The `osc-timecode` command's modules, as a library: `main.rs` is the command line around
//! them, and the fuzz targets (`fuzz/`) call the same code without sockets or a terminal:
//! `listen`'s datagram handling ([`listen::handle_datagram`]), `serve`'s receiver
//! ([`serve::receiver::Receiver::handle_datagram`]) and `convert`'s line parser
//! ([`convert::convert_line`]).
//!
//! Contract: nothing here panics on input from the network, the command line or standard input;
//! errors are values (`anyhow` with context, one line for the user).

#![forbid(unsafe_code)]

pub mod cli;
pub mod clock;
pub mod completions;
pub mod config;
pub mod convert;
pub mod discover;
pub mod exit;
pub mod listen;
pub mod man;
pub mod net;
pub mod outputs;
pub mod port;
pub mod seconds;
pub mod send;
pub mod serve;

/// One line on standard error, prefixed like every message of the command. A closed standard
/// error is ignored: there is nowhere left to report it.
pub fn note(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "osc-timecode: {message}");
}
