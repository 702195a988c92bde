//! `--ltc DEVICE`: LTC played by an audio device through cpal (ALSA on Linux, CoreAudio,
//! WASAPI), on one of its channels, silence on the others.
//!
//! The device is named as `osc-timecode outputs` lists it ([`AudioHost::list`]): its id (ALSA's
//! PCM name, `hw:CARD=PCH,DEV=0`) or its description, exactly or by a part of either that only
//! one device has; `default` is the system's default output.
//!
//! The stream runs at the device's default rate and sample format with all its channels. Its
//! callback takes the chase's latest timeline without waiting ([`Timeline::try_latest`]: the
//! previous one when the lock is busy), renders LTC into a mono buffer allocated before the
//! stream starts ([`LtcRenderer::render`], in pieces if the device asks for more) and
//! interleaves it: no allocation, lock, log or wait on the audio thread. The wall clock it reads
//! (`clock_gettime` through the vDSO on Linux) is the one call it makes.
//!
//! Timing: stream sample `k` plays at `t0 + k / rate`. `t0` comes from the first callback: the
//! wall time now plus the output latency cpal reports (playback − callback instant) is when that
//! buffer's first sample plays. The device's crystal drifts against the wall clock (tens of ppm:
//! a frame every few minutes), so `DeviceClock` keeps measuring: over each second of samples it
//! takes the earliest origin the callbacks saw (a callback can wake late, never early, so the
//! earliest is the least disturbed), moves its estimate half-way there (all the way after the
//! first second, which replaces the first callback's guess), and
//! [`LtcRenderer::steer_t0`] follows at word boundaries, a quarter bit per word at most. A drift
//! of d ppm leaves about d µs of lag; a wall-clock step is followed at that pace too.
//!
//! The device's trouble reaches the user through a watcher thread, one line each: a stream
//! error (the device unplugged) or a device that stops asking for samples for 2 seconds (a JACK
//! server gone) stops the output (the command goes on, [`Running::stop`] is `Ok`: it was
//! said), underruns are counted and said at most every 10 seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cpal::traits::{DeviceTrait as _, HostTrait as _, StreamTrait as _};
use cpal::{ErrorKind, FromSample, OutputCallbackInfo, SampleFormat, SizedSample, StreamConfig};
use osc_timecode_core::chase::ChaseSnapshot;

use super::ltc::LtcRenderer;
use super::spec::LtcSpec;
use super::{Running, Say, Timeline, Watch, now_ns};

/// Nanoseconds per second.
const NANOS: i128 = 1_000_000_000;

/// Frames the mono scratch buffer holds: a callback asking for more is rendered in pieces.
const SCRATCH_FRAMES: usize = 8192;

/// How long cpal may take to open the device.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Underruns are said at most this often.
const XRUN_EVERY: Duration = Duration::from_secs(10);

/// A device that has asked for no samples this long has stopped (a JACK server gone, a device
/// unplugged without an error): said, and the output ends.
const STALL: Duration = Duration::from_secs(2);

/// How often the watcher looks at the stream when nothing wakes it.
const WATCH: Duration = Duration::from_millis(100);

/// One of the audio systems cpal reaches here (ALSA; CoreAudio; WASAPI) and its output devices.
pub struct AudioHost {
    /// The host's name ("ALSA").
    pub name: &'static str,
    /// Its output devices, or why none could be asked for.
    pub devices: Result<Vec<AudioDevice>, String>,
}

/// An audio output device.
pub struct AudioDevice {
    /// What `--ltc` takes: the host's id for it (ALSA's PCM name). [main-thread].
    pub id: String,
    /// Its description's first line ("HDA Intel PCH, ALC892 Analog"). [main-thread].
    pub name: String,
    /// The host's default output. [main-thread].
    pub is_default: bool,
    /// The device. [main-thread].
    device: cpal::Device,
}

impl std::fmt::Debug for AudioDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioDevice").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

