//! A minimal CLAP host on `clack-host`: loads the bundle, instantiates the plugin, activates it at
//! a sample rate and maximum block size, processes blocks on an audio thread of its own with the
//! [`Transport`] model, stereo buffers, input parameter events and an output event buffer, saves
//! and loads state, switches the render mode, deactivates and drops.
//!
//! Threads follow CLAP's model: the test's thread is the main thread (instantiation, activation,
//! state, params info), and [`ClapPlugin::run`] processes on a scoped thread that the host's
//! thread-check extension reports as the audio thread.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::CString;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::ThreadId;

use clack_extensions::latency::{HostLatency, HostLatencyImpl};
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer, ParamRescanFlags,
    PluginParams,
};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_extensions::thread_check::{HostThreadCheck, HostThreadCheckImpl};
use clack_host::events::event_types::{ParamValueEvent, TransportEvent};
use clack_host::prelude::*;

use crate::bundle::{CLAP_ID, PLUGIN_NAME, bundles};
use crate::state::NiceState;
use crate::transport::Transport;

/// The plugin's parameters, by frozen string ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    /// `rate`, "Frame Rate": index into `FrameRate::ALL`.
    Rate,
    /// `output`, "Output": 0 or 1.
    Output,
    /// `offset`, "Start Offset": whole seconds of label, 0..=86399.
    Offset,
    /// `send_stopped`, "Send While Stopped": 0 or 1.
    SendStopped,
}

impl Param {
    /// All of them.
    pub const ALL: [Param; 4] = [Param::Rate, Param::Output, Param::Offset, Param::SendStopped];

    /// The frozen string ID.
    pub fn string_id(self) -> &'static str {
        match self {
            Param::Rate => "rate",
            Param::Output => "output",
            Param::Offset => "offset",
            Param::SendStopped => "send_stopped",
        }
    }

    /// The display name.
    pub fn name(self) -> &'static str {
        match self {
            Param::Rate => "Frame Rate",
            Param::Output => "Output",
            Param::Offset => "Start Offset",
            Param::SendStopped => "Send While Stopped",
        }
    }
}

/// nice-plug's numeric parameter ID for a string ID (`nice_plug::wrapper::util::hash_param_id`):
/// a Java-style string hash with the top bit cleared.
pub fn nice_plug_param_hash(id: &str) -> u32 {
    let mut hash: u32 = 0;
    for b in id.bytes() {
        hash = hash.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    hash & !(1 << 31)
}

thread_local! {
    /// Set on the harness's audio threads, for the thread-check extension.
    static IS_AUDIO_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// The host's type.
#[derive(Debug)]
pub struct TestHost;

/// `[thread-safe]` host state.
#[derive(Debug)]
pub struct HostShared {
    main_thread: ThreadId,
    /// The plugin asked for `request_restart`.
    pub restart_requested: AtomicBool,
    /// The plugin asked for `request_process`.
    pub process_requested: AtomicBool,
    /// The plugin asked for `request_callback`.
    pub callback_requested: AtomicBool,
    /// The plugin asked for a params flush.
    pub flush_requested: AtomicBool,
    /// Params rescans asked for.
    pub rescans: AtomicU32,
    /// What the plugin logged through the host.
    pub log: Mutex<Vec<String>>,
}

impl<'a> SharedHandler<'a> for HostShared {
    fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {
        self.process_requested.store(true, Ordering::SeqCst);
    }
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

impl HostLogImpl for HostShared {
    fn log(&self, severity: LogSeverity, message: &str) {
        let line = format!("[{severity}] {message}");
        eprintln!("[plugin log] {line}");
        if let Ok(mut log) = self.log.lock() {
            log.push(line);
        }
    }
}

impl HostThreadCheckImpl for HostShared {
    fn is_main_thread(&self) -> bool {
        std::thread::current().id() == self.main_thread
    }
    fn is_audio_thread(&self) -> bool {
        IS_AUDIO_THREAD.with(Cell::get)
    }
}

impl HostParamsImplShared for HostShared {
    fn request_flush(&self) {
        self.flush_requested.store(true, Ordering::SeqCst);
    }
}

/// `[main-thread]` host state.
#[derive(Debug)]
pub struct HostMainThread<'a> {
    shared: &'a HostShared,
    /// The plugin marked its state dirty.
    pub state_dirty: Cell<bool>,
    /// The plugin said its latency changed.
    pub latency_changed: Cell<bool>,
}

impl<'a> MainThreadHandler<'a> for HostMainThread<'a> {}

impl HostParamsImplMainThread for HostMainThread<'_> {
    fn rescan(&self, _flags: ParamRescanFlags) {
        self.shared.rescans.fetch_add(1, Ordering::SeqCst);
    }
    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl HostStateImpl for HostMainThread<'_> {
    fn mark_dirty(&self) {
        self.state_dirty.set(true);
    }
}

impl HostLatencyImpl for HostMainThread<'_> {
    fn changed(&self) {
        self.latency_changed.set(true);
    }
}

