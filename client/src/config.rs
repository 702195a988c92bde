//! The machine config file's `[client]` table: defaults for the command's options, so a stage
//! machine is set up once.
//!
//! Precedence, highest first: the command-line flag, its environment variable (clap reads
//! those), this file, the built-in default. The file is the one the plugin reads its `[plugin]`
//! table from (`plugin/src/settings.rs`); other tables are left to their owners.
//!
//! Location: `--config FILE` (which must exist), else the machine's config file as
//! [`osc_timecode_core::config`] describes it (`$OSC_TIMECODE_CONFIG`, else the per-OS path).
//!
//! A missing file at the implicit locations means "no defaults"; a file that exists but cannot be
//! read or is not valid is an error, never silently ignored: a typo in a show machine's config
//! must not quietly convert at the wrong rate.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use osc_timecode_core::FrameRate;
use osc_timecode_core::protocol::port;
use serde::Deserialize;

/// Environment variable for `--rate`.
pub const RATE_ENV: &str = "OSC_TIMECODE_RATE";

/// Environment variable for `--sample-rate`.
pub const SAMPLE_RATE_ENV: &str = "OSC_TIMECODE_SAMPLE_RATE";

/// Environment variable for `--master` (`cue`, `trigger`).
pub const MASTER_ENV: &str = "OSC_TIMECODE_MASTER";

/// Environment variable for `--token` (`cue`, `trigger`, `serve`).
pub const TOKEN_ENV: &str = "OSC_TIMECODE_TOKEN";

/// Environment variable for `--bind` (`listen`).
pub const LISTEN_ENV: &str = "OSC_TIMECODE_LISTEN";

/// Flags that fall back to an environment variable, for error messages.
pub const ENV_FLAGS: [(&str, &str); 5] = [
    ("--rate", RATE_ENV),
    ("--sample-rate", SAMPLE_RATE_ENV),
    ("--master", MASTER_ENV),
    ("--token", TOKEN_ENV),
    ("--bind", LISTEN_ENV),
];

/// Where `cue` and `trigger` send, and where `serve` receives cues and transport control, when
/// neither flag, environment nor config file says: a master's default cue input.
pub const DEFAULT_MASTER: SocketAddr = port::DEFAULT_CUES;

/// Where `listen` (and `cue --at`) receive timecode, and where `serve` sends it, when neither
/// flag, environment nor config file says: the plugin's default target.
pub const DEFAULT_TIMECODE: SocketAddr = port::DEFAULT_TIMECODE;

/// Frame rate when neither flag, environment nor config file names one: the plugin's default.
pub const DEFAULT_RATE: FrameRate = FrameRate::FPS_25;

/// Audio sample rates accepted anywhere (flag, environment, file), in Hz: up to 32 × 48 kHz,
/// beyond any interface sold; zero would divide by zero.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1..=1_536_000;

/// The `[client]` table, every key optional.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ClientConfig {
    /// `rate = "29.97df"`: default frame rate.
    pub rate: Option<FrameRate>,
    /// `sample_rate = 48000`: default audio sample rate in Hz, within [`SAMPLE_RATES`].
    pub sample_rate: Option<u32>,
    /// `master = "127.0.0.1:5005"`: where `cue` and `trigger` send.
    pub master: Option<std::net::SocketAddr>,
    /// `token = "..."`: the master's shared token.
    pub token: Option<String>,
    /// `listen = "127.0.0.1:5006"`: where `listen` receives timecode.
    pub listen: Option<std::net::SocketAddr>,
    /// `listen_from = ["192.168.1.20", "10.0.0.0/24"]`: the only sources `listen` may follow
    /// as its master (`--from`); absent: any.
    pub listen_from: Option<Vec<ipnet::IpNet>>,
    /// `record_max_bytes = 1073741824` (or `"1GiB"`): `listen --record`'s size cap in bytes,
    /// within [`RECORD_MAX_BYTES`].
    pub record_max_bytes: Option<u64>,
    /// `clock = "sync"`: how `listen` places the master's timetags on this machine's clock
    /// (`--clock`).
    pub clock: Option<crate::clock::ClockMode>,
    /// `clock_offset_ms = -12.5`: `listen --clock-offset-ms`.
    pub clock_offset_ms: Option<f64>,
    /// `interface = "eth0"` (or an address): the network interface `serve` sends on and
    /// `listen` binds or joins on (`--interface`).
    pub interface: Option<crate::net::InterfaceSpec>,
    /// `ttl = 1`: `serve --ttl`, the multicast TTL in hops, 1 to 255.
    pub ttl: Option<u32>,
    /// `[client.outputs]`: the outputs `listen` and `serve` run without flags (issue 17), so
    /// `osc-timecode listen` with the file runs the rig.
    pub outputs: crate::outputs::spec::OutputsConfig,
}