/// A device's default output: what the LTC stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Channels.
    pub channels: u16,
    /// Samples per second per channel, Hz.
    pub sample_rate: u32,
    /// The sample format.
    pub format: SampleFormat,
}

impl AudioHost {
    /// Every host cpal has here, each with its output devices (the default one first if it is
    /// not listed otherwise). Opens no device.
    pub fn list() -> Vec<Self> {
        cpal::available_hosts()
            .into_iter()
            .map(|id| {
                let name = id.name();
                let devices = cpal::host_from_id(id).map_err(|e| e.to_string()).and_then(|host| {
                    let default = host.default_output_device().and_then(|d| d.id().ok());
                    let mut devices: Vec<AudioDevice> = host
                        .output_devices()
                        .map_err(|e| e.to_string())?
                        .filter_map(|device| {
                            let id = device.id().ok()?;
                            let description = device.description().ok();
                            let name = description.as_ref().map_or_else(|| id.id().to_owned(), |d| d.name().to_owned());
                            Some(AudioDevice {
                                is_default: default.as_ref() == Some(&id),
                                id: id.id().to_owned(),
                                name,
                                device,
                            })
                        })
                        .collect();
                    if !devices.iter().any(|d| d.is_default)
                        && let Some(device) = host.default_output_device()
                        && let Ok(id) = device.id()
                    {
                        let name = device.description().map_or_else(|_| id.id().to_owned(), |d| d.name().to_owned());
                        devices.insert(0, AudioDevice { id: id.id().to_owned(), name, is_default: true, device });
                    }
                    Ok(devices)
                });
                Self { name, devices }
            })
            .collect()
    }
}

impl AudioDevice {
    /// Its default output configuration (opens the device briefly).
    pub fn config(&self) -> Result<DeviceConfig, cpal::Error> {
        let c = self.device.default_output_config()?;
        Ok(DeviceConfig { channels: c.channels(), sample_rate: c.sample_rate(), format: c.sample_format() })
    }
}

/// Why a name picked no device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// No device has that id, description or part of one.
    Nothing,
    /// Several devices match that part of a name: their ids.
    Several(Vec<String>),
}

/// The device `wanted` names among `(id, description)` pairs: an exact id, else an exact
/// description only one device has, else a part of an id or description (ignoring case) that
/// only one device has.
pub fn pick(wanted: &str, devices: &[(&str, &str)]) -> Result<usize, Pick> {
    if let Some(i) = devices.iter().position(|(id, _)| *id == wanted) {
        return Ok(i);
    }
    let exact: Vec<usize> = (0..devices.len()).filter(|&i| devices[i].1 == wanted).collect();
    if let [i] = exact[..] {
        return Ok(i);
    }
    let lower = wanted.to_lowercase();
    let part: Vec<usize> = (0..devices.len())
        .filter(|&i| devices[i].0.to_lowercase().contains(&lower) || devices[i].1.to_lowercase().contains(&lower))
        .collect();
    match part[..] {
        [i] => Ok(i),
        [] => Err(Pick::Nothing),
        _ => Err(Pick::Several(part.iter().map(|&i| devices[i].0.to_owned()).collect())),
    }
}

/// Finds the output device `wanted` names (`default`: the first host's default output).
fn find(wanted: &str) -> anyhow::Result<AudioDevice> {
    let hosts = AudioHost::list();
    let mut devices: Vec<AudioDevice> = Vec::new();
    let mut troubles = Vec::new();
    for host in hosts {
        match host.devices {
            Ok(list) => devices.extend(list),
            Err(e) => troubles.push(format!("{}: {e}", host.name)),
        }
    }
    if devices.is_empty() {
        let why = if troubles.is_empty() { String::new() } else { format!("; {}", troubles.join("; ")) };
        anyhow::bail!("no audio output device named {wanted:?}: no audio output devices (no sound card?){why}");
    }
    if wanted == "default"
        && let Some(i) = devices.iter().position(|d| d.is_default)
    {
        return Ok(devices.swap_remove(i));
    }
    let names: Vec<(&str, &str)> = devices.iter().map(|d| (d.id.as_str(), d.name.as_str())).collect();
    match pick(wanted, &names) {
        Ok(i) => Ok(devices.swap_remove(i)),
        Err(Pick::Nothing) if !sound_cards_present() => anyhow::bail!(
            "no audio output device named {wanted:?} (osc-timecode outputs lists them; no sound card: /dev/snd is missing)"
        ),
        Err(Pick::Nothing) => {
            anyhow::bail!("no audio output device named {wanted:?} (osc-timecode outputs lists them)")
        }
        Err(Pick::Several(ids)) => {
            anyhow::bail!("{wanted:?} names several audio output devices: {}; name one of them", ids.join(", "))
        }
    }
}