impl HostHandlers for TestHost {
    type Shared<'a> = HostShared;
    type MainThread<'a> = HostMainThread<'a>;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder
            .register::<HostLog>()
            .register::<HostThreadCheck>()
            .register::<HostParams>()
            .register::<HostState>()
            .register::<HostLatency>();
    }
}

/// What one [`ClapPlugin::run`] did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Blocks processed.
    pub blocks: u64,
    /// Samples processed.
    pub samples: u64,
    /// Output samples that were not the input (the plugin is a pass-through).
    pub passthrough_mismatches: u64,
    /// Output events the plugin produced, over all blocks.
    pub output_events: u64,
    /// Wall-clock time the processing took.
    pub elapsed: std::time::Duration,
}

/// Stereo in/out buffers sized for the maximum block.
struct AudioIo {
    input: [Vec<f32>; 2],
    output: [Vec<f32>; 2],
    in_ports: AudioPorts,
    out_ports: AudioPorts,
}

impl AudioIo {
    fn new(max_block: u32) -> Self {
        let n = max_block as usize;
        Self {
            input: [vec![0.0; n], vec![0.0; n]],
            output: [vec![0.0; n], vec![0.0; n]],
            in_ports: AudioPorts::with_capacity(2, 1),
            out_ports: AudioPorts::with_capacity(2, 1),
        }
    }
}

/// The signal fed to the plugin: deterministic, different per channel and sample.
fn input_sample(channel: usize, n: u64) -> f32 {
    let phase = (n % 997) as f32 / 997.0;
    (phase - 0.5) * if channel == 0 { 0.5 } else { -0.25 }
}

/// Everything the audio thread needs for one run.
struct AudioSide<'p> {
    processor: &'p mut StartedPluginAudioProcessor<TestHost>,
    io: &'p mut AudioIo,
    in_events: &'p mut EventBuffer,
    out_events: &'p mut EventBuffer,
    steady_time: &'p mut u64,
}

impl AudioSide<'_> {
    /// Processes one block of `len` samples. Input events are sent with this block and cleared.
    fn process(&mut self, transport: Option<&TransportEvent>, len: u32) -> (ProcessStatus, u64) {
        let len_us = len as usize;
        let start = *self.steady_time;
        let AudioIo { input, output, in_ports, out_ports } = &mut *self.io;
        for (ch, buf) in input.iter_mut().enumerate() {
            for (i, s) in buf[..len_us].iter_mut().enumerate() {
                *s = input_sample(ch, start + i as u64);
            }
        }
        for buf in output.iter_mut() {
            buf[..len_us].fill(f32::NAN);
        }
        self.out_events.clear();
        let status = {
            let [in_l, in_r] = input;
            let [out_l, out_r] = output;
            let inputs = in_ports.with_input_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_input_only(
                    [InputChannel::variable(&mut in_l[..len_us]), InputChannel::variable(&mut in_r[..len_us])]
                        .into_iter(),
                ),
            }]);
            let mut outputs = out_ports.with_output_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(
                    [&mut out_l[..len_us], &mut out_r[..len_us]].into_iter(),
                ),
            }]);
            let in_events = self.in_events.as_input();
            let mut out_events = self.out_events.as_output();
            self.processor
                .process(&inputs, &mut outputs, &in_events, &mut out_events, Some(start), transport)
                .unwrap_or_else(|e| panic!("process() failed: {e}"))
        };
        self.in_events.clear();
        *self.steady_time += u64::from(len);
        let mut mismatches = 0;
        for (ch, buf) in output.iter().enumerate() {
            for (i, s) in buf[..len_us].iter().enumerate() {
                if s.to_bits() != input[ch][i].to_bits() {
                    mismatches += 1;
                }
            }
        }
        (status, mismatches)
    }
}

