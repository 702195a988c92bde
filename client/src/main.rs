//! `osc-timecode`: the command-line companion of the OSC Timecode plugin.
//!
//! Contract: the command never panics at the user. Every failure, a bad flag included, is one
//! line `osc-timecode: <what went wrong, with context>` on standard error, with exit status 1
//! when the command ran but the answer is no (the master refused or did not answer a cue, some
//! input could not be converted: `exit::NotDone`) and 2 for any other error (usage, config,
//! setup, I/O); `--help` and `--version` exit 0; a reader that goes away (`| head -1`) ends the
//! command quietly with status 0. The `exit` module owns these statuses and their help text.
//!
//! Data flow:
//! 1. [`cli::Cli`] parses the command line (and the environment variables clap reads);
//! 2. [`config::load`] reads the `[client]` table of the config file for defaults;
//! 3. the subcommand's module (`convert`, `send` for `cue` and `trigger`, `serve`, `listen`,
//!    `completions`, `man`; in the library, `lib.rs`) does the work and writes to standard
//!    output;
//! 4. [`main`] turns its error, if any, into the line on standard error and the exit status.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use osc_timecode_client::{cli, completions, config, convert, discover, exit, listen, man, note, outputs, send, serve};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::from(exit::DONE),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(exit::DONE),
        Err(e) => {
            note(&format!("{e:#}"));
            ExitCode::from(exit::status(&e))
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version: clap's own text on standard output.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return Ok(());
        }
        Err(e) => anyhow::bail!(one_line(&e)),
    };
    let config = || config::load(cli.config.as_deref());
    match cli.command {
        cli::Command::Convert(args) => convert::run(args, &config()?),
        cli::Command::Cue(args) => send::run(send::Kind::Cue, args, &config()?),
        cli::Command::Trigger(args) => send::run(send::Kind::Trigger, args, &config()?),
        cli::Command::Serve(args) => serve::run(args, &config()?),
        cli::Command::Listen(args) => listen::run(args, &config()?),
        // From the command line alone: a broken config file must not keep anyone from installing
        // the completions or reading the manual.
        cli::Command::Completions(args) => completions::run(args),
        cli::Command::Man(args) => man::run(args),
        // Asks the system, not the file.
        cli::Command::Outputs(args) => outputs::list::run(&args),
        cli::Command::Discover(args) => discover::run(&args),
    }
}

/// clap's error on one line. clap renders paragraphs: the error (possibly with a list of
/// arguments), tips, usage and a pointer to `--help`; keep the error and tips, name the
/// environment variable a bad value came from, and point at the right `--help`.
fn one_line(e: &clap::Error) -> String {
    use clap::error::ErrorKind;
    let text = e.render().to_string();
    let paragraphs: Vec<&str> = text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).collect();
    // The command the error is about: `osc-timecode convert` once its name is on the line.
    let names: Vec<String> =
        <cli::Cli as clap::CommandFactory>::command().get_subcommands().map(|c| c.get_name().to_owned()).collect();
    let command = std::env::args_os()
        .skip(1)
        .find_map(|a| a.to_str().and_then(|a| names.iter().find(|n| *n == a)).cloned())
        .map_or_else(|| "osc-timecode".to_owned(), |name| format!("osc-timecode {name}"));
    let mut line = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "a command is required, e.g. 'osc-timecode convert --rate 29.97df --frames 1800'".to_owned()
    } else {
        paragraphs
            .iter()
            .filter(|p| !p.starts_with("Usage:") && !p.starts_with("For more information"))
            .map(|p| {
                let p = p.strip_prefix("error: ").unwrap_or(p);
                p.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    if let Some(env) = env_source(e) {
        line.push_str(&format!(" (the value came from {env})"));
    }
    line.push_str(&format!(" (see '{command} --help')"));
    line
}

/// The environment variable that supplied the bad value of `e`, if the flag itself was not
/// given: clap's message names only the flag, which the user did not type.
fn env_source(e: &clap::Error) -> Option<&'static str> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = arg.split([' ', '=']).next()?;
    let (_, env) = config::ENV_FLAGS.iter().find(|(f, _)| *f == flag)?;
    let typed = std::env::args_os()
        .skip(1)
        .any(|a| a.to_str().is_some_and(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('='))));
    (!typed && std::env::var_os(env).is_some()).then_some(*env)
}

/// Whether `e` is, at heart, a write to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