/// Whether the system has sound cards at all (Linux: `/dev/snd`); elsewhere assumed.
pub fn sound_cards_present() -> bool {
    !cfg!(target_os = "linux") || std::path::Path::new("/dev/snd").exists()
}

/// Starts LTC on the audio device `name`. Errors: no such device (or several), a channel beyond
/// its count, a sample format cpal cannot convert to, the device refusing the stream.
pub fn start(
    ltc: &LtcSpec,
    name: &str,
    half_rate: bool,
    timeline: &Arc<Timeline>,
    say: &Say,
) -> anyhow::Result<Box<dyn Running>> {
    let device = find(name)?;
    let label = format!("LTC to {}", device.id);
    let config = device.config().with_context(|| {
        let hint = if sound_cards_present() { "" } else { " (no sound card: /dev/snd is missing)" };
        format!("{label}: could not open the device{hint}")
    })?;
    if usize::from(ltc.channel.get()) > usize::from(config.channels) {
        anyhow::bail!(
            "{label}: LTC channel {} is beyond the device's {} channel{}",
            ltc.channel.get(),
            config.channels,
            if config.channels == 1 { "" } else { "s" }
        );
    }
    // t0 is set by the first callback (DeviceClock), before any sample is rendered.
    let renderer = LtcRenderer::new(config.sample_rate, ltc.level.dbfs(), half_rate, ltc.idle, 0)
        .with_context(|| label.clone())?;
    let shared = Arc::new(Shared { xruns: AtomicU64::new(0), buffers: AtomicU64::new(0) });
    let (fail_tx, fail_rx) = sync_channel::<cpal::Error>(1);
    let player = Player {
        shared: Arc::clone(&shared),
        renderer,
        timeline: Arc::clone(timeline),
        snap: timeline.latest(),
        scratch: vec![0.0; SCRATCH_FRAMES],
        channels: usize::from(config.channels.max(1)),
        channel: ltc.channel.index(),
        clock: DeviceClock::new(config.sample_rate),
    };
    let stream_config = StreamConfig {
        channels: config.channels,
        sample_rate: config.sample_rate,
        buffer_size: cpal::BufferSize::Default,
    };
    let errors = ErrorSink { shared: Arc::clone(&shared), fail: fail_tx };
    let stream = build(&device.device, stream_config, config.format, player, errors)
        .with_context(|| format!("{label}: could not open an output stream"))?;
    stream.play().with_context(|| format!("{label}: could not start the output stream"))?;
    let watcher = Watcher {
        name: label.clone(),
        stream,
        shared,
        fail: fail_rx,
        timeline: Arc::clone(timeline),
        watch: Watch::new(label.clone(), half_rate, Arc::clone(say)),
        say: Arc::clone(say),
    };
    let thread = std::thread::Builder::new()
        .name("ltc-device".into())
        .spawn(move || watcher.run())
        .with_context(|| format!("{label}: could not start its thread"))?;
    Ok(Box::new(DeviceOut { name: label, thread: Some(thread) }))
}

