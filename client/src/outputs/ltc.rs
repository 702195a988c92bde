//! LTC re-generated from the chased timeline (issue 17): [`LtcRenderer`] turns the master's
//! timeline ([`ChaseSnapshot`]) into LTC audio for a sample stream, and [`BwfWriter`] puts that
//! stream in a WAV file with a Broadcast Wave `bext` chunk, so a DAW places it at its timecode.
//!
//! The stream's sample `k` plays at wall time `t0 + k / sample_rate` (ns since the epoch, the
//! chase's clock). Frame `f`'s word starts at the stream sample where the master's frame `f`
//! starts, `round((start_of(f) − t0) · sample_rate / 10⁹)`, and lasts until the next word's
//! start: words are back to back, each as long as the master's frame in this stream's samples,
//! so they never drift from the master's clock however long it runs (integer arithmetic
//! throughout; the words themselves come from [`LtcWriter::fill_word`]).
//!
//! Breaks in the timeline (a new [`ChaseSnapshot::generation`]: jump, loop, discontinuity,
//! park) take effect at the next word boundary: the word under way always finishes. Then the
//! new timeline's first word whose start is not before that boundary (and not before the
//! moment the new timeline is heard, [`ChaseSnapshot::since`]) follows, silence filling any gap
//! shorter than a frame. A word whose start is at most half a bit before the boundary (the two
//! timelines disagree by a few samples: the master's frame starts are on its own samples)
//! starts on the boundary, that much shorter, rather than a frame later. While the master is
//! parked: silence, or its parked frame's word repeated ([`Idle::Still`]); while the chase is
//! locking, lost or waiting: silence ([`Rendered::lost`] tells the caller it is lost).
//!
//! Rates LTC cannot carry (50, 59.94, 60 without half rate) are refused with
//! [`osc_timecode_core::ltc::LtcError`].
//!
//! [`LtcRenderer::render`] allocates nothing, takes no lock and makes no system call: it can run
//! in an audio callback. [`BwfWriter`] is for a file thread.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use osc_timecode_core::FrameRate;
use osc_timecode_core::chase::{ChaseSnapshot, ChaseState};
use osc_timecode_core::ltc::{LtcError, LtcFormat, LtcWriter, WORD_BITS};
use osc_timecode_core::timecode::frame_start_sample;

/// Nanoseconds per second.
const NANOS: i128 = 1_000_000_000;

/// What the LTC output plays while the master is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idle {
    /// Nothing: the line is silent.
    #[default]
    Silence,
    /// The parked frame's word, repeated (receivers show the parked position).
    Still,
}

/// A word the renderer began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordStart {
    /// The master's frame (absolute count) whose word it is; in half-rate mode the first frame
    /// of the pair. [thread-safe] (`Copy`).
    pub frame: i64,
    /// The stream sample of the word's first sample. [thread-safe].
    pub sample: i64,
    /// The word's length, samples. [thread-safe].
    pub len: u32,
}

/// What one [`LtcRenderer::render`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rendered {
    /// Words begun in the block. [thread-safe] (`Copy`).
    pub words: u32,
    /// The chase is lost: the output is silent (after the word under way). [thread-safe].
    pub lost: bool,
}

/// The word under way: the frame's word laid over stream samples `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Word {
    /// The word's first frame. [audio-thread].
    frame: i64,
    /// Its first stream sample. [audio-thread].
    start: i64,
    /// The stream sample after its last. [audio-thread].
    end: i64,
}

/// LTC following a chased timeline, for one sample stream. `Copy`-sized state, no allocation.
#[derive(Debug, Clone)]
pub struct LtcRenderer {
    /// Samples per second of the stream. [audio-thread].
    sample_rate: u32,
    /// Peak level, dBFS (≤ 0). [audio-thread].
    level_dbfs: f32,
    /// Carry 50/59.94/60 as frame pairs. [audio-thread].
    half_rate: bool,
    /// What plays while parked. [audio-thread].
    idle: Idle,
    /// When stream sample 0 plays, ns since the epoch. [audio-thread].
    t0: i128,
    /// Where [`LtcRenderer::steer_t0`] asked `t0` to go; reached a little at each word
    /// boundary, ns since the epoch. [audio-thread].
    t0_target: i128,
    /// The writer for the rate of the timeline played (offset 0: frames are the master's
    /// absolute counts). [audio-thread].
    writer: LtcWriter,
    /// The next stream sample [`LtcRenderer::render`] writes. [audio-thread].
    position: i64,
    /// The word under way (or ahead, after a gap of silence). [audio-thread].
    word: Option<Word>,
    /// The timeline of the word under way. [audio-thread].
    timeline: Option<ChaseSnapshot>,
    /// The bext TimeReference of stream sample 0, once a word was played: its label position
    /// in samples since midnight. [audio-thread].
    time_reference: Option<u64>,
}

