//! Host-test harness: loads the plugin's debug bundles in a small CLAP host (`clack-host`) and a
//! small VST3 host (`vst3` + `libloading`), drives them with a transport model, and checks what
//! arrives on a loopback UDP socket against core's frame arithmetic.
//!
//! - [`ardour`]: headless Ardour driving the VST3 ([`ardour::Session`]);
//! - [`bundle`]: builds (once per test process) or locates the bundles;
//! - [`child`]: runs one test alone in a child process (for whole-process measurements);
//! - [`clap`]: the CLAP host ([`clap::ClapPlugin`]), with the blocks and output events (notes,
//!   MIDI) of each run;
//! - [`cues`]: the cue sender ([`cues::CueSender`]): cues, `/ack` and `/status` over loopback,
//!   broken packets, a flood, and where a cue must land;
//! - [`vst3host`]: the VST3 host ([`vst3host::Vst3Plugin`]);
//! - [`transport`]: the host transport model ([`transport::Transport`]);
//! - [`receiver`]: the loopback receiver ([`receiver::Receiver`]);
//! - [`state`]: nice-plug's state format ([`state::NiceState`]);
//! - [`procfs`]: threads, sockets and memory of this process, from `/proc/self`;
//! - [`rng`]: a seeded generator for property-style tests ([`rng::Rng`]);
//! - [`expect`]: the frames the plugin must send for what was played, and stream comparison.
//!
//! The tests themselves are in `tests/host/` (one integration-test binary, `host`).

pub mod ardour;
pub mod bench;
pub mod bundle;
pub mod child;
pub mod clap;
pub mod cues;
pub mod expect;
pub mod procfs;
pub mod receiver;
pub mod rng;
pub mod state;
pub mod transport;
pub mod vst3host;