/// Builds the stream in the device's sample format, converting from f32.
fn build(
    device: &cpal::Device,
    config: StreamConfig,
    format: SampleFormat,
    player: Player,
    errors: ErrorSink,
) -> anyhow::Result<cpal::Stream> {
    fn typed<T: SizedSample + FromSample<f32> + 'static>(
        device: &cpal::Device,
        config: StreamConfig,
        mut player: Player,
        mut errors: ErrorSink,
    ) -> Result<cpal::Stream, cpal::Error> {
        device.build_output_stream::<T, _, _>(
            config,
            move |data: &mut [T], info: &OutputCallbackInfo| player.fill(data, info),
            move |e| errors.report(e),
            Some(OPEN_TIMEOUT),
        )
    }
    let stream = match format {
        SampleFormat::F32 => typed::<f32>(device, config, player, errors),
        SampleFormat::F64 => typed::<f64>(device, config, player, errors),
        SampleFormat::I8 => typed::<i8>(device, config, player, errors),
        SampleFormat::I16 => typed::<i16>(device, config, player, errors),
        SampleFormat::I24 => typed::<cpal::I24>(device, config, player, errors),
        SampleFormat::I32 => typed::<i32>(device, config, player, errors),
        SampleFormat::I64 => typed::<i64>(device, config, player, errors),
        SampleFormat::U8 => typed::<u8>(device, config, player, errors),
        SampleFormat::U16 => typed::<u16>(device, config, player, errors),
        SampleFormat::U24 => typed::<cpal::U24>(device, config, player, errors),
        SampleFormat::U32 => typed::<u32>(device, config, player, errors),
        SampleFormat::U64 => typed::<u64>(device, config, player, errors),
        other => anyhow::bail!("its sample format {other} cannot carry LTC"),
    };
    Ok(stream?)
}

/// What the stream's callbacks tell the watcher. `[thread-safe]`.
struct Shared {
    /// Underruns so far. `[thread-safe]`.
    xruns: AtomicU64,
    /// Buffers filled so far: a device that stops asking (gone without an error) is seen by
    /// the watcher when this stands still for [`STALL`]. `[thread-safe]`.
    buffers: AtomicU64,
}

/// The stream's error callback (cpal's audio thread on ALSA): counts underruns, hands the first
/// fatal error to the watcher. No allocation: a bounded channel's `try_send`.
struct ErrorSink {
    /// Counters shared with the watcher. `[thread-safe]`.
    shared: Arc<Shared>,
    /// The fatal error, once. `[audio-thread]` sends.
    fail: SyncSender<cpal::Error>,
}

impl ErrorSink {
    fn report(&mut self, e: cpal::Error) {
        match e.kind() {
            ErrorKind::Xrun => {
                self.shared.xruns.fetch_add(1, Ordering::Relaxed);
            }
            // Rerouted to the new default device, or no real-time priority: it plays on.
            ErrorKind::DeviceChanged | ErrorKind::RealtimeDenied => {}
            _ => {
                let _ = self.fail.try_send(e);
            }
        }
    }
}

/// The callback's state, moved into the stream. `[audio-thread]`.
struct Player {
    /// Counters for the watcher. `[thread-safe]`.
    shared: Arc<Shared>,
    /// LTC for the stream. `[audio-thread]`.
    renderer: LtcRenderer,
    /// The chase's timeline. `[thread-safe]`, read with `try_latest` only.
    timeline: Arc<Timeline>,
    /// The last snapshot taken, kept when the lock is busy. `[audio-thread]`.
    snap: ChaseSnapshot,
    /// Mono samples rendered, [`SCRATCH_FRAMES`] long, allocated before the stream starts.
    /// `[audio-thread]`.
    scratch: Vec<f32>,
    /// The stream's channels. `[audio-thread]`.
    channels: usize,
    /// LTC's channel, 0-based, below `channels`. `[audio-thread]`.
    channel: usize,
    /// The device clock against the wall clock. `[audio-thread]`.
    clock: DeviceClock,
}

