//! `osc-timecode man [COMMAND] [--dir DIR]`: the manual pages, generated from the clap
//! definitions (clap_mangen), so they say what `--help` says.
//!
//! One page per command, as git has them: `osc-timecode(1)` (the options every command takes,
//! the list of commands, examples, configuration, exit status) and `osc-timecode-COMMAND(1)` for
//! each command, the pages the first one's COMMANDS section names. clap_mangen renders the
//! standard sections; the help's closing text (`after_help`) becomes sections of its own here
//! (clap_mangen would fill its example tables into one paragraph).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, CommandFactory as _};
use clap_mangen::Man;
use clap_mangen::roff::{Roff, roman};

use crate::cli::{BIN_NAME, Cli};

const AFTER_HELP: &str = "\
Examples:
  osc-timecode man | man -l -                   read the main page
  osc-timecode man cue | man -l -               the page of osc-timecode cue
  osc-timecode man --dir ~/.local/share/man/man1   install every page (then: man osc-timecode)";

/// `osc-timecode man` arguments.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ManArgs {
    /// Print the page of this command (osc-timecode-COMMAND(1)) instead of the main one
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,

    /// Write every page (osc-timecode.1 and osc-timecode-COMMAND.1) into this directory, made if
    /// missing, instead of printing one
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub dir: Option<PathBuf>,
}

/// Runs `man`: one page on standard output, or every page into `--dir`.
pub fn run(args: ManArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.dir {
        for path in write_pages(dir)? {
            println!("{}", path.display());
        }
        return Ok(());
    }
    let page = match &args.command {
        None => main_page(),
        Some(name) => match pages().into_iter().find(|(file, _)| *file == format!("{BIN_NAME}-{name}.1")) {
            Some((_, page)) => page,
            None => bail!("no command {name:?}; one of: {}", command_names().join(", ")),
        },
    };
    let mut out = std::io::stdout().lock();
    out.write_all(page.as_bytes()).and_then(|()| out.flush()).context("could not write to standard output")
}