impl LtcRenderer {
    /// A renderer for a stream at `sample_rate` Hz whose sample 0 plays at `t0` ns (the chase's
    /// clock), with the square wave's peak at `level_dbfs`. Errors: the level or sample rate
    /// [`LtcWriter::new`] refuses.
    pub fn new(sample_rate: u32, level_dbfs: f32, half_rate: bool, idle: Idle, t0: i128) -> Result<Self, LtcError> {
        let writer = LtcWriter::new(LtcFormat::new(FrameRate::FPS_25, false)?, sample_rate, level_dbfs, 0)?;
        Ok(Self {
            sample_rate,
            level_dbfs,
            half_rate,
            idle,
            t0,
            t0_target: t0,
            writer,
            position: 0,
            word: None,
            timeline: None,
            time_reference: None,
        })
    }

    /// The next stream sample to be rendered (samples rendered so far).
    pub fn position(&self) -> i64 {
        self.position
    }

    /// The label position of stream sample 0 in samples since midnight (BWF's TimeReference),
    /// on the timeline of the first word played; `None` until a word was.
    pub fn time_reference(&self) -> Option<u64> {
        self.time_reference
    }

    /// Moves the stream's origin (when sample 0 plays) to `t0` ns, for a device whose clock
    /// drifts against the wall clock. While no word plays the move is immediate; while words
    /// play it is made at word boundaries, at most a quarter of a bit per word: the word under
    /// way is never cut, the next one is at most that much longer or shorter, and no frame is
    /// skipped or repeated. [audio-thread]: no allocation.
    pub fn steer_t0(&mut self, t0: i128) {
        self.t0_target = t0;
        if self.word.is_none() {
            self.t0 = t0;
        }
    }

    /// When stream sample 0 plays now, ns since the epoch (moving towards the last
    /// [`LtcRenderer::steer_t0`]).
    pub fn t0(&self) -> i128 {
        self.t0
    }

    /// At a word boundary (or in silence): one step of the origin towards its target.
    fn step_t0(&mut self) {
        let gap = self.t0_target - self.t0;
        if gap == 0 {
            return;
        }
        if self.word.is_none() {
            self.t0 = self.t0_target;
            return;
        }
        let format = self.writer.format();
        let rate = format.rate();
        let quarter_bit = NANOS * i128::from(rate.den()) * i128::from(format.carriage().step())
            / (i128::from(rate.num()) * 4 * WORD_BITS as i128);
        self.t0 += gap.clamp(-quarter_bit, quarter_bit);
    }

    /// The stream sample at which wall time `t` ns plays, rounded to the nearest (halves up).
    pub fn sample_of(&self, t: i128) -> i64 {
        let n = 2 * (t - self.t0).clamp(-(1 << 100), 1 << 100) * i128::from(self.sample_rate) + NANOS;
        let s = n.div_euclid(2 * NANOS);
        i64::try_from(s).unwrap_or(if s < 0 { i64::MIN } else { i64::MAX })
    }

    /// The first whole nanosecond at or after stream sample `k`.
    fn time_of(&self, k: i64) -> i128 {
        let n = i128::from(k) * NANOS;
        let d = i128::from(self.sample_rate);
        self.t0 + -(-n).div_euclid(d)
    }

    /// The stream sample where `frame` starts on `timeline`.
    fn start_sample(&self, timeline: &ChaseSnapshot, frame: i64) -> Option<i64> {
        Some(self.sample_of(timeline.start_of(frame)?))
    }

