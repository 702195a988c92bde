//! The plugin's persisted state, loaded as nice-plug loads it: the bytes as the saved settings
//! field (`Params::deserialize_fields`, the code `#[persist = "settings"]` generates, which calls
//! `Settings`' `Deserialize`: plugin/src/settings.rs), and the bytes as a whole state document
//! (nice-plug's `PluginState` JSON, then `settings::filter_state`, then the same field load).
//!
//! Checks, besides "never panics": settings that `Settings::from_state` accepts are what the
//! field load gives, anything else gives the fallback; what was loaded saves and loads back the
//! same; the loaded settings build the cue map and allow-list the cue thread builds; confined
//! to a machine that does not allow network cue input, they listen and accept on loopback only.
//! Runs on a thread with the cue thread's stack (fuzz/src/lib.rs).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use nice_plug::prelude::{Params as _, PluginState};
use osc_timecode_fuzz::with_cue_thread_stack;
use osc_timecode_plugin::cues::map::CueMap;
use osc_timecode_plugin::params::TimecodeParams;
use osc_timecode_plugin::settings::cues::Exposure;
use osc_timecode_plugin::settings::{STATE_KEY, Settings, StateError, filter_state};

/// Settings loaded into fresh parameters from `fields`, as nice-plug restores a project.
fn load(fields: &BTreeMap<String, String>) -> Settings {
    let params = TimecodeParams::new(Settings::default());
    params.deserialize_fields(fields);
    params.settings.read().expect("not poisoned").clone()
}

/// Equal, with the latency within float parsing's last bit (serde_json's default float parser
/// is not always correctly rounded).
fn same(a: &Settings, b: &Settings) -> bool {
    let close = (a.output_latency_ms - b.output_latency_ms).abs() <= a.output_latency_ms.abs() * 1e-15;
    close && Settings { output_latency_ms: 0.0, ..a.clone() } == Settings { output_latency_ms: 0.0, ..b.clone() }
}

fn check_loaded(settings: &Settings) {
    let saved = {
        let params = TimecodeParams::new(settings.clone());
        params.serialize_fields()
    };
    assert!(same(&load(&saved), settings), "saved and loaded back differently: {saved:?}");
    let _ = CueMap::new(&settings.cues);
    // A project never opens the cue input to the network by itself (issue 14): on a machine
    // whose config file does not allow it, what the cue thread uses stays on loopback.
    let (confined, exposure) = settings.cues.confined(false);
    assert!(!confined.reaches_network(), "{confined:?}");
    assert!(!confined.enabled || confined.listen.ip().to_canonical().is_loopback(), "{confined:?}");
    assert_eq!(settings.cues.reaches_network(), matches!(exposure, Exposure::Confined { .. }), "{exposure:?}");
    let _ = (settings.cues.allow_list(), settings.keepalive(), settings.cues.token());
}

fuzz_target!(|data: &[u8]| with_cue_thread_stack(data, run));

/// One input, on the cue thread's stack (a host may load a project on a thread with no more).
fn run(data: &[u8]) {
    // The bytes as the saved settings field.
    if let Ok(text) = std::str::from_utf8(data) {
        let fields = BTreeMap::from([(STATE_KEY.to_owned(), text.to_owned())]);
        let loaded = load(&fields);
        match Settings::from_state(text) {
            Ok(expected) => assert!(same(&loaded, &expected), "{text:?}"),
            // Invalid: the fallback. Not JSON: nice-plug refuses the field and the instance
            // keeps its settings (the defaults `load` starts from).
            Err(e @ StateError::Invalid(_)) => assert_eq!(loaded, Settings::fallback(&e), "{text:?}"),
            Err(StateError::Unreadable(_)) => assert_eq!(loaded, Settings::default(), "{text:?}"),
        }
        check_loaded(&loaded);
    }
    // The bytes as nice-plug's whole state document.
    if let Ok(mut state) = serde_json::from_slice::<PluginState>(data) {
        let error = filter_state(&mut state);
        if let Some(field) = state.fields.get(STATE_KEY) {
            // After the filter, the field is JSON: loading it never falls to nice-plug's refusal.
            assert!(
                serde_json::from_str::<serde_json::Value>(field).is_ok(),
                "filter_state left unreadable settings ({error:?})"
            );
        }
        check_loaded(&load(&state.fields));
    }
}
