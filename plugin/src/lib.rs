//! OSC Timecode: a CLAP + VST3 plugin that turns the host's transport into SMPTE timecode and
//! sends it as OSC `/sync/timecode` over UDP.
//!
//! Contract: `process()` reads the transport, finds the frames that start in the block
//! ([`osc_timecode_core::clock::FrameClock`]) and pushes one `Copy` message per frame into a
//! bounded `rtrb` ring. It never allocates, locks, logs, waits, wakes another thread or panics;
//! its one call outside plain arithmetic is reading the monotonic clock (`Instant::now()`, a vDSO
//! read on Linux, `mach_absolute_time` on macOS, `QueryPerformanceCounter` on Windows: no kernel
//! transition) once per block that has frames. A full ring drops the frame and counts it.
//!
//! Data flow:
//! 1. `activate()` `[main-thread]`: allocates the ring and the clock, spawns the network thread;
//! 2. `process()` `[audio-thread]`: transport → frames → ring;
//! 3. the network thread ([`network`]) sends each frame at its due wall-clock time to every
//!    target, as an OSC bundle timetagged with when it is heard;
//! 4. `deactivate()` / drop `[main-thread]`: stops and joins the network thread.
//!
//! Cues come the other way ([`cues`]): a cue thread, also spawned in `activate()`, receives
//! `/cue/...` and `/trigger/...` over UDP (default `127.0.0.1:5005`), and `process()` drains a
//! second ring and hands each cue to the host as a MIDI event at its sample. `/macro/N VALUE`
//! skips the audio thread: the cue thread sets Cue Macro N ([`params`]) as one host gesture
//! through the wrapper's `RemoteParamSetter` (vendored nice-plug), which `activate()` hands it.
//! With `advertise = true` in the machine config, a third thread ([`discovery`]) advertises the
//! cue input over DNS-SD (`_osc._udp`, role=master), following its socket.
//!
//! Offline render (bounce) policy, the `offline` setting: `silent` by default. A bounce runs
//! faster than real time, so timecode from it would flood receivers with frames they cannot
//! follow; nothing is sent while the host processes offline, and normal sending resumes (flagged as
//! a jump) when it is back in real time. Opt-in `realtime` paces the frames at real time instead
//! (see [`settings::OfflinePolicy`]).

#![forbid(unsafe_code)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use osc_timecode_core::HostRate;
use osc_timecode_core::clock::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, offset_frames, usable_sample_rate};
use osc_timecode_core::send::{HostBlock, PlannedFrame, Render, SendPolicy, SendSettings};

pub mod cues;
pub mod discovery;
pub mod editor;
pub mod network;
pub mod outputs;
pub mod params;
pub mod readout;
pub mod settings;
pub mod thread;
pub mod wallclock;

use cues::automation::ParamDue;
use cues::player::{BlockTiming, CueOut, CuePlayer, PendingReleases};
use cues::{CUE_QUEUE_CAPACITY, CueStats};
use network::{FrameMessage, QUEUE_CAPACITY, Stats};
use outputs::OutputStats;
use outputs::ltc::LtcOut;
use outputs::mtc::{MtcBatch, MtcOut, MtcPlan};
use params::{ParamRef, TimecodeParams};
use readout::{CueActivity, Readout};
use settings::values::{Normalized, RampMs};
use settings::{OfflinePolicy, Settings};
use thread::StoppableThread;

