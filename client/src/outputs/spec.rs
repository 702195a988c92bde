//! What outputs to run: the flags (`--ltc`, `--mtc`, `--artnet`, ...) shared by `listen` and
//! `serve`, the `[client.outputs]` table of the config file, and the two merged into one
//! [`OutputSpec`]. Each value is checked by one type ([`LtcDest`], [`MtcDest`], [`LtcLevel`],
//! [`ArtNetTarget`], [`LtcChannel`]) whose `FromStr` the flag and the file both use, so both
//! refuse alike, with the same words.
//!
//! Precedence per key, as for the rest of `[client]`: the flag, then the file, then the default.
//! `--artnet` replaces the file's list (it does not add to it).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::str::FromStr;

use clap::Args;
use osc_timecode_core::ltc::{DEFAULT_LEVEL_DBFS, MAX_LEVEL_DBFS, MIN_LEVEL_DBFS};
use osc_timecode_core::protocol::port;
use serde::Deserialize;

use super::ltc::Idle;

/// The options that start outputs, flattened into `listen` and `serve`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Outputs (re-generated from the chase; `osc-timecode outputs` lists devices)")]
pub struct OutputArgs {
    /// LTC audio: wav:FILE (a Broadcast Wave file), jack or jack:PORT (a JACK output port,
    /// connected to PORT), or an audio device's name [default: client.outputs.ltc]
    #[arg(long, value_name = "DEVICE|wav:FILE|jack[:PORT]")]
    pub ltc: Option<LtcDest>,

    /// The device channel LTC plays on, 1 = the first [default: 1]
    #[arg(long, value_name = "N")]
    pub ltc_channel: Option<LtcChannel>,

    /// LTC's peak level, -60 to 0 dBFS [default: -18]
    #[arg(long, value_name = "DBFS", allow_negative_numbers = true)]
    pub ltc_level_dbfs: Option<LtcLevel>,

    /// What LTC plays while the master is stopped: silence, or still (the parked frame's word,
    /// repeated) [default: silence]
    #[arg(long, value_name = "silence|still")]
    pub ltc_stopped: Option<LtcStopped>,

    /// Sample rate of a wav: file, Hz [default: 48000]; a device or JACK plays at its own rate
    #[arg(long = "ltc-sample-rate", value_name = "HZ", value_parser = crate::config::parse_sample_rate)]
    pub ltc_sample_rate: Option<u32>,

    /// MTC: a MIDI output port's name or number, or jack or jack:PORT (a JACK MIDI port,
    /// connected to PORT) [default: client.outputs.mtc]
    #[arg(long, value_name = "PORT|jack[:PORT]")]
    pub mtc: Option<MtcDest>,

    /// Art-Net ArtTimeCode to IP or IP:PORT (IPv4; port 6454 if none; repeatable; a broadcast
    /// address only when written) [default: client.outputs.artnet]
    #[arg(long, value_name = "IP[:PORT]")]
    pub artnet: Vec<ArtNetTarget>,

    /// ArtTimeCode's StreamId byte, 0-255 [default: 0]
    #[arg(long, value_name = "ID")]
    pub artnet_stream_id: Option<u8>,

    /// Carry 50, 59.94 and 60 fps as frame pairs at 25, 29.97 and 30 (refused otherwise)
    #[arg(long)]
    pub half_rate: bool,
}

/// `[client.outputs]` as written: every key optional, unknown keys refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputsConfig {
    /// `ltc = "wav:show.wav"`, `"jack:system:playback_1"` or a device name.
    pub ltc: Option<LtcDest>,
    /// `ltc_channel = 2`.
    pub ltc_channel: Option<LtcChannel>,
    /// `ltc_level_dbfs = -18`.
    pub ltc_level_dbfs: Option<LtcLevel>,
    /// `ltc_stopped = "still"`.
    pub ltc_stopped: Option<LtcStopped>,
    /// `ltc_sample_rate = 48000`.
    pub ltc_sample_rate: Option<SampleRate>,
    /// `mtc = "jack"` or a MIDI port's name.
    pub mtc: Option<MtcDest>,
    /// `artnet = ["10.0.0.5", "127.0.0.1:6455"]`.
    pub artnet: Option<Vec<ArtNetTarget>>,
    /// `artnet_stream_id = 0`.
    pub artnet_stream_id: Option<u8>,
    /// `half_rate = true`.
    pub half_rate: Option<bool>,
}