    /// Renders the next `out.len()` samples of the stream from `snap`, the chase's latest view;
    /// `on_word` hears each word begun. Refuses a rate LTC cannot carry (the block is silent
    /// then). [audio-thread]: no allocation, lock or system call; no panic.
    pub fn render(
        &mut self,
        snap: &ChaseSnapshot,
        out: &mut [f32],
        mut on_word: impl FnMut(WordStart),
    ) -> Result<Rendered, LtcError> {
        let mut report = Rendered { words: 0, lost: snap.state == ChaseState::Lost };
        let mut at = 0usize;
        let mut result = Ok(());
        while at < out.len() {
            let p = self.position + at as i64;
            let rest = out.len() - at;
            if let Some(w) = self.word
                && p < w.end
            {
                if p < w.start {
                    // A gap before the word: silence.
                    let n = rest.min(usize::try_from(w.start - p).unwrap_or(usize::MAX));
                    out[at..at + n].fill(0.0);
                    at += n;
                    continue;
                }
                let len = u32::try_from(w.end - w.start).unwrap_or(0);
                let offset = u32::try_from(p - w.start).unwrap_or(u32::MAX);
                let mut written = self.writer.fill_word(w.frame, len, offset, &mut out[at..]);
                if written == 0 {
                    // Not a word LTC can lay (never chosen so): silence for its span.
                    written = rest.min(usize::try_from(w.end - p).unwrap_or(usize::MAX));
                    out[at..at + written].fill(0.0);
                }
                at += written;
                continue;
            }
            self.step_t0();
            match self.next_word(snap, p) {
                Ok(Some((word, timeline))) => {
                    self.word = Some(word);
                    self.timeline = Some(timeline);
                    report.words = report.words.saturating_add(1);
                    on_word(WordStart {
                        frame: word.frame,
                        sample: word.start,
                        len: u32::try_from(word.end - word.start).unwrap_or(0),
                    });
                }
                Ok(None) => {
                    // Nothing to play until the next block: the timeline is not running.
                    self.word = None;
                    self.timeline = None;
                    out[at..].fill(0.0);
                    at = out.len();
                }
                Err(e) => {
                    self.word = None;
                    self.timeline = None;
                    out[at..].fill(0.0);
                    at = out.len();
                    result = Err(e);
                }
            }
        }
        self.position = self.position.saturating_add(out.len() as i64);
        result.map(|()| report)
    }

    /// The word to play from boundary `p` on: `None` when nothing should play now.
    fn next_word(&mut self, snap: &ChaseSnapshot, p: i64) -> Result<Option<(Word, ChaseSnapshot)>, LtcError> {
        // The timeline to follow: the latest view, unless it breaks with the one under way and
        // is heard only later, in which case the old one plays on until then.
        let mut timeline = *snap;
        if let (Some(old), Some(_)) = (self.timeline, self.word)
            && old.generation != snap.generation
            && old.playing()
        {
            let slack = self.slack(old.rate);
            if self.sample_of(snap.since) > p.saturating_add(slack) {
                timeline = old;
            }
        }
        let Some(rate) = timeline.rate else { return Ok(None) };
        if self.writer.format().rate() != rate {
            self.writer = LtcWriter::new(LtcFormat::new(rate, self.half_rate)?, self.sample_rate, self.level_dbfs, 0)?;
        }
        let carriage = self.writer.format().carriage();
        let step = carriage.step();
        let word = if timeline.playing() {
            let slack = self.slack(Some(rate));
            let continuing = self.word.is_some() && self.timeline.is_some_and(|t| t.generation == timeline.generation);
            // A new timeline plays from when it is heard, never earlier.
            let floor = if continuing { p } else { p.max(self.sample_of(timeline.since)) };
            let lowest = floor.saturating_sub(slack);
            let Some(heard) = timeline.frame_at(self.time_of(lowest)) else { return Ok(None) };
            // The first word (its first frame) starting at or after `lowest`.
            let mut g = carriage.carried_frame(heard).saturating_mul(step);
            if g < heard {
                g = g.saturating_add(step);
            }
            for _ in 0..3 {
                if self.start_sample(&timeline, g).is_some_and(|s| s >= lowest) {
                    break;
                }
                g = g.saturating_add(step);
            }
            let (Some(start), Some(end)) =
                (self.start_sample(&timeline, g), self.start_sample(&timeline, g.saturating_add(step)))
            else {
                return Ok(None);
            };
            // On the same timeline, a word a few samples after the boundary (the origin was
            // steered, or rounding) starts on it, that much longer: no gap inside the stream.
            let start = if continuing && start > p && start - p <= slack { p } else { start.max(p) };
            Word { frame: g, start, end }
        } else if let (Idle::Still, ChaseState::Stopped, Some(parked)) = (self.idle, timeline.state, timeline.parked) {
            let g = carriage.carried_frame(parked).saturating_mul(step);
            let len = frame_start_sample(g.saturating_add(step), self.sample_rate, rate)
                .saturating_sub(frame_start_sample(g, self.sample_rate, rate));
            Word { frame: g, start: p, end: p.saturating_add(len) }
        } else {
            return Ok(None);
        };
        if !(WORD_BITS as i64..=i64::from(u32::MAX)).contains(&(word.end - word.start)) {
            return Ok(None);
        }
        if self.time_reference.is_none() {
            self.time_reference = Some(self.position_of_sample_zero(&timeline, word, rate));
        }
        Ok(Some((word, timeline)))
    }

