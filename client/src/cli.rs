//! The command line: global options and the list of subcommands, each in its own module, and
//! the help text that closes `--help` (examples, configuration, exit status).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::completions::CompletionsArgs;
use crate::convert::ConvertArgs;
use crate::exit;
use crate::listen::ListenArgs;
use crate::man::ManArgs;
use crate::outputs::list::ListArgs;
use crate::send::SendArgs;
use crate::serve::ServeArgs;

/// The command's name, as installed and as completions and man pages call it.
pub const BIN_NAME: &str = "osc-timecode";

const ABOUT: &str = "The OSC Timecode plugin's command-line companion: listen, cue, serve, convert";

const LONG_ABOUT: &str = "\
The OSC Timecode plugin's command-line companion: chase a master's timecode (listen), send it cues \
and triggers and wait for their acknowledgement (cue, trigger), be a free-running master without a \
DAW (serve), and convert exactly between frames, samples, seconds and timecode labels (convert).";

const EXAMPLES: &str = "\
Examples:
  osc-timecode convert --rate 29.97df --frames 1800            prints 00:01:00;02
  osc-timecode convert --rate 29.97df --timecode '00:01:00;02'  prints 1800
  seq 0 1800 9000 | osc-timecode convert --rate 29.97df         one label per line
  osc-timecode convert --help                                   every option, more examples
  osc-timecode cue 12                                           note 12 into the host, acknowledged
  osc-timecode trigger 7 0.5                                    control change 7 = 64
  osc-timecode serve --rate 29.97df --start '01:00:00;00'       a master without a DAW (Ctrl-C ends)
  osc-timecode listen                                           chase the timecode at 127.0.0.1:5006
  osc-timecode discover                                         OSC services on the network (DNS-SD _osc._udp)
  osc-timecode completions bash > ~/.local/share/bash-completion/completions/osc-timecode
  osc-timecode man --dir ~/.local/share/man/man1                the manual pages";

const CONFIGURATION: &str = "\
Configuration:
  Defaults come from the [client] table of a TOML file, the one the plugin reads its [plugin]
  table from:
    [client]
    rate = \"29.97df\"       # --rate (convert, serve), OSC_TIMECODE_RATE
    sample_rate = 48000    # --sample-rate, OSC_TIMECODE_SAMPLE_RATE
    master = \"127.0.0.1:5005\"  # cue/trigger --master, OSC_TIMECODE_MASTER
    token = \"s3cret\"     # cue/trigger/serve --token, OSC_TIMECODE_TOKEN
    listen = \"127.0.0.1:5006\"  # listen --bind, cue --timecode-from, OSC_TIMECODE_LISTEN
    listen_from = [\"192.168.1.20\"]  # listen --from
    record_max_bytes = \"1GiB\"  # listen --record-max-bytes
    clock = \"sync\"        # listen, cue --at: --clock (same, sync, arrival)
    clock_offset_ms = 0    # listen --clock-offset-ms
    interface = \"eth0\"    # serve/listen --interface (a name or one of its addresses)
    ttl = 1                # serve --ttl (multicast hops)
    [client.outputs]       # listen/serve: --ltc, --mtc, --artnet... (see the README)
  A flag beats its environment variable, which beats the file, which beats the built-in
  default. The file is --config FILE, else $OSC_TIMECODE_CONFIG, else
    Linux    $XDG_CONFIG_HOME/osc-timecode/config.toml or ~/.config/osc-timecode/config.toml
    macOS    ~/Library/Application Support/osc-timecode/config.toml
    Windows  %APPDATA%\\osc-timecode\\config.toml
  A missing file is fine (except with --config); an invalid one is an error.";

/// The text after the options in `--help`, and sections of the man page: examples,
/// configuration, exit status.
fn after_help() -> String {
    format!("{EXAMPLES}\n\n{CONFIGURATION}\n\n{}", exit::HELP)
}

/// `osc-timecode`: the options every command takes and the command.
#[derive(Debug, Parser)]
#[command(
    name = BIN_NAME,
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = after_help(),
    subcommand_required = true,
    propagate_version = true
)]
pub struct Cli {
    /// Read defaults from this TOML file (its client table) instead of the usual location
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, one module each, with an arm in `main::run`.
#[derive(Debug, Subcommand)]
pub enum Command {
    // No doc comment here: it would replace the long help that `ConvertArgs` carries.
    Convert(ConvertArgs),
    /// Send /cue/NAME to the master and wait for its /ack
    Cue(SendArgs),
    /// Send /trigger/NAME to the master and wait for its /ack
    Trigger(SendArgs),
    /// Be the master: free-running timecode to the targets; cues, triggers and transport in
    Serve(ServeArgs),
    /// Receive /sync/timecode and chase the master's timeline
    Listen(ListenArgs),
    /// List the audio devices and MIDI ports the outputs can use (--ltc, --mtc)
    Outputs(ListArgs),
    /// Browse the network for OSC services (_osc._udp over DNS-SD): masters, receivers, others
    Discover(crate::discover::DiscoverArgs),
    /// Print the completion script for a shell (bash, zsh, fish, powershell, elvish)
    Completions(CompletionsArgs),
    /// Print the manual page, or write every page into a directory
    Man(ManArgs),
}
