//! A minimal CLAP host on `clack-host`: loads the bundle, instantiates the plugin, activates it at
//! a sample rate and maximum block size, processes blocks on an audio thread of its own with the
//! [`Transport`] model, stereo buffers, input parameter events and an output event buffer, saves
//! and loads state, switches the render mode, deactivates and drops.
//!
//! Threads follow CLAP's model: the test's thread is the main thread (instantiation, activation,
//! state, params info), and [`ClapPlugin::run`] processes on a scoped thread that the host's
//! thread-check extension reports as the audio thread.
//!
//! Every run reports each block it processed ([`BlockRecord`]: steady-time sample, length,
//! transport position, and the wall-clock instant just before `process()` was called) and every
//! event the plugin put in the output event buffer ([`OutputEvent`], with its block), because the
//! host clears that buffer at the start of each block. [`RunReport::midi`] reads the notes and
//! MIDI 1.0 channel events as an instrument on the track would; [`RunReport::system_messages`]
//! reads the system messages (MTC quarter frames and full frames), whose SysEx bytes the host
//! copies while the plugin's buffer is valid (during `try_push`, as CLAP requires).

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Instant, SystemTime};

use clack_extensions::gui::{GuiApiType, GuiConfiguration, GuiSize, HostGui, HostGuiImpl, PluginGui, Window};
use clack_extensions::latency::{HostLatency, HostLatencyImpl};
use clack_extensions::log::{HostLog, HostLogImpl, LogSeverity};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer, ParamRescanFlags,
    PluginParams,
};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::{HostState, HostStateImpl, PluginState};
use clack_extensions::thread_check::{HostThreadCheck, HostThreadCheckImpl};
use clack_host::events::event_types::{MidiSysExEvent, ParamValueEvent, TransportEvent};
use clack_host::events::io::{OutputEventBuffer, TryPushError};
use clack_host::events::spaces::CoreEventSpace;
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
    /// `macroN`, "Cue Macro N" (N 1–8): 0.0–1.0, set by `/macro/N` cues.
    Macro(u8),
}

impl Param {
    /// All of them.
    pub const ALL: [Param; 4] = [Param::Rate, Param::Output, Param::Offset, Param::SendStopped];

    /// Cue Macro 1–8 (not in [`Param::ALL`], whose tests are about the timecode's parameters).
    pub const MACROS: [Param; 8] = [
        Param::Macro(1),
        Param::Macro(2),
        Param::Macro(3),
        Param::Macro(4),
        Param::Macro(5),
        Param::Macro(6),
        Param::Macro(7),
        Param::Macro(8),
    ];

    /// The frozen string ID.
    pub fn string_id(self) -> &'static str {
        match self {
            Param::Rate => "rate",
            Param::Output => "output",
            Param::Offset => "offset",
            Param::SendStopped => "send_stopped",
            Param::Macro(n) => {
                const IDS: [&str; 8] = ["macro1", "macro2", "macro3", "macro4", "macro5", "macro6", "macro7", "macro8"];
                IDS[usize::from(n.clamp(1, 8) - 1)]
            }
        }
    }

    /// The display name.
    pub fn name(self) -> &'static str {
        match self {
            Param::Rate => "Frame Rate",
            Param::Output => "Output",
            Param::Offset => "Start Offset",
            Param::SendStopped => "Send While Stopped",
            Param::Macro(n) => {
                const NAMES: [&str; 8] = [
                    "Cue Macro 1",
                    "Cue Macro 2",
                    "Cue Macro 3",
                    "Cue Macro 4",
                    "Cue Macro 5",
                    "Cue Macro 6",
                    "Cue Macro 7",
                    "Cue Macro 8",
                ];
                NAMES[usize::from(n.clamp(1, 8) - 1)]
            }
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
    /// `request_flush` calls, on any thread.
    pub flush_requests: AtomicU32,
    /// `request_flush` calls made on an audio thread (CLAP forbids them there: the plugin is
    /// already in `process()` or `flush()`).
    pub flush_requests_on_audio: AtomicU32,
    /// Params rescans asked for.
    pub rescans: AtomicU32,
    /// What the plugin logged through the host.
    pub log: Mutex<Vec<String>>,
    /// Every `clap.thread-check` question asked of this host, by where it was asked.
    pub thread_checks: ThreadCheckLog,
    /// The plugin said its window was closed (`clap.gui` `closed`).
    pub window_closed: AtomicBool,
}

/// Counts of `clap.thread-check` questions by the thread they were asked on (the harness knows
/// which threads are which without asking itself: the test thread that loaded the instance is
/// the main thread; [`ClapPlugin::run`]'s threads are audio threads). `[thread-safe]`.
#[derive(Debug, Default)]
pub struct ThreadCheckLog {
    /// `is_main_thread` asked on the main thread.
    pub main_asked_on_main: AtomicU64,
    /// `is_main_thread` asked on an audio thread.
    pub main_asked_on_audio: AtomicU64,
    /// `is_main_thread` asked on any other thread (the plugin's own threads).
    pub main_asked_elsewhere: AtomicU64,
    /// `is_audio_thread` asked on the main thread.
    pub audio_asked_on_main: AtomicU64,
    /// `is_audio_thread` asked on an audio thread.
    pub audio_asked_on_audio: AtomicU64,
    /// `is_audio_thread` asked on any other thread.
    pub audio_asked_elsewhere: AtomicU64,
}

/// A snapshot of a [`ThreadCheckLog`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadCheckCounts {
    /// `is_main_thread` asked on the main thread.
    pub main_asked_on_main: u64,
    /// `is_main_thread` asked on an audio thread.
    pub main_asked_on_audio: u64,
    /// `is_main_thread` asked on any other thread.
    pub main_asked_elsewhere: u64,
    /// `is_audio_thread` asked on the main thread.
    pub audio_asked_on_main: u64,
    /// `is_audio_thread` asked on an audio thread.
    pub audio_asked_on_audio: u64,
    /// `is_audio_thread` asked on any other thread.
    pub audio_asked_elsewhere: u64,
}

