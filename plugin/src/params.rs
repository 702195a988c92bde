//! The plugin's parameters. Their string IDs are public API (saved in every project and
//! automation lane): `tests` in this file freezes them, and nice-plug derives the CLAP and VST3
//! numeric IDs from them.

use std::sync::{Arc, RwLock};

use nice_plug::prelude::*;
use osc_timecode_core::FrameRate;

use crate::outputs::AudioSwitches;
use crate::settings::Settings;

/// Frame rate choices, in the order of [`FrameRate::ALL`]. The `#[id]`s are what projects store
/// (frozen); the order only affects the host's automation scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum RateChoice {
    /// 24000/1001.
    #[id = "23.976"]
    #[name = "23.976 fps"]
    Fps23_976,
    /// 24.
    #[id = "24"]
    #[name = "24 fps"]
    Fps24,
    /// 25.
    #[id = "25"]
    #[name = "25 fps"]
    Fps25,
    /// 30000/1001 non-drop.
    #[id = "29.97"]
    #[name = "29.97 fps non-drop"]
    Fps29_97,
    /// 30000/1001 drop-frame.
    #[id = "29.97df"]
    #[name = "29.97 fps drop-frame"]
    Fps29_97Df,
    /// 30.
    #[id = "30"]
    #[name = "30 fps"]
    Fps30,
    /// 50.
    #[id = "50"]
    #[name = "50 fps"]
    Fps50,
    /// 60000/1001 non-drop.
    #[id = "59.94"]
    #[name = "59.94 fps non-drop"]
    Fps59_94,
    /// 60000/1001 drop-frame.
    #[id = "59.94df"]
    #[name = "59.94 fps drop-frame"]
    Fps59_94Df,
    /// 60.
    #[id = "60"]
    #[name = "60 fps"]
    Fps60,
}

impl RateChoice {
    /// The exact rate.
    pub fn rate(self) -> FrameRate {
        match self {
            Self::Fps23_976 => FrameRate::FPS_23_976,
            Self::Fps24 => FrameRate::FPS_24,
            Self::Fps25 => FrameRate::FPS_25,
            Self::Fps29_97 => FrameRate::FPS_29_97_NDF,
            Self::Fps29_97Df => FrameRate::FPS_29_97_DF,
            Self::Fps30 => FrameRate::FPS_30,
            Self::Fps50 => FrameRate::FPS_50,
            Self::Fps59_94 => FrameRate::FPS_59_94_NDF,
            Self::Fps59_94Df => FrameRate::FPS_59_94_DF,
            Self::Fps60 => FrameRate::FPS_60,
        }
    }
}

/// Parameters and persisted settings. Parameter values are atomics: the audio thread reads them
/// every block, the network thread reads "Send While Stopped".
#[derive(Params)]
pub struct TimecodeParams {
    /// Frame rate of the timecode sent. Default 25 fps.
    #[id = "rate"]
    pub rate: EnumParam<RateChoice>,
    /// Send timecode at all. Default on.
    #[id = "output"]
    pub output: BoolParam,
    /// Label shown at the project's sample 0, in whole seconds of label (0..=86399): the
    /// hour-per-song convention sets 01:00:00. Default 00:00:00.
    #[id = "offset"]
    pub offset: IntParam,
    /// While stopped, send the parked position when it changes and repeat it as keep-alive.
    /// Off: only the moment of stopping is sent. Default on.
    #[id = "send_stopped"]
    pub send_stopped: BoolParam,
    /// Cue Macro 1–8: automatable values 0–1 that exist to be driven by cues (`/macro/N VALUE`,
    /// set by the cue thread as host gestures) and linked by the user to any parameter with the
    /// host's own tools. The plugin itself does nothing with them. Default 0.
    #[id = "macro1"]
    pub macro1: FloatParam,
    /// Cue Macro 2 (see `macro1`).
    #[id = "macro2"]
    pub macro2: FloatParam,
    /// Cue Macro 3 (see `macro1`).
    #[id = "macro3"]
    pub macro3: FloatParam,
    /// Cue Macro 4 (see `macro1`).
    #[id = "macro4"]
    pub macro4: FloatParam,
    /// Cue Macro 5 (see `macro1`).
    #[id = "macro5"]
    pub macro5: FloatParam,
    /// Cue Macro 6 (see `macro1`).
    #[id = "macro6"]
    pub macro6: FloatParam,
    /// Cue Macro 7 (see `macro1`).
    #[id = "macro7"]
    pub macro7: FloatParam,
    /// Cue Macro 8 (see `macro1`).
    #[id = "macro8"]
    pub macro8: FloatParam,
    /// Targets, keep-alive, latency: `[main-thread]` and `[network-thread]`, never audio.
    #[persist = "settings"]
    pub settings: Arc<RwLock<Settings>>,
    /// The part of `settings` the audio thread needs (LTC, MTC, half rate), published without a
    /// lock: `[main-thread]` (activation) and `[network-thread]` (each settings refresh) store,
    /// the `[audio-thread]` loads.
    pub audio_outputs: AudioSwitches,
}