/// One plugin instance in the test host.
pub struct ClapPlugin {
    processor: Option<PluginAudioProcessor<TestHost>>,
    instance: PluginInstance<TestHost>,
    _entry: PluginEntry,
    params: PluginParams,
    state: PluginState,
    render: Option<PluginRender>,
    param_ids: HashMap<Param, ClapId>,
    sample_rate: u32,
    max_block: u32,
    io: AudioIo,
    in_events: EventBuffer,
    /// Output events of the last processed block (kept for MIDI-output tests).
    pub out_events: EventBuffer,
    steady_time: u64,
}

impl std::fmt::Debug for ClapPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClapPlugin")
            .field("active", &self.processor.is_some())
            .field("sample_rate", &self.sample_rate)
            .field("max_block", &self.max_block)
            .finish_non_exhaustive()
    }
}

impl ClapPlugin {
    /// Loads the CLAP bundle (building it first if needed) and instantiates the plugin.
    pub fn load() -> Self {
        let path = &bundles().clap;
        // SAFETY: loading a shared library runs its initialisers; this is the plugin under test,
        // built from this workspace.
        let entry = unsafe { PluginEntry::load(path) }.unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
        let factory = entry.get_plugin_factory().expect("the bundle has a plugin factory");
        let descriptor = factory
            .plugin_descriptors()
            .find(|d| d.id().is_some_and(|id| id.to_bytes() == CLAP_ID.as_bytes()))
            .unwrap_or_else(|| panic!("no plugin with id {CLAP_ID} in {}", path.display()));
        let name = descriptor.name().map(|n| n.to_string_lossy().into_owned());
        assert_eq!(name.as_deref(), Some(PLUGIN_NAME), "plugin name");
        let host_info = HostInfo::new("osc-timecode host tests", "OSC Timecode", "https://example.invalid", "0.1.0")
            .expect("host info");
        let id = CString::new(CLAP_ID).expect("id has no NUL");
        let main_thread = std::thread::current().id();
        let mut instance = PluginInstance::<TestHost>::new(
            move |_| HostShared {
                main_thread,
                restart_requested: AtomicBool::new(false),
                process_requested: AtomicBool::new(false),
                callback_requested: AtomicBool::new(false),
                flush_requested: AtomicBool::new(false),
                rescans: AtomicU32::new(0),
                log: Mutex::new(Vec::new()),
            },
            |shared| HostMainThread { shared, state_dirty: Cell::new(false), latency_changed: Cell::new(false) },
            &entry,
            &id,
            &host_info,
        )
        .unwrap_or_else(|e| panic!("instantiate {CLAP_ID}: {e}"));
        let handle = instance.plugin_handle();
        let params = handle.get_extension::<PluginParams>().expect("the plugin implements clap.params");
        let state = handle.get_extension::<PluginState>().expect("the plugin implements clap.state");
        let render = handle.get_extension::<PluginRender>();
        let mut me = Self {
            processor: None,
            instance,
            _entry: entry,
            params,
            state,
            render,
            param_ids: HashMap::new(),
            sample_rate: 0,
            max_block: 0,
            io: AudioIo::new(1),
            in_events: EventBuffer::with_capacity(16),
            out_events: EventBuffer::with_capacity(256),
            steady_time: 0,
        };
        me.discover_params();
        me
    }

    /// Finds the four parameters through `clap.params` by display name, and checks their CLAP
    /// IDs are nice-plug's hashes of the frozen string IDs.
    fn discover_params(&mut self) {
        let count = self.params.count(&self.instance.plugin_handle());
        let mut by_name = HashMap::new();
        for index in 0..count {
            let mut buf = ParamInfoBuffer::new();
            let handle = self.instance.plugin_handle();
            let info = self.params.get_info(&handle, index, &mut buf).unwrap_or_else(|| panic!("get_info({index})"));
            let name = String::from_utf8_lossy(info.name).trim_end_matches('\0').to_owned();
            by_name.insert(name, (info.id, info.min_value, info.max_value));
        }
        for p in Param::ALL {
            let (id, _, _) = *by_name
                .get(p.name())
                .unwrap_or_else(|| panic!("no parameter named {:?}; the plugin has {:?}", p.name(), by_name.keys()));
            assert_eq!(
                id.get(),
                nice_plug_param_hash(p.string_id()),
                "CLAP id of {:?} is not nice-plug's hash of the frozen string id {:?}",
                p.name(),
                p.string_id()
            );
            self.param_ids.insert(p, id);
        }
    }

    /// The CLAP ID of a parameter.
    pub fn param_id(&self, p: Param) -> ClapId {
        self.param_ids[&p]
    }