impl ThreadCheckLog {
    fn count(&self, asked_main: bool, on_main: bool, on_audio: bool) {
        let counter = match (asked_main, on_main, on_audio) {
            (true, true, _) => &self.main_asked_on_main,
            (true, false, true) => &self.main_asked_on_audio,
            (true, false, false) => &self.main_asked_elsewhere,
            (false, true, _) => &self.audio_asked_on_main,
            (false, false, true) => &self.audio_asked_on_audio,
            (false, false, false) => &self.audio_asked_elsewhere,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> ThreadCheckCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ThreadCheckCounts {
            main_asked_on_main: get(&self.main_asked_on_main),
            main_asked_on_audio: get(&self.main_asked_on_audio),
            main_asked_elsewhere: get(&self.main_asked_elsewhere),
            audio_asked_on_main: get(&self.audio_asked_on_main),
            audio_asked_on_audio: get(&self.audio_asked_on_audio),
            audio_asked_elsewhere: get(&self.audio_asked_elsewhere),
        }
    }
}

/// What the host's `clap.thread-check` answers on one thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadCheckAnswers {
    /// `is_main_thread()`.
    pub is_main: bool,
    /// `is_audio_thread()`.
    pub is_audio: bool,
}

impl HostShared {
    /// The host's thread-check answers on the calling thread, through the same implementation
    /// the plugin's calls reach (and counted in [`HostShared::thread_checks`] like them).
    pub fn thread_check_answers(&self) -> ThreadCheckAnswers {
        ThreadCheckAnswers {
            is_main: HostThreadCheckImpl::is_main_thread(self),
            is_audio: HostThreadCheckImpl::is_audio_thread(self),
        }
    }
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
        let (on_main, on_audio) = (std::thread::current().id() == self.main_thread, IS_AUDIO_THREAD.with(Cell::get));
        self.thread_checks.count(true, on_main, on_audio);
        on_main
    }
    fn is_audio_thread(&self) -> bool {
        let (on_main, on_audio) = (std::thread::current().id() == self.main_thread, IS_AUDIO_THREAD.with(Cell::get));
        self.thread_checks.count(false, on_main, on_audio);
        on_audio
    }
}

/// The host side of `clap.gui`: the window is the host's own X11 window, of the size the plugin
/// asked for, so resize requests are refused; a plugin that asks to be shown is already shown.
impl HostGuiImpl for HostShared {
    fn resize_hints_changed(&self) {}
    fn request_resize(&self, _new_size: GuiSize) -> Result<(), HostError> {
        Err(HostError::Message("the test host's window has a fixed size"))
    }
    fn request_show(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn request_hide(&self) -> Result<(), HostError> {
        Err(HostError::Message("the test host keeps the window shown"))
    }
    fn closed(&self, _was_destroyed: bool) {
        self.window_closed.store(true, Ordering::SeqCst);
    }
}

impl HostParamsImplShared for HostShared {
    fn request_flush(&self) {
        self.flush_requested.store(true, Ordering::SeqCst);
        self.flush_requests.fetch_add(1, Ordering::SeqCst);
        if IS_AUDIO_THREAD.with(Cell::get) {
            self.flush_requests_on_audio.fetch_add(1, Ordering::SeqCst);
        }
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
            .register::<HostLatency>()
            .register::<HostGui>();
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
    /// Output events the host's buffer refused ([`ClapPlugin::output_room`]), over all blocks.
    pub refused_output_events: u64,
    /// Wall-clock time the processing took.
    pub elapsed: std::time::Duration,
    /// Every block processed, in order (`OutputEvent::block` indexes this).
    pub block_log: Vec<BlockRecord>,
    /// Every output event, in the order the plugin pushed them, block by block.
    pub events: Vec<OutputEvent>,
    /// The thread the run's blocks were processed on (a new one for every run).
    pub audio_thread: Option<ThreadId>,
    /// What the host's thread-check said on that thread, asked just before the first block.
    pub audio_thread_check: Option<ThreadCheckAnswers>,
    /// When the run began on the audio thread (monotonic): the origin of
    /// [`ClapPlugin::run_realtime`]'s pacing, where block `k` is due the duration of the samples
    /// before it after this instant.
    pub started: Option<Instant>,
    /// The same moment on the wall clock (read just after `started`).
    pub started_wall: Option<SystemTime>,
    /// The plugin's output audio, left and right, every sample of the run in order, when
    /// [`ClapPlugin::capture_audio`] is on (else empty).
    pub audio: [Vec<f32>; 2],
}

impl RunReport {
    /// The note and MIDI 1.0 events of the run, in order, as an instrument on the track would
    /// receive them. Panics with the event on one that is not valid MIDI (a wildcard channel or
    /// key, a velocity that is not n/127, a port other than 0, a status byte we do not expect).
    /// Other output events (parameter values, gestures, note expressions) are not MIDI: skipped.
    pub fn midi(&self) -> Vec<MidiAt> {
        self.events
            .iter()
            .filter_map(|e| match e.midi() {
                Ok(Some(midi)) => Some(MidiAt { block: e.block, offset: e.time, sample: e.sample, midi }),
                Ok(None) => None,
                Err(why) => panic!("the plugin output an invalid MIDI event ({why}): {e:?}"),
            })
            .collect()
    }

    /// The MIDI events of block `block` (an index into [`RunReport::block_log`]).
    pub fn midi_in_block(&self, block: usize) -> Vec<MidiAt> {
        self.midi().into_iter().filter(|m| m.block == block).collect()
    }

    /// The MIDI system messages of the run (status 0xF0 and up), in order: system common and
    /// real-time messages from `CLAP_EVENT_MIDI` cut to their length by status byte (an MTC
    /// quarter frame is `F1 dd`), SysEx from `CLAP_EVENT_MIDI_SYSEX` as copied (see
    /// [`SysExBytes`]). Channel messages and notes are [`RunReport::midi`]'s.
    pub fn system_messages(&self) -> Vec<SystemAt> {
        self.events
            .iter()
            .filter_map(|e| {
                let (carrier, bytes) = match &e.kind {
                    OutputEventKind::Midi { data, .. } if data[0] >= 0xf0 => {
                        (Carrier::Midi, data[..system_message_len(data[0])].to_vec())
                    }
                    OutputEventKind::SysEx { data, .. } => (Carrier::SysEx, data.bytes().to_vec()),
                    _ => return None,
                };
                Some(SystemAt { block: e.block, offset: e.time, sample: e.sample, carrier, bytes })
            })
            .collect()
    }
}

/// The length of a MIDI 1.0 system message by its status byte (`0xF0..=0xFF`): `F1` and `F3`
/// carry one data byte, `F2` two, the others none (SysEx, `F0`, is as long as its event).
pub fn system_message_len(status: u8) -> usize {
    match status {
        0xf1 | 0xf3 => 2,
        0xf2 => 3,
        _ => 1,
    }
}

/// Which CLAP event carried a system message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// `CLAP_EVENT_MIDI` (three bytes, padded).
    Midi,
    /// `CLAP_EVENT_MIDI_SYSEX`.
    SysEx,
}

/// A MIDI system message the plugin output, and where it was in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemAt {
    /// The block (an index into [`RunReport::block_log`]).
    pub block: usize,
    /// Sample offset within the block.
    pub offset: u32,
    /// Steady-time sample (the block's `steady_start` + `offset`).
    pub sample: u64,
    /// The CLAP event that carried it.
    pub carrier: Carrier,
    /// The raw MIDI bytes, status first.
    pub bytes: Vec<u8>,
}

