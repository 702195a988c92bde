//! The window's Cue Macro sliders, drawn headless (egui without a window) and driven with the
//! pointer events egui gets from a window: what each press, drag, click and release sends to the
//! host through the editor's `GuiContext`. A drag is one gesture from its first change to the
//! release; a click (press and release, in one frame or two) is one whole gesture, where
//! nice-plug-egui's `ParamSlider` would begin one and never end it; a window that goes during
//! a drag ends its gesture. The same sliders under Xvfb with cues arriving are
//! `tests/tests/host/clap_window.rs` and `vst3_window.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use egui::{Event, Modifiers, PointerButton, Pos2, RawInput, Rect, Shape, vec2};
use nice_plug::context::gui::{GuiContext, GuiContextInner};
use nice_plug::params::internals::ParamPtr;
use nice_plug::prelude::*;
use osc_timecode_plugin::editor::macros::Macros;
use osc_timecode_plugin::params::TimecodeParams;
use osc_timecode_plugin::settings::Settings;

/// A call the window made on the host, by parameter ID.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    /// `begin_set_parameter`.
    Begin(String),
    /// `set_parameter` (normalized).
    Set(String, f32),
    /// `end_set_parameter`.
    End(String),
}

/// The host side of the editor's `GuiContext`: records every call and applies each value to
/// the parameter (as a host does), so the slider shows it in the next frame.
struct Recorder {
    /// The plugin's parameters: ID, pointer, group.
    params: Vec<(String, ParamPtr, String)>,
    /// The calls so far.
    calls: Mutex<Vec<Call>>,
}

// SAFETY: `ParamPtr`s point into the parameters, which are `Sync` and which the test keeps
// alive (in an `Arc`) for as long as the recorder.
unsafe impl Send for Recorder {}
// SAFETY: as for `Send`.
unsafe impl Sync for Recorder {}

impl Recorder {
    fn id(&self, param: ParamPtr) -> String {
        self.params.iter().find(|(_, p, _)| *p == param).map(|(id, ..)| id.clone()).expect("one of the plugin's")
    }

    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl GuiContextInner for Recorder {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    unsafe fn raw_begin_set_parameter(&self, param: ParamPtr) {
        let id = self.id(param);
        self.calls.lock().unwrap().push(Call::Begin(id));
    }
    unsafe fn raw_set_parameter_normalized(&self, param: ParamPtr, normalized: f32) {
        let id = self.id(param);
        self.calls.lock().unwrap().push(Call::Set(id, normalized));
        // SAFETY: one of the plugin's parameters (`id` found it), alive.
        unsafe {
            param._internal_set_normalized_value(normalized);
        }
    }
    unsafe fn raw_end_set_parameter(&self, param: ParamPtr) {
        let id = self.id(param);
        self.calls.lock().unwrap().push(Call::End(id));
    }
    fn get_state(&self) -> PluginState {
        PluginState { version: String::new(), params: BTreeMap::new(), fields: BTreeMap::new() }
    }
    fn set_state(&self, _state: PluginState) {}
    fn request_restart(&self) {}
}

/// The sliders in a headless egui, and the host behind them.
struct Window {
    ctx: egui::Context,
    macros: Option<Macros>,
    params: Arc<TimecodeParams>,
    gui: GuiContext,
    recorder: Arc<Recorder>,
}

impl Window {
    fn new() -> Self {
        let params = Arc::new(TimecodeParams::new(Settings::default()));
        let recorder = Arc::new(Recorder { params: params.param_map(), calls: Mutex::new(Vec::new()) });
        let gui = GuiContext::new(recorder.clone());
        Self { ctx: egui::Context::default(), macros: Some(Macros::default()), params, gui, recorder }
    }

    /// One frame of the sliders with `events`; every shape it drew.
    fn frame(&mut self, events: Vec<Event>) -> Vec<Shape> {
        let mut macros = self.macros.take().expect("open");
        let shapes = self.frame_of(events, |ui, params, gui| macros.draw(ui, params, gui));
        self.macros = Some(macros);
        shapes
    }

    /// One frame of `draw` with `events`; every shape it drew.
    fn frame_of(
        &self,
        events: Vec<Event>,
        draw: impl FnMut(&mut egui::Ui, &Arc<TimecodeParams>, &GuiContext),
    ) -> Vec<Shape> {
        let mut draw = draw;
        let input = RawInput {
            screen_rect: Some(Rect::from_min_size(Pos2::ZERO, vec2(760.0, 620.0))),
            events,
            ..RawInput::default()
        };
        let mut output = self.ctx.run_ui(input, |ui| draw(ui, &self.params, &self.gui));
        output.textures_delta.clear();
        output.shapes.into_iter().map(|s| s.shape).collect()
    }