/// Writes every page into `dir` (made if missing); returns their paths.
pub fn write_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("could not make the directory {}", dir.display()))?;
    pages()
        .into_iter()
        .map(|(file, page)| {
            let path = dir.join(file);
            std::fs::write(&path, page).with_context(|| format!("could not write {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// The main page, `osc-timecode(1)`, as roff.
pub fn main_page() -> String {
    page(built(), false)
}

/// Every page as (file name, roff): `osc-timecode.1` first, then one per command.
pub fn pages() -> Vec<(String, String)> {
    let cli = built();
    let mut pages = vec![(format!("{BIN_NAME}.1"), page(cli.clone(), false))];
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_display_name().unwrap_or_else(|| sub.get_name());
        pages.push((format!("{name}.1"), page(sub.clone(), true)));
    }
    pages
}

/// The command line as the pages describe it: built, so each command carries its display name
/// (`osc-timecode-cue`) and the version, and without clap's `help` command (`--help` is on every
/// page already).
fn built() -> clap::Command {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    cli
}

/// The names of the commands (`convert`, `cue`, ...).
pub fn command_names() -> Vec<String> {
    Cli::command().get_subcommands().filter(|s| !s.is_hide_set()).map(|s| s.get_name().to_owned()).collect()
}

/// The page of `cmd` (already built, so a subcommand carries its display name and version):
/// clap_mangen's sections, with the help's closing text as sections placed before VERSION, and
/// for a command's page a SEE ALSO naming the main page.
fn page(mut cmd: clap::Command, is_subcommand: bool) -> String {
    let closing = cmd.get_after_long_help().or_else(|| cmd.get_after_help()).map(|text| text.to_string());
    cmd = cmd.after_help(None::<&str>).after_long_help(None::<&str>);
    let mut rendered = Vec::new();
    // PANIC: writing to a Vec cannot fail.
    Man::new(cmd)
        .source(format!("{BIN_NAME} {}", env!("CARGO_PKG_VERSION")))
        .render(&mut rendered)
        .expect("rendering into memory");
    let rendered = String::from_utf8_lossy(&rendered).into_owned();

    let mut extra = Roff::new();
    if let Some(text) = &closing {
        help_sections(&mut extra, text);
    }
    if is_subcommand {
        extra.control("SH", ["SEE ALSO"]);
        extra.text([roman(format!("{BIN_NAME}(1): the options every command takes, configuration, exit status"))]);
    }
    let extra = extra.to_roff();
    let page = match rendered.find("\n.SH VERSION\n") {
        Some(at) => format!("{}\n{extra}{}", &rendered[..at], &rendered[at + 1..]),
        None => rendered + &extra,
    };
    ascii(&page)
}

/// `roff` with every character beyond ASCII (the help's `×`, `±`) as a groff/mandoc escape
/// (`\[u00D7]`): troff reads its input as Latin-1 unless a preprocessor converts it, as `man` does
/// and a plain `groff -man` does not.
fn ascii(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    for c in roff.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

/// `text` (a help's closing text: blocks separated by blank lines) as man sections. A block
/// whose first line is a heading (`Examples:`) starts a section of that name in capitals;
/// another block continues the section before it as a new paragraph, except after the examples,
/// which are a section of their own: it starts NOTES. Indented lines (tables, examples) keep
/// their layout (no filling); other lines are filled into paragraphs.
fn help_sections(roff: &mut Roff, text: &str) {
    let mut section: Option<String> = None;
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines: Vec<&str> = block.lines().collect();
        match heading(lines[0]) {
            Some(name) if lines.len() > 1 => {
                roff.control("SH", [name.to_uppercase().as_str()]);
                section = Some(name.to_owned());
                lines.remove(0);
            }
            _ if section.as_deref().is_none_or(|s| s == "Examples") => {
                roff.control("SH", ["NOTES"]);
                section = Some("Notes".to_owned());
            }
            _ => {
                roff.control("PP", []);
            }
        }
        let mut literal = false;
        for line in lines {
            let indented = line.starts_with(' ');
            if indented != literal {
                roff.control(if indented { "nf" } else { "fi" }, []);
                literal = indented;
            }
            roff.text([roman(line)]);
        }
        if literal {
            roff.control("fi", []);
        }
    }
}

/// The heading `line` is, if it is one: unindented, short, ending with a colon.
fn heading(line: &str) -> Option<&str> {
    let name = line.strip_suffix(':')?;
    (!line.starts_with(' ') && name.len() <= 30 && !name.contains(':')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_text_becomes_sections_with_layout_kept() {
        let mut roff = Roff::new();
        help_sections(
            &mut roff,
            "Examples:\n  a  b\n  c  d\n\nSome prose\nmore prose.\n\nExit status:\n  0  done\nOne line.",
        );
        let text = roff.to_roff();
        assert_eq!(
            text,
            ".SH EXAMPLES\n.nf\n  a  b\n  c  d\n.fi\n.SH NOTES\nSome prose\nmore prose.\n\
             .SH \"EXIT STATUS\"\n.nf\n  0  done\n.fi\nOne line.\n"
        );
    }

    #[test]
    fn characters_beyond_ascii_are_escaped() {
        assert_eq!(ascii("a × b ± c\n"), "a \\[u00D7] b \\[u00B1] c\n");
        assert_eq!(ascii("emoji \u{1F600}"), "emoji \\[u1F600]");
    }

    #[test]
    fn headings_are_short_unindented_lines_ending_in_a_colon() {
        assert_eq!(heading("Exit status:"), Some("Exit status"));
        assert_eq!(heading("  indented:"), None);
        assert_eq!(heading("States: waiting (nothing yet), stopped:"), None);
        assert_eq!(heading("A long line of prose that happens to end with a colon:"), None);
    }

    #[test]
    fn every_command_has_a_page_that_names_it() {
        let pages = pages();
        assert_eq!(pages.len(), command_names().len() + 1);
        for name in command_names() {
            let (_, page) = pages
                .iter()
                .find(|(file, _)| *file == format!("osc-timecode-{name}.1"))
                .unwrap_or_else(|| panic!("no page for {name}"));
            assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
            assert!(page.contains(&format!(".TH osc-timecode-{name} 1")), "{page}");
            assert!(page.contains(".SH \"SEE ALSO\""), "{page}");
        }
    }
}