/// How many bytes of a SysEx output event the host keeps: an MTC full frame is 10.
pub const SYSEX_BYTES: usize = 32;

/// The bytes of a `CLAP_EVENT_MIDI_SYSEX` output event, copied in the host's `try_push` (the
/// plugin's buffer is only valid during that call). `Copy`: the first [`SYSEX_BYTES`] are kept,
/// and the event's own size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysExBytes {
    /// The event's `size`, in bytes (may exceed [`SYSEX_BYTES`]).
    pub size: u32,
    /// The first `min(size, SYSEX_BYTES)` bytes; zeros after.
    kept: [u8; SYSEX_BYTES],
}

impl SysExBytes {
    /// Copies `event`'s bytes. Call only during the `try_push` the event came with.
    fn copy(event: &MidiSysExEvent) -> Self {
        let mut kept = [0; SYSEX_BYTES];
        if !event.buffer_ptr().is_null() {
            // SAFETY: during `try_push` the plugin's buffer is valid for `size` bytes (CLAP
            // `clap_event_midi_sysex`; clack's `MidiSysExEvent::data` contract for hosts).
            let data = unsafe { event.data() };
            let n = data.len().min(SYSEX_BYTES);
            kept[..n].copy_from_slice(&data[..n]);
        }
        Self { size: event.buffer_size(), kept }
    }

    /// The bytes kept (all of them unless the event was longer than [`SYSEX_BYTES`]).
    pub fn bytes(&self) -> &[u8] {
        &self.kept[..(self.size as usize).min(SYSEX_BYTES)]
    }
}

/// One block as the harness processed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockRecord {
    /// Index of the block in its run (0 = the run's first block).
    pub index: usize,
    /// The block's first sample on the host's steady-time counter (samples processed by this
    /// instance since it was loaded; passed to the plugin as `steady_time`).
    pub steady_start: u64,
    /// Samples in the block.
    pub len: u32,
    /// The wall-clock instant just before `process()` was called for it.
    pub wall_start: SystemTime,
    /// The wall-clock instant just after `process()` returned: the plugin read its own clock
    /// somewhere between the two (a thread preempted inside the call reads it late).
    pub wall_end: SystemTime,
    /// The exact timeline sample of the block's first sample as the transport model had it (not
    /// the wobbled position it reported), or `None` when the block carried no transport.
    pub timeline_start: Option<i64>,
    /// The transport was rolling during the block.
    pub playing: bool,
}

impl BlockRecord {
    /// How long the `process()` call took, in samples at `sample_rate` (rounded up): how late
    /// in the call the plugin may have read its clock.
    pub fn call_samples(&self, sample_rate: u32) -> i64 {
        let call = self.wall_end.duration_since(self.wall_start).unwrap_or_default();
        (call.as_secs_f64() * f64::from(sample_rate)).ceil() as i64
    }
}

/// One event the plugin pushed to the host's output event buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputEvent {
    /// The block it came in (an index into [`RunReport::block_log`]).
    pub block: usize,
    /// The event header's `time`: the sample offset within the block.
    pub time: u32,
    /// Steady-time sample of the event: the block's `steady_start` + `time`.
    pub sample: u64,
    /// What it is.
    pub kind: OutputEventKind,
}

/// The output events the cue tests look at, with their raw CLAP fields; anything else as its
/// space and type ids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutputEventKind {
    /// `CLAP_EVENT_NOTE_ON` (fields as in `clap_event_note`; −1 is a wildcard).
    NoteOn {
        /// Note port index.
        port: i16,
        /// MIDI channel, 0-based.
        channel: i16,
        /// Key, 0–127.
        key: i16,
        /// Note id.
        note_id: i32,
        /// Velocity, 0.0–1.0.
        velocity: f64,
    },
    /// `CLAP_EVENT_NOTE_OFF` (fields as in `clap_event_note`).
    NoteOff {
        /// Note port index.
        port: i16,
        /// MIDI channel, 0-based.
        channel: i16,
        /// Key, 0–127.
        key: i16,
        /// Note id.
        note_id: i32,
        /// Release velocity, 0.0–1.0.
        velocity: f64,
    },
    /// `CLAP_EVENT_MIDI`: three raw MIDI 1.0 bytes.
    Midi {
        /// Note port index.
        port: u16,
        /// Status and data bytes.
        data: [u8; 3],
    },
    /// `CLAP_EVENT_MIDI_SYSEX`: the bytes as the host copied them.
    SysEx {
        /// Note port index.
        port: u16,
        /// The bytes.
        data: SysExBytes,
    },
    /// `CLAP_EVENT_PARAM_VALUE`: the plugin set one of its parameters (a host gesture's value).
    ParamValue {
        /// The parameter's CLAP id.
        param_id: u32,
        /// The CLAP plain value.
        value: f64,
    },
    /// `CLAP_EVENT_PARAM_GESTURE_BEGIN`.
    GestureBegin {
        /// The parameter's CLAP id.
        param_id: u32,
    },
    /// `CLAP_EVENT_PARAM_GESTURE_END`.
    GestureEnd {
        /// The parameter's CLAP id.
        param_id: u32,
    },
    /// Any other event (note expressions, …).
    Other {
        /// Event space id (0 is CLAP's core space).
        space_id: u16,
        /// Event type id within the space.
        type_id: u16,
    },
}