    /// Half a bit of a word at `rate`, in samples: how far a new timeline's word may start before
    /// the boundary and still be played (shortened) rather than skipped.
    fn slack(&self, rate: Option<FrameRate>) -> i64 {
        let Some(rate) = rate else { return 0 };
        let step = LtcFormat::new(rate, self.half_rate).map_or(1, |f| f.carriage().step());
        let word = i64::from(self.sample_rate) * i64::from(rate.den()) * step / i64::from(rate.num());
        word / (2 * WORD_BITS as i64)
    }

    /// The label position of stream sample 0 in samples since midnight, from the first word:
    /// its frame's position in the day minus the stream sample where that frame starts.
    fn position_of_sample_zero(&self, timeline: &ChaseSnapshot, word: Word, rate: FrameRate) -> u64 {
        let day = rate.frames_per_day();
        let day_samples = frame_start_sample(day, self.sample_rate, rate);
        let in_day = frame_start_sample(word.frame.rem_euclid(day), self.sample_rate, rate);
        let start =
            if timeline.playing() { self.start_sample(timeline, word.frame).unwrap_or(word.start) } else { word.start };
        let position = (i128::from(in_day) - i128::from(start)).rem_euclid(i128::from(day_samples.max(1)));
        u64::try_from(position).unwrap_or(0)
    }
}

/// How the samples are stored in the WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WavSamples {
    /// 32-bit IEEE float (format 3): the rendered samples exactly.
    #[default]
    Float32,
    /// 16-bit PCM (format 1), rounded and clipped to full scale: what every tool reads.
    Pcm16,
}

/// Bytes of the `bext` chunk's fixed part (EBU Tech 3285 v1: description 256, originator 32,
/// originator reference 32, date 10, time 8, time reference 8, version 2, UMID 64, loudness 10,
/// reserved 180), with an empty coding history.
const BEXT_LEN: u32 = 602;
/// Bytes of the `bext` Description field (ASCII, zero-padded).
const BEXT_DESCRIPTION: usize = 256;
/// Offset of TimeReference inside the `bext` chunk's data.
const BEXT_TIME_REFERENCE: u64 = 256 + 32 + 32 + 10 + 8;

/// A mono Broadcast Wave file being written: `fmt `, (`fact` for float,) `bext`, `data`. Sizes and
/// the TimeReference are patched in [`BwfWriter::finish`]: a file not finished has zero sizes.
///
/// Written by hand rather than with `hound`: hound writes no `bext` chunk, and the whole
/// format here is four fixed chunks.
#[derive(Debug)]
pub struct BwfWriter {
    /// The file, buffered. [main-thread] (the writer's thread).
    file: BufWriter<File>,
    /// Its path, for messages. [main-thread].
    path: PathBuf,
    /// Sample storage. [main-thread].
    samples: WavSamples,
    /// Samples written. [main-thread].
    written: u64,
    /// Samples since midnight of the first sample (bext TimeReference). [main-thread].
    time_reference: u64,
    /// File offset of the `fact` chunk's sample count (float only). [main-thread].
    fact_at: Option<u64>,
    /// File offset of the `bext` chunk's data. [main-thread].
    bext_at: u64,
    /// File offset of the `data` chunk's size. [main-thread].
    data_size_at: u64,
    /// The bext Description, if set ([`BwfWriter::set_description`]). [main-thread].
    description: Option<[u8; BEXT_DESCRIPTION]>,
}

impl BwfWriter {
    /// Creates (or truncates) `path` for mono samples at `sample_rate` Hz.
    pub fn create(path: &Path, sample_rate: u32, samples: WavSamples) -> anyhow::Result<Self> {
        let file = File::create(path).with_context(|| format!("could not create the LTC file {}", path.display()))?;
        let mut w = Self {
            file: BufWriter::new(file),
            path: path.to_owned(),
            samples,
            written: 0,
            time_reference: 0,
            fact_at: None,
            bext_at: 0,
            data_size_at: 0,
            description: None,
        };
        w.header(sample_rate).with_context(|| format!("could not write the LTC file {}", path.display()))?;
        Ok(w)
    }