/// The plugin instance.
pub struct OscTimecode {
    /// Parameters and persisted settings. `[thread-safe]`; allocated in `default()`.
    params: Arc<TimecodeParams>,
    /// Counters shared with the network thread. `[thread-safe]`; allocated in `default()`.
    stats: Arc<Stats>,
    /// The frame clock and which frames are sent. `[audio-thread]`; created in the first
    /// `activate()` and kept after `deactivate()`, so a stop owed to receivers stays owed.
    send: Option<SendPolicy>,
    /// Producer end of the frame ring. `[audio-thread]`; allocated in `activate()`.
    producer: Option<rtrb::Producer<FrameMessage>>,
    /// The network thread. `[main-thread]`; spawned in `activate()`, joined in `deactivate()`.
    network: Option<StoppableThread>,
    /// Cue counters shared with the cue thread. `[thread-safe]`; allocated in `default()`.
    cue_stats: Arc<CueStats>,
    /// The cue thread. `[main-thread]`; spawned in `activate()`, joined in `deactivate()`.
    cue_thread: Option<StoppableThread>,
    /// The DNS-SD advertising thread, while the machine's config turns it on ([`discovery`]).
    /// `[main-thread]`; spawned in `activate()`, joined in `deactivate()`.
    advertising: Option<StoppableThread>,
    /// Places cues at their samples. `[audio-thread]`; allocated in `activate()`.
    cue_player: Option<CuePlayer>,
    /// Producer end of the ring on which the audio thread hands parameter changes back to the cue
    /// thread (ramps, and formats that cannot begin a host gesture on the audio thread:
    /// [`cues::automation`]). `[audio-thread]`; allocated in `activate()`.
    param_returns: Option<rtrb::Producer<ParamDue>>,
    /// Note offs owed to the host while inactive: those the cue player still had pending at
    /// deactivation, sent at offset 0 of the first block after the next `activate()` (no stuck
    /// notes across a deactivation). `[main-thread]`; plain data, 256 bytes.
    owed_note_offs: PendingReleases,
    /// The latest frame and block count for the plugin window. `[thread-safe]`: the
    /// `[audio-thread]` stores, the window loads; allocated in `default()`.
    readout: Arc<Readout>,
    /// The cue thread's socket and recent cues for the plugin window. `[thread-safe]`: the
    /// cue thread writes, the window reads; allocated in `default()`.
    cue_activity: Arc<CueActivity>,
    /// The window's size and open state. `[main-thread]`; allocated in `default()`.
    editor_state: Arc<nice_plug_egui::EguiEditorState>,
    /// Counters of the LTC, MTC and Art-Net outputs. `[thread-safe]`; allocated in `default()`.
    output_stats: Arc<OutputStats>,
    /// Renders LTC into the audio output. `[audio-thread]`; plain data, no heap.
    ltc: LtcOut,
    /// Sends MTC through the MIDI output. `[audio-thread]`; plain data, no heap.
    mtc: MtcOut,
    /// The block's MTC messages, sent in time order among the cues' events. `[audio-thread]`;
    /// a fixed array, allocated in `default()`.
    mtc_batch: Box<MtcBatch>,
}

impl Default for OscTimecode {
    /// Cheap: no sockets, no threads. Reads the machine config file (one small file, main thread)
    /// so a new instance starts from the rig's settings; a restored project state overrides it.
    fn default() -> Self {
        let (settings, config_error) = Settings::for_new_instance();
        if let Some(e) = config_error {
            nice_warn!("{e}");
        }
        Self {
            params: Arc::new(TimecodeParams::new(settings)),
            stats: Arc::new(Stats::default()),
            send: None,
            producer: None,
            network: None,
            cue_stats: Arc::new(CueStats::default()),
            cue_thread: None,
            advertising: None,
            cue_player: None,
            param_returns: None,
            owed_note_offs: PendingReleases::default(),
            readout: Arc::new(Readout::default()),
            cue_activity: Arc::new(CueActivity::default()),
            editor_state: editor::default_state(),
            output_stats: Arc::new(OutputStats::default()),
            ltc: LtcOut::default(),
            mtc: MtcOut::default(),
            mtc_batch: Box::default(),
        }
    }
}

impl OscTimecode {
    /// `[main-thread]` Stops the network, cue and advertising threads and frees the per-activation
    /// state.
    fn shut_down(&mut self) {
        thread::stop_all([self.network.take(), self.cue_thread.take(), self.advertising.take()]);
        if let Some(mut player) = self.cue_player.take() {
            self.owed_note_offs.merge(player.abandon());
        }
        self.producer = None;
        self.param_returns = None;
    }
}

