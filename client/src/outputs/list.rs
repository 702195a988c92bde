//! `osc-timecode outputs`: the audio output devices (`--ltc`) and MIDI output ports (`--mtc`)
//! this machine has, each written as the flag that names it, ready to copy (quoted for the
//! shell when it needs quoting); `--json` for scripts.
//!
//! A machine without them is an answer, not an error: each section says "none" and why (no
//! sound card, no ALSA sequencer) and the command exits 0. It fails only when nothing could be
//! asked at all: no audio system and no MIDI system.

use std::io::Write as _;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};

use super::device::{AudioHost, sound_cards_present};
use super::mtc::midi_ports;
use super::spec::LtcDest;

/// `osc-timecode outputs`.
#[derive(Debug, Clone, Default, Args)]
pub struct ListArgs {
    /// Print one JSON object (audio hosts and their devices, MIDI ports) instead of text
    #[arg(long)]
    pub json: bool,
}

/// An audio device as listed: the flag naming it and what it plays.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Audio {
    /// Its id, what `--ltc` takes.
    id: String,
    /// Its description.
    name: String,
    /// The host's default output.
    is_default: bool,
    /// Its default output (channels, Hz), or why it could not be opened.
    config: Result<(u16, u32), String>,
}

impl Audio {
    /// What `--ltc` takes to name it: its id, unless the id means something else to `--ltc`
    /// (ALSA's `jack` PCM is not `--ltc jack`, our own JACK client): then its description.
    fn flag(&self) -> String {
        match self.id.parse::<LtcDest>() {
            Ok(LtcDest::Device(_)) => self.id.clone(),
            _ => self.name.clone(),
        }
    }
}

/// One host's devices as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Host {
    /// "ALSA".
    name: String,
    /// Its devices, or why it could not be asked.
    devices: Result<Vec<Audio>, String>,
}

/// Everything listed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listing {
    /// Audio hosts.
    hosts: Vec<Host>,
    /// MIDI output port names, in the order `--mtc N` numbers them (1 = the first), or why
    /// there are none.
    midi: Result<Vec<String>, String>,
}

impl Listing {
    /// Asks the audio and MIDI systems (opens each audio device briefly for its settings).
    fn ask() -> Self {
        let hosts = AudioHost::list()
            .into_iter()
            .map(|h| Host {
                name: h.name.to_owned(),
                devices: h.devices.map(|devices| {
                    devices
                        .into_iter()
                        .map(|d| Audio {
                            config: d.config().map(|c| (c.channels, c.sample_rate)).map_err(|e| e.to_string()),
                            id: d.id,
                            name: d.name,
                            is_default: d.is_default,
                        })
                        .collect()
                }),
            })
            .collect();
        // Asked only when it can answer: ALSA writes its own complaint on standard error
        // when the sequencer is missing.
        let midi = if cfg!(target_os = "linux") && !std::path::Path::new("/dev/snd/seq").exists() {
            Err("no MIDI: /dev/snd/seq is missing (no ALSA sequencer; `modprobe snd-seq`?)".to_owned())
        } else {
            midi_ports().map_err(|e| format!("{e:#}"))
        };
        Self { hosts, midi }
    }

    /// Why no audio device can play, when none can.
    fn audio_none(&self) -> Option<String> {
        let usable = self.hosts.iter().flat_map(|h| h.devices.iter().flatten()).any(|d| d.config.is_ok());
        if usable {
            return None;
        }
        if !sound_cards_present() {
            return Some("no sound card: /dev/snd is missing".to_owned());
        }
        let troubles: Vec<String> =
            self.hosts.iter().filter_map(|h| h.devices.as_ref().err().map(|e| format!("{}: {e}", h.name))).collect();
        Some(if troubles.is_empty() { "no device could be opened".to_owned() } else { troubles.join("; ") })
    }

    /// Whether nothing could be asked at all.
    fn nothing_asked(&self) -> bool {
        self.hosts.iter().all(|h| h.devices.is_err()) && self.midi.is_err()
    }