/// The outputs to run, flags and file merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputSpec {
    /// LTC, if asked for.
    pub ltc: Option<LtcSpec>,
    /// MTC, if asked for.
    pub mtc: Option<MtcSpec>,
    /// Art-Net (no targets: none).
    pub artnet: ArtNetSpec,
    /// Frame pairs for 50, 59.94 and 60 fps, on every output.
    pub half_rate: bool,
}

/// The LTC output.
#[derive(Debug, Clone, PartialEq)]
pub struct LtcSpec {
    /// Where it plays.
    pub dest: LtcDest,
    /// The channel, 1-based (a device's or JACK's; a WAV file is mono).
    pub channel: LtcChannel,
    /// Peak level.
    pub level: LtcLevel,
    /// What plays while the master is stopped.
    pub idle: Idle,
    /// A WAV file's sample rate, Hz.
    pub sample_rate: u32,
}

/// The MTC output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtcSpec {
    /// Where it goes.
    pub dest: MtcDest,
}

/// The Art-Net output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtNetSpec {
    /// Where packets go, in order, no duplicates.
    pub targets: Vec<SocketAddrV4>,
    /// The StreamId byte.
    pub stream_id: u8,
}

/// A WAV file's sample rate when neither flag nor file names one, Hz.
pub const DEFAULT_WAV_SAMPLE_RATE: u32 = 48_000;

impl OutputSpec {
    /// The flags over the file. Errors: an Art-Net target twice.
    pub fn merge(args: &OutputArgs, file: &OutputsConfig) -> anyhow::Result<Self> {
        let ltc = args.ltc.clone().or_else(|| file.ltc.clone()).map(|dest| LtcSpec {
            dest,
            channel: args.ltc_channel.or(file.ltc_channel).unwrap_or_default(),
            level: args.ltc_level_dbfs.or(file.ltc_level_dbfs).unwrap_or_default(),
            idle: args.ltc_stopped.or(file.ltc_stopped).unwrap_or_default().0,
            sample_rate: args.ltc_sample_rate.or(file.ltc_sample_rate.map(|r| r.0)).unwrap_or(DEFAULT_WAV_SAMPLE_RATE),
        });
        let mtc = args.mtc.clone().or_else(|| file.mtc.clone()).map(|dest| MtcSpec { dest });
        let listed = if args.artnet.is_empty() { file.artnet.clone().unwrap_or_default() } else { args.artnet.clone() };
        let mut targets: Vec<SocketAddrV4> = Vec::new();
        for t in listed {
            if targets.contains(&t.0) {
                anyhow::bail!("Art-Net target {} is listed twice", t.0);
            }
            targets.push(t.0);
        }
        let stream_id = args.artnet_stream_id.or(file.artnet_stream_id).unwrap_or(0);
        let half_rate = args.half_rate || file.half_rate.unwrap_or(false);
        Ok(Self { ltc, mtc, artnet: ArtNetSpec { targets, stream_id }, half_rate })
    }

    /// Whether no output is asked for.
    pub fn is_empty(&self) -> bool {
        self.ltc.is_none() && self.mtc.is_none() && self.artnet.targets.is_empty()
    }
}

/// Implements `Deserialize` through `FromStr` (the flag's parser), so a file refuses exactly
/// what the flag refuses, with the same words.
macro_rules! deserialize_from_str {
    ($t:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                }
                deserializer.deserialize_any(Visitor)
            }
        }
    };
}

/// Where LTC plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LtcDest {
    /// `wav:FILE`: a Broadcast Wave file.
    Wav(PathBuf),
    /// `jack` or `jack:PORT`: a JACK output port, connected to PORT if given.
    Jack(Option<String>),
    /// An audio device by name (`default`: the system's default output).
    Device(String),
}

impl FromStr for LtcDest {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("wav:") {
            if path.is_empty() {
                return Err("wav: needs a file name, like wav:ltc.wav".into());
            }
            return Ok(Self::Wav(PathBuf::from(path)));
        }
        match jack_port(text)? {
            Some(port) => Ok(Self::Jack(port)),
            None if text.trim().is_empty() => Err("an LTC output is a device name, wav:FILE or jack[:PORT]".into()),
            None => Ok(Self::Device(text.to_owned())),
        }
    }
}

impl fmt::Display for LtcDest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wav(path) => write!(f, "wav:{}", path.display()),
            Self::Jack(None) => f.write_str("jack"),
            Self::Jack(Some(port)) => write!(f, "jack:{port}"),
            Self::Device(name) => f.write_str(name),
        }
    }
}

deserialize_from_str!(LtcDest, "an LTC output: a device name, \"wav:FILE\" or \"jack[:PORT]\"");