impl Plugin for OscTimecode {
    const NAME: &'static str = "OSC Timecode";
    const VENDOR: &'static str = "OSC Timecode";
    /// The package's `homepage` (Cargo.toml), empty while the project has none: hosts show no
    /// link rather than a placeholder.
    const URL: &'static str = env!("CARGO_PKG_HOMEPAGE");
    /// None published: hosts show no address rather than a placeholder.
    const EMAIL: &'static str = "";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[AudioIOLayout {
        main_input_channels: NonZeroU32::new(2),
        main_output_channels: NonZeroU32::new(2),
        ..AudioIOLayout::const_default()
    }];

    /// Cues leave as notes, control changes and program changes.
    const MIDI_OUTPUT: MidiConfig = MidiConfig::MidiCCs;

    type Editor = nice_plug_egui::EguiEditor<editor::App>;
    type SysExMessage = outputs::mtc::MtcMessage;
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        let shared = editor::Shared {
            params: self.params.clone(),
            stats: self.stats.clone(),
            outputs: self.output_stats.clone(),
            cue_stats: self.cue_stats.clone(),
            readout: self.readout.clone(),
            cue_activity: self.cue_activity.clone(),
        };
        editor::create(shared, self.editor_state.clone())
    }

    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        // May be called again without deactivate(): start from scratch each time.
        self.shut_down();
        let Some(sample_rate) = usable_sample_rate(f64::from(buffer_config.sample_rate)) else {
            nice_error!(
                "refusing to activate at a sample rate of {} Hz: OSC Timecode runs at {MIN_SAMPLE_RATE} to \
                 {MAX_SAMPLE_RATE} Hz (no timecode is sent until the host activates it at such a rate)",
                buffer_config.sample_rate
            );
            self.readout.sample_rate_refused(Some(buffer_config.sample_rate));
            return false;
        };
        self.readout.sample_rate_refused(None);
        let offline = buffer_config.process_mode == ProcessMode::Offline;
        let render = match self.params.settings.read().map_or(OfflinePolicy::Silent, |s| s.offline) {
            _ if !offline => Render::Realtime,
            OfflinePolicy::Silent => Render::OfflineSilent,
            OfflinePolicy::Realtime => Render::OfflinePaced,
        };
        if let Ok(settings) = self.params.settings.read() {
            self.params.audio_outputs.store(settings.audio_outputs());
        }
        let settings = send_settings(&self.params);
        match self.send.as_mut() {
            Some(send) => send.reactivate(sample_rate, settings, render),
            None => self.send = Some(SendPolicy::new(sample_rate, settings, render)),
        }
        self.readout.activated(sample_rate, offline);
        let (producer, consumer) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        // The machine's own settings (interface, TTL, advertising), read once per activation so a
        // bad value is said once.
        let machine = settings::machine::Machine::load();
        let advertise = machine.advertise;
        match network::spawn_with(consumer, self.params.clone(), self.stats.clone(), self.readout.clone(), move || {
            machine
        }) {
            Ok(thread) => self.network = Some(thread),
            // Audio keeps flowing; frames pile up in the ring and are counted as dropped.
            Err(e) => nice_error!("could not start the timecode network thread: {e}"),
        }
        self.producer = Some(producer);
        let (cue_producer, cue_consumer) = rtrb::RingBuffer::new(CUE_QUEUE_CAPACITY);
        let (returns, returned) = rtrb::RingBuffer::new(cues::automation::RETURN_CAPACITY);
        self.param_returns = Some(returns);
        match cues::receiver::spawn(
            cue_producer,
            self.params.clone(),
            self.cue_stats.clone(),
            self.cue_activity.clone(),
            cues::OutputCounters { outputs: self.output_stats.clone(), network: self.stats.clone() },
            cues::receiver::ParamSide { setter: context.remote_param_setter(), returns: Some(returned) },
        ) {
            Ok(thread) => self.cue_thread = Some(thread),
            // Timecode keeps flowing; no cues arrive.
            Err(e) => nice_error!("could not start the cue input thread: {e}"),
        }
        self.advertising = discovery::spawn(advertise, self.params.clone(), self.cue_activity.clone());
        let mut cue_player = CuePlayer::new(cue_consumer, self.cue_stats.clone());
        cue_player.owe(std::mem::take(&mut self.owed_note_offs));
        self.cue_player = Some(cue_player);
        true
    }

    fn reset(&mut self) {
        if let Some(send) = self.send.as_mut() {
            send.resync();
        }
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        // Audio passes through (the wrapper already copied input to output), except on channels
        // that carry LTC (`outputs::ltc`).
        let Self {
            params,
            stats,
            send,
            producer,
            cue_player,
            param_returns,
            readout,
            ltc,
            mtc,
            mtc_batch,
            output_stats,
            ..
        } = self;
        let (Some(send), Some(producer), Some(cue_player), Some(returns)) =
            (send.as_mut(), producer.as_mut(), cue_player.as_mut(), param_returns.as_mut())
        else {
            return ProcessStatus::KeepAlive;
        };
        let transport = context.transport();
        let block = send.begin_block(send_settings(params), host_block(transport, buffer.samples()));
        readout.block_sample_rate(block.sample_rate_refused().then_some(transport.sample_rate));
        let (sample_rate, block_len, paced, has_position) =
            (block.sample_rate(), block.len(), block.paced(), block.has_position());
        // Read once per block (the vDSO clock, no system call): frames are due from it, and the
        // network thread wakes just after the next block's start predicted from it.
        let block_start = Instant::now();
        cue_player.begin_block();
        let last_event = block.frames(|PlannedFrame { event, queue }| {
            if event.starts {
                cue_player.frame_start(event.offset);
            }
            if queue && producer.push(FrameMessage { event, block_start, sample_rate, block_len, paced }).is_err() {
                stats.queue_full.fetch_add(1, Ordering::Relaxed);
            }
        });
        let outputs = params.audio_outputs.load();
        let output = params.output.value();
        ltc.render(outputs.into(), output, send.clock(), block_len as usize, buffer.as_slice(), output_stats);
        // After the block's frames are queued (see `Readout::block`).
        readout.block_timing(block_start, block_len, sample_rate);
        readout.block(has_position, last_event.as_ref(), host_rate(transport));
        let timing = BlockTiming { start: block_start, sample_rate, len: block_len, playing: transport.playing };
        // MTC and cues leave interleaved in time order, as CLAP wants a block's events.
        let plan = MtcPlan { enabled: outputs.mtc, half_rate: outputs.half_rate, output };
        mtc_batch.render(mtc, plan, send.clock(), output_stats);
        cue_player.run_block(timing, |timing, event| {
            send_mtc_until(mtc_batch, timing, output_stats, context);
            match event {
                CueOut::Param { param, value, ramp_ms } => set_param(context, returns, timing, param, value, ramp_ms),
                midi => note_event(timing, midi).is_some_and(|e| context.try_send_event(e).is_ok()),
            }
        });
        send_mtc_until(mtc_batch, u32::MAX, output_stats, context);
        // Timecode must keep flowing through silence: never let the host suspend us.
        ProcessStatus::KeepAlive
    }

    fn filter_state(state: &mut PluginState) {
        // A saved settings field that is not even JSON would be refused by nice-plug without a
        // word in release builds: replace it with the fallback settings, logging why.
        let _ = settings::filter_state(state);
    }

    fn deactivate(&mut self) {
        self.shut_down();
        self.readout.deactivated();
    }
}