/// A MIDI 1.0 channel message as an instrument receives it. Channels are 0-based (wire values;
/// settings count them 1–16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Midi {
    /// Note on with a velocity of 1–127.
    NoteOn {
        /// Channel, 0–15.
        channel: u8,
        /// Key, 0–127.
        key: u8,
        /// Velocity, 1–127.
        velocity: u8,
    },
    /// Note off (release velocity not kept).
    NoteOff {
        /// Channel, 0–15.
        channel: u8,
        /// Key, 0–127.
        key: u8,
    },
    /// Control change.
    ControlChange {
        /// Channel, 0–15.
        channel: u8,
        /// Controller number, 0–127.
        number: u8,
        /// Value, 0–127.
        value: u8,
    },
    /// Program change.
    ProgramChange {
        /// Channel, 0–15.
        channel: u8,
        /// Program, 0–127.
        program: u8,
    },
}

/// A [`Midi`] message and where it was in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MidiAt {
    /// The block (an index into [`RunReport::block_log`]).
    pub block: usize,
    /// Sample offset within the block.
    pub offset: u32,
    /// Steady-time sample (the block's `steady_start` + `offset`).
    pub sample: u64,
    /// The message.
    pub midi: Midi,
}

impl OutputEvent {
    /// Reads a captured output event from the host's buffer; `block` and `steady_start` say
    /// where it was; `sysex` gives the bytes of a SysEx event, copied when it was pushed (the
    /// next of the block's copies, in push order).
    fn capture(
        event: &UnknownEvent,
        block: usize,
        steady_start: u64,
        sysex: &mut impl Iterator<Item = SysExBytes>,
    ) -> Self {
        let header = event.header();
        let time = header.time();
        let kind = match event.as_core_event() {
            Some(CoreEventSpace::NoteOn(e)) => {
                let raw = e.as_raw();
                OutputEventKind::NoteOn {
                    port: raw.port_index,
                    channel: raw.channel,
                    key: raw.key,
                    note_id: raw.note_id,
                    velocity: raw.velocity,
                }
            }
            Some(CoreEventSpace::NoteOff(e)) => {
                let raw = e.as_raw();
                OutputEventKind::NoteOff {
                    port: raw.port_index,
                    channel: raw.channel,
                    key: raw.key,
                    note_id: raw.note_id,
                    velocity: raw.velocity,
                }
            }
            Some(CoreEventSpace::Midi(e)) => OutputEventKind::Midi { port: e.port_index(), data: e.data() },
            Some(CoreEventSpace::MidiSysEx(e)) => OutputEventKind::SysEx {
                port: e.port_index(),
                data: sysex.next().expect("a SysEx event the host copied when it was pushed"),
            },
            Some(CoreEventSpace::ParamValue(e)) => {
                OutputEventKind::ParamValue { param_id: e.param_id().map_or(u32::MAX, ClapId::get), value: e.value() }
            }
            Some(CoreEventSpace::ParamGestureBegin(e)) => {
                OutputEventKind::GestureBegin { param_id: e.param_id().map_or(u32::MAX, ClapId::get) }
            }
            Some(CoreEventSpace::ParamGestureEnd(e)) => {
                OutputEventKind::GestureEnd { param_id: e.param_id().map_or(u32::MAX, ClapId::get) }
            }
            _ => OutputEventKind::Other { space_id: header.as_raw().space_id, type_id: header.type_id() },
        };
        Self { block, time, sample: steady_start + u64::from(time), kind }
    }

    /// The event as a MIDI 1.0 channel message: `Ok(None)` for events that are not notes or
    /// channel messages (system messages are [`RunReport::system_messages`]'), `Err` for a note or
    /// MIDI event an instrument could not read unambiguously.
    pub fn midi(&self) -> Result<Option<Midi>, String> {
        let seven_bit = |what: &str, v: i16| -> Result<u8, String> {
            u8::try_from(v).ok().filter(|v| *v < 128).ok_or_else(|| format!("{what} {v} is not 0–127"))
        };
        let note = |port: i16, channel: i16, key: i16| -> Result<(u8, u8), String> {
            if port != 0 {
                return Err(format!("note port {port}, not 0"));
            }
            let channel = u8::try_from(channel).ok().filter(|c| *c < 16).ok_or(format!("channel {channel}"))?;
            Ok((channel, seven_bit("key", key)?))
        };
        Ok(Some(match self.kind {
            OutputEventKind::NoteOn { port, channel, key, velocity, .. } => {
                let (channel, key) = note(port, channel, key)?;
                let velocity = velocity_7bit(velocity)?;
                if velocity == 0 {
                    return Err("note on with velocity 0".into());
                }
                Midi::NoteOn { channel, key, velocity }
            }
            OutputEventKind::NoteOff { port, channel, key, .. } => {
                let (channel, key) = note(port, channel, key)?;
                Midi::NoteOff { channel, key }
            }
            OutputEventKind::Midi { data: [0xf0..=0xff, ..], .. } | OutputEventKind::SysEx { .. } => return Ok(None),
            OutputEventKind::Midi { port, data: [status, d1, d2] } => {
                if port != 0 {
                    return Err(format!("MIDI port {port}, not 0"));
                }
                if d1 >= 128 || d2 >= 128 {
                    return Err(format!("data bytes {d1:#04x} {d2:#04x} are not 7-bit"));
                }
                let channel = status & 0x0f;
                match status & 0xf0 {
                    0x90 if d2 > 0 => Midi::NoteOn { channel, key: d1, velocity: d2 },
                    0x80 | 0x90 => Midi::NoteOff { channel, key: d1 },
                    0xb0 => Midi::ControlChange { channel, number: d1, value: d2 },
                    0xc0 => Midi::ProgramChange { channel, program: d1 },
                    _ => return Err(format!("unexpected MIDI status byte {status:#04x}")),
                }
            }
            OutputEventKind::Other { .. }
            | OutputEventKind::ParamValue { .. }
            | OutputEventKind::GestureBegin { .. }
            | OutputEventKind::GestureEnd { .. } => return Ok(None),
        }))
    }
}