    /// The chunks before the samples, sizes 0 until [`BwfWriter::finish`].
    fn header(&mut self, sample_rate: u32) -> std::io::Result<()> {
        let (tag, bits, fmt_len): (u16, u16, u32) = match self.samples {
            WavSamples::Float32 => (3, 32, 18),
            WavSamples::Pcm16 => (1, 16, 16),
        };
        let block = bits / 8;
        let f = &mut self.file;
        f.write_all(b"RIFF\0\0\0\0WAVE")?;
        f.write_all(b"fmt ")?;
        f.write_all(&fmt_len.to_le_bytes())?;
        f.write_all(&tag.to_le_bytes())?;
        f.write_all(&1u16.to_le_bytes())?;
        f.write_all(&sample_rate.to_le_bytes())?;
        f.write_all(&(sample_rate * u32::from(block)).to_le_bytes())?;
        f.write_all(&block.to_le_bytes())?;
        f.write_all(&bits.to_le_bytes())?;
        let mut at = 12 + 8 + u64::from(fmt_len);
        if fmt_len == 18 {
            f.write_all(&0u16.to_le_bytes())?;
            f.write_all(b"fact\x04\0\0\0\0\0\0\0")?;
            self.fact_at = Some(at + 8);
            at += 12;
        }
        let f = &mut self.file;
        f.write_all(b"bext")?;
        f.write_all(&BEXT_LEN.to_le_bytes())?;
        let mut bext = [0u8; BEXT_LEN as usize];
        let description = b"LTC from osc-timecode";
        bext[..description.len()].copy_from_slice(description);
        bext[256..256 + 12].copy_from_slice(b"osc-timecode");
        bext[BEXT_TIME_REFERENCE as usize + 8..BEXT_TIME_REFERENCE as usize + 10].copy_from_slice(&1u16.to_le_bytes());
        f.write_all(&bext)?;
        self.bext_at = at + 8;
        at += 8 + u64::from(BEXT_LEN);
        f.write_all(b"data\0\0\0\0")?;
        self.data_size_at = at + 4;
        Ok(())
    }

    /// Sets the bext Description (written at [`BwfWriter::finish`]): ASCII, cut at 256 bytes;
    /// anything else becomes `?`.
    pub fn set_description(&mut self, text: &str) {
        let mut field = [0u8; BEXT_DESCRIPTION];
        for (b, c) in field.iter_mut().zip(text.chars()) {
            *b = if c.is_ascii() && !c.is_ascii_control() { c as u8 } else { b'?' };
        }
        self.description = Some(field);
    }

    /// Sets the bext TimeReference: the first sample's position in samples since midnight
    /// ([`LtcRenderer::time_reference`]). Written at [`BwfWriter::finish`].
    pub fn set_time_reference(&mut self, samples: u64) {
        self.time_reference = samples;
    }

    /// Appends samples (full scale ±1).
    pub fn write(&mut self, samples: &[f32]) -> anyhow::Result<()> {
        let result = match self.samples {
            WavSamples::Float32 => samples.iter().try_for_each(|s| self.file.write_all(&s.to_le_bytes())),
            WavSamples::Pcm16 => samples.iter().try_for_each(|s| {
                let v = (f64::from(*s) * 32767.0).round().clamp(-32768.0, 32767.0) as i16;
                self.file.write_all(&v.to_le_bytes())
            }),
        };
        result.with_context(|| format!("could not write the LTC file {}", self.path.display()))?;
        self.written += samples.len() as u64;
        Ok(())
    }