impl Drop for OscTimecode {
    /// `[main-thread]` Note offs still owed cannot be sent any more: say so, with their number.
    fn drop(&mut self) {
        if let Some(mut player) = self.cue_player.take() {
            self.owed_note_offs.merge(player.abandon());
        }
        let owed = self.owed_note_offs.len();
        if owed > 0 {
            nice_warn!(
                "unloaded with {owed} cue note off(s) not sent (their notes were started by cues and \
                 the plugin was deactivated before they ended): those notes may still sound"
            );
        }
    }
}

/// `[audio-thread]` The parameters' send settings for this block.
fn send_settings(params: &TimecodeParams) -> SendSettings {
    let rate = params.rate.value().rate();
    SendSettings {
        rate,
        offset_frames: offset_frames(params.offset.value() as u32, rate),
        output: params.output.value(),
        send_stopped: params.send_stopped.value(),
    }
}

/// `[audio-thread]` The host's transport for a block of `len` samples.
fn host_block(transport: &Transport, len: usize) -> HostBlock {
    HostBlock {
        sample_rate: f64::from(transport.sample_rate),
        playing: transport.playing,
        position: transport.pos_samples(),
        loop_range: transport.loop_range_samples(),
        len: len as u32,
    }
}

/// `[audio-thread]` The host's project frame rate, if it reports one.
fn host_rate(transport: &Transport) -> Option<HostRate> {
    transport.frame_rate.map(|r| HostRate { fps: r.frames_per_second, pull_down: r.pull_down, drop: r.drop_frame })
}