impl Player {
    /// One buffer: `data` interleaved, its first frame playing at the stream's position.
    fn fill<T: SizedSample + FromSample<f32>>(&mut self, data: &mut [T], info: &OutputCallbackInfo) {
        self.shared.buffers.fetch_add(1, Ordering::Relaxed);
        let stamp = info.timestamp();
        let latency = stamp.playback.saturating_duration_since(stamp.callback).as_nanos();
        let plays_at = now_ns().saturating_add(i128::try_from(latency).unwrap_or(0));
        if let Some(origin) = self.clock.observe(plays_at, self.renderer.position()) {
            self.renderer.steer_t0(origin);
        }
        if let Some(snap) = self.timeline.try_latest() {
            self.snap = snap;
        }
        let silence = T::from_sample(0.0f32);
        for frames in data.chunks_mut(self.scratch.len() * self.channels) {
            let n = frames.len() / self.channels;
            let mono = &mut self.scratch[..n];
            // A rate LTC refuses renders silence; the watcher says it.
            let _ = self.renderer.render(&self.snap, mono, |_| {});
            for (frame, sample) in frames.chunks_exact_mut(self.channels).zip(mono.iter()) {
                frame.fill(silence);
                frame[self.channel] = T::from_sample(*sample);
            }
        }
    }
}

/// Follows the device's sample clock against the wall clock: from each callback's "this buffer's
/// first sample `k` plays at wall time `w`" it estimates the stream's origin `w − k / rate`, and
/// once per second of samples moves its estimate half-way to the earliest origin seen in that
/// second (callbacks wake late, never early; the first second replaces the first callback's
/// guess outright). `[audio-thread]`, no allocation.
#[derive(Debug, Clone)]
struct DeviceClock {
    /// The stream's rate, Hz. `[audio-thread]`.
    sample_rate: u32,
    /// The origin estimated, ns since the epoch; `None` before the first callback.
    /// `[audio-thread]`.
    origin: Option<i128>,
    /// The earliest origin seen in the current second. `[audio-thread]`.
    earliest: Option<i128>,
    /// The stream sample where the current second ends. `[audio-thread]`.
    window_end: i64,
    /// Whether a whole second was seen: the first one replaces the first callback's guess
    /// outright, later ones move the estimate half-way. `[audio-thread]`.
    settled: bool,
}

impl DeviceClock {
    fn new(sample_rate: u32) -> Self {
        Self { sample_rate, origin: None, earliest: None, window_end: 0, settled: false }
    }

    /// A callback whose first sample `k` plays at `plays_at` ns: the origin to steer to, when it
    /// changes.
    fn observe(&mut self, plays_at: i128, k: i64) -> Option<i128> {
        let seen = plays_at - (i128::from(k) * NANOS).div_euclid(i128::from(self.sample_rate.max(1)));
        let Some(origin) = self.origin else {
            self.origin = Some(seen);
            self.window_end = k.saturating_add(i64::from(self.sample_rate));
            return Some(seen);
        };
        self.earliest = Some(self.earliest.map_or(seen, |e| e.min(seen)));
        if k < self.window_end {
            return None;
        }
        self.window_end = k.saturating_add(i64::from(self.sample_rate));
        let earliest = self.earliest.take()?;
        let moved = if self.settled { origin + (earliest - origin) / 2 } else { earliest };
        self.settled = true;
        self.origin = Some(moved);
        (moved != origin).then_some(moved)
    }
}

/// The running device output: the watcher thread owns the stream.
struct DeviceOut {
    /// "LTC to hw:CARD=PCH,DEV=0".
    name: String,
    /// The watcher.
    thread: Option<JoinHandle<()>>,
}

impl Running for DeviceOut {
    fn name(&self) -> &str {
        &self.name
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        thread.join().map_err(|_| anyhow::anyhow!("the LTC device's thread ended abnormally"))
    }
}

/// Watches the stream until the outputs end or the device fails; says its trouble.
/// `[output-thread]`.
struct Watcher {
    name: String,
    /// Playing while it is held; dropped (closed) when the watcher returns.
    stream: cpal::Stream,
    shared: Arc<Shared>,
    fail: Receiver<cpal::Error>,
    timeline: Arc<Timeline>,
    /// Says refused rates and a lost master.
    watch: Watch,
    say: Say,
}