    /// The text for people.
    fn text(&self) -> String {
        let mut out = String::from("Audio outputs, for LTC (--ltc-channel picks the channel):\n");
        for host in &self.hosts {
            match &host.devices {
                Err(e) => out.push_str(&format!("  {}: not available: {e}\n", host.name)),
                Ok(devices) if devices.is_empty() => out.push_str(&format!("  {}: no output devices\n", host.name)),
                Ok(devices) => {
                    out.push_str(&format!("  {}:\n", host.name));
                    let flags: Vec<String> =
                        devices.iter().map(|d| format!("--ltc {}", shell_quote(&d.flag()))).collect();
                    let width = flags.iter().map(|f| f.chars().count()).max().unwrap_or(0);
                    for (d, flag) in devices.iter().zip(&flags) {
                        let what = match d.config {
                            Ok((channels, rate)) => {
                                format!("{channels} channel{}, {rate} Hz", if channels == 1 { "" } else { "s" })
                            }
                            Err(ref e) => format!("cannot be opened: {e}"),
                        };
                        let default = if d.is_default { " (the default)" } else { "" };
                        out.push_str(&format!("    {flag:<width$}  {}: {what}{default}\n", d.name));
                    }
                }
            }
        }
        if let Some(why) = self.audio_none() {
            out.push_str(&format!("  none: {why}\n"));
        }
        out.push_str("MIDI outputs, for MTC (by name, a unique part of it, or number):\n");
        match &self.midi {
            Ok(ports) if ports.is_empty() => out.push_str("  none: no MIDI output ports\n"),
            Ok(ports) => {
                for (i, port) in ports.iter().enumerate() {
                    out.push_str(&format!("  --mtc {}  ({})\n", shell_quote(port), i + 1));
                }
            }
            Err(why) => out.push_str(&format!("  none: {why}\n")),
        }
        out
    }

    /// The JSON for scripts.
    fn json(&self) -> Value {
        let hosts: Vec<Value> = self
            .hosts
            .iter()
            .map(|h| {
                let devices: Vec<Value> = h
                    .devices
                    .iter()
                    .flatten()
                    .map(|d| {
                        json!({
                            "id": d.id,
                            "flag": format!("--ltc {}", shell_quote(&d.flag())),
                            "name": d.name,
                            "default": d.is_default,
                            "channels": d.config.as_ref().ok().map(|c| c.0),
                            "sample_rate": d.config.as_ref().ok().map(|c| c.1),
                            "error": d.config.as_ref().err(),
                        })
                    })
                    .collect();
                json!({ "host": h.name, "devices": devices, "error": h.devices.as_ref().err() })
            })
            .collect();
        let ports: Vec<Value> =
            self.midi.iter().flatten().enumerate().map(|(i, name)| json!({ "number": i + 1, "name": name })).collect();
        json!({
            "audio": { "hosts": hosts, "none": self.audio_none() },
            "midi": { "ports": ports, "error": self.midi.as_ref().err() },
        })
    }
}