/// `jack` → `Some(None)`, `jack:PORT` → `Some(Some(PORT))`, anything else `None`.
fn jack_port(text: &str) -> Result<Option<Option<String>>, String> {
    if text == "jack" {
        return Ok(Some(None));
    }
    match text.strip_prefix("jack:") {
        Some("") => Err("jack: needs a port to connect to, like jack:system:playback_1 (or plain jack)".into()),
        Some(port) => Ok(Some(Some(port.to_owned()))),
        None => Ok(None),
    }
}

/// Where MTC goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtcDest {
    /// `jack` or `jack:PORT`: a JACK MIDI output port, connected to PORT if given.
    Jack(Option<String>),
    /// A MIDI output port by name (a unique part of it) or by its number in `osc-timecode
    /// outputs`.
    Port(String),
}

impl FromStr for MtcDest {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match jack_port(text)? {
            Some(port) => Ok(Self::Jack(port)),
            None if text.trim().is_empty() => {
                Err("an MTC output is a MIDI port's name or number, or jack[:PORT]".into())
            }
            None => Ok(Self::Port(text.to_owned())),
        }
    }
}

impl fmt::Display for MtcDest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Jack(None) => f.write_str("jack"),
            Self::Jack(Some(port)) => write!(f, "jack:{port}"),
            Self::Port(name) => f.write_str(name),
        }
    }
}

deserialize_from_str!(MtcDest, "an MTC output: a MIDI port's name or number, or \"jack[:PORT]\"");

/// LTC's channel, 1-based (1–64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LtcChannel(u16);

/// The most channels an LTC device may be asked for.
pub const MAX_LTC_CHANNEL: u16 = 64;

impl LtcChannel {
    /// The channel, 1-based.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Its index in an interleaved frame, 0-based.
    pub fn index(self) -> usize {
        usize::from(self.0 - 1)
    }
}

impl Default for LtcChannel {
    fn default() -> Self {
        Self(1)
    }
}

impl FromStr for LtcChannel {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().parse::<u16>() {
            Ok(n @ 1..=MAX_LTC_CHANNEL) => Ok(Self(n)),
            _ => Err(format!("the LTC channel is 1-{MAX_LTC_CHANNEL}, not {text}")),
        }
    }
}

deserialize_from_str!(LtcChannel, "an LTC channel, 1-64");

/// LTC's peak level, dBFS, [`MIN_LEVEL_DBFS`] to [`MAX_LEVEL_DBFS`] (the plugin's range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LtcLevel(f32);

/// Always finite (checked by [`LtcLevel::from_str`]), so equality is an equivalence.
impl Eq for LtcLevel {}

impl LtcLevel {
    /// The level, dBFS.
    pub fn dbfs(self) -> f32 {
        self.0
    }
}

impl Default for LtcLevel {
    fn default() -> Self {
        Self(DEFAULT_LEVEL_DBFS)
    }
}

impl FromStr for LtcLevel {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().parse::<f32>() {
            Ok(v) if v.is_finite() && (MIN_LEVEL_DBFS..=MAX_LEVEL_DBFS).contains(&v) => Ok(Self(v)),
            _ => Err(format!("the LTC level is {MIN_LEVEL_DBFS} to {MAX_LEVEL_DBFS} dBFS, not {text}")),
        }
    }
}

deserialize_from_str!(LtcLevel, "an LTC level, -60 to 0 dBFS");

/// What LTC plays while the master is stopped: `silence` or `still` (the plugin's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LtcStopped(pub Idle);

impl FromStr for LtcStopped {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "silence" => Ok(Self(Idle::Silence)),
            "still" => Ok(Self(Idle::Still)),
            _ => Err(format!("LTC while stopped is silence or still, not {text}")),
        }
    }
}

deserialize_from_str!(LtcStopped, "\"silence\" or \"still\"");

/// A sample rate in the file, checked as `--ltc-sample-rate` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRate(pub u32);

impl FromStr for SampleRate {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        crate::config::parse_sample_rate(text).map(Self)
    }
}

deserialize_from_str!(SampleRate, "a sample rate in Hz");

/// Where ArtTimeCode goes: IPv4 (Art-Net is IPv4 only; names are not looked up) and a port,
/// 6454 ([`port::ARTNET`]) when none is written. The plugin's targets follow the same rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtNetTarget(pub SocketAddrV4);