    /// `(min, max)` of a parameter as `clap.params` reports it.
    pub fn param_range(&mut self, p: Param) -> (f64, f64) {
        let count = self.params.count(&self.instance.plugin_handle());
        for index in 0..count {
            let mut buf = ParamInfoBuffer::new();
            let handle = self.instance.plugin_handle();
            if let Some(info) = self.params.get_info(&handle, index, &mut buf)
                && info.id == self.param_id(p)
            {
                return (info.min_value, info.max_value);
            }
        }
        panic!("parameter {p:?} vanished");
    }

    /// The parameter's current value through `clap.params`.
    pub fn param_value(&mut self, p: Param) -> f64 {
        let id = self.param_id(p);
        self.params.get_value(&self.instance.plugin_handle(), id).unwrap_or_else(|| panic!("get_value({p:?})"))
    }

    /// Sets a parameter (CLAP plain value: enum index, 0/1, seconds). While active it is sent as a
    /// `CLAP_EVENT_PARAM_VALUE` at sample 0 of the next processed block; while inactive it is
    /// applied at once through `clap.params` `flush`.
    pub fn set_param(&mut self, p: Param, value: f64) {
        let event = ParamValueEvent::new(0, self.param_id(p), Pckn::match_all(), value);
        if self.processor.is_some() {
            self.in_events.push(&event);
        } else {
            let mut input = EventBuffer::with_capacity(1);
            input.push(&event);
            let mut output = EventBuffer::with_capacity(4);
            let mut handle = self.instance.inactive_plugin_handle().expect("inactive");
            self.params.flush(&mut handle, &input.as_input(), &mut output.as_output());
            self.poll_main_thread();
        }
    }

    /// Saves the state through `clap.state`.
    pub fn save_state(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.state.save(&self.instance.plugin_handle(), &mut out).expect("clap.state save");
        self.poll_main_thread();
        out
    }

    /// Loads a state through `clap.state`.
    pub fn load_state(&mut self, bytes: &[u8]) {
        let mut reader = bytes;
        self.state.load(&self.instance.plugin_handle(), &mut reader).expect("clap.state load");
        self.poll_main_thread();
    }

    /// The plugin's state, parsed.
    pub fn nice_state(&mut self) -> NiceState {
        NiceState::from_clap_bytes(&self.save_state())
    }

    /// Changes the persisted settings (see [`crate::state`]) by saving the state, editing its
    /// `settings` field and loading it back. Every target must be loopback.
    pub fn update_settings(&mut self, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
        let mut state = self.nice_state();
        state.edit_settings(edit);
        self.load_state(&state.to_clap_bytes());
    }

    /// Sends to `target` only, with the given keep-alive (0 = off), no output latency, offline
    /// mode "silent".
    pub fn send_to(&mut self, target: SocketAddr, keepalive_ms: u32) {
        self.update_settings(|s| {
            s.insert("targets".into(), serde_json::json!([target.to_string()]));
            s.insert("keepalive_ms".into(), serde_json::json!(keepalive_ms));
        });
    }

    /// Switches `clap.render` to offline (`true`) or realtime.
    pub fn set_render_offline(&mut self, offline: bool) {
        let render = self.render.expect("the plugin implements clap.render");
        let mode = if offline { RenderMode::Offline } else { RenderMode::Realtime };
        render.set(&self.instance.plugin_handle(), mode).expect("clap.render set");
        self.poll_main_thread();
    }

    /// Activates at `sample_rate` with blocks of 1 to `max_block` samples and starts processing.
    pub fn activate(&mut self, sample_rate: u32, max_block: u32) {
        assert!(self.processor.is_none(), "already active");
        let config = PluginAudioConfiguration {
            sample_rate: f64::from(sample_rate),
            min_frames_count: 1,
            max_frames_count: max_block,
        };
        let stopped =
            self.instance.activate(|_, _| (), config).unwrap_or_else(|e| panic!("activate at {sample_rate} Hz: {e}"));
        self.sample_rate = sample_rate;
        self.max_block = max_block;
        self.io = AudioIo::new(max_block);
        // `start_processing` belongs to the audio thread: do it there.
        let started = std::thread::scope(|s| {
            s.spawn(move || {
                IS_AUDIO_THREAD.with(|c| c.set(true));
                stopped.start_processing().unwrap_or_else(|e| panic!("start_processing: {e}"))
            })
            .join()
        })
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
        self.processor = Some(started.into());
        self.poll_main_thread();
    }

    /// Stops processing and deactivates.
    pub fn deactivate(&mut self) {
        let processor = self.processor.take().expect("not active");
        let stopped = std::thread::scope(|s| {
            s.spawn(move || {
                IS_AUDIO_THREAD.with(|c| c.set(true));
                processor.into_stopped()
            })
            .join()
        })
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
        self.instance.deactivate(stopped);
        self.poll_main_thread();
    }