impl TimecodeParams {
    /// Parameters at their defaults with the given settings.
    pub fn new(settings: Settings) -> Self {
        Self {
            rate: EnumParam::new("Frame Rate", RateChoice::Fps25),
            output: BoolParam::new("Output", true).with_string_to_value(Arc::new(parse_switch)),
            offset: IntParam::new("Start Offset", 0, IntRange::Linear { min: 0, max: 86_399 })
                .with_value_to_string(Arc::new(format_offset))
                .with_string_to_value(Arc::new(parse_offset)),
            send_stopped: BoolParam::new("Send While Stopped", true).with_string_to_value(Arc::new(parse_switch)),
            macro1: macro_param(1),
            macro2: macro_param(2),
            macro3: macro_param(3),
            macro4: macro_param(4),
            macro5: macro_param(5),
            macro6: macro_param(6),
            macro7: macro_param(7),
            macro8: macro_param(8),
            audio_outputs: AudioSwitches::new(settings.audio_outputs()),
            settings: Arc::new(RwLock::new(settings)),
        }
    }
}

/// How many Cue Macro parameters there are.
pub const MACROS: usize = 8;

/// Every parameter's string ID (frozen), in the order of the `#[id]`s above: what a `param` cue
/// mapping may name ([`ParamRef`]). The Cue Macros are the last [`MACROS`].
pub const PARAM_IDS: [&str; 12] = [
    "rate",
    "output",
    "offset",
    "send_stopped",
    "macro1",
    "macro2",
    "macro3",
    "macro4",
    "macro5",
    "macro6",
    "macro7",
    "macro8",
];

/// One of the plugin's parameters, by its string ID ([`PARAM_IDS`]): what a `param` cue mapping
/// sets. `Copy`; read and written as the ID (`"output"`, `"macro1"`), so a state or config file
/// naming no parameter of ours is refused with the list of those that exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamRef(u8);

impl ParamRef {
    /// The parameter with the string ID `id`.
    pub fn from_id(id: &str) -> Option<Self> {
        PARAM_IDS.iter().position(|&p| p == id).and_then(|i| u8::try_from(i).ok()).map(Self)
    }

    /// Cue Macro `index + 1` (`index` 0–7).
    pub fn cue_macro(index: usize) -> Option<Self> {
        (index < MACROS).then(|| Self((MACRO_IDS_START + index) as u8))
    }

    /// The string ID.
    pub fn id(self) -> &'static str {
        PARAM_IDS.get(usize::from(self.0)).copied().unwrap_or(PARAM_IDS[0])
    }
}

impl std::fmt::Display for ParamRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for ParamRef {
    type Err = UnknownParam;
    fn from_str(text: &str) -> Result<Self, UnknownParam> {
        Self::from_id(text.trim()).ok_or_else(|| UnknownParam(text.trim().to_owned()))
    }
}

/// A parameter ID the plugin does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no parameter has the ID {0:?} (the IDs are {ids})", ids = PARAM_IDS.join(", "))]
pub struct UnknownParam(pub String);

impl serde::Serialize for ParamRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

impl<'de> serde::Deserialize<'de> for ParamRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        id.parse().map_err(serde::de::Error::custom)
    }
}

/// "Cue Macro `n`": 0–1, linear, default 0, shown with three decimals.
fn macro_param(n: usize) -> FloatParam {
    FloatParam::new(format!("Cue Macro {n}"), 0.0, FloatRange::Linear { min: 0.0, max: 1.0 })
        .with_value_to_string(formatters::v2s_f32_rounded(3))
}