/// `[audio-thread]` Hands the block's MTC messages up to offset `until` to the host.
fn send_mtc_until(
    batch: &mut MtcBatch,
    until: u32,
    stats: &OutputStats,
    context: &mut impl ProcessContext<OscTimecode>,
) {
    batch.send_until(until, stats, |timing, message| {
        context.try_send_event(NoteEvent::MidiSysEx { timing, message }).is_ok()
    });
}

/// A cue's MIDI event as nice-plug's note event at `timing` samples into the block.
/// `[audio-thread]` A parameter cue at sample `timing` of this block: set here as one host
/// gesture at its sample (CLAP), or handed back to the cue thread (a ramp, or a format that cannot
/// begin a gesture on the audio thread: VST3). `false`: neither took it now (the host's output
/// event list or the ring is full): the player carries it to the next block.
fn set_param(
    context: &mut impl ProcessContext<OscTimecode>,
    returns: &mut rtrb::Producer<ParamDue>,
    timing: u32,
    param: ParamRef,
    value: Normalized,
    ramp_ms: RampMs,
) -> bool {
    let done = ramp_ms == RampMs::MIN
        && match context.set_parameter_normalized(timing, param.id(), value.get()) {
            Ok(()) => true,
            Err(RemoteParamError::QueueFull) => return false,
            // VST3, or no output events: the cue thread sets it.
            Err(_) => false,
        };
    // Set here, the cue thread still hears of it: a ramp of the parameter running there stops.
    returns.push(ParamDue { param, value, ramp_ms, done }).is_ok() || done
}

/// A MIDI event of the cue player as nice-plug's note event; `None` for a parameter change.
fn note_event(timing: u32, event: CueOut) -> Option<PluginNoteEvent<OscTimecode>> {
    Some(match event {
        CueOut::Param { .. } => return None,
        CueOut::NoteOn { channel, key, velocity } => NoteEvent::NoteOn {
            timing,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(channel),
            key: Key::Number(key),
            velocity: f32::from(velocity) / 127.0,
        },
        CueOut::NoteOff { channel, key } => NoteEvent::NoteOff {
            timing,
            voice_id: VoiceID::Wildcard,
            channel: Channel::Number(channel),
            key: Key::Number(key),
            velocity: 0.0,
        },
        CueOut::Cc { channel, number, value } => {
            NoteEvent::MidiCC { timing, channel, cc: number, value: f32::from(value) / 127.0 }
        }
        CueOut::Program { channel, program } => NoteEvent::MidiProgramChange { timing, channel, program },
    })
}

impl ClapPlugin for OscTimecode {
    const CLAP_ID: &'static str = "org.osc-timecode.osc-timecode";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Sends the host transport as SMPTE timecode over OSC");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] =
        &[ClapFeature::AudioEffect, ClapFeature::Utility, ClapFeature::Stereo];
}

impl Vst3Plugin for OscTimecode {
    const VST3_CLASS_ID: [u8; 16] = *b"OscTimecodeMastr";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Fx, Vst3SubCategory::Tools];
}

nice_export_clap!(OscTimecode);
nice_export_vst3!(OscTimecode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_frozen() {
        assert_eq!(OscTimecode::NAME, "OSC Timecode");
        assert_eq!(OscTimecode::CLAP_ID, "org.osc-timecode.osc-timecode");
        assert_eq!(&OscTimecode::VST3_CLASS_ID, b"OscTimecodeMastr");
    }
}
