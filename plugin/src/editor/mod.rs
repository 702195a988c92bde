//! The plugin window: a timecode readout to read from across the room, the state of every
//! target and of the cue input, and every setting, edited in place.
//!
//! Built on nice-plug's egui adapter (`nice-plug-egui`): egui redraws the whole window each
//! frame from plain values, which suits a readout that changes 25–60 times a second and tables
//! that are edited row by row; the iced adapter would need a message and an update step for
//! every field, and a larger build (see docs/DEVELOPING.md, "The plugin window").
//!
//! Threads: everything here runs on the `[gui-thread]` while the window is open, and nothing
//! runs while it is closed, but for a "Find receivers" browse, which runs on a worker thread of
//! its own for 3 s at most and is joined when the window's state goes ([`receivers`]). It reads
//! the audio thread only through atomics ([`crate::readout::Readout`], the parameters,
//! [`crate::network::Stats`],
//! [`crate::outputs::OutputStats`], [`crate::cues::CueStats`]), the cue thread through [`crate::readout::CueActivity`], and
//! writes the persisted [`crate::settings::Settings`] (which the network and cue threads re-read
//! every 100 ms, so edits apply without re-activating) and the parameters through nice-plug's
//! `ParamSetter` (a host gesture per change).
//!
//! Layout: the logic, without egui, each part with its tests:
//! - [`texts`]: what the readout and the lists say (timecode, badge, status line, counts, MIDI);
//! - [`health`]: which warnings show and what they say;
//! - [`fields`]: every text field's check and the state of a field while it is typed;
//! - [`edits`]: the changes the window makes to the settings;
//! - [`mapping`]: cue map rows as they are typed, and Learn;
//! - [`receivers`]: "Find receivers", the DNS-SD browse on a worker thread and its rows;
//! - [`macros`]: Cue Macro 1–8's sliders and their host gestures;
//!
//! and `view`, which only draws.

pub mod edits;
pub mod fields;
#[cfg(test)]
mod fixtures;
pub mod health;
pub mod macros;
pub mod mapping;
pub mod receivers;
pub mod texts;
mod view;

use std::sync::Arc;
use std::time::Duration;

use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug_egui::{EguiEditor, EguiEditorState, EguiNiceSettings, NiceEguiApp, RepaintNotifier};

use crate::cues::CueStats;
use crate::network::Stats;
use crate::outputs::OutputStats;
use crate::params::TimecodeParams;
use crate::readout::{CueActivity, Readout};

/// The window's size in logical pixels (width, height). Not resizable.
pub const WINDOW_SIZE: (u32, u32) = (760, 620);

/// How often the open window redraws: the display rate, so the readout never lags a frame.
pub const REDRAW_EVERY: Duration = Duration::from_micros(16_667);

/// Everything the window reads and writes, shared with the plugin. `[thread-safe]`: each part
/// says which thread writes it.
#[derive(Clone)]
pub struct Shared {
    /// Parameters (atomics) and the persisted settings (`RwLock`, never taken by the audio
    /// thread).
    pub params: Arc<TimecodeParams>,
    /// Timecode and Art-Net counters: the audio and network threads write.
    pub stats: Arc<Stats>,
    /// LTC and MTC counters: the audio thread writes.
    pub outputs: Arc<OutputStats>,
    /// Cue counters: the cue and audio threads write.
    pub cue_stats: Arc<CueStats>,
    /// The latest frame and block count: the audio thread writes.
    pub readout: Arc<Readout>,
    /// The listen socket and recent cues: the cue thread writes.
    pub cue_activity: Arc<CueActivity>,
}

/// The window's size and open state, kept by the plugin across openings.
pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(LogicalSize::new(WINDOW_SIZE.0 as f32, WINDOW_SIZE.1 as f32), 1.0)
}

/// `[main-thread]` The editor nice-plug opens when the host shows the plugin's window.
pub fn create(shared: Shared, state: Arc<EguiEditorState>) -> Option<EguiEditor<App>> {
    // (`with_tile` is the adapter's spelling of "with title".)
    let settings = EguiNiceSettings::new().with_tile(<crate::OscTimecode as nice_plug::prelude::Plugin>::NAME);
    nice_plug_egui::create_egui_editor(state, RepaintNotifier::new(), settings, App::new(shared))
}

/// The egui app behind the window. `[gui-thread]`.
pub struct App {
    /// What it shows and edits.
    shared: Shared,
    /// The host connection for parameter gestures; set when the window opens, dropped when it
    /// closes.
    gui: Option<GuiContext>,
    /// The window's own state: drafts, reasons, the tab, trends.
    view: view::View,
}

impl App {
    fn new(shared: Shared) -> Self {
        Self { shared, gui: None, view: view::View::default() }
    }
}

impl NiceEguiApp for App {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        view::style(&egui_ctx);
        self.gui = Some(nice_gui_ctx);
        // Each opening starts fresh: `build` runs on every opening, while nice-plug-egui 0.6
        // never calls `editor_closed`.
        self.view = view::View::default();
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut nice_plug_egui::Frame) {
        self.view.draw(ui, &self.shared, self.gui.as_ref());
        ui.ctx().request_repaint_after(REDRAW_EVERY);
    }

    fn editor_closed(&mut self) {
        self.gui = None;
    }
}