/// A CLAP note velocity (0.0–1.0) as the MIDI 1.0 velocity it stands for: it must be n/127 for a
/// whole n (to f32 precision: nice-plug carries velocities as `f32`).
pub fn velocity_7bit(velocity: f64) -> Result<u8, String> {
    let n = (velocity * 127.0).round();
    if !(0.0..=127.0).contains(&n) || (velocity - n / 127.0).abs() > 1e-6 {
        return Err(format!("velocity {velocity} is not n/127"));
    }
    Ok(n as u8)
}

/// Where a [`ProcessProbe`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbePoint {
    /// Just before the plugin's `process()`, after the buffers and events are ready.
    Before,
    /// Just after it returns, before its output is looked at.
    After,
}

/// A function the harness calls on the audio thread right around every `process()` call of every
/// instance in this process, with nothing of the harness's own work in between: the benchmarks
/// time `process()` and count its instructions there. `[audio-thread]`
pub type ProcessProbe = fn(ProbePoint);

/// The process-wide probe, if one was installed.
static PROCESS_PROBE: OnceLock<ProcessProbe> = OnceLock::new();

/// Installs the process-wide [`ProcessProbe`]. Only the first call installs one (`true`); the
/// probe stays for the life of the process, so it should check a switch of its own.
pub fn set_process_probe(probe: ProcessProbe) -> bool {
    PROCESS_PROBE.set(probe).is_ok()
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
    /// [`ClapPlugin::output_room`].
    output_room: Option<u32>,
    steady_time: &'p mut u64,
    /// The block's SysEx bytes ([`RoomLimited::sysex`]); capacity reserved before the run.
    sysex: Vec<SysExBytes>,
}

/// The host's output event buffer with room for `room` events per block, as a host with a
/// fixed-size buffer has: `try_push` fails once it holds that many.
struct RoomLimited<'b> {
    /// Where accepted events go.
    buffer: &'b mut EventBuffer,
    /// Events it takes in one block.
    room: u32,
    /// Pushes refused in this block.
    refused: u64,
    /// The bytes of the SysEx events accepted in this block, in push order.
    sysex: &'b mut Vec<SysExBytes>,
}

impl OutputEventBuffer for RoomLimited<'_> {
    fn try_push(&mut self, event: &UnknownEvent) -> Result<(), TryPushError> {
        if self.buffer.len() >= self.room {
            self.refused += 1;
            return Err(TryPushError::new());
        }
        self.buffer.try_push(event)?;
        if let Some(CoreEventSpace::MidiSysEx(e)) = event.as_core_event() {
            self.sysex.push(SysExBytes::copy(e));
        }
        Ok(())
    }
}

impl AudioSide<'_> {
    /// Processes one block of `len` samples. Input events are sent with this block and cleared.
    /// Returns the plugin's status, the output samples that were not the input, and the output
    /// events the host refused.
    fn process(&mut self, transport: Option<&TransportEvent>, len: u32) -> (ProcessStatus, u64, u64) {
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
        self.sysex.clear();
        let mut out_buffer = RoomLimited {
            buffer: &mut *self.out_events,
            room: self.output_room.unwrap_or(u32::MAX),
            refused: 0,
            sysex: &mut self.sysex,
        };
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
            let mut out_events = OutputEvents::from(&mut out_buffer);
            let probe = PROCESS_PROBE.get().copied();
            if let Some(probe) = probe {
                probe(ProbePoint::Before);
            }
            let status =
                self.processor.process(&inputs, &mut outputs, &in_events, &mut out_events, Some(start), transport);
            if let Some(probe) = probe {
                probe(ProbePoint::After);
            }
            status.unwrap_or_else(|e| panic!("process() failed: {e}"))
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
        (status, mismatches, out_buffer.refused)
    }
}

/// What the bundle's CLAP plugin factory says about the plugin, before any instance exists (as a
/// host's plugin scanner reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClapDescriptor {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `vendor`.
    pub vendor: String,
    /// `version`.
    pub version: String,
    /// `url`.
    pub url: String,
    /// `features`, in order (`CLAP_PLUGIN_FEATURE_*` strings like `audio-effect`).
    pub features: Vec<String>,
}

