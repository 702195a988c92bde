//! The plugin window in the VST3 host, dragged by a person while cues hit the same parameter:
//! the scenario of [`crate::clap_window`] (Xvfb, XTEST, `/macro/1` cues every 4 ms), with the
//! calls the plugin makes on the host's `IComponentHandler` as what the host got.
//!
//! The host opens the window as a Linux host does (`createView("editor")`, `setFrame` with its
//! `IRunLoop`, `attached` to an X11 window of its own), processes blocks and pumps its run loop
//! on the test's thread (the host's UI thread). The window runs on a thread of its own (nice-plug's
//! editor on Linux, as upstream NIH-plug's); its gestures and the cues' changes reach the host
//! through one queue, in order, on the host's UI thread (vendored nice-plug, `PATCHED`): the test
//! checks every call came there.

use osc_timecode_tests::clap::{OutputEventKind, nice_plug_param_hash};
use osc_timecode_tests::cues::{CueSender, cues_settings, free_loopback_addr, set_cues};
use osc_timecode_tests::receiver::Receiver;
use osc_timecode_tests::state::NiceState;
use osc_timecode_tests::transport::Transport;
use osc_timecode_tests::vst3host::{EditCall, Vst3Plugin};

use crate::clap_window::{Screen, WindowHost, drag_under_cues, run_on_xvfb};

/// Set (to anything) in the child's environment: there the test is the host and the person.
const HOST_ENV: &str = "OSC_TIMECODE_VST3_WINDOW_HOST";
/// The test's name in this binary, for running it again in the child.
const TEST_NAME: &str = "vst3_window::vst3_a_drag_in_the_window_and_macro_cues_never_interleave_gestures";

#[test]
#[cfg_attr(target_os = "linux", ignore = "needs Xvfb: apt-get install xvfb")]
#[cfg_attr(not(target_os = "linux"), ignore = "drives the window over X11 (Linux only)")]
fn vst3_a_drag_in_the_window_and_macro_cues_never_interleave_gestures() {
    let result = if std::env::var_os(HOST_ENV).is_some() { host() } else { run_on_xvfb(TEST_NAME, HOST_ENV) };
    if let Err(e) = result {
        panic!("{e:#}");
    }
}

/// The child: the VST3 host and the person.
fn host() -> anyhow::Result<()> {
    let listen = free_loopback_addr();
    // A target, as the CLAP host's rig has (without one the window shows a warning strip, which
    // moves what the person clicks).
    let rx = Receiver::bind();
    let mut plugin = Vst3Plugin::load();
    let mut state = NiceState::from_json_bytes(&plugin.get_state());
    state.edit_settings(|s| {
        s.insert("targets".into(), serde_json::json!([rx.addr().to_string()]));
        s.insert("keepalive_ms".into(), serde_json::json!(0));
        set_cues(s, cues_settings(listen, serde_json::json!({})));
    });
    plugin.set_state(&state.to_json_bytes());
    plugin.activate(48_000, 256);
    CueSender::new(listen).wait_ready();

    let screen = Screen::connect()?;
    let parent = screen.host_window()?;
    let size = plugin.open_window_x11(parent).map_err(|e| anyhow::anyhow!(e))?;
    let mut vst3 =
        Vst3Host { plugin, transport: Transport::new(48_000), seen: 0, macro1: nice_plug_param_hash("macro1") };
    let result = drag_under_cues(&mut vst3, listen, &screen, size, "vst3");
    vst3.plugin.close_window();
    result?;

    // The window's calls and the cues' alike, on the host's UI thread, as VST3 wants.
    let calls = vst3.plugin.edit_calls();
    let elsewhere: Vec<_> = calls.iter().filter(|c| !c.on_main_thread).collect();
    anyhow::ensure!(
        elsewhere.is_empty(),
        "{} of {} calls not on the host's UI thread: {:?}",
        elsewhere.len(),
        calls.len(),
        &elsewhere[..elsewhere.len().min(5)]
    );
    eprintln!("vst3: {} calls, every one on the host's UI thread", calls.len());
    Ok(())
}

/// The VST3 host: its `IComponentHandler` calls.
struct Vst3Host {
    /// The plugin, active, its window open.
    plugin: Vst3Plugin,
    /// The transport (stopped).
    transport: Transport,
    /// How many of the plugin's `IComponentHandler` calls were returned so far.
    seen: usize,
    /// Cue Macro 1's VST3 id.
    macro1: u32,
}

impl WindowHost for Vst3Host {
    fn tick(&mut self) -> anyhow::Result<Vec<OutputEventKind>> {
        // Ten blocks of 256 samples at 48 kHz: 53 ms, each block followed by the UI thread's turn.
        for _ in 0..10 {
            let started = std::time::Instant::now();
            self.plugin.run(&mut self.transport, 256, 256);
            self.plugin.pump_run_loop();
            let period = std::time::Duration::from_secs_f64(256.0 / 48_000.0);
            std::thread::sleep(period.saturating_sub(started.elapsed()));
        }
        let calls = self.plugin.edit_calls();
        let new = calls.get(self.seen..).unwrap_or_default();
        self.seen = calls.len();
        let macro1 = self.macro1;
        Ok(new
            .iter()
            .filter_map(|c| match c.call {
                EditCall::Begin(id) if id == macro1 => Some(OutputEventKind::GestureBegin { param_id: id }),
                EditCall::Perform(id, value) if id == macro1 => {
                    Some(OutputEventKind::ParamValue { param_id: id, value })
                }
                EditCall::End(id) if id == macro1 => Some(OutputEventKind::GestureEnd { param_id: id }),
                _ => None,
            })
            .collect())
    }
}