    /// Samples written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Patches the sizes and the TimeReference, flushes and syncs the file. A file over 4 GiB of
    /// samples cannot be a RIFF file: an error.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let path = self.path.clone();
        self.patch().with_context(|| format!("could not finish the LTC file {}", path.display()))
    }

    fn patch(&mut self) -> anyhow::Result<()> {
        let bytes = self.written * if self.samples == WavSamples::Float32 { 4 } else { 2 };
        let data = u32::try_from(bytes).ok().filter(|b| *b <= u32::MAX - self.data_size_at as u32);
        let data = data.context("more than 4 GiB of samples: too long for a WAV file")?;
        let riff = self.data_size_at as u32 + data - 4;
        self.file.flush()?;
        let f = self.file.get_mut();
        let mut put = |at: u64, bytes: &[u8]| -> std::io::Result<()> {
            f.seek(SeekFrom::Start(at))?;
            f.write_all(bytes)
        };
        put(4, &riff.to_le_bytes())?;
        if let Some(at) = self.fact_at {
            put(at, &(self.written as u32).to_le_bytes())?;
        }
        put(self.bext_at + BEXT_TIME_REFERENCE, &self.time_reference.to_le_bytes())?;
        if let Some(description) = &self.description {
            put(self.bext_at, description)?;
        }
        put(self.data_size_at, &data.to_le_bytes())?;
        f.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i128 = 1_700_000_000 * NANOS;

    fn playing(rate: FrameRate, frame: i64, heard: i128, generation: u64) -> ChaseSnapshot {
        ChaseSnapshot {
            state: ChaseState::Locked,
            rate: Some(rate),
            reference: Some((frame, heard)),
            parked: None,
            generation,
            since: heard,
        }
    }

    fn parked(rate: FrameRate, frame: i64, since: i128, generation: u64) -> ChaseSnapshot {
        ChaseSnapshot {
            state: ChaseState::Stopped,
            rate: Some(rate),
            reference: None,
            parked: Some(frame),
            generation,
            since,
        }
    }

    /// Renders `total` samples in blocks of varying sizes, the snapshot for each block the last
    /// of `schedule` (visible from stream sample, snapshot) whose sample is at or before the
    /// block's start. Returns the samples and the words begun.
    fn run(r: &mut LtcRenderer, schedule: &[(i64, ChaseSnapshot)], total: usize) -> (Vec<f32>, Vec<WordStart>) {
        let mut out = vec![9.0f32; total];
        let mut words = Vec::new();
        let sizes = [480usize, 1, 97, 1024, 33, 999, 256];
        let (mut at, mut i) = (0, 0);
        while at < total {
            let n = sizes[i % sizes.len()].min(total - at);
            i += 1;
            let snap = schedule.iter().rev().find(|(from, _)| *from <= r.position()).map(|(_, s)| *s).unwrap();
            r.render(&snap, &mut out[at..at + n], |w| words.push(w)).unwrap();
            at += n;
        }
        (out, words)
    }

    /// Every word starts on the stream sample where the master's frame starts (exact), lasts
    /// until the next one, and the frames count on, at rates, sample rates and stream origins
    /// where frames are not whole samples; across a locate sent ahead of playback and a loop
    /// the word under way finishes and the new timeline's frame follows at once (the jumps are
    /// heard where the old frame ends, as a master sends them); then a stop: silence after the
    /// word under way.
    #[test]
    fn words_follow_the_master_s_frame_starts_across_jumps_loops_and_a_stop() {
        for (rate, half, sr, origin) in [
            (FrameRate::FPS_25, false, 48_000, 12_345_678i128),
            (FrameRate::FPS_29_97_DF, false, 48_000, 7),
            (FrameRate::FPS_23_976, false, 44_100, 999_999_999),
            (FrameRate::FPS_30, false, 96_000, 0),
            (FrameRate::FPS_59_94_DF, true, 48_000, 3_333_333),
            (FrameRate::FPS_50, true, 44_100, 1),
        ] {
            let what = format!("{rate} half_rate={half} at {sr} Hz");
            let step = if half { 2 } else { 1 };
            let t0 = T0 + origin;
            let mut r = LtcRenderer::new(sr, -18.0, half, Idle::Silence, t0).unwrap();
            let a = playing(rate, 90_000, T0, 1);
            // Locate to 180 000 heard where A's frame 90 100 starts, known 1.5 frames earlier.
            let jump_at = a.start_of(90_100).unwrap();
            let b = playing(rate, 180_000, jump_at, 2);
            // Loop back to 180 010 heard where B's frame 180 060 starts.
            let loop_at = b.start_of(180_060).unwrap();
            let c = playing(rate, 180_010, loop_at, 3);
            let stop_at = c.start_of(180_050).unwrap();
            let d = parked(rate, 180_050, stop_at, 4);
            let sample = |t: i128| r.sample_of(t);
            // Each break is known 2000 samples (the jump: 1.5 frames) before it is heard, more
            // than a block: the renderer sees it ahead and must wait for its time.
            let ahead = i64::from(sr) * i64::from(rate.den()) * 3 / (2 * i64::from(rate.num()));
            let schedule =
                [(0, a), (sample(jump_at) - ahead, b), (sample(loop_at) - 2000, c), (sample(stop_at) - 2000, d)];
            let total = usize::try_from(sample(stop_at) + i64::from(sr)).unwrap();
            let (out, words) = run(&mut r, &schedule, total);
            // The expected words: A from its first frame at or after sample 0, then B, C.
            let mut expected = Vec::new();
            for (tl, first, last) in [(a, 90_000i64, 90_100i64), (b, 180_000, 180_060), (c, 180_010, 180_050)] {
                for f in (first..last).step_by(step) {
                    let (s, e) =
                        (r.sample_of(tl.start_of(f).unwrap()), r.sample_of(tl.start_of(f + step as i64).unwrap()));
                    if s >= 0 {
                        expected.push(WordStart { frame: f, sample: s, len: (e - s) as u32 });
                    }
                }
            }
            assert_eq!(words, expected, "{what}");
            for pair in words.windows(2) {
                assert_eq!(pair[0].sample + i64::from(pair[0].len), pair[1].sample, "{what}: back to back");
            }
            let end = (words.last().unwrap().sample + i64::from(words.last().unwrap().len)) as usize;
            assert!(out[..end].iter().all(|s| s.abs() <= r.writer.amplitude() + 1e-6), "{what}");
            assert!(out[end..].iter().all(|s| *s == 0.0), "{what}: silent once stopped");
            assert!(out[words[0].sample as usize] > 0.0, "{what}: the first word rises on its first sample");
            // The first sample's position: the frame A starts at sample s is s samples later.
            let first = words[0];
            let day = rate.frames_per_day();
            let expect = frame_start_sample(first.frame.rem_euclid(day), sr, rate) - first.sample;
            assert_eq!(r.time_reference(), Some(expect as u64), "{what}");
        }
    }

    /// 29.97 DF at 48 kHz, the stream starting 23 h 53 min after the reference frame: the word
    /// starts are still exactly the master's frame starts (checked on every word), and the word
    /// of the frame a day after the reference starts where a day of frames ends.
    #[test]
    fn no_drift_over_a_day() {
        let rate = FrameRate::FPS_29_97_DF;
        let sr = 48_000;
        let day = rate.frames_per_day();
        let a = playing(rate, 0, T0, 1);
        let t0 = T0 + 85_980 * NANOS;
        let mut r = LtcRenderer::new(sr, -18.0, false, Idle::Silence, t0).unwrap();
        let mut block = vec![0.0f32; 48_000];
        let mut words = Vec::new();
        for _ in 0..430 {
            r.render(&a, &mut block, |w| words.push(w)).unwrap();
        }
        for pair in words.windows(2) {
            assert_eq!(pair[1].frame, pair[0].frame + 1);
            assert_eq!(pair[1].sample, pair[0].sample + i64::from(pair[0].len));
        }
        for w in &words {
            let exact = a.start_of(w.frame).unwrap() - t0;
            assert_eq!(i128::from(w.sample), (2 * exact * i128::from(sr) + NANOS).div_euclid(2 * NANOS), "{w:?}");
        }
        let whole_day = words.iter().find(|w| w.frame == day).expect("the stream reaches a day of frames");
        // A day of 29.97 is 2 589 408 frames of 1001/30000 s: 86 399.9136 s from T0.
        let exact = i128::from(day) * 1001 * NANOS / 30_000 - 85_980 * NANOS;
        assert_eq!(exact, 419_913_600_000);
        assert_eq!(whole_day.sample, 20_155_853, "419.9136 s at 48 kHz, rounded");
        assert_eq!(r.sample_of(t0 + exact), 20_155_853);
    }

    /// A device clock drifting against the wall clock: the origin steered 1 ms later, then
    /// 0.7 ms earlier, while words play. The words stay back to back with no frame skipped or
    /// repeated, none cut or separated by silence, each at most a quarter bit (plus two
    /// samples of rounding) from its frame's length; once the origin has arrived the words
    /// start exactly where the master's frames start on the new origin.
    #[test]
    fn a_steered_origin_moves_at_word_boundaries_without_a_gap_or_a_skip() {
        for (rate, half, sr) in [
            (FrameRate::FPS_25, false, 48_000),
            (FrameRate::FPS_29_97_DF, false, 44_100),
            (FrameRate::FPS_60, true, 48_000),
        ] {
            let what = format!("{rate} at {sr} Hz");
            let a = playing(rate, 1_000, T0, 1);
            let mut r = LtcRenderer::new(sr, -18.0, half, Idle::Silence, T0).unwrap();
            let mut out = vec![0.0f32; sr as usize * 6];
            let mut words = Vec::new();
            let (first, rest) = out.split_at_mut(sr as usize);
            r.render(&a, first, |w| words.push(w)).unwrap();
            r.steer_t0(T0 + 1_000_000);
            let (second, third) = rest.split_at_mut(2 * sr as usize);
            for block in second.chunks_mut(441) {
                r.render(&a, block, |w| words.push(w)).unwrap();
            }
            assert_eq!(r.t0(), T0 + 1_000_000, "{what}: arrived within two seconds");
            r.steer_t0(T0 + 300_000);
            for block in third.chunks_mut(512) {
                r.render(&a, block, |w| words.push(w)).unwrap();
            }
            assert_eq!(r.t0(), T0 + 300_000, "{what}: arrived back");
            let step = if half { 2 } else { 1 };
            let nominal = i64::from(sr) * i64::from(rate.den()) * step / i64::from(rate.num());
            let quarter_bit = nominal / (4 * WORD_BITS as i64);
            for pair in words.windows(2) {
                assert_eq!(pair[1].frame, pair[0].frame + step, "{what}: no frame skipped or repeated");
                assert_eq!(pair[1].sample, pair[0].sample + i64::from(pair[0].len), "{what}: back to back");
                assert!((i64::from(pair[0].len) - nominal).abs() <= quarter_bit + 2, "{what}: {pair:?}");
            }
            let start = words[0].sample as usize;
            assert!(out[start..].iter().all(|s| *s != 0.0), "{what}: no silence inside the stream");
            let last = words.last().unwrap();
            assert_eq!(last.sample, r.sample_of(a.start_of(last.frame).unwrap()), "{what}: on the new origin");
        }
    }

    #[test]
    fn parked_still_repeats_the_parked_word_lost_is_told_and_rates_are_refused() {
        let rate = FrameRate::FPS_25;
        let mut r = LtcRenderer::new(48_000, -18.0, false, Idle::Still, T0).unwrap();
        let mut out = vec![1.0f32; 48_000];
        let mut words = Vec::new();
        r.render(&parked(rate, 1234, T0, 1), &mut out, |w| words.push(w)).unwrap();
        assert_eq!(words.len(), 25);
        assert!(words.iter().all(|w| w.frame == 1234 && w.len == 1920));
        assert_eq!(words[24].sample, 24 * 1920);
        let lost = ChaseSnapshot { state: ChaseState::Lost, ..playing(rate, 0, T0, 2) };
        let got = r.render(&lost, &mut out, |_| panic!("no word while lost")).unwrap();
        assert_eq!(got, Rendered { words: 0, lost: true });
        assert!(out.iter().all(|s| *s == 0.0), "silence, the last word having ended on the block edge");
        // 50 fps without half rate: LTC's error, and silence.
        out.fill(1.0);
        let fifty = playing(FrameRate::FPS_50, 0, T0, 3);
        let err = r.render(&fifty, &mut out, |_| {}).unwrap_err();
        assert!(matches!(err, LtcError::RateNotCarried(_)), "{err}");
        assert!(out.iter().all(|s| *s == 0.0));
        assert!(LtcRenderer::new(48_000, 1.0, false, Idle::Silence, T0).is_err());
    }

    /// The file's chunks by a reader written for the test: sizes, format, TimeReference, data.
    #[test]
    fn bwf_file_round_trips() {
        for kind in [WavSamples::Float32, WavSamples::Pcm16] {
            let path = std::env::temp_dir().join(format!("osc-timecode-ltc-out-{}-{kind:?}.wav", std::process::id()));
            let mut w = BwfWriter::create(&path, 48_000, kind).unwrap();
            let samples: Vec<f32> = (0..1001).map(|i| (i as f32 / 1000.0) * 2.0 - 1.0).collect();
            w.write(&samples[..500]).unwrap();
            w.write(&samples[500..]).unwrap();
            w.set_time_reference(172_800_000);
            assert_eq!(w.written(), 1001);
            w.finish().unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            assert_eq!(&bytes[..4], b"RIFF");
            assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize, bytes.len() - 8);
            let mut at = 12;
            let mut chunks = std::collections::HashMap::new();
            while at + 8 <= bytes.len() {
                let id = String::from_utf8_lossy(&bytes[at..at + 4]).into_owned();
                let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
                chunks.insert(id, &bytes[at + 8..at + 8 + len]);
                at += 8 + len + len % 2;
            }
            assert_eq!(at, bytes.len());
            let bext = chunks["bext"];
            assert_eq!(u64::from_le_bytes(bext[338..346].try_into().unwrap()), 172_800_000);
            let data = chunks["data"];
            let fmt = chunks["fmt "];
            let tag = u16::from_le_bytes([fmt[0], fmt[1]]);
            match kind {
                WavSamples::Float32 => {
                    assert_eq!(tag, 3);
                    let back: Vec<f32> = data.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                    assert_eq!(back, samples);
                    assert_eq!(u32::from_le_bytes(chunks["fact"].try_into().unwrap()), 1001);
                }
                WavSamples::Pcm16 => {
                    assert_eq!(tag, 1);
                    let back: Vec<i16> = data.chunks(2).map(|c| i16::from_le_bytes(c.try_into().unwrap())).collect();
                    assert_eq!((back[0], back[500], back[1000]), (-32767, 0, 32767));
                }
            }
        }
        let err = BwfWriter::create(Path::new("/nonexistent-dir/x.wav"), 48_000, WavSamples::Pcm16).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent-dir/x.wav"), "{err:#}");
    }
}