impl ClapDescriptor {
    /// Loads the CLAP bundle (building it first if needed) and reads the descriptor with
    /// [`CLAP_ID`]. Panics if the factory or the descriptor is missing.
    pub fn read() -> Self {
        let path = &bundles().clap;
        // SAFETY: loading a shared library runs its initialisers; this is the plugin under test,
        // built from this workspace.
        let entry = unsafe { PluginEntry::load(path) }.unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
        let factory = entry.get_plugin_factory().expect("the bundle has a plugin factory");
        let text = |s: Option<&CStr>| s.map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let descriptor = factory
            .plugin_descriptors()
            .find(|d| d.id().is_some_and(|id| id.to_bytes() == CLAP_ID.as_bytes()))
            .unwrap_or_else(|| panic!("no plugin with id {CLAP_ID} in {}", path.display()));
        Self {
            id: text(descriptor.id()),
            name: text(descriptor.name()),
            vendor: text(descriptor.vendor()),
            version: text(descriptor.version()),
            url: text(descriptor.url()),
            features: descriptor.features().map(|f| f.to_string_lossy().into_owned()).collect(),
        }
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
    /// `clap.gui`, if the plugin has it.
    gui: Option<PluginGui>,
    /// The plugin's window is open ([`ClapPlugin::open_window_x11`]).
    window_open: bool,
    param_ids: HashMap<Param, ClapId>,
    sample_rate: u32,
    max_block: u32,
    io: AudioIo,
    in_events: EventBuffer,
    /// Output events of the last processed block (kept for MIDI-output tests).
    pub out_events: EventBuffer,
    /// How many events the host's output event buffer takes per block, as a host with a buffer
    /// of fixed size; `None` (the default): as many as the plugin pushes.
    pub output_room: Option<u32>,
    /// Keep the output audio of every run in [`RunReport::audio`] (LTC tests); off by default.
    pub capture_audio: bool,
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
        let host_info = HostInfo::new("osc-timecode host tests", "OSC Timecode", "", "0.1.0").expect("host info");
        let id = CString::new(CLAP_ID).expect("id has no NUL");
        let main_thread = std::thread::current().id();
        let mut instance = PluginInstance::<TestHost>::new(
            move |_| HostShared {
                main_thread,
                restart_requested: AtomicBool::new(false),
                process_requested: AtomicBool::new(false),
                callback_requested: AtomicBool::new(false),
                flush_requested: AtomicBool::new(false),
                flush_requests: AtomicU32::new(0),
                flush_requests_on_audio: AtomicU32::new(0),
                rescans: AtomicU32::new(0),
                log: Mutex::new(Vec::new()),
                thread_checks: ThreadCheckLog::default(),
                window_closed: AtomicBool::new(false),
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
        let gui = handle.get_extension::<PluginGui>();
        let mut me = Self {
            processor: None,
            instance,
            _entry: entry,
            params,
            state,
            render,
            gui,
            window_open: false,
            param_ids: HashMap::new(),
            sample_rate: 0,
            max_block: 0,
            io: AudioIo::new(1),
            in_events: EventBuffer::with_capacity(16),
            out_events: EventBuffer::with_capacity(256),
            output_room: None,
            capture_audio: false,
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
        for p in Param::ALL.into_iter().chain(Param::MACROS) {
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

    /// How many parameters `clap.params` reports.
    pub fn param_count(&mut self) -> u32 {
        self.params.count(&self.instance.plugin_handle())
    }

    /// `clap.params` `value_to_text` for a parameter: the display text of a plain value, or
    /// `None` when the plugin refuses.
    pub fn value_to_text(&mut self, p: Param, value: f64) -> Option<String> {
        self.value_to_text_by_id(self.param_id(p), value)
    }

    /// `value_to_text` by raw CLAP ID (for IDs the plugin does not have).
    pub fn value_to_text_by_id(&mut self, id: ClapId, value: f64) -> Option<String> {
        self.value_to_text_in(id, value, 256)
    }

    /// `value_to_text` into a buffer of `capacity` bytes (CLAP's `size`, NUL included): the text
    /// up to its NUL, or the whole buffer if the plugin wrote none. Panics if it is not UTF-8.
    pub fn value_to_text_in(&mut self, id: ClapId, value: f64, capacity: usize) -> Option<String> {
        let mut buf = vec![0u8; capacity];
        let text = self.params.value_to_text(&self.instance.plugin_handle(), id, value, &mut buf).ok()?;
        let text = String::from_utf8(text.to_vec());
        Some(text.unwrap_or_else(|e| panic!("value_to_text({id:?}, {value}) is not UTF-8: {e}")))
    }

    /// `clap.params` `text_to_value` for a parameter: the plain value of a display text, or
    /// `None` when the plugin refuses the text.
    pub fn text_to_value(&mut self, p: Param, text: &CStr) -> Option<f64> {
        self.text_to_value_by_id(self.param_id(p), text)
    }

    /// `text_to_value` by raw CLAP ID.
    pub fn text_to_value_by_id(&mut self, id: ClapId, text: &CStr) -> Option<f64> {
        self.params.text_to_value(&self.instance.plugin_handle(), id, text)
    }

    /// The host's thread-check answers on the calling thread (the instance's main thread when
    /// called from the test).
    pub fn thread_check_answers(&self) -> ThreadCheckAnswers {
        self.instance.access_shared_handler(HostShared::thread_check_answers)
    }

    /// `(request_flush calls, those made on an audio thread)` so far.
    pub fn flush_requests(&self) -> (u32, u32) {
        self.instance.access_shared_handler(|h| {
            (h.flush_requests.load(Ordering::SeqCst), h.flush_requests_on_audio.load(Ordering::SeqCst))
        })
    }

    /// How often `clap.thread-check` was asked so far, by whom (the plugin, and the harness's own
    /// [`ClapPlugin::thread_check_answers`] and [`RunReport::audio_thread_check`]).
    pub fn thread_checks(&self) -> ThreadCheckCounts {
        self.instance.access_shared_handler(|h| h.thread_checks.snapshot())
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
        self.try_activate(f64::from(sample_rate), max_block)
            .unwrap_or_else(|e| panic!("activate at {sample_rate} Hz: {e}"));
    }

    /// Like [`ClapPlugin::activate`] at any sample rate, returning the plugin's refusal (the
    /// instance then stays inactive, as CLAP requires).
    pub fn try_activate(&mut self, sample_rate: f64, max_block: u32) -> Result<(), String> {
        assert!(self.processor.is_none(), "already active");
        let config = PluginAudioConfiguration { sample_rate, min_frames_count: 1, max_frames_count: max_block };
        let stopped = self.instance.activate(|_, _| (), config).map_err(|e| e.to_string())?;
        self.sample_rate = sample_rate.round() as u32;
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
        Ok(())
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

    /// Processes blocks of the given sizes (0 to the maximum block; a host may pass an empty
    /// block, see [`ClapPlugin::run_scripted`]); with `None`, the blocks carry no transport at all
    /// (`process.transport == NULL`).
    pub fn run_blocks(&mut self, transport: Option<&mut Transport>, sizes: &[u32]) -> RunReport {
        self.run_inner(transport, sizes.len(), |_, i| sizes[i], false)
    }

    /// Like [`ClapPlugin::run`], but paced like a real-time host: each block starts one block
    /// duration after the previous one.
    pub fn run_realtime(&mut self, transport: &mut Transport, total: u64, block: u32) -> RunReport {
        let sizes: Vec<u32> = std::iter::successors(Some(total), |left| left.checked_sub(u64::from(block)))
            .take_while(|&left| left > 0)
            .map(|left| left.min(u64::from(block)) as u32)
            .collect();
        self.run_inner(Some(transport), sizes.len(), |_, i| sizes[i], true)
    }

    /// Processes `blocks` blocks with `transport`; before each one, on the audio thread,
    /// `script(transport, index)` may change the transport (play, stop, locate, loop, tempo) and
    /// returns the block's length: 0 to the maximum block.
    ///
    /// CLAP bounds a block's length by the activation's `[min, max]`, itself within
    /// `[1, INT32_MAX]` (`plugin.h`, `activate`), so a 0-sample block is outside the contract;
    /// VST3 hosts do send them (`numSamples == 0` to flush parameters), and clack-host passes
    /// one on when the buffers are empty, so the harness can too.
    pub fn run_scripted(
        &mut self,
        transport: &mut Transport,
        blocks: usize,
        mut script: impl FnMut(&mut Transport, usize) -> u32 + Send,
    ) -> RunReport {
        self.run_inner(Some(transport), blocks, |t, i| script(t.expect("a transport"), i), false)
    }

    /// Like [`ClapPlugin::run_scripted`], paced like a real-time host: each block starts one block
    /// duration after the previous one, whatever the script does to the transport (a host's audio
    /// callback keeps its period through a transport start).
    pub fn run_scripted_realtime(
        &mut self,
        transport: &mut Transport,
        blocks: usize,
        mut script: impl FnMut(&mut Transport, usize) -> u32 + Send,
    ) -> RunReport {
        self.run_inner(Some(transport), blocks, |t, i| script(t.expect("a transport"), i), true)
    }

    /// Processes `blocks` blocks on a new audio thread, each `len(transport, index)` samples
    /// long (called before the block's transport is read), paced in real time if `realtime`.
    fn run_inner(
        &mut self,
        mut transport: Option<&mut Transport>,
        blocks: usize,
        mut len_of: impl FnMut(Option<&mut Transport>, usize) -> u32 + Send,
        realtime: bool,
    ) -> RunReport {
        let (side_sample_rate, max_block, capture_audio) = (self.sample_rate, self.max_block, self.capture_audio);
        let processor = self.processor.as_mut().expect("activate first").ensure_processing_started().expect("started");
        let mut side = AudioSide {
            processor,
            io: &mut self.io,
            in_events: &mut self.in_events,
            out_events: &mut self.out_events,
            output_room: self.output_room,
            steady_time: &mut self.steady_time,
            sysex: Vec::with_capacity(1024),
        };
        let report = std::thread::scope(|s| {
            s.spawn(|| {
                IS_AUDIO_THREAD.with(|c| c.set(true));
                let started = std::time::Instant::now();
                let mut report = RunReport {
                    started: Some(started),
                    started_wall: Some(SystemTime::now()),
                    block_log: Vec::with_capacity(blocks),
                    audio_thread: Some(std::thread::current().id()),
                    audio_thread_check: Some(side.processor.access_shared_handler(HostShared::thread_check_answers)),
                    ..RunReport::default()
                };
                let sample_rate = f64::from(side_sample_rate);
                for index in 0..blocks {
                    let len = len_of(transport.as_deref_mut(), index);
                    assert!(len <= max_block, "block {index} has {len} samples, more than the maximum {max_block}");
                    if realtime {
                        let due = started + std::time::Duration::from_secs_f64(report.samples as f64 / sample_rate);
                        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let event = transport.as_deref().map(Transport::clap_event);
                    let steady_start = *side.steady_time;
                    let (timeline_start, playing) = match transport.as_deref() {
                        Some(t) => (Some(t.position), t.playing),
                        None => (None, false),
                    };
                    let wall_start = SystemTime::now();
                    let (_, mismatches, refused) = side.process(event.as_ref(), len);
                    let wall_end = SystemTime::now();
                    report.block_log.push(BlockRecord {
                        index,
                        steady_start,
                        len,
                        wall_start,
                        wall_end,
                        timeline_start,
                        playing,
                    });
                    // CLAP: a block's output events are sorted by time (`clap_output_events`).
                    let times: Vec<u32> = side.out_events.iter().map(|e| e.header().time()).collect();
                    assert!(times.is_sorted(), "block {index}: output events out of time order: {times:?}");
                    let mut sysex = side.sysex.iter().copied();
                    report.events.extend(
                        side.out_events.iter().map(|e| OutputEvent::capture(e, index, steady_start, &mut sysex)),
                    );
                    if capture_audio {
                        for (kept, out) in report.audio.iter_mut().zip(&side.io.output) {
                            kept.extend_from_slice(&out[..len as usize]);
                        }
                    }
                    if let Some(t) = transport.as_deref_mut() {
                        t.advance(len);
                    }
                    report.blocks += 1;
                    report.samples += u64::from(len);
                    report.passthrough_mismatches += mismatches;
                    report.refused_output_events += refused;
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

    /// `[main-thread]` Opens the plugin's window (`clap.gui`) embedded in the X11 window `parent`
    /// (an id on the display `$DISPLAY` names, which the plugin opens itself), as a Linux host
    /// does: `is_api_supported(x11, embedded)`, `create`, `get_size`, `set_parent`, `show`. The
    /// size the plugin asked for. nice-plug has no floating windows, so the window is embedded.
    pub fn open_window_x11(&mut self, parent: u32) -> Result<GuiSize, String> {
        let gui = self.gui.ok_or("the plugin has no clap.gui")?;
        let handle = self.instance.plugin_handle();
        let x11 = GuiConfiguration { api_type: GuiApiType::X11, is_floating: false };
        if !gui.is_api_supported(&handle, x11) {
            return Err("clap.gui: X11 (embedded) is not supported".into());
        }
        gui.create(&handle, x11).map_err(|e| format!("clap.gui create: {e}"))?;
        self.window_open = true;
        let size = gui.get_size(&handle).ok_or("clap.gui get_size failed")?;
        // SAFETY: the caller's window outlives the plugin's (the caller closes it with
        // `close_window`, or dropping this instance does, before destroying its own).
        unsafe { gui.set_parent(&handle, Window::from_x11_handle(parent.into())) }
            .map_err(|e| format!("clap.gui set_parent: {e}"))?;
        gui.show(&handle).map_err(|e| format!("clap.gui show: {e}"))?;
        Ok(size)
    }

    /// `[main-thread]` Destroys the plugin's window, if it is open.
    pub fn close_window(&mut self) {
        if let (true, Some(gui)) = (self.window_open, self.gui) {
            gui.destroy(&self.instance.plugin_handle());
            self.window_open = false;
        }
    }

    /// What the plugin logged through `clap.log`.
    pub fn host_log(&self) -> Vec<String> {
        self.instance.access_shared_handler(|h| h.log.lock().map(|l| l.clone()).unwrap_or_default())
    }
}

impl Drop for ClapPlugin {
    fn drop(&mut self) {
        self.close_window();
        if self.processor.is_some() && !std::thread::panicking() {
            self.deactivate();
        }
    }
}

#[cfg(test)]
mod tests {
    use clack_host::events::Match;
    use clack_host::events::event_types::{MidiEvent, NoteOffEvent, NoteOnEvent};

    use super::*;

    /// Captures every event of `buffer` as block 3 starting at steady sample 1000.
    fn capture_all(buffer: &EventBuffer) -> Vec<OutputEvent> {
        buffer.iter().map(|e| OutputEvent::capture(e, 3, 1000, &mut std::iter::empty())).collect()
    }

    #[test]
    fn captures_notes_and_midi_with_their_block_and_sample() {
        let mut buffer = EventBuffer::with_capacity(8);
        buffer.push(&NoteOnEvent::new(5, Pckn::new(0u16, 2u16, 60u16, Match::All), f64::from(100.0f32 / 127.0)));
        buffer.push(&NoteOffEvent::new(7, Pckn::new(0u16, 2u16, 60u16, Match::All), 0.0));
        buffer.push(&MidiEvent::new(9, 0, [0xb1, 20, 64]));
        buffer.push(&MidiEvent::new(9, 0, [0xc2, 5, 0]));
        buffer.push(&ParamValueEvent::new(0, ClapId::new(1), Pckn::match_all(), 0.5));
        let got = capture_all(&buffer);
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|e| e.block == 3 && e.sample == 1000 + u64::from(e.time)));
        assert_eq!(got.iter().map(|e| e.time).collect::<Vec<_>>(), [5, 7, 9, 9, 0]);
        assert!(matches!(got[0].kind, OutputEventKind::NoteOn { port: 0, channel: 2, key: 60, note_id: -1, .. }));
        assert_eq!(got[4].kind, OutputEventKind::ParamValue { param_id: 1, value: 0.5 });
        let midi: Vec<Option<Midi>> = got.iter().map(|e| e.midi().expect("valid")).collect();
        assert_eq!(
            midi,
            [
                Some(Midi::NoteOn { channel: 2, key: 60, velocity: 100 }),
                Some(Midi::NoteOff { channel: 2, key: 60 }),
                Some(Midi::ControlChange { channel: 1, number: 20, value: 64 }),
                Some(Midi::ProgramChange { channel: 2, program: 5 }),
                None,
            ]
        );
    }

    /// SysEx bytes are copied while pushed (the plugin's buffer is gone afterwards); system
    /// messages are not channel MIDI, and come out of `system_messages` cut to their length.
    #[test]
    fn captures_system_messages_and_sysex_bytes_while_pushed() {
        let mut buffer = EventBuffer::with_capacity(8);
        let mut copies = Vec::new();
        let mut room = RoomLimited { buffer: &mut buffer, room: 3, refused: 0, sysex: &mut copies };
        let mut full = [0xf0, 0x7f, 0x7f, 0x01, 0x01, 0x21, 0x02, 0x03, 0x04, 0xf7];
        room.try_push(MidiEvent::new(4, 0, [0xf1, 0x23, 0]).as_unknown()).expect("room");
        // SAFETY: `full` outlives the pushes.
        let event = unsafe { MidiSysExEvent::new(6, 0, &full) };
        room.try_push(event.as_unknown()).expect("room");
        room.try_push(MidiEvent::new(7, 0, [0xb0, 1, 2]).as_unknown()).expect("room");
        assert!(room.try_push(event.as_unknown()).is_err(), "a fourth event has no room");
        assert_eq!(room.refused, 1);
        full.fill(0); // the plugin's buffer is reused after the call
        let mut sysex = copies.iter().copied();
        let events: Vec<OutputEvent> = buffer.iter().map(|e| OutputEvent::capture(e, 2, 500, &mut sysex)).collect();
        let report = RunReport { events, ..RunReport::default() };
        assert_eq!(
            report.system_messages(),
            [
                SystemAt { block: 2, offset: 4, sample: 504, carrier: Carrier::Midi, bytes: vec![0xf1, 0x23] },
                SystemAt {
                    block: 2,
                    offset: 6,
                    sample: 506,
                    carrier: Carrier::SysEx,
                    bytes: vec![0xf0, 0x7f, 0x7f, 0x01, 0x01, 0x21, 0x02, 0x03, 0x04, 0xf7],
                },
            ]
        );
        assert_eq!(
            report.midi().iter().map(|m| m.midi).collect::<Vec<_>>(),
            [Midi::ControlChange { channel: 0, number: 1, value: 2 }]
        );
        assert_eq!((system_message_len(0xf2), system_message_len(0xf8)), (3, 1));
    }

    #[test]
    fn refuses_events_an_instrument_could_not_read() {
        let ev = |kind| OutputEvent { block: 0, time: 0, sample: 0, kind };
        let note = |port, channel, key, velocity| OutputEventKind::NoteOn { port, channel, key, note_id: -1, velocity };
        for (kind, why) in [
            (note(0, -1, 60, 1.0), "wildcard channel"),
            (note(0, 16, 60, 1.0), "channel 16"),
            (note(0, 0, -1, 1.0), "wildcard key"),
            (note(0, 0, 128, 1.0), "key 128"),
            (note(1, 0, 60, 1.0), "port 1"),
            (note(0, 0, 60, 0.5), "velocity 63.5/127"),
            (note(0, 0, 60, 0.0), "note on with velocity 0"),
            (OutputEventKind::Midi { port: 0, data: [0xe0, 0, 64] }, "pitch bend"),
            (OutputEventKind::Midi { port: 0, data: [0xb0, 200, 0] }, "8-bit data"),
            (OutputEventKind::Midi { port: 2, data: [0xb0, 1, 0] }, "port 2"),
        ] {
            assert!(ev(kind).midi().is_err(), "{why} must be refused: {kind:?}");
        }
        // A raw note on with velocity 0 is a note off (MIDI 1.0 running-status convention).
        assert_eq!(
            ev(OutputEventKind::Midi { port: 0, data: [0x93, 60, 0] }).midi(),
            Ok(Some(Midi::NoteOff { channel: 3, key: 60 }))
        );
    }

    #[test]
    fn velocities_are_whole_127ths() {
        for n in 0..=127u8 {
            // nice-plug carries velocities as f32; CLAP as f64.
            assert_eq!(velocity_7bit(f64::from(f32::from(n) / 127.0)), Ok(n));
            assert_eq!(velocity_7bit(f64::from(n) / 127.0), Ok(n));
        }
        assert!(velocity_7bit(1.5).is_err());
        assert!(velocity_7bit(-0.1).is_err());
        assert!(velocity_7bit(0.3).is_err());
    }
}
