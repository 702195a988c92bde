//! Cue Macro 1–8 in the window: a slider each, so a user can set a macro by hand, see what cues
//! did to it, and (in hosts that learn parameters from touch) make the host notice it.
//!
//! A drag is one host gesture: begin when the value first changes, the values while the button
//! is held, end when it is released. The cue thread sets the same parameters at any moment
//! (`/macro/N`, through nice-plug's `RemoteParamSetter`); while the window holds a gesture open
//! on a macro, nice-plug's wrapper puts the cue's value inside that gesture instead of a gesture
//! of its own, so the host never sees begin, begin, end, end (issue 19; the host tests
//! `tests/tests/host/clap_window.rs` and `vst3_window.rs` drag a macro under a cue flood).
//!
//! Not nice-plug-egui's `ParamSlider`: it begins a gesture when the button goes down on it and
//! ends it only when egui reports the end of a drag, which a click (press and release without
//! moving) never is, so a click would leave the host's gesture open and every later cue
//! joined to it (`plugin/tests/window_macros.rs` shows both). Here [`Gesture`] decides begin and
//! end from the value changing and the button being held, each frame, and a gesture still open
//! when the window's state goes is ended then.
//!
//! `[gui-thread]` throughout.

use egui::Ui;
use nice_plug::context::gui::GuiContext;
use nice_plug::prelude::{FloatParam, Param};

use crate::params::{MACROS, TimecodeParams};

/// A slider's width in logical pixels.
const SLIDER_WIDTH: f32 = 360.0;

/// What one frame of a slider asks of the host: each flag is one call, in this order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Steps {
    /// `begin_set_parameter`.
    pub begin: bool,
    /// `set_parameter` with the slider's value.
    pub set: bool,
    /// `end_set_parameter`.
    pub end: bool,
}

/// One slider's host gesture: open or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gesture {
    /// A gesture is open: begun, not yet ended.
    open: bool,
}

impl Gesture {
    /// One frame: `changed`, the user moved the value; `held`, the pointer's button is down on
    /// the slider (pressed on it, or dragging it). A change opens a gesture (a click's or a
    /// key's as well as a drag's); letting go (or a change made without the button, by a key)
    /// closes it.
    pub fn step(&mut self, changed: bool, held: bool) -> Steps {
        let begin = changed && !self.open;
        let open = self.open || begin;
        let end = open && !held;
        self.open = open && held;
        Steps { begin, set: changed, end }
    }

    /// Whether a gesture is open.
    pub fn is_open(self) -> bool {
        self.open
    }
}

/// The sliders' gestures, and the host connection they were begun through (to end them if the
/// window's state goes while one is open: the window closed during a drag).
#[derive(Default)]
pub struct Macros {
    /// One per macro, `gestures[0]` for Cue Macro 1.
    gestures: [Gesture; MACROS],
    /// The connection the open gestures were begun through; `None` while none is open.
    gui: Option<GuiContext>,
    /// The parameters, for ending open gestures on drop.
    params: Option<std::sync::Arc<TimecodeParams>>,
}

impl Macros {
    /// Draws the eight sliders and sends their gestures through `gui`.
    pub fn draw(&mut self, ui: &mut Ui, params: &std::sync::Arc<TimecodeParams>, gui: &GuiContext) {
        ui.label("Cues set these: /macro/N VALUE (an int 0-127 or a float 0-1).");
        ui.weak("Link one to any parameter of any plugin with the host's own tools (see the README).");
        ui.add_space(6.0);
        let setter = gui.param_setter();
        // Wide, for fine control (egui's default is 100 points).
        ui.spacing_mut().slider_width = SLIDER_WIDTH;
        egui::Grid::new("macros").num_columns(2).spacing([16.0, 10.0]).show(ui, |ui| {
            for (param, gesture) in params.macros().into_iter().zip(&mut self.gestures) {
                ui.label(param.name());
                let mut value = param.unmodulated_plain_value();
                let response = ui.add(
                    egui::Slider::new(&mut value, 0.0..=1.0).fixed_decimals(3).clamping(egui::SliderClamping::Always),
                );
                let held = response.dragged() || response.is_pointer_button_down_on();
                let steps = gesture.step(response.changed(), held);
                apply(&setter, param, value, steps);
                ui.end_row();
            }
        });
        if self.gestures.iter().any(|g| g.is_open()) {
            self.gui = Some(gui.clone());
            self.params = Some(params.clone());
        } else {
            self.gui = None;
            self.params = None;
        }
    }
}

/// Sends one frame's steps for `param`.
fn apply(setter: &nice_plug::context::gui::ParamSetter<'_>, param: &FloatParam, value: f32, steps: Steps) {
    if steps.begin {
        setter.begin_set_parameter(param);
    }
    if steps.set {
        setter.set_parameter(param, value);
    }
    if steps.end {
        setter.end_set_parameter(param);
    }
}

impl Drop for Macros {
    /// Ends the gestures still open: the window's state went during a drag.
    fn drop(&mut self) {
        let (Some(gui), Some(params)) = (self.gui.take(), self.params.take()) else { return };
        let setter = gui.param_setter();
        for (param, gesture) in params.macros().into_iter().zip(&mut self.gestures) {
            if gesture.is_open() {
                setter.end_set_parameter(param);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN_SET: Steps = Steps { begin: true, set: true, end: false };
    const SET: Steps = Steps { begin: false, set: true, end: false };
    const NOTHING: Steps = Steps { begin: false, set: false, end: false };
    const END: Steps = Steps { begin: false, set: false, end: true };
    const WHOLE: Steps = Steps { begin: true, set: true, end: true };

    /// Frames of (changed, held), and what each asks of the host.
    fn run(frames: &[(bool, bool)]) -> Vec<Steps> {
        let mut gesture = Gesture::default();
        let steps = frames.iter().map(|&(changed, held)| gesture.step(changed, held)).collect();
        assert!(!gesture.is_open(), "left open after {frames:?}");
        steps
    }

    #[test]
    fn a_drag_is_one_gesture_from_the_first_change_to_the_release() {
        // Pressed (the value jumps to the pointer), held still, moved twice, released.
        let frames = [(true, true), (false, true), (true, true), (true, true), (false, false)];
        assert_eq!(run(&frames), [BEGIN_SET, NOTHING, SET, SET, END]);
    }

    #[test]
    fn a_click_is_a_whole_gesture_ended_on_release() {
        // nice-plug-egui's ParamSlider would leave this one open: egui reports no drag.
        assert_eq!(run(&[(true, true), (false, false)]), [BEGIN_SET, END]);
        // Pressed and released within one frame.
        assert_eq!(run(&[(true, false)]), [WHOLE]);
        // Pressed on the value it already had: nothing to tell the host.
        assert_eq!(run(&[(false, true), (false, false)]), [NOTHING, NOTHING]);
    }

    #[test]
    fn a_key_is_a_whole_gesture_per_press() {
        assert_eq!(run(&[(true, false), (false, false), (true, false)]), [WHOLE, NOTHING, WHOLE]);
    }

    #[test]
    fn a_drag_that_moves_the_value_back_where_it_was_still_ends() {
        assert_eq!(run(&[(true, true), (false, true), (false, false)]), [BEGIN_SET, NOTHING, END]);
    }
}