impl TimecodeParams {
    /// Cue Macro 1–8, in order (`macros()[0]` is `macro1`).
    pub fn macros(&self) -> [&FloatParam; MACROS] {
        [&self.macro1, &self.macro2, &self.macro3, &self.macro4, &self.macro5, &self.macro6, &self.macro7, &self.macro8]
    }

    /// The normalized value of `param` as the host last set it (where a ramp starts from).
    pub fn normalized(&self, param: ParamRef) -> f32 {
        match param.id() {
            "rate" => self.rate.unmodulated_normalized_value(),
            "output" => self.output.unmodulated_normalized_value(),
            "offset" => self.offset.unmodulated_normalized_value(),
            "send_stopped" => self.send_stopped.unmodulated_normalized_value(),
            id => {
                let index = MACRO_IDS_START..PARAM_IDS.len();
                let n = PARAM_IDS[index].iter().position(|&m| m == id).unwrap_or(0);
                self.macros()[n].unmodulated_normalized_value()
            }
        }
    }
}

/// Where the Cue Macros start in [`PARAM_IDS`].
const MACRO_IDS_START: usize = PARAM_IDS.len() - MACROS;

/// A switch's text as a host's value field takes it: `On`/`Off` (how nice-plug displays them),
/// `true`/`false` or `1`/`0`, in any case. Anything else is refused: nice-plug's default reads
/// every text but `on` and `true` as off, so a typo in the Output field would stop the timecode.
pub fn parse_switch(text: &str) -> Option<bool> {
    let text = text.trim();
    let is = |words: [&str; 3]| words.iter().any(|w| text.eq_ignore_ascii_case(w));
    if is(["on", "true", "1"]) {
        Some(true)
    } else if is(["off", "false", "0"]) {
        Some(false)
    } else {
        None
    }
}

/// `3600` → `"01:00:00:00"`.
pub fn format_offset(seconds: i32) -> String {
    let s = seconds.clamp(0, 86_399);
    format!("{:02}:{:02}:{:02}:00", s / 3600, s / 60 % 60, s % 60)
}

