//! Host tests: the plugin's debug bundles loaded in a small CLAP host and a small VST3 host,
//! driven with a transport model; what arrives on a loopback UDP socket is checked against
//! core's frame arithmetic.
//!
//! The bundles are built once per run (`cargo xtask bundle osc-timecode-plugin`, debug, into
//! `target/host-tests`), or taken from `$OSC_TIMECODE_BUNDLE_DIR`. See `osc_timecode_tests`.

mod artnet_read;
mod common;
mod ltc_words;
mod netns;

mod clap_artnet;
mod clap_broadcast;
mod clap_conformance;
mod clap_cues;
mod clap_discover;
mod clap_faults;
mod clap_hostile;
mod clap_lifecycle;
mod clap_ltc;
mod clap_mtc;
mod clap_multicast;
mod clap_numbers;
mod clap_offline;
mod clap_params;
mod clap_playback;
mod clap_settings;
mod clap_sync;
mod clap_transport;
mod clap_window;
mod client_to_plugin;
mod interop;
mod vst3;
mod vst3_window;
