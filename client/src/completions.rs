//! `osc-timecode completions SHELL`: the shell's completion script, generated from the clap
//! definitions (clap_complete), on standard output, so it can never disagree with the command.

use std::io::Write as _;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};
use clap_complete::Shell;

use crate::cli::{BIN_NAME, Cli};

const AFTER_HELP: &str = "\
Install (then open a new shell):
  bash        osc-timecode completions bash > ~/.local/share/bash-completion/completions/osc-timecode
  zsh         osc-timecode completions zsh > ~/.zfunc/_osc-timecode
              (with fpath+=~/.zfunc before compinit in ~/.zshrc)
  fish        osc-timecode completions fish > ~/.config/fish/completions/osc-timecode.fish
  powershell  osc-timecode completions powershell >> $PROFILE
  elvish      osc-timecode completions elvish >> ~/.config/elvish/rc.elv";

/// `osc-timecode completions` arguments.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    // Into memory: clap_complete panics on a failed write, which standard output may be.
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    script
}

/// Runs `completions`: the script on standard output.
pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(&script(args.shell)).and_then(|()| out.flush()).context("could not write to standard output")
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    #[test]
    fn every_script_names_the_command() {
        for shell in Shell::value_variants() {
            let script = String::from_utf8(script(*shell)).expect("UTF-8");
            assert!(script.contains(BIN_NAME), "{shell}: {script}");
        }
    }
}