    /// The left end of Cue Macro 1's slider (value 0), on its middle row: the first rail drawn
    /// (a rectangle wider than any other thing in the tab).
    fn handle(&mut self) -> Pos2 {
        let _ = self.frame(Vec::new()); // egui lays out in the first frame
        let shapes = self.frame(Vec::new());
        let rail = first_rail(&shapes).unwrap_or_else(|| panic!("no slider in {shapes:#?}"));
        rail.left_center()
    }
}

fn first_rail(shapes: &[Shape]) -> Option<Rect> {
    shapes.iter().find_map(|shape| match shape {
        Shape::Rect(rect) if rect.rect.width() > 300.0 => Some(rect.rect),
        Shape::Vec(inner) => first_rail(inner),
        _ => None,
    })
}

fn moved(to: Pos2) -> Event {
    Event::PointerMoved(to)
}

fn button(at: Pos2, pressed: bool) -> Event {
    Event::PointerButton { pos: at, button: PointerButton::Primary, pressed, modifiers: Modifiers::NONE }
}

/// The values of `Set` calls, and the calls with them blanked, for comparing the shape.
fn shape(calls: &[Call]) -> (Vec<f32>, Vec<Call>) {
    let values = calls.iter().filter_map(|c| if let Call::Set(_, v) = c { Some(*v) } else { None }).collect();
    let blank =
        calls.iter().map(|c| if let Call::Set(id, _) = c { Call::Set(id.clone(), 0.0) } else { c.clone() }).collect();
    (values, blank)
}

fn begin() -> Call {
    Call::Begin("macro1".into())
}
fn set() -> Call {
    Call::Set("macro1".into(), 0.0)
}
fn end() -> Call {
    Call::End("macro1".into())
}

#[test]
fn a_drag_is_one_gesture_from_press_to_release() {
    let mut w = Window::new();
    let start = w.handle();
    let (a, b, c) = (start + vec2(100.0, 0.0), start + vec2(140.0, 0.0), start + vec2(180.0, 0.0));
    let _ = w.frame(vec![moved(a), button(a, true)]);
    let _ = w.frame(vec![moved(b)]);
    let _ = w.frame(vec![moved(c)]);
    let _ = w.frame(Vec::new()); // held still: nothing to send
    let _ = w.frame(vec![button(c, false)]);
    let _ = w.frame(Vec::new());
    let calls = w.recorder.take();
    let (values, blank) = shape(&calls);
    assert_eq!(blank, [begin(), set(), set(), set(), end()], "{calls:?}");
    assert!(values.windows(2).all(|v| v[0] < v[1]) && values[0] > 0.0 && values[2] < 1.0, "{values:?}");
    assert_eq!(w.params.macro1.unmodulated_normalized_value(), values[2], "the host took the last value");
}

#[test]
fn a_click_is_one_whole_gesture() {
    let mut w = Window::new();
    let at = w.handle() + vec2(90.0, 0.0);
    // Press and release in two frames, without moving: egui reports no drag.
    let _ = w.frame(vec![moved(at), button(at, true)]);
    let _ = w.frame(vec![button(at, false)]);
    let _ = w.frame(Vec::new());
    assert_eq!(shape(&w.recorder.take()).1, [begin(), set(), end()]);
    // Press and release within one frame, elsewhere on the slider: egui 0.37 does not act on it;
    // whatever it does, no gesture is left open.
    let elsewhere = at + vec2(60.0, 0.0);
    let _ = w.frame(vec![moved(elsewhere), button(elsewhere, true), button(elsewhere, false)]);
    let _ = w.frame(Vec::new());
    let calls = shape(&w.recorder.take()).1;
    assert!(calls.is_empty() || calls == [begin(), set(), end()], "{calls:?}");
    // A click on the value it has already: nothing for the host.
    let _ = w.frame(vec![moved(at), button(at, true)]);
    let _ = w.frame(vec![button(at, false)]);
    let _ = w.frame(Vec::new());
    assert_eq!(w.recorder.take(), []);
}

#[test]
fn a_window_gone_during_a_drag_ends_its_gesture() {
    let mut w = Window::new();
    let start = w.handle();
    let (a, b) = (start + vec2(100.0, 0.0), start + vec2(150.0, 0.0));
    let _ = w.frame(vec![moved(a), button(a, true)]);
    let _ = w.frame(vec![moved(b)]);
    assert_eq!(shape(&w.recorder.take()).1, [begin(), set(), set()]);
    // The window closes with the button still down: no release ever comes.
    drop(w.macros.take());
    assert_eq!(w.recorder.take(), [end()]);
}

/// Why the window has sliders of its own: nice-plug-egui 0.6's `ParamSlider`, clicked the same
/// way, begins a gesture and never ends it (it ends one only when egui reports the end of a drag),
/// so the host would keep the parameter touched and every later cue would join that gesture.
#[test]
fn nice_plug_eguis_param_slider_leaves_a_clicked_gesture_open() {
    let w = Window::new();
    let slider = |ui: &mut egui::Ui, params: &Arc<TimecodeParams>, gui: &GuiContext| {
        ui.spacing_mut().slider_width = 360.0;
        let setter = gui.param_setter();
        ui.add(nice_plug_egui::widgets::ParamSlider::for_param(&params.macro1, &setter));
    };
    let _ = w.frame_of(Vec::new(), slider);
    let shapes = w.frame_of(Vec::new(), slider);
    let at = first_rail(&shapes).expect("the slider").left_center() + vec2(90.0, 0.0);
    let _ = w.frame_of(vec![moved(at), button(at, true)], slider);
    let _ = w.frame_of(vec![button(at, false)], slider);
    let _ = w.frame_of(Vec::new(), slider);
    assert_eq!(shape(&w.recorder.take()).1, [begin(), set()], "begun, set, never ended");
}