impl Watcher {
    fn run(mut self) {
        let mut xruns_said = 0;
        let mut last_xrun_line: Option<Instant> = None;
        let mut buffers = (self.shared.buffers.load(Ordering::Relaxed), Instant::now());
        loop {
            let filled = self.shared.buffers.load(Ordering::Relaxed);
            if filled != buffers.0 {
                buffers = (filled, Instant::now());
            } else if buffers.1.elapsed() >= STALL {
                let never = if filled == 0 { "never asked" } else { "stopped asking" };
                (self.say)(format!("{}: the device {never} for samples; LTC stops here, the rest goes on", self.name));
                break;
            }
            match self.fail.try_recv() {
                Ok(e) => {
                    (self.say)(format!("{}: {e}; LTC stops here, the rest goes on", self.name));
                    break;
                }
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {}
            }
            let snap = self.timeline.latest();
            self.watch.look(&snap);
            let xruns = self.shared.xruns.load(Ordering::Relaxed);
            if xruns > xruns_said && last_xrun_line.is_none_or(|t| t.elapsed() >= XRUN_EVERY) {
                let n = xruns - xruns_said;
                (self.say)(format!(
                    "{}: {n} buffer underrun{} (clicks in the LTC)",
                    self.name,
                    if n == 1 { "" } else { "s" }
                ));
                xruns_said = xruns;
                last_xrun_line = Some(Instant::now());
            }
            if self.timeline.finished() {
                break;
            }
            let wake = now_ns() + i128::try_from(WATCH.as_nanos()).unwrap_or(0);
            self.timeline.sleep_until(wake, &snap);
        }
        // Best effort: the stream closes when dropped anyway.
        let _ = self.stream.pause();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_picked_by_id_description_or_a_part_only_it_has() {
        let devices = [
            ("default", "Default Audio Device"),
            ("hw:CARD=PCH,DEV=0", "HDA Intel PCH, ALC892 Analog"),
            ("plughw:CARD=PCH,DEV=0", "HDA Intel PCH, ALC892 Analog"),
            ("hw:CARD=USB,DEV=0", "Scarlett 2i2 USB, USB Audio"),
        ];
        assert_eq!(pick("hw:CARD=PCH,DEV=0", &devices), Ok(1), "an exact id, though others contain it");
        assert_eq!(pick("scarlett", &devices), Ok(3), "a part, ignoring case");
        assert_eq!(pick("Default Audio Device", &devices), Ok(0));
        assert_eq!(
            pick("HDA Intel PCH, ALC892 Analog", &devices),
            Err(Pick::Several(vec!["hw:CARD=PCH,DEV=0".into(), "plughw:CARD=PCH,DEV=0".into()])),
            "a description two devices share names neither"
        );
        assert_eq!(pick("nosuchdevice", &devices), Err(Pick::Nothing));
        assert_eq!(pick("x", &[]), Err(Pick::Nothing));
    }

    /// A device clock 80 ppm fast against the wall clock, callbacks of 480 samples waking 0-2 ms
    /// late (a fixed-seed generator): after 30 s the origin steered to is within 0.2 ms of the
    /// true one.
    #[test]
    fn the_device_clock_follows_drift_through_late_callbacks() {
        let sr = 48_000u32;
        let true_origin = 1_700_000_000 * NANOS;
        let mut clock = DeviceClock::new(sr);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut steered = None;
        for callback in 0..3_000i64 {
            let k = callback * 480;
            // The device plays sample k at true_origin + k / (sr * (1 + 80e-6)).
            let plays = true_origin + i128::from(k) * NANOS * 1_000_000 / (i128::from(sr) * 1_000_080);
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let late = i128::from(seed % 2_000_000);
            if let Some(origin) = clock.observe(plays + late, k) {
                steered = Some((origin, plays - i128::from(k) * NANOS / i128::from(sr)));
            }
        }
        let (origin, truth) = steered.expect("steered");
        assert!((origin - truth).abs() < 200_000, "origin {origin} is {} ns from {truth}", origin - truth);
    }
}