/// `text` as one shell word: as it is when it is made of characters no shell treats specially,
/// else in single quotes (a quote inside written `'\''`).
pub fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,:=+/@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Prints the devices and ports. Errors: nothing could be asked (no audio and no MIDI system),
/// standard output closed.
pub fn run(args: &ListArgs) -> anyhow::Result<()> {
    let listing = Listing::ask();
    if listing.nothing_asked() {
        let audio: Vec<String> = listing.hosts.iter().filter_map(|h| h.devices.as_ref().err().cloned()).collect();
        let audio = if audio.is_empty() { "no audio system".to_owned() } else { audio.join("; ") };
        let midi = listing.midi.as_ref().err().cloned().unwrap_or_default();
        anyhow::bail!("could not ask for any output: {audio}; {midi}");
    }
    let text = if args.json { format!("{}\n", listing.json()) } else { listing.text() };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("could not write the list")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing() -> Listing {
        Listing {
            hosts: vec![Host {
                name: "ALSA".into(),
                devices: Ok(vec![
                    Audio {
                        id: "default".into(),
                        name: "Default Audio Device".into(),
                        is_default: true,
                        config: Ok((2, 48_000)),
                    },
                    Audio {
                        id: "hw:CARD=USB,DEV=0".into(),
                        name: "Scarlett 2i2 USB, USB Audio".into(),
                        is_default: false,
                        config: Ok((1, 44_100)),
                    },
                    Audio {
                        id: "my mixer".into(),
                        name: "it's mine".into(),
                        is_default: false,
                        config: Err("busy".into()),
                    },
                    Audio {
                        id: "jack".into(),
                        name: "JACK Audio Connection Kit".into(),
                        is_default: false,
                        config: Ok((2, 48_000)),
                    },
                ]),
            }],
            midi: Ok(vec!["Midi Through:Midi Through Port-0 14:0".into()]),
        }
    }

    #[test]
    fn devices_and_ports_are_listed_as_the_flags_that_name_them() {
        assert_eq!(
            listing().text(),
            "Audio outputs, for LTC (--ltc-channel picks the channel):\n  ALSA:\n    \
             --ltc default                      Default Audio Device: 2 channels, 48000 Hz (the default)\n    \
             --ltc hw:CARD=USB,DEV=0            Scarlett 2i2 USB, USB Audio: 1 channel, 44100 Hz\n    \
             --ltc 'my mixer'                   it's mine: cannot be opened: busy\n    \
             --ltc 'JACK Audio Connection Kit'  JACK Audio Connection Kit: 2 channels, 48000 Hz\n\
             MIDI outputs, for MTC (by name, a unique part of it, or number):\n  \
             --mtc 'Midi Through:Midi Through Port-0 14:0'  (1)\n"
        );
        let json = listing().json();
        assert_eq!(json["audio"]["hosts"][0]["devices"][1]["id"], "hw:CARD=USB,DEV=0");
        assert_eq!(json["audio"]["hosts"][0]["devices"][2]["flag"], "--ltc 'my mixer'");
        assert_eq!(json["audio"]["hosts"][0]["devices"][3]["flag"], "--ltc 'JACK Audio Connection Kit'");
        assert_eq!(json["audio"]["hosts"][0]["devices"][0]["default"], true);
        assert_eq!(json["audio"]["hosts"][0]["devices"][2]["channels"], Value::Null);
        assert_eq!(json["audio"]["hosts"][0]["devices"][2]["error"], "busy");
        assert_eq!(json["audio"]["none"], Value::Null);
        assert_eq!(json["midi"]["ports"][0]["number"], 1);
    }

    #[test]
    fn a_machine_without_devices_says_none_and_why() {
        let none = Listing {
            hosts: vec![Host { name: "ALSA".into(), devices: Ok(Vec::new()) }],
            midi: Err("no MIDI: /dev/snd/seq is missing".into()),
        };
        let text = none.text();
        assert!(text.contains("  ALSA: no output devices\n  none: "), "{text}");
        assert!(text.ends_with("MIDI outputs, for MTC (by name, a unique part of it, or number):\n  none: no MIDI: /dev/snd/seq is missing\n"), "{text}");
        assert!(!none.nothing_asked());
        let nothing =
            Listing { hosts: vec![Host { name: "ALSA".into(), devices: Err("ALSA is not available".into()) }], ..none };
        assert!(nothing.nothing_asked());
        assert_eq!(nothing.json()["audio"]["hosts"][0]["error"], "ALSA is not available");
    }

    #[test]
    fn names_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(shell_quote("hw:CARD=PCH,DEV=0"), "hw:CARD=PCH,DEV=0");
        assert_eq!(shell_quote("USB Audio"), "'USB Audio'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a$b"), "'a$b'");
    }
}
