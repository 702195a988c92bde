//! `--ltc wav:FILE`: LTC written into a Broadcast Wave file exactly as a device playing it in
//! real time would play it: stream sample 0 plays when the output starts, sample `k` at
//! `t0 + k / sample_rate`, and every [`BLOCK`] the samples that have played since are rendered
//! from the chase's latest timeline ([`LtcRenderer`]). The file's `bext` TimeReference is the
//! timecode position of its first sample ([`LtcRenderer::time_reference`]), so a DAW places it
//! at its timecode. The tested path of the LTC output: everything but the device is the same.
//!
//! A write error (a full disk) stops the file with one line; the command goes on.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::ltc::{BwfWriter, LtcRenderer, WavSamples};
use super::spec::LtcSpec;
use super::{Running, Say, Threaded, Timeline, Watch, now_ns};

/// How often the samples played meanwhile are rendered and written.
pub const BLOCK: Duration = Duration::from_millis(10);

/// Samples rendered per call at most (the buffer's size, allocated once).
const CHUNK: usize = 8192;

/// Creates the file and starts writing LTC into it. Errors: the file cannot be created, the
/// level or sample rate is one LTC refuses.
pub fn start(
    ltc: &LtcSpec,
    path: &Path,
    half_rate: bool,
    timeline: &Arc<Timeline>,
    say: &Say,
) -> anyhow::Result<Box<dyn Running>> {
    let name = format!("LTC to wav:{}", path.display());
    let t0 = now_ns();
    let renderer =
        LtcRenderer::new(ltc.sample_rate, ltc.level.dbfs(), half_rate, ltc.idle, t0).with_context(|| name.clone())?;
    let mut writer = BwfWriter::create(path, ltc.sample_rate, WavSamples::Float32)?;
    writer.set_description(&description(t0));
    let file = File {
        renderer,
        writer,
        timeline: Arc::clone(timeline),
        watch: Watch::new(name.clone(), half_rate, Arc::clone(say)),
        say: Arc::clone(say),
        name: name.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("ltc-wav".into())
        .spawn(move || file.run())
        .with_context(|| format!("{name}: could not start its thread"))?;
    Ok(Threaded::boxed(name, thread))
}

/// The bext Description: what the file is, and the wall time its first sample stands for, so
/// its words can be placed on the master's clock afterwards (the benchmark does).
pub fn description(t0: i128) -> String {
    format!("LTC from osc-timecode; sample 0 plays at {t0} ns since the Unix epoch")
}

/// The file's thread. `[output-thread]`.
struct File {
    renderer: LtcRenderer,
    writer: BwfWriter,
    timeline: Arc<Timeline>,
    /// Says refused rates and a lost master.
    watch: Watch,
    say: Say,
    name: String,
}

impl File {
    fn run(mut self) -> anyhow::Result<()> {
        let mut buffer = vec![0f32; CHUNK];
        loop {
            let finished = self.timeline.finished();
            let snap = self.timeline.latest();
            // A refused rate renders silence: the watch says so, once.
            self.watch.look(&snap);
            let due = self.renderer.sample_of(now_ns());
            while self.renderer.position() < due {
                let n = usize::try_from(due - self.renderer.position()).unwrap_or(CHUNK).min(CHUNK);
                let out = &mut buffer[..n];
                // A refused rate renders silence (said by the watch above).
                let _ = self.renderer.render(&snap, out, |_| {});
                if let Err(e) = self.writer.write(out) {
                    (self.say)(format!("{}: {e:#}; the file ends here, the rest goes on", self.name));
                    return self.finish();
                }
            }
            if finished {
                return self.finish();
            }
            self.timeline.sleep_until(now_ns() + i128::try_from(BLOCK.as_nanos()).unwrap_or(0), &snap);
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if let Some(reference) = self.renderer.time_reference() {
            self.writer.set_time_reference(reference);
        }
        self.writer.finish()
    }
}