impl FromStr for ArtNetTarget {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<Ipv4Addr>() {
            return Ok(Self(SocketAddrV4::new(ip, port::ARTNET)));
        }
        match text.parse::<SocketAddr>() {
            Ok(SocketAddr::V4(a)) if a.port() != 0 => Ok(Self(a)),
            Ok(SocketAddr::V4(_)) => Err(format!("port 0 is not a port to send to: {text}")),
            Ok(SocketAddr::V6(_)) => {
                Err("Art-Net is IPv4 only: write an IPv4 address, like 10.0.0.5 or 10.255.255.255:6454".into())
            }
            Err(_) if text.parse::<std::net::Ipv6Addr>().is_ok() => {
                Err("Art-Net is IPv4 only: write an IPv4 address, like 10.0.0.5 or 10.255.255.255:6454".into())
            }
            Err(_) => Err(format!("not an address like 10.0.0.5 or 10.0.0.5:6454: {text}")),
        }
    }
}

deserialize_from_str!(ArtNetTarget, "an Art-Net target like \"10.0.0.5\" or \"10.0.0.5:6454\"");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_as_written() {
        assert_eq!("wav:a b.wav".parse::<LtcDest>(), Ok(LtcDest::Wav("a b.wav".into())));
        assert_eq!("jack".parse::<LtcDest>(), Ok(LtcDest::Jack(None)));
        assert_eq!("jack:system:playback_1".parse::<LtcDest>(), Ok(LtcDest::Jack(Some("system:playback_1".into()))));
        assert_eq!("hw:1,0".parse::<LtcDest>(), Ok(LtcDest::Device("hw:1,0".into())));
        assert!("wav:".parse::<LtcDest>().is_err());
        assert!("jack:".parse::<MtcDest>().is_err());
        assert_eq!("2".parse::<MtcDest>(), Ok(MtcDest::Port("2".into())));
        assert_eq!("10.0.0.5".parse::<ArtNetTarget>().map(|t| t.0.port()), Ok(6454));
        assert!("[::1]:6454".parse::<ArtNetTarget>().unwrap_err().contains("IPv4 only"));
        assert!("::1".parse::<ArtNetTarget>().unwrap_err().contains("IPv4 only"));
        assert!("10.0.0.5:0".parse::<ArtNetTarget>().is_err());
        assert!("-61".parse::<LtcLevel>().is_err());
        assert!("0.5".parse::<LtcLevel>().is_err());
        assert!("0".parse::<LtcChannel>().is_err());
        assert_eq!("still".parse::<LtcStopped>(), Ok(LtcStopped(Idle::Still)));
    }

    #[test]
    fn the_flags_win_over_the_file_and_the_file_refuses_what_the_flags_refuse() {
        let file: OutputsConfig = toml::from_str(
            "ltc = \"wav:f.wav\"\nltc_level_dbfs = -20\nartnet = [\"127.0.0.1:6455\"]\nhalf_rate = true\nmtc = \"jack\"",
        )
        .unwrap();
        let args = OutputArgs { ltc_level_dbfs: Some("-12".parse().unwrap()), ..OutputArgs::default() };
        let spec = OutputSpec::merge(&args, &file).unwrap();
        let ltc = spec.ltc.unwrap();
        assert_eq!((ltc.dest, ltc.level.dbfs()), (LtcDest::Wav("f.wav".into()), -12.0));
        assert_eq!(spec.artnet.targets, ["127.0.0.1:6455".parse::<SocketAddrV4>().unwrap()]);
        assert!(spec.half_rate);
        assert_eq!(spec.mtc.unwrap().dest, MtcDest::Jack(None));
        for (key, value, flag_error) in [
            ("ltc_level_dbfs", "-61", "-61".parse::<LtcLevel>().unwrap_err()),
            ("ltc_channel", "0", "0".parse::<LtcChannel>().unwrap_err()),
            ("ltc_stopped", "\"loud\"", "loud".parse::<LtcStopped>().unwrap_err()),
            ("artnet", "[\"::1\"]", "::1".parse::<ArtNetTarget>().unwrap_err()),
        ] {
            let e = toml::from_str::<OutputsConfig>(&format!("{key} = {value}")).unwrap_err().to_string();
            assert!(e.contains(&flag_error), "{key}: {e} does not say {flag_error}");
        }
        assert!(toml::from_str::<OutputsConfig>("ltc-level = 1").is_err(), "unknown keys are refused");
        let twice = OutputArgs {
            artnet: vec!["127.0.0.1".parse().unwrap(), "127.0.0.1:6454".parse().unwrap()],
            ..OutputArgs::default()
        };
        assert!(OutputSpec::merge(&twice, &OutputsConfig::default()).is_err());
    }
}