/// Sizes accepted for `listen --record`'s cap, in bytes: at least one line, at most 1 PiB.
pub const RECORD_MAX_BYTES: std::ops::RangeInclusive<u64> = 1024..=1 << 50;

/// `listen --record`'s cap when neither flag nor file names one: 1 GiB.
pub const DEFAULT_RECORD_MAX_BYTES: u64 = 1 << 30;

/// The config file's shape: only `[client]` is ours.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    client: ClientTable,
}

/// `[client]` as written. Unknown keys are refused so that `sample-rate = 44100` (a hyphen for
/// an underscore) is an error rather than a default that silently does not apply.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ClientTable {
    rate: Option<RateValue>,
    sample_rate: Option<SampleRateValue>,
    master: Option<std::net::SocketAddr>,
    token: Option<String>,
    listen: Option<std::net::SocketAddr>,
    listen_from: Option<Vec<AllowEntry>>,
    record_max_bytes: Option<ByteSize>,
    clock: Option<ClockValue>,
    clock_offset_ms: Option<ClockOffset>,
    interface: Option<InterfaceValue>,
    ttl: Option<TtlValue>,
    outputs: crate::outputs::spec::OutputsConfig,
}

/// `interface`, checked as `--interface` is (a name or an address; whether the machine has it is
/// looked at when a command uses it).
#[derive(Debug)]
struct InterfaceValue(crate::net::InterfaceSpec);

impl<'de> Deserialize<'de> for InterfaceValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::net::parse_interface(&text).map(InterfaceValue).map_err(serde::de::Error::custom)
    }
}

/// `ttl`, checked as `--ttl` is.
#[derive(Debug)]
struct TtlValue(u32);

impl<'de> Deserialize<'de> for TtlValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hops = i64::deserialize(deserializer)?;
        crate::net::parse_ttl(&hops.to_string()).map(TtlValue).map_err(serde::de::Error::custom)
    }
}

/// `clock`, checked as `--clock` is.
#[derive(Debug)]
struct ClockValue(crate::clock::ClockMode);

impl<'de> Deserialize<'de> for ClockValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map(ClockValue).map_err(serde::de::Error::custom)
    }
}

/// `clock_offset_ms`, checked as `--clock-offset-ms` is (an integer or a decimal number).
#[derive(Debug)]
struct ClockOffset(f64);

impl<'de> Deserialize<'de> for ClockOffset {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Number {
            Int(i64),
            Float(f64),
        }
        let v = match Number::deserialize(deserializer)? {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        };
        crate::listen::parse_clock_offset(&v.to_string()).map(ClockOffset).map_err(serde::de::Error::custom)
    }
}

/// One `listen_from` entry, parsed as the plugin's allow-list entries are
/// ([`osc_timecode_core::cue::parse_allow_entry`]).
#[derive(Debug)]
struct AllowEntry(ipnet::IpNet);

impl<'de> Deserialize<'de> for AllowEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        osc_timecode_core::cue::parse_allow_entry(&text).map(AllowEntry).map_err(serde::de::Error::custom)
    }
}