/// `"01:00:00"`, `"01:00:00:00"` or `"01:00:00;00"` → `3600`. Frames other than 00 are refused
/// (the offset has whole-second resolution), as is anything out of range.
pub fn parse_offset(text: &str) -> Option<i32> {
    // Bytes, not `str` slices: a multi-byte character across byte 8 must not panic (fuzz:
    // timecode_parse); any non-ASCII byte fails the checks below.
    let text = text.trim().as_bytes();
    let b = match text.len() {
        8 => text,
        11 if matches!(&text[8..], b":00" | b";00") => &text[..8],
        _ => return None,
    };
    if b[2] != b':' || b[5] != b':' {
        return None;
    }
    let field = |i: usize| -> Option<i32> {
        let (hi, lo) = (b[i], b[i + 1]);
        (hi.is_ascii_digit() && lo.is_ascii_digit()).then(|| i32::from(hi - b'0') * 10 + i32::from(lo - b'0'))
    };
    let (h, m, s) = (field(0)?, field(3)?, field(6)?);
    (h < 24 && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_ids_are_frozen() {
        let params = TimecodeParams::new(Settings::default());
        let mut ids: Vec<String> = params.param_map().into_iter().map(|(id, _, _)| id).collect();
        ids.sort();
        // The `#[id = "..."]` attributes are the one place these are written: this list freezes
        // them (projects and automation lanes store them).
        assert_eq!(
            ids,
            [
                "macro1",
                "macro2",
                "macro3",
                "macro4",
                "macro5",
                "macro6",
                "macro7",
                "macro8",
                "offset",
                "output",
                "rate",
                "send_stopped"
            ]
        );
    }

    /// `PARAM_IDS` (what a `param` mapping may name) is exactly the parameters, in their order,
    /// and a `ParamRef` reads and writes as its ID.
    #[test]
    fn param_refs_are_the_parameters_by_id() {
        let params = TimecodeParams::new(Settings::default());
        let ids: Vec<String> = params.param_map().into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(ids, PARAM_IDS);
        for id in PARAM_IDS {
            let p: ParamRef = id.parse().unwrap();
            assert_eq!((p.id(), p.to_string()), (id, id.to_owned()));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("{id:?}"));
            assert_eq!(serde_json::from_str::<ParamRef>(&format!("{id:?}")).unwrap(), p);
        }
        let err = serde_json::from_str::<ParamRef>(r#""volume""#).unwrap_err().to_string();
        assert!(err.contains(r#"no parameter has the ID "volume" (the IDs are rate, output, "#), "{err}");
        assert_eq!(ParamRef::cue_macro(0).map(ParamRef::id), Some("macro1"));
        assert_eq!(ParamRef::cue_macro(7).map(ParamRef::id), Some("macro8"));
        assert_eq!(ParamRef::cue_macro(8), None);
    }

    /// Cue Macro N is `macroN`, 0–1 from 0, continuous and automatable; `ParamRef::cue_macro`
    /// (what `/macro/N` sets) names exactly these, in order.
    #[test]
    fn cue_macros_are_eight_automatable_unit_parameters() {
        let params = TimecodeParams::new(Settings::default());
        let ids: Vec<String> = params.param_map().into_iter().map(|(id, _, _)| id).collect();
        for (n, p) in params.macros().into_iter().enumerate() {
            let id = ParamRef::cue_macro(n).unwrap().id();
            assert!(ids.iter().any(|i| i == id), "no parameter {id}");
            assert_eq!(p.name(), format!("Cue Macro {}", n + 1));
            assert_eq!((p.default_plain_value(), p.step_count()), (0.0, None), "{id}: continuous, from 0");
            assert!(!p.flags().contains(ParamFlags::NON_AUTOMATABLE), "{id} is automatable");
            assert_eq!(p.preview_plain(0.25), 0.25, "{id}: plain value = normalized value");
        }
        assert!(std::ptr::eq(params.macros()[7], &params.macro8));
    }

    #[test]
    fn rate_choices_match_core_rates_and_ids_are_frozen() {
        let ids: Vec<&str> = RateChoice::ids().expect("every variant has an id").to_vec();
        assert_eq!(ids, ["23.976", "24", "25", "29.97", "29.97df", "30", "50", "59.94", "59.94df", "60"]);
        for (i, rate) in FrameRate::ALL.into_iter().enumerate() {
            assert_eq!(RateChoice::from_index(i).rate(), rate);
            assert_eq!(rate.name(), ids[i], "core's rate names agree with the frozen ids");
        }
    }

    #[test]
    fn switch_text_is_on_off_true_false_or_1_0_and_nothing_else() {
        for (text, want) in
            [("On", true), ("off", false), (" TRUE ", true), ("False", false), ("1", true), ("0", false)]
        {
            assert_eq!(parse_switch(text), Some(want), "{text:?}");
        }
        for bad in ["", "maybe", "onn", "of", "2", "yes", "0.5", "-1"] {
            assert_eq!(parse_switch(bad), None, "{bad:?} must be refused");
        }
        let params = TimecodeParams::new(Settings::default());
        for p in [&params.output, &params.send_stopped] {
            for value in [true, false] {
                let text = p.normalized_value_to_string(p.preview_normalized(value), false);
                assert_eq!(p.string_to_normalized_value(&text), Some(p.preview_normalized(value)), "{text:?}");
            }
            assert_eq!(p.string_to_normalized_value("maybe"), None);
        }
    }

    #[test]
    fn offset_text_round_trip() {
        for v in [0, 1, 59, 60, 3599, 3600, 36_000, 86_399] {
            let text = format_offset(v);
            assert_eq!(parse_offset(&text), Some(v), "{text}");
        }
        assert_eq!(format_offset(3600), "01:00:00:00");
        assert_eq!(parse_offset("01:00:00"), Some(3600));
        assert_eq!(parse_offset("10:00:00;00"), Some(36_000));
        for bad in ["24:00:00", "00:60:00", "00:00:60", "01:00:00:05", "1:00:00", "", "aa:bb:cc", "01-00-00"] {
            assert_eq!(parse_offset(bad), None, "{bad:?} must be refused");
        }
    }

    /// Regression (fuzz target timecode_parse): eleven bytes with a character across byte 8
    /// panicked slicing the text, in the host's call when the user typed into the field.
    #[test]
    fn offset_text_with_multibyte_characters_is_refused() {
        for bad in ["00:00:0\u{e9}00", "0\u{12}:+0:3\u{4bf}3", "00:00:00\u{e9}0", "\u{e9}0:00:00", "00:00:\u{e9}"] {
            assert_eq!(parse_offset(bad), None, "{bad:?} must be refused");
        }
    }
}
