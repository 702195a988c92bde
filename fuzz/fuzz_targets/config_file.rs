//! The machine config file, as each reader reads it: the plugin's strict `[plugin]` reader
//! (`Settings::from_config_file`, `Settings::for_new_instance`: plugin/src/settings.rs), its
//! network-exposure switch (`machine_allows_network_cues`, issue 14), and the client's `[client]`
//! loader (`config::parse`, `config::load`: client/src/config.rs). The bytes are written to a file
//! that `OSC_TIMECODE_CONFIG` names, so the readers take their real path, file reading included.
//!
//! Input: the file's bytes (text, or not: invalid UTF-8 is a read error). Runs on a thread with the
//! cue thread's stack (fuzz/src/lib.rs): a host may create the plugin, which reads this file, on a
//! thread with no more stack than that, and deep nesting (`a = [[[[...]]]]`, `[[a.b.c...]]`) must
//! be refused, not recursed into.
//!
//! Checks, besides "never panics": settings the plugin reads have a latency within its documented
//! range, build the cue map, and load back the same from a project state (the two strict readers
//! agree); a new instance gets exactly those settings, or the defaults with the error; the
//! exposure switch is `network_cue_input = true` where the key is present, else whether the
//! file's own cue settings reach beyond loopback, and never true for a file the plugin cannot
//! read; confined settings never reach the network; the client's values are within their ranges,
//! `load` agrees with `parse`, and its errors are one line.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use osc_timecode_client::config::{RECORD_MAX_BYTES, SAMPLE_RATES, load, parse};
use osc_timecode_core::config::CONFIG_ENV;
use osc_timecode_fuzz::with_cue_thread_stack;
use osc_timecode_plugin::cues::map::CueMap;
use osc_timecode_plugin::settings::{
    ConfigError, MAX_OUTPUT_LATENCY_MS, NETWORK_CUE_INPUT_KEY, Settings, machine_allows_network_cues,
};

/// The config file every input is written to (one per process: fuzz jobs may run side by side).
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("osc-timecode-fuzz-config-{}.toml", std::process::id())))
}

fuzz_target!(
    init: {
        // SAFETY: libFuzzer calls this once, before any input and before the worker thread
        // exists; no other thread of this process reads the environment at this point.
        unsafe { std::env::set_var(CONFIG_ENV, path()) };
    },
    |data: &[u8]| with_cue_thread_stack(data, run)
);

/// One input, on the cue thread's stack.
fn run(data: &[u8]) {
    let path = path();
    std::fs::write(path, data).expect("write the config file");
    let text = std::str::from_utf8(data).ok();
    let table = text.and_then(|t| toml::from_str::<toml::Table>(t).ok());

    // The plugin's strict reader.
    let plugin = Settings::from_config_file(path);
    match &plugin {
        Ok(Some(settings)) => {
            let ms = settings.output_latency_ms;
            assert!(ms.is_finite() && ms.abs() <= MAX_OUTPUT_LATENCY_MS, "output_latency_ms {ms:?} was accepted");
            let _ = (CueMap::new(&settings.cues), settings.cues.allow_list(), settings.keepalive());
            // What the config file gives, a project saving it gives back.
            let json = serde_json::to_string(settings).expect("settings serialize");
            let reloaded = Settings::from_state(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
            assert_eq!(reloaded.cues, settings.cues, "{json}");
            assert_eq!((&reloaded.targets, reloaded.keepalive_ms), (&settings.targets, settings.keepalive_ms));
            let close = (reloaded.output_latency_ms - ms).abs() <= ms.abs() * 1e-15;
            assert!(close, "latency {ms} came back as {}", reloaded.output_latency_ms);
        }
        Ok(None) => {
            let table = table.as_ref().expect("a file read without error is TOML");
            assert!(!table.contains_key("plugin"), "a [plugin] table read as none");
        }
        Err(ConfigError::Read { .. }) => assert!(text.is_none(), "UTF-8 text unreadable"),
        Err(e @ ConfigError::Parse { .. }) => assert!(!e.to_string().is_empty()),
    }
    let (instance, error) = Settings::for_new_instance();
    match &plugin {
        Ok(Some(settings)) => assert!(instance == *settings && error.is_none(), "{error:?}"),
        Ok(None) => assert!(instance == Settings::default() && error.is_none(), "{error:?}"),
        Err(_) => assert!(instance == Settings::default() && error.is_some(), "an error and no reason"),
    }

    // Exposure: the machine's decision, read from this file only.
    let allows = machine_allows_network_cues();
    let key = table
        .as_ref()
        .and_then(|t| t.get("plugin"))
        .and_then(toml::Value::as_table)
        .and_then(|p| p.get(NETWORK_CUE_INPUT_KEY));
    match key {
        Some(value) => assert_eq!(allows, value.as_bool() == Some(true), "{NETWORK_CUE_INPUT_KEY} = {value}"),
        None => {
            let own = matches!(&plugin, Ok(Some(s)) if s.cues.reaches_network());
            assert_eq!(allows, own, "without {NETWORK_CUE_INPUT_KEY}: the file's own cue settings decide");
        }
    }
    if let Ok(Some(settings)) = &plugin {
        let (confined, _) = settings.cues.confined(false);
        assert!(!confined.reaches_network(), "confined settings reach the network: {confined:?}");
    }

    // The client's loader: the text, and the file through `--config`.
    match text.map(parse) {
        Some(Ok(config)) => {
            assert!(config.sample_rate.is_none_or(|hz| SAMPLE_RATES.contains(&hz)), "{config:?}");
            assert!(config.record_max_bytes.is_none_or(|b| RECORD_MAX_BYTES.contains(&b)), "{config:?}");
            assert_eq!(load(Some(path)).expect("load agrees with parse"), config);
        }
        Some(Err(e)) => {
            let message = format!("{e:#}");
            assert!(!message.contains('\n'), "one line: {message:?}");
            assert!(load(Some(path)).is_err(), "load agrees with parse: {message}");
        }
        None => assert!(load(Some(path)).is_err(), "invalid UTF-8 loaded"),
    }
}