    /// Whether the plugin is active.
    pub fn is_active(&self) -> bool {
        self.processor.is_some()
    }

    /// The sample rate of the current activation.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Processes `total` samples in blocks of `block` (the last one shorter) on an audio thread,
    /// with `transport` (advanced after every block).
    pub fn run(&mut self, transport: &mut Transport, total: u64, block: u32) -> RunReport {
        let mut sizes = Vec::new();
        let mut left = total;
        while left > 0 {
            let n = left.min(u64::from(block)) as u32;
            sizes.push(n);
            left -= u64::from(n);
        }
        self.run_blocks(Some(transport), &sizes)
    }

    /// Processes blocks of the given sizes; with `None`, the blocks carry no transport at all
    /// (`process.transport == NULL`).
    pub fn run_blocks(&mut self, transport: Option<&mut Transport>, sizes: &[u32]) -> RunReport {
        self.run_blocks_paced(transport, sizes, false)
    }

    /// Like [`ClapPlugin::run`], but paced like a real-time host: each block starts one block
    /// duration after the previous one.
    pub fn run_realtime(&mut self, transport: &mut Transport, total: u64, block: u32) -> RunReport {
        let sizes: Vec<u32> = std::iter::successors(Some(total), |left| left.checked_sub(u64::from(block)))
            .take_while(|&left| left > 0)
            .map(|left| left.min(u64::from(block)) as u32)
            .collect();
        self.run_blocks_paced(Some(transport), &sizes, true)
    }

    fn run_blocks_paced(&mut self, mut transport: Option<&mut Transport>, sizes: &[u32], realtime: bool) -> RunReport {
        assert!(sizes.iter().all(|&n| n >= 1 && n <= self.max_block), "block sizes must be 1..={}", self.max_block);
        let side_sample_rate = self.sample_rate;
        let processor = self.processor.as_mut().expect("activate first").ensure_processing_started().expect("started");
        let mut side = AudioSide {
            processor,
            io: &mut self.io,
            in_events: &mut self.in_events,
            out_events: &mut self.out_events,
            steady_time: &mut self.steady_time,
        };
        let report = std::thread::scope(|s| {
            s.spawn(|| {
                IS_AUDIO_THREAD.with(|c| c.set(true));
                let started = std::time::Instant::now();
                let mut report = RunReport::default();
                let sample_rate = f64::from(side_sample_rate);
                for &len in sizes {
                    if realtime {
                        let due = started + std::time::Duration::from_secs_f64(report.samples as f64 / sample_rate);
                        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let event = transport.as_deref().map(Transport::clap_event);
                    let (_, mismatches) = side.process(event.as_ref(), len);
                    if let Some(t) = transport.as_deref_mut() {
                        t.advance(len);
                    }
                    report.blocks += 1;
                    report.samples += u64::from(len);
                    report.passthrough_mismatches += mismatches;
                    report.output_events += u64::from(side.out_events.len());
                }
                report.elapsed = started.elapsed();
                report
            })
            .join()
        })
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
        self.poll_main_thread();
        report
    }

    /// Processes `blocks` blocks of `len` samples without transport, recording them in `transport`'s
    /// history (which breaks continuity there too).
    pub fn run_without_transport(&mut self, transport: &mut Transport, blocks: u32, len: u32) -> RunReport {
        let report = self.run_blocks(None, &vec![len; blocks as usize]);
        transport.record_no_transport_block();
        report
    }

    /// Runs the plugin's main-thread callback if it asked for one.
    pub fn poll_main_thread(&mut self) {
        let requested = self.instance.access_shared_handler(|h| h.callback_requested.swap(false, Ordering::SeqCst));
        if requested {
            self.instance.call_on_main_thread_callback();
        }
    }

    /// Whether the plugin asked for a restart (and clears the request).
    pub fn take_restart_request(&mut self) -> bool {
        self.instance.access_shared_handler(|h| h.restart_requested.swap(false, Ordering::SeqCst))
    }

    /// What the plugin logged through `clap.log`.
    pub fn host_log(&self) -> Vec<String> {
        self.instance.access_shared_handler(|h| h.log.lock().map(|l| l.clone()).unwrap_or_default())
    }
}

impl Drop for ClapPlugin {
    fn drop(&mut self) {
        if self.processor.is_some() && !std::thread::panicking() {
            self.deactivate();
        }
    }
}