/// A size in bytes: an integer, or a string with a binary suffix (`"64KiB"`, `"1GiB"`).
#[derive(Debug)]
struct ByteSize(u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes such as 1073741824 or \"1GiB\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_record_max(v).map(ByteSize).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ByteSize, E> {
                Err(E::custom(format_args!("size {v} must be a whole number of bytes, e.g. 1073741824 or \"1GiB\"")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A record size cap: whole bytes with an optional `KiB`, `MiB` or `GiB` suffix, within
/// [`RECORD_MAX_BYTES`]. clap value parser for `--record-max-bytes`, and the config key's.
pub fn parse_record_max(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let (digits, unit) = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        .into_iter()
        .find_map(|(suffix, unit)| trimmed.strip_suffix(suffix).map(|d| (d.trim_end(), unit)))
        .unwrap_or((trimmed, 1));
    let bad = || {
        format!(
            "record size {text:?} must be whole bytes from {} to {} (1 PiB), optionally with KiB, MiB or GiB \
             (e.g. 1073741824 or 1GiB)",
            RECORD_MAX_BYTES.start(),
            RECORD_MAX_BYTES.end()
        )
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| RECORD_MAX_BYTES.contains(n))
        .ok_or_else(bad)
}

/// A rate name as users write it. A bare integer (`rate = 25`) is accepted too; a float is
/// refused because `29.97` as a TOML float cannot say whether it is drop-frame.
#[derive(Debug)]
struct RateValue(FrameRate);

impl<'de> Deserialize<'de> for RateValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RateValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a frame rate name such as \"25\" or \"29.97df\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RateValue, E> {
                v.parse().map(RateValue).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RateValue, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<RateValue, E> {
                Err(E::custom(format_args!(
                    "frame rate {v} must be a quoted name, e.g. rate = \"{v}\" or rate = \"{v}df\""
                )))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A sample rate in Hz, checked against [`SAMPLE_RATES`] while parsing so the error points at
/// the line.
#[derive(Debug)]
struct SampleRateValue(u32);

impl<'de> Deserialize<'de> for SampleRateValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hz = i64::deserialize(deserializer)?;
        u32::try_from(hz)
            .ok()
            .filter(|hz| SAMPLE_RATES.contains(hz))
            .map(SampleRateValue)
            .ok_or_else(|| serde::de::Error::custom(sample_rate_error(hz)))
    }
}

/// Why a sample rate is refused (shared by the file and the `--sample-rate` parser).
pub fn sample_rate_error(hz: impl fmt::Display) -> String {
    format!("sample rate {hz} Hz is out of range: use {} to {} Hz", SAMPLE_RATES.start(), SAMPLE_RATES.end())
}

/// clap value parser for `--sample-rate` / `OSC_TIMECODE_SAMPLE_RATE`.
pub fn parse_sample_rate(text: &str) -> Result<u32, String> {
    let hz: i64 =
        text.trim().parse().map_err(|_| format!("sample rate {text:?} is not a whole number of Hz (e.g. 48000)"))?;
    u32::try_from(hz).ok().filter(|hz| SAMPLE_RATES.contains(hz)).ok_or_else(|| sample_rate_error(hz))
}

/// clap value parser for `--rate` / `OSC_TIMECODE_RATE`; the error lists the valid names.
pub fn parse_rate(text: &str) -> Result<FrameRate, osc_timecode_core::RateError> {
    text.parse()
}

/// Reads the `[client]` table. `explicit` is `--config FILE`: it must exist. Otherwise the file
/// at [`osc_timecode_core::config::CONFIG_ENV`] or the per-OS location is read if it exists.
pub fn load(explicit: Option<&Path>) -> anyhow::Result<ClientConfig> {
    let (path, must_exist) = match explicit {
        Some(path) => (path.to_owned(), true),
        None => match implicit_path() {
            Some(path) => (path, false),
            None => return Ok(ClientConfig::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
            return Ok(ClientConfig::default());
        }
        Err(e) => return Err(e).with_context(|| format!("could not read config file {}", path.display())),
    };
    parse(&text).with_context(|| format!("config file {} is invalid", path.display()))
}

/// The `[client]` table of a config file's text. Errors are one line with the position
/// (`line 2, column 8: ...`), unlike `toml`'s multi-line rendering.
pub fn parse(text: &str) -> anyhow::Result<ClientConfig> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace('\n', "; ");
        match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                anyhow::anyhow!("line {line}, column {column}: {message}")
            }
            None => anyhow::anyhow!("{message}"),
        }
    })?;
    let ClientTable {
        rate,
        sample_rate,
        master,
        token,
        listen,
        listen_from,
        record_max_bytes,
        clock,
        clock_offset_ms,
        interface,
        ttl,
        outputs,
    } = file.client;
    Ok(ClientConfig {
        rate: rate.map(|r| r.0),
        sample_rate: sample_rate.map(|r| r.0),
        master,
        token,
        listen,
        listen_from: listen_from.map(|entries| entries.into_iter().map(|e| e.0).collect()),
        record_max_bytes: record_max_bytes.map(|b| b.0),
        clock: clock.map(|c| c.0),
        clock_offset_ms: clock_offset_ms.map(|c| c.0),
        interface: interface.map(|i| i.0),
        ttl: ttl.map(|t| t.0),
        outputs,
    })
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `$OSC_TIMECODE_CONFIG`, else the per-OS location (module docs); `None` without a home
/// directory. The same lookup as the plugin's.
fn implicit_path() -> Option<PathBuf> {
    osc_timecode_core::config::config_path(osc_timecode_core::config::Os::CURRENT, |name| std::env::var_os(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).expect_err(text))
    }

    #[test]
    fn reads_the_client_table_and_ignores_the_others() {
        let text = "[plugin]\ntargets = [\"127.0.0.1:5006\"]\nkeepalive_ms = 1000\n\n[client]\nrate = \"29.97df\"\nsample_rate = 44100\n\n[someone_else]\nx = 1\n";
        assert_eq!(
            parse(text).unwrap(),
            ClientConfig { rate: Some(FrameRate::FPS_29_97_DF), sample_rate: Some(44_100), ..ClientConfig::default() }
        );
        assert_eq!(parse("").unwrap(), ClientConfig::default(), "empty file");
        assert_eq!(parse("[client]\n").unwrap(), ClientConfig::default(), "empty table");
    }

    #[test]
    fn rates_as_names_or_integers() {
        for (value, rate) in [
            ("\"23.976\"", FrameRate::FPS_23_976),
            ("\"59.94ndf\"", FrameRate::FPS_59_94_NDF),
            ("\"30 fps\"", FrameRate::FPS_30),
            ("24", FrameRate::FPS_24),
            ("60", FrameRate::FPS_60),
        ] {
            let got = parse(&format!("[client]\nrate = {value}\n")).unwrap();
            assert_eq!(got.rate, Some(rate), "rate = {value}");
        }
    }

    #[test]
    fn errors_are_one_line_with_the_position() {
        let cases = [
            ("[client]\nrate = \"29\"\n", "line 2, column 8", "unknown frame rate \"29\""),
            ("[client]\nrate = 29.97\n", "line 2, column 8", "must be a quoted name"),
            ("[client]\nrate = 26\n", "line 2, column 8", "unknown frame rate \"26\""),
            ("[client]\nsample_rate = 0\n", "line 2, column 15", "1 to 1536000 Hz"),
            ("[client]\nsample_rate = -44100\n", "line 2", "out of range"),
            ("[client]\nsample_rate = 99999999999\n", "line 2", "out of range"),
            ("[client]\nsample_rate = \"48k\"\n", "line 2", "invalid type"),
            ("[client]\nsample-rate = 48000\n", "line 2, column 1", "unknown field `sample-rate`"),
            ("[client]\nrate = \n", "line 2", ""),
            ("[client\n", "line 1", ""),
            ("client = 3\n", "line 1", "invalid type"),
        ];
        for (text, position, message) in cases {
            let e = error(text);
            assert!(!e.contains('\n'), "{text:?}: one line, got {e:?}");
            assert!(e.starts_with(position), "{text:?}: position {position:?} in {e:?}");
            assert!(e.contains(message), "{text:?}: {message:?} in {e:?}");
        }
    }

    /// The `[client]` keys are public API (README, `--help`): each is read, none renamed.
    #[test]
    fn client_keys_are_frozen() {
        let text = "[client]\nrate = \"25\"\nsample_rate = 48000\nmaster = \"127.0.0.1:5005\"\ntoken = \"t\"\n\
                    listen = \"127.0.0.1:5006\"\nlisten_from = [\"127.0.0.1\"]\nrecord_max_bytes = 1024\n";
        let c = parse(text).unwrap();
        assert!(c.rate.is_some() && c.sample_rate.is_some() && c.master.is_some() && c.token.is_some());
        assert!(c.listen.is_some() && c.listen_from.is_some() && c.record_max_bytes.is_some());
    }

    /// `interface` and `ttl` (issue 18) are public too.
    #[test]
    fn network_keys() {
        let c = parse("[client]\ninterface = \"eth0\"\nttl = 4\n").unwrap();
        assert_eq!(c.interface, Some(crate::net::InterfaceSpec::Name("eth0".into())));
        assert_eq!(c.ttl, Some(4));
        let c = parse("[client]\ninterface = \"198.51.100.1\"\n").unwrap();
        assert_eq!(c.interface, Some(crate::net::InterfaceSpec::Address("198.51.100.1".parse().unwrap())));
        for (text, message) in [
            ("[client]\nttl = 0\n", "1 to 255"),
            ("[client]\nttl = 256\n", "1 to 255"),
            ("[client]\nttl = \"1\"\n", "invalid type"),
            ("[client]\ninterface = \"\"\n", "not an interface name"),
            ("[client]\ninterface = 3\n", "invalid type"),
        ] {
            let e = error(text);
            assert!(e.starts_with("line 2") && e.contains(message) && !e.contains('\n'), "{text:?}: {e}");
        }
    }

    #[test]
    fn listen_keys() {
        let text =
            "[client]\nlisten_from = [\"192.168.1.20\", \"10.0.0.0/24\", \"::1\"]\nrecord_max_bytes = \"64KiB\"\n";
        let got = parse(text).unwrap();
        let from: Vec<String> = got.listen_from.unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(from, ["192.168.1.20/32", "10.0.0.0/24", "::1/128"]);
        assert_eq!(got.record_max_bytes, Some(65_536));
        assert_eq!(parse("[client]\nrecord_max_bytes = 1048576\n").unwrap().record_max_bytes, Some(1 << 20));
        for (text, message) in [
            ("[client]\nlisten_from = [\"example.com\"]\n", "not an IP address"),
            ("[client]\nlisten_from = \"10.0.0.1\"\n", "invalid type"),
            ("[client]\nrecord_max_bytes = 0\n", "record size \"0\""),
            ("[client]\nrecord_max_bytes = -5\n", "record size \"-5\""),
            ("[client]\nrecord_max_bytes = 1.5e9\n", "whole number of bytes"),
            ("[client]\nrecord_max_bytes = nan\n", "whole number of bytes"),
            ("[client]\nrecord_max_bytes = inf\n", "whole number of bytes"),
            ("[client]\nrecord_max_bytes = \"2PiB\"\n", "record size"),
        ] {
            let e = error(text);
            assert!(e.starts_with("line 2") && e.contains(message) && !e.contains('\n'), "{text:?}: {e}");
        }
    }

    #[test]
    fn record_max_flag_parser() {
        assert_eq!(parse_record_max("1GiB"), Ok(1 << 30));
        assert_eq!(parse_record_max("64 KiB"), Ok(65_536));
        assert_eq!(parse_record_max("1024"), Ok(1024));
        assert_eq!(parse_record_max("1125899906842624"), Ok(1 << 50));
        for bad in
            ["", "1023", "0", "-1", "1.5GiB", "nan", "inf", "1e9", "1GB", "1125899906842625", "99999999999999GiB"]
        {
            assert!(parse_record_max(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn an_explicit_file_must_exist() {
        let missing = std::env::temp_dir().join(format!("osc-timecode-no-such-config-{}.toml", std::process::id()));
        let e = format!("{:#}", load(Some(&missing)).unwrap_err());
        assert!(e.starts_with("could not read config file "), "{e}");
        assert!(e.contains(&missing.display().to_string()), "{e}");
    }

    #[test]
    fn sample_rate_flag_parser() {
        assert_eq!(parse_sample_rate("48000"), Ok(48_000));
        assert_eq!(parse_sample_rate("1"), Ok(1));
        assert_eq!(parse_sample_rate("1536000"), Ok(1_536_000));
        for bad in ["0", "-48000", "1536001", "48k", "", "48000.0", "99999999999999999999"] {
            assert!(parse_sample_rate(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn line_column_counts_characters() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 7), (2, 4), "after the two-byte é");
        assert_eq!(line_column(text, 8), (3, 1));
        assert_eq!(line_column(text, 100), (3, 2), "past the end clamps");
    }
}
