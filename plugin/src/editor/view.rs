//! Drawing the window with egui. No decisions here: what to show and whether an edit is valid
//! come from the sibling modules ([`super::texts`], [`super::fields`], ...). `[gui-thread]` throughout.

use std::sync::atomic::Ordering;
use std::sync::{PoisonError, RwLockReadGuard};
use std::time::Instant;

use egui::{Color32, RichText, Ui};
use nice_plug::context::gui::GuiContext;
use nice_plug::prelude::{Enum, Param};

use super::Shared;
use super::edits::{ListEdit, SettingsEdit};
use super::fields::{
    Field, FieldError, TextList, parse_allow, parse_artnet_target, parse_listen, parse_ltc_level, parse_offset,
    parse_stream_id, parse_target, parse_token,
};
use super::health::{Growth, Health, Stillness, Warning, bind_failure_text, warnings};
use super::mapping::{Kind, Learn, MappingDraft, MappingErrors, MappingField};
use super::receivers::Finder;
use super::texts::{
    CueSummary, TransportState, carriage_text, drop_reason_text, format_action, format_age, format_count,
    format_outcome, status_line, timecode_text, transport_state,
};
use crate::cues::DropReason;
use crate::params::{RateChoice, format_offset};
use crate::readout::RecentCue;
use crate::settings::Settings;
use crate::settings::outputs::{ArtNetTarget, LtcChannel, LtcStopped, OutputNotice};
use crate::settings::values::Target;

/// Text and accent colours.
const GREEN: Color32 = Color32::from_rgb(0x4c, 0xd1, 0x7a);
const AMBER: Color32 = Color32::from_rgb(0xf0, 0xb4, 0x29);
const RED: Color32 = Color32::from_rgb(0xff, 0x6b, 0x6b);
const DIM: Color32 = Color32::from_gray(0x8a);
const BRIGHT: Color32 = Color32::from_gray(0xf2);
const WARN_FILL: Color32 = Color32::from_rgb(0x6e, 0x1c, 0x1c);
const INFO_FILL: Color32 = Color32::from_rgb(0x5a, 0x45, 0x10);

/// The tabs below the readout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Tab {
    /// Rate, offset, output, targets.
    #[default]
    Timecode,
    /// Listen address, allow-list, token, counters, recent cues.
    Cues,
    /// The cue → MIDI table.
    Map,
    /// LTC, MTC, Art-Net and half rate.
    Outputs,
    /// Cue Macro 1–8 ([`super::macros`]).
    Macros,
}

/// Which mapping row "learn" fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnInto {
    /// The "add" row.
    New,
    /// The row being edited.
    Editing,
}

/// The window's own state. Reset when the window closes.
#[derive(Default)]
pub struct View {
    /// The tab shown.
    tab: Tab,
    /// The window's copy of the settings, refreshed when the shared ones differ (a project load).
    settings: Settings,
    /// The Start Offset field.
    offset: Field,
    /// The targets table.
    targets: TextList,
    /// "Find receivers": the browse and what it found.
    receivers: Finder,
    /// The LTC level field.
    ltc_level: Field,
    /// The Art-Net StreamId field.
    stream_id: Field,
    /// The Art-Net targets table.
    artnet: TextList,
    /// The listen address field.
    listen: Field,
    /// The allow-list table.
    allow: TextList,
    /// The token field.
    token: Field,
    /// Show the token in clear.
    show_token: bool,
    /// The mapping "add" row and why it was refused.
    map_new: (MappingDraft, MappingErrors),
    /// The mapping row being edited, its draft and why it was refused.
    map_editing: Option<(usize, MappingDraft, MappingErrors)>,
    /// Waiting for a cue to learn its address, and for which row.
    learn: Option<(LearnInto, Learn)>,
    /// Why the last learned address was refused.
    learn_error: Option<FieldError>,
    /// A list edit that found its row gone (the settings changed under the window).
    notice: Option<String>,
    /// Scratch for the recent cues, reused every frame.
    recent: Vec<RecentCue>,
    /// How long the block count has stood still.
    idle: Stillness,
    /// Trends behind the warnings.
    send_errors: Growth,
    /// Socket failures.
    socket_errors: Growth,
    /// Frames dropped.
    dropped: Growth,
    /// Cue Macro 1–8's sliders and their host gestures.
    macros: super::macros::Macros,
}

/// The window's look: egui's dark theme, a little larger.
pub fn style(ctx: &egui::Context) {
    ctx.set_theme(egui::Theme::Dark);
    ctx.all_styles_mut(|style| {
        style.spacing.item_spacing = egui::vec2(8.0, 6.0);
        for font in style.text_styles.values_mut() {
            font.size += 1.0;
        }
    });
}

impl View {
    /// One frame.
    pub fn draw(&mut self, ui: &mut Ui, shared: &Shared, gui: Option<&GuiContext>) {
        let now = Instant::now();
        self.sync_settings(shared);
        if self.learn.is_some() || self.tab == Tab::Cues {
            shared.cue_activity.recent(0, &mut self.recent);
        }
        self.take_learned();

        egui::Panel::top("readout").show(ui, |ui| {
            ui.add_space(6.0);
            self.readout(ui, shared, now);
            ui.add_space(4.0);
        });
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                // Outputs last: the tabs before it keep their places (the window test clicks them).
                for (tab, label) in [
                    (Tab::Timecode, "Timecode"),
                    (Tab::Cues, "Cue input"),
                    (Tab::Map, "Cue map"),
                    (Tab::Outputs, "Outputs"),
                    (Tab::Macros, "Macros"),
                ] {
                    ui.selectable_value(&mut self.tab, tab, RichText::new(label).size(16.0));
                }
            });
            ui.separator();
            if let Some(notice) = &self.notice {
                ui.colored_label(AMBER, notice);
            }
            egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| match self.tab {
                Tab::Timecode => self.timecode_tab(ui, shared, gui),
                Tab::Cues => self.cues_tab(ui, shared, now),
                Tab::Map => self.map_tab(ui, shared),
                Tab::Outputs => self.outputs_tab(ui, shared),
                Tab::Macros => match gui {
                    Some(gui) => self.macros.draw(ui, &shared.params, gui),
                    None => {
                        ui.label("The host has not connected this window yet.");
                    }
                },
            });
        });
    }

    /// Takes the shared settings when they are not what the window last saw.
    fn sync_settings(&mut self, shared: &Shared) {
        let current = read(shared);
        if *current != self.settings {
            self.settings = current.clone();
        }
    }

    /// Applies one edit to the shared settings (and the window's copy).
    fn edit(&mut self, shared: &Shared, edit: SettingsEdit) {
        let mut settings = shared.params.settings.write().unwrap_or_else(PoisonError::into_inner);
        match edit.apply(&mut settings) {
            Ok(()) => self.notice = None,
            Err(stale) => self.notice = Some(format!("Not changed: {stale} (the settings were reloaded).")),
        }
        self.settings = settings.clone();
    }

    // -----------------------------------------------------------------------------------------
    // The readout.

    fn readout(&mut self, ui: &mut Ui, shared: &Shared, now: Instant) {
        let params = &shared.params;
        let snapshot = shared.readout.snapshot();
        let output_on = params.output.value();
        let state = transport_state(&snapshot, output_on);
        let text = timecode_text(snapshot.position, params.rate.value().rate());
        let (state_colour, label_colour) = match state {
            TransportState::Playing => (GREEN, BRIGHT),
            TransportState::Stopped => (BRIGHT, BRIGHT),
            TransportState::OfflineRender => (AMBER, DIM),
            TransportState::OutputOff | TransportState::Inactive => (DIM, DIM),
        };
        ui.horizontal(|ui| {
            ui.label(RichText::new(&text.label).monospace().size(76.0).color(label_colour));
            ui.add_space(12.0);
            ui.vertical(|ui| {
                ui.add_space(10.0);
                ui.horizontal(|ui| {
                    ui.label(RichText::new(text.rate).size(22.0).color(BRIGHT));
                    if !text.marker.is_empty() {
                        ui.label(RichText::new(text.marker).size(22.0).strong().color(AMBER));
                    }
                });
                ui.label(RichText::new(state.label()).size(22.0).strong().color(state_colour));
            });
        });
        let listen = shared.cue_activity.listen();
        let cue_stats = &shared.cue_stats;
        let cues = CueSummary {
            enabled: self.settings.cues.enabled,
            bound: listen.bound,
            received: cue_stats.received.load(Ordering::Relaxed),
            applied: cue_stats.applied.load(Ordering::Relaxed),
            dropped: DropReason::ALL.iter().map(|&d| cue_stats.dropped(d)).sum(),
        };
        ui.label(RichText::new(status_line(snapshot.sample_rate, self.settings.targets.len(), cues)).color(DIM));

        let stats = &shared.stats;
        let health = Health {
            readout: snapshot,
            idle: self.idle.update(snapshot.blocks, now),
            output_on,
            rate: params.rate.value().rate(),
            targets: self.settings.targets.len(),
            cue_enabled: self.settings.cues.enabled,
            listen,
            send_errors: self.send_errors.update(stats.send_errors.load(Ordering::Relaxed), now),
            socket_errors: self.socket_errors.update(stats.bind_errors.load(Ordering::Relaxed), now),
            frames_dropped: self.dropped.update(stats.queue_full.load(Ordering::Relaxed), now),
            outputs: OutputNotice::of(params.rate.value().rate(), &self.settings),
        };
        for warning in warnings(&health) {
            warning_strip(ui, &warning);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Timecode: parameters and targets.

    fn timecode_tab(&mut self, ui: &mut Ui, shared: &Shared, gui: Option<&GuiContext>) {
        let params = &shared.params;
        ui.heading("Output");
        let Some(gui) = gui else {
            ui.label("The host has not connected this window yet.");
            return;
        };
        egui::Grid::new("parameters").num_columns(2).spacing([16.0, 8.0]).show(ui, |ui| {
            ui.label("Frame rate");
            let current = params.rate.value();
            let names = RateChoice::variants();
            egui::ComboBox::from_id_salt("rate").width(200.0).selected_text(names[current.to_index()]).show_ui(
                ui,
                |ui| {
                    for (i, name) in names.iter().enumerate() {
                        let choice = RateChoice::from_index(i);
                        if ui.selectable_label(choice == current, *name).clicked() && choice != current {
                            set_param(gui, &params.rate, choice);
                        }
                    }
                },
            );
            ui.end_row();

            ui.label("Start offset");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    let offset = params.offset.value();
                    self.offset.follow(|| format_offset(offset));
                    let committed = text_field(ui, &mut self.offset, 130.0, "HH:MM:SS");
                    if committed && let Some(seconds) = self.offset.commit(parse_offset) {
                        set_param(gui, &params.offset, seconds);
                    }
                    ui.weak("label at the project's start (Enter applies)");
                });
                field_error(ui, &self.offset.error);
            });
            ui.end_row();

            ui.label("Output");
            let mut output = params.output.value();
            if ui.checkbox(&mut output, "send timecode").changed() {
                set_param(gui, &params.output, output);
            }
            ui.end_row();

            ui.label("Send while stopped");
            let mut stopped = params.send_stopped.value();
            if ui.checkbox(&mut stopped, "parked position and keep-alive").changed() {
                set_param(gui, &params.send_stopped, stopped);
            }
            ui.end_row();
        });

        ui.add_space(10.0);
        ui.heading("Targets");
        let targets = self.settings.targets.clone();
        let counts = |i, t: &Target| shared.stats.targets.get(i, t.addr());
        let parse = |text: &str, row| parse_target(text, &targets, row);
        let edit = address_table(ui, "targets", &targets, &mut self.targets, counts, parse, TARGET_TABLE);
        if targets.is_empty() {
            ui.weak("No targets: timecode goes nowhere.");
        }
        ui.weak(format!(
            "Totals: {} datagrams sent, {} refused.",
            format_count(shared.stats.sent.load(Ordering::Relaxed)),
            format_count(shared.stats.send_errors.load(Ordering::Relaxed)),
        ));
        if let Some(edit) = edit {
            self.edit(shared, SettingsEdit::Targets(edit));
        }
        ui.add_space(6.0);
        self.find_receivers(ui, shared);
    }

    /// "Find receivers": the button, then what the last browse found, each address with "Add"
    /// (see [`super::receivers`]).
    fn find_receivers(&mut self, ui: &mut Ui, shared: &Shared) {
        let finder = &mut self.receivers;
        finder.poll();
        ui.horizontal(|ui| {
            let busy = finder.busy();
            if ui.add_enabled(!busy, egui::Button::new("Find receivers")).clicked() {
                finder.start();
            }
            if busy {
                ui.weak("Looking for receivers on the network (DNS-SD, 3 s)…");
            }
        });
        let mut clicked = None;
        match finder.last() {
            None => {}
            Some(Err(why)) => {
                ui.colored_label(RED, why);
            }
            Some(Ok(listing)) => {
                egui::Grid::new("receivers").num_columns(4).striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
                    for (i, row) in listing.rows.iter().enumerate() {
                        ui.label(&row.name);
                        ui.monospace(row.endpoint.to_string());
                        ui.weak(row.kind());
                        if ui.small_button("Add").clicked() {
                            clicked = Some(i);
                        }
                        ui.end_row();
                        if let Some(e) = finder.refusal(row.endpoint) {
                            ui.colored_label(RED, e.to_string());
                            ui.end_row();
                        }
                    }
                });
                ui.weak(listing.summary());
            }
        }
        let row = clicked.and_then(|i| match finder.last() {
            Some(Ok(listing)) => listing.rows.get(i).cloned(),
            _ => None,
        });
        if let Some(edit) = row.and_then(|row| finder.add(&row, &self.settings.targets)) {
            self.edit(shared, SettingsEdit::Targets(edit));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Outputs: LTC, MTC, Art-Net and half rate.

    fn outputs_tab(&mut self, ui: &mut Ui, shared: &Shared) {
        let settings = self.settings.clone();
        let rate = shared.params.rate.value().rate();
        let mut edits = Vec::new();
        ui.label(carriage_text(rate, settings.half_rate));
        ui.add_space(4.0);
        egui::Grid::new("outputs").num_columns(2).spacing([16.0, 8.0]).show(ui, |ui| {
            ui.label("Half rate");
            let mut half_rate = settings.half_rate;
            if ui.checkbox(&mut half_rate, "send 50, 59.94 and 60 fps as frame pairs (at 25, 29.97 and 30)").changed() {
                edits.push(SettingsEdit::HalfRate(half_rate));
            }
            ui.end_row();

            ui.label("LTC");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    let ltc = settings.ltc;
                    let channel = choice(ui, "ltc-channel", ltc.channel, &LtcChannel::ALL, |c| c.name());
                    edits.extend(channel.map(SettingsEdit::LtcChannel));
                    ui.label("level");
                    self.ltc_level.follow(|| ltc.level_dbfs.to_string());
                    if text_field(ui, &mut self.ltc_level, 60.0, "-18")
                        && let Some(level) = self.ltc_level.commit(parse_ltc_level)
                    {
                        edits.push(SettingsEdit::LtcLevel(level));
                    }
                    ui.label("dBFS; while stopped");
                    let stopped = choice(ui, "ltc-stopped", ltc.stopped, &LtcStopped::ALL, |s| s.name());
                    edits.extend(stopped.map(SettingsEdit::LtcStopped));
                });
                field_error(ui, &self.ltc_level.error);
                ui.weak("Replaces that channel's audio; it is audio, so it renders into a bounce.");
                let o = &shared.outputs;
                count_line(
                    ui,
                    &[("words written", &o.ltc_words, BRIGHT), ("not carried (rate)", &o.ltc_rate_refused, AMBER)],
                );
            });
            ui.end_row();

            ui.label("MTC");
            ui.vertical(|ui| {
                let mut mtc = settings.mtc.enabled;
                if ui.checkbox(&mut mtc, "send MIDI Time Code through the plugin's MIDI output").changed() {
                    edits.push(SettingsEdit::MtcEnabled(mtc));
                }
                let o = &shared.outputs;
                count_line(
                    ui,
                    &[
                        ("messages sent", &o.mtc_sent, BRIGHT),
                        ("refused by the host", &o.mtc_refused, RED),
                        ("frames not carried (rate)", &o.mtc_rate_refused, AMBER),
                    ],
                );
            });
            ui.end_row();

            ui.label("Art-Net stream");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    self.stream_id.follow(|| settings.artnet.stream_id.to_string());
                    if text_field(ui, &mut self.stream_id, 40.0, "0")
                        && let Some(id) = self.stream_id.commit(parse_stream_id)
                    {
                        edits.push(SettingsEdit::ArtNetStream(id));
                    }
                    ui.weak("StreamId, 0-255 (0: the master stream; Enter applies)");
                });
                field_error(ui, &self.stream_id.error);
            });
            ui.end_row();
        });

        ui.add_space(10.0);
        ui.heading("Art-Net targets");
        let targets = settings.artnet.targets.clone();
        let counts = |i, t: &ArtNetTarget| shared.stats.artnet_targets.get(i, (*t).into());
        let parse = |text: &str, row| parse_artnet_target(text, &targets, row);
        let edit = address_table(ui, "artnet-targets", &targets, &mut self.artnet, counts, parse, ARTNET_TABLE);
        if targets.is_empty() {
            ui.weak("No targets: Art-Net is off.");
        }
        let s = &shared.stats;
        count_line(
            ui,
            &[
                ("Totals: sent", &s.artnet_sent, BRIGHT),
                ("refused", &s.artnet_send_errors, RED),
                ("frames not carried (rate)", &s.artnet_rate_refused, AMBER),
                ("late", &s.artnet_late, AMBER),
            ],
        );
        edits.extend(edit.map(SettingsEdit::ArtNetTargets));
        for edit in edits {
            self.edit(shared, edit);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Cue input: address, allow-list, token, counters, recent cues.

    fn cues_tab(&mut self, ui: &mut Ui, shared: &Shared, now: Instant) {
        let cues = self.settings.cues.clone();
        let mut edits = Vec::new();
        egui::Grid::new("cue-input").num_columns(2).spacing([16.0, 8.0]).show(ui, |ui| {
            ui.label("Cue input");
            let mut enabled = cues.enabled;
            if ui.checkbox(&mut enabled, "listen for /cue and /trigger").changed() {
                edits.push(SettingsEdit::CueEnabled(enabled));
            }
            ui.end_row();

            ui.label("Listen on");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    self.listen.follow(|| cues.listen.to_string());
                    if text_field(ui, &mut self.listen, 200.0, "IP:port")
                        && let Some(addr) = self.listen.commit(parse_listen)
                    {
                        edits.push(SettingsEdit::Listen(addr));
                    }
                    let listen = shared.cue_activity.listen();
                    match (cues.enabled, listen.bound, listen.failure) {
                        (false, ..) => ui.weak("off"),
                        (true, Some(bound), _) => ui.colored_label(GREEN, format!("listening on {bound}")),
                        (true, None, Some((addr, why))) => {
                            ui.colored_label(RED, format!("cannot listen on {addr}: {}", bind_failure_text(why)))
                        }
                        (true, None, None) => ui.weak("not listening (the plugin is not active)"),
                    };
                });
                field_error(ui, &self.listen.error);
            });
            ui.end_row();

            ui.label("Token");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    self.token.follow(|| cues.token().unwrap_or_default().to_owned());
                    let response = ui.add(
                        egui::TextEdit::singleline(&mut self.token.text)
                            .password(!self.show_token)
                            .desired_width(200.0)
                            .hint_text("none"),
                    );
                    if response.changed() {
                        self.token.edited();
                    }
                    if (entered(ui, &response) || ui.button("Apply").clicked())
                        && let Some(token) = self.token.commit(parse_token)
                    {
                        edits.push(SettingsEdit::Token(token));
                    }
                    ui.checkbox(&mut self.show_token, "show");
                });
                field_error(ui, &self.token.error);
            });
            ui.end_row();

            ui.label("Allowed senders");
            ui.vertical(|ui| {
                let allow = cues.allow.clone();
                let mut list_edit = None;
                ui.horizontal_wrapped(|ui| {
                    for (i, entry) in allow.iter().enumerate() {
                        if let Some((row, text, _)) = self.allow.editing.as_mut()
                            && *row == i
                        {
                            let committed = edit_line(ui, text, 160.0);
                            if committed || ui.button("Save").clicked() {
                                list_edit = self.allow.commit_edit(|t, i| parse_allow(t, &allow, Some(i)));
                            }
                            if ui.button("Cancel").clicked() {
                                self.allow.editing = None;
                            }
                            continue;
                        }
                        ui.monospace(entry.0.to_string());
                        if ui.small_button("Edit").clicked() {
                            self.allow.start_edit(i, entry.0.to_string());
                        }
                        if ui.small_button("Remove").clicked() {
                            list_edit = Some(ListEdit::Remove(i));
                        }
                        ui.add_space(8.0);
                    }
                });
                if let Some((_, _, error)) = &self.allow.editing {
                    field_error(ui, error);
                }
                if allow.is_empty() {
                    ui.colored_label(AMBER, "Nobody is allowed: every cue is dropped.");
                }
                ui.horizontal(|ui| {
                    let committed = add_line(ui, &mut self.allow.adding, 200.0, "10.0.0.0/8 or 192.168.1.20");
                    if committed || ui.button("Allow").clicked() {
                        list_edit =
                            list_edit.take().or_else(|| self.allow.commit_add(|t| parse_allow(t, &allow, None)));
                    }
                });
                field_error(ui, &self.allow.add_error);
                if let Some(list_edit) = list_edit {
                    edits.push(SettingsEdit::Allow(list_edit));
                }
            });
            ui.end_row();

            ui.label("Counters");
            counters(ui, shared);
            ui.end_row();
        });
        for edit in edits {
            self.edit(shared, edit);
        }

        ui.add_space(6.0);
        ui.strong("Last cues");
        if self.recent.is_empty() {
            ui.weak(format!("None yet. Try: oscsend {} {} /cue/60", cues.listen.ip(), cues.listen.port()));
            return;
        }
        egui::Grid::new("recent").num_columns(4).striped(true).spacing([14.0, 4.0]).show(ui, |ui| {
            for cue in &self.recent {
                ui.weak(format_age(now.saturating_duration_since(cue.at)));
                ui.monospace(cue.address.as_str());
                let outcome = format_outcome(cue);
                if cue.status == osc_timecode_core::cue::AckStatus::Ok {
                    ui.label(outcome);
                } else {
                    ui.colored_label(AMBER, outcome);
                }
                ui.weak(format!("from {}{}", cue.from, if cue.timetagged { ", timetagged" } else { "" }));
                ui.end_row();
            }
        });
    }

    // -----------------------------------------------------------------------------------------
    // Cue map.

    fn map_tab(&mut self, ui: &mut Ui, shared: &Shared) {
        let map = self.settings.cues.map.clone();
        ui.label(if self.settings.cues.defaults {
            "Named addresses are matched first; /cue/N (note N) and /trigger/N (CC N) on channel 1 stay mapped."
        } else {
            "Only these addresses are mapped (the /cue/N and /trigger/N defaults are off)."
        });
        ui.add_space(4.0);
        let mut edit = None;
        egui::Grid::new("map").num_columns(3).striped(true).spacing([14.0, 6.0]).show(ui, |ui| {
            ui.strong("address");
            ui.strong("sends");
            ui.label("");
            ui.end_row();
            for (i, mapping) in map.iter().enumerate() {
                if self.map_editing.as_ref().is_some_and(|(row, ..)| *row == i) {
                    continue;
                }
                ui.monospace(mapping.address.as_str());
                ui.label(format_action(&mapping.action));
                ui.horizontal(|ui| {
                    if ui.small_button("Edit").clicked() {
                        self.map_editing = Some((i, MappingDraft::from_mapping(mapping), Vec::new()));
                        self.learn = None;
                    }
                    if ui.small_button("Remove").clicked() {
                        edit = Some(ListEdit::Remove(i));
                    }
                });
                ui.end_row();
            }
        });
        if map.is_empty() {
            ui.weak("No named mappings yet.");
        }

        if let Some((row, draft, errors)) = self.map_editing.as_mut() {
            ui.add_space(8.0);
            ui.strong(format!("Edit {}", map.get(*row).map_or("", |m| m.address.as_str())));
            let learning = matches!(self.learn, Some((LearnInto::Editing, _)));
            match mapping_form(ui, "edit", draft, errors, learning) {
                FormAction::Save => match draft.to_mapping(&map, Some(*row)) {
                    Ok(mapping) => {
                        edit = Some(ListEdit::Replace(*row, mapping));
                        self.map_editing = None;
                    }
                    Err(e) => *errors = e,
                },
                FormAction::Cancel => self.map_editing = None,
                FormAction::Learn => {
                    self.learn = Some((LearnInto::Editing, Learn { after: shared.cue_activity.latest() }))
                }
                FormAction::StopLearning => self.learn = None,
                FormAction::None => {}
            }
        }

        ui.add_space(8.0);
        ui.strong("Add a mapping");
        let learning = matches!(self.learn, Some((LearnInto::New, _)));
        let (draft, errors) = &mut self.map_new;
        match mapping_form(ui, "new", draft, errors, learning) {
            FormAction::Save => match draft.to_mapping(&map, None) {
                Ok(mapping) => {
                    edit = Some(ListEdit::Add(mapping));
                    *draft = MappingDraft { kind: draft.kind, ..MappingDraft::default() };
                    errors.clear();
                }
                Err(e) => *errors = e,
            },
            FormAction::Cancel => {
                *draft = MappingDraft::default();
                errors.clear();
            }
            FormAction::Learn => self.learn = Some((LearnInto::New, Learn { after: shared.cue_activity.latest() })),
            FormAction::StopLearning => self.learn = None,
            FormAction::None => {}
        }
        field_error(ui, &self.learn_error);
        if let Some(edit) = edit {
            self.edit(shared, SettingsEdit::Map(edit));
        }
    }

    /// Fills the learning row's address from the first cue since learning started.
    fn take_learned(&mut self) {
        let Some((into, learn)) = self.learn else { return };
        let Some(result) = learn.take(&self.recent) else { return };
        self.learn = None;
        match result {
            Ok(address) => {
                self.learn_error = None;
                match into {
                    LearnInto::New => self.map_new.0.address = address,
                    LearnInto::Editing => {
                        if let Some((_, draft, _)) = self.map_editing.as_mut() {
                            draft.address = address;
                        }
                    }
                }
            }
            Err(e) => self.learn_error = Some(e),
        }
    }
}

/// What a mapping form's buttons asked for.
enum FormAction {
    /// Nothing.
    None,
    /// Save (add or replace).
    Save,
    /// Discard the draft.
    Cancel,
    /// Wait for the next cue's address.
    Learn,
    /// Stop waiting.
    StopLearning,
}

/// One mapping's fields in a row, with their reasons below.
fn mapping_form(
    ui: &mut Ui,
    id: &str,
    draft: &mut MappingDraft,
    errors: &[(MappingField, FieldError)],
    learning: bool,
) -> FormAction {
    let mut action = FormAction::None;
    let invalid = |field| errors.iter().any(|(f, _)| *f == field);
    ui.horizontal_wrapped(|ui| {
        let mut entered = false;
        entered |= small_field(ui, &mut draft.address, 170.0, "/cue/intro", invalid(MappingField::Address));
        egui::ComboBox::from_id_salt(("kind", id)).width(90.0).selected_text(draft.kind.label()).show_ui(ui, |ui| {
            for kind in Kind::ALL {
                ui.selectable_value(&mut draft.kind, kind, kind.label());
            }
        });
        if draft.kind.has_channel() {
            ui.label("ch");
            entered |= small_field(ui, &mut draft.channel, 28.0, "1", invalid(MappingField::Channel));
            ui.label(draft.kind.number_label());
            entered |= small_field(ui, &mut draft.number, 36.0, "60", invalid(MappingField::Number));
        } else {
            // A parameter, chosen by its ID (what the state and the config file store).
            egui::ComboBox::from_id_salt(("param", id)).width(100.0).selected_text(draft.number.as_str()).show_ui(
                ui,
                |ui| {
                    for param in crate::params::PARAM_IDS {
                        ui.selectable_value(&mut draft.number, param.to_owned(), param);
                    }
                },
            );
        }
        if let Some(label) = draft.kind.value_label() {
            ui.label(label);
            let hint = if draft.kind.has_channel() { "127" } else { "cue's" };
            entered |= small_field(ui, &mut draft.value, 36.0, hint, invalid(MappingField::Value));
        }
        if let Some(label) = draft.kind.length_label() {
            ui.label(label);
            entered |= small_field(ui, &mut draft.length_ms, 52.0, "100", invalid(MappingField::Length));
        }
        if entered || ui.button(if id == "new" { "Add" } else { "Save" }).clicked() {
            action = FormAction::Save;
        }
        if ui.button(if id == "new" { "Clear" } else { "Cancel" }).clicked() {
            action = FormAction::Cancel;
        }
        if learning {
            ui.colored_label(AMBER, "waiting for a cue…");
            if ui.button("Stop").clicked() {
                action = FormAction::StopLearning;
            }
        } else if ui.button("Learn").on_hover_text("Take the address of the next cue from an allowed sender").clicked()
        {
            action = FormAction::Learn;
        }
    });
    for (_, e) in errors {
        ui.colored_label(RED, e.to_string());
    }
    action
}

/// The cue counters: received, applied, late, queued, then each drop reason that happened.
fn counters(ui: &mut Ui, shared: &Shared) {
    let s = &shared.cue_stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    ui.horizontal_wrapped(|ui| {
        for (name, n) in [
            ("received", load(&s.received)),
            ("applied", load(&s.applied)),
            ("late", load(&s.late)),
            ("queued", s.queued()),
        ] {
            ui.weak(name);
            ui.monospace(format_count(n));
            ui.add_space(6.0);
        }
        let mut dropped = false;
        for reason in DropReason::ALL {
            let n = s.dropped(reason);
            if n > 0 {
                ui.weak(format!("dropped, {}", drop_reason_text(reason)));
                ui.label(RichText::new(format_count(n)).monospace().color(AMBER));
                ui.add_space(6.0);
                dropped = true;
            }
        }
        if !dropped {
            ui.weak("dropped");
            ui.monospace("0");
        }
    });
}

/// What an address table's "add" row says.
struct TableWords {
    /// The add field's hint.
    hint: &'static str,
    /// The add button.
    add: &'static str,
}

/// The timecode targets' table.
const TARGET_TABLE: TableWords = TableWords { hint: "IP:port, like 192.168.1.20:5006", add: "Add target" };

/// The Art-Net targets' table.
const ARTNET_TABLE: TableWords =
    TableWords { hint: "IPv4, like 2.0.0.10 or 2.255.255.255 (port 6454)", add: "Add Art-Net target" };

/// A table of addresses, each row with its sent and refused counts (`counts`: `None` while the
/// network thread is not counting it) and edit and remove buttons, then the "add" row. `parse`
/// checks a text for the row it edits (`None`: a new row). The edit asked for, if any.
fn address_table<T: std::fmt::Display>(
    ui: &mut Ui,
    id: &str,
    rows: &[T],
    list: &mut TextList,
    counts: impl Fn(usize, &T) -> Option<(u64, u64)>,
    parse: impl Fn(&str, Option<usize>) -> Result<T, FieldError>,
    words: TableWords,
) -> Option<ListEdit<T>> {
    let mut edit = None;
    egui::Grid::new(id).num_columns(4).striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
        ui.strong("address");
        ui.strong("sent");
        ui.strong("errors");
        ui.label("");
        ui.end_row();
        for (i, row) in rows.iter().enumerate() {
            if let Some((editing, text, _)) = list.editing.as_mut()
                && *editing == i
            {
                let committed = edit_line(ui, text, 220.0);
                ui.label("");
                ui.label("");
                ui.horizontal(|ui| {
                    if committed || ui.button("Save").clicked() {
                        edit = list.commit_edit(|t, i| parse(t, Some(i)));
                    }
                    if ui.button("Cancel").clicked() {
                        list.editing = None;
                    }
                });
                ui.end_row();
                if let Some((_, _, Some(e))) = &list.editing {
                    ui.colored_label(RED, e.to_string());
                    ui.end_row();
                }
                continue;
            }
            ui.monospace(row.to_string());
            match counts(i, row) {
                Some((sent, errors)) => {
                    ui.monospace(format_count(sent));
                    let colour = if errors > 0 { RED } else { DIM };
                    ui.label(RichText::new(format_count(errors)).monospace().color(colour));
                }
                None => {
                    ui.weak("–");
                    ui.weak("–");
                }
            }
            ui.horizontal(|ui| {
                if ui.small_button("Edit").clicked() {
                    list.start_edit(i, row.to_string());
                }
                if ui.small_button("Remove").clicked() {
                    edit = Some(ListEdit::Remove(i));
                }
            });
            ui.end_row();
        }
    });
    ui.horizontal(|ui| {
        let committed = add_line(ui, &mut list.adding, 220.0, words.hint);
        if committed || ui.button(words.add).clicked() {
            edit = edit.take().or_else(|| list.commit_add(|t| parse(t, None)));
        }
    });
    field_error(ui, &list.add_error);
    edit
}

/// A drop-down of `choices` showing `current`; the choice made, if it changed.
fn choice<T: Copy + PartialEq>(
    ui: &mut Ui,
    id: &str,
    current: T,
    choices: &[T],
    name: fn(T) -> &'static str,
) -> Option<T> {
    let mut picked = None;
    egui::ComboBox::from_id_salt(id).width(80.0).selected_text(name(current)).show_ui(ui, |ui| {
        for &c in choices {
            if ui.selectable_label(c == current, name(c)).clicked() && c != current {
                picked = Some(c);
            }
        }
    });
    picked
}

/// Counters in a row, each name then its count, the count in `colour` once it is not 0.
fn count_line(ui: &mut Ui, counts: &[(&str, &std::sync::atomic::AtomicU64, Color32)]) {
    ui.horizontal_wrapped(|ui| {
        for &(name, counter, colour) in counts {
            let n = counter.load(Ordering::Relaxed);
            ui.weak(name);
            ui.label(RichText::new(format_count(n)).monospace().color(if n > 0 { colour } else { DIM }));
            ui.add_space(6.0);
        }
    });
}

/// A red strip with a warning.
fn warning_strip(ui: &mut Ui, warning: &Warning) {
    let fill = if warning.is_info() { INFO_FILL } else { WARN_FILL };
    egui::Frame::new().fill(fill).corner_radius(4.0).inner_margin(egui::Margin::symmetric(10, 5)).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new(warning.text()).color(BRIGHT).size(15.0));
    });
}

/// A field bound to a value; true when Enter was pressed in it.
fn text_field(ui: &mut Ui, field: &mut Field, width: f32, hint: &str) -> bool {
    let mut edit = egui::TextEdit::singleline(&mut field.text).desired_width(width).hint_text(hint.to_owned());
    if field.error.is_some() {
        edit = edit.text_color(RED);
    }
    let response = ui.add(edit);
    if response.changed() {
        field.edited();
    }
    if response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Escape)) {
        field.revert();
    }
    entered(ui, &response)
}

/// An "add" field; true when Enter was pressed in it.
fn add_line(ui: &mut Ui, text: &mut String, width: f32, hint: &str) -> bool {
    let response = ui.add(egui::TextEdit::singleline(text).desired_width(width).hint_text(hint.to_owned()));
    entered(ui, &response) && !text.is_empty()
}

/// A row being edited; true when Enter was pressed in it.
fn edit_line(ui: &mut Ui, text: &mut String, width: f32) -> bool {
    let response = ui.add(egui::TextEdit::singleline(text).desired_width(width));
    entered(ui, &response)
}

/// A small field of a mapping row, red when refused; true when Enter was pressed in it.
fn small_field(ui: &mut Ui, text: &mut String, width: f32, hint: &str, invalid: bool) -> bool {
    let mut edit = egui::TextEdit::singleline(text).desired_width(width).hint_text(hint.to_owned());
    if invalid {
        edit = edit.text_color(RED);
    }
    let response = ui.add(edit);
    entered(ui, &response)
}

/// Enter pressed in the field that just lost focus.
fn entered(ui: &Ui, response: &egui::Response) -> bool {
    response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))
}

/// The reason a field was refused, in red beside it.
fn field_error(ui: &mut Ui, error: &Option<FieldError>) {
    if let Some(e) = error {
        ui.colored_label(RED, e.to_string());
    }
}

/// One parameter change as a host gesture: begin, set, end.
fn set_param<P: Param>(gui: &GuiContext, param: &P, value: P::Plain) {
    let setter = gui.param_setter();
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

/// The shared settings, read. A poisoned lock still holds valid settings.
fn read(shared: &Shared) -> RwLockReadGuard<'_, Settings> {
    shared.params.settings.read().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::settings::outputs::{ArtNetTargets, LtcLevel};

    /// Every text the frame drew.
    fn texts(output: &egui::FullOutput) -> String {
        let mut all = String::new();
        for clipped in &output.shapes {
            collect(&clipped.shape, &mut all);
        }
        all
    }

    fn collect(shape: &egui::Shape, all: &mut String) {
        match shape {
            egui::Shape::Text(text) => {
                all.push_str(text.galley.text());
                all.push('\n');
            }
            egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| collect(s, all)),
            _ => {}
        }
    }

    /// The Outputs tab, drawn headless (egui without a window): the settings, the counters and
    /// the per-target counts of the Art-Net table, with the same values the threads count.
    #[test]
    fn the_outputs_tab_shows_the_settings_and_the_counters() {
        let mut settings = Settings::default();
        settings.ltc.channel = LtcChannel::Right;
        settings.ltc.level_dbfs = LtcLevel::new(-20.5).unwrap();
        settings.mtc.enabled = true;
        let art: ArtNetTarget = "127.0.0.1:6455".parse().unwrap();
        settings.artnet.targets = ArtNetTargets::new(vec![art, "10.255.255.255".parse().unwrap()]).unwrap();
        let shared = Shared {
            params: Arc::new(crate::params::TimecodeParams::new(settings)),
            stats: Arc::default(),
            outputs: Arc::default(),
            cue_stats: Arc::default(),
            readout: Arc::default(),
            cue_activity: Arc::default(),
        };
        shared.outputs.ltc_words.store(1234, Ordering::Relaxed);
        shared.outputs.mtc_refused.store(7, Ordering::Relaxed);
        shared.stats.artnet_targets.assign([std::net::SocketAddr::from(art)]);
        for _ in 0..3 {
            shared.stats.artnet_targets.count(0, true);
        }
        shared.stats.artnet_sent.store(3, Ordering::Relaxed);
        let ctx = egui::Context::default();
        let mut view = View { tab: Tab::Outputs, ..View::default() };
        let input = || egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(760.0, 1200.0))),
            ..egui::RawInput::default()
        };
        // Two frames: egui lays out in the first. No renderer takes the font textures.
        let mut frame = || {
            let mut output = ctx.run_ui(input(), |ui| view.draw(ui, &shared, None));
            output.textures_delta.clear();
            output
        };
        let _ = frame();
        let shown = texts(&frame());
        for want in [
            "LTC, MTC and Art-Net carry the Frame Rate as: 25 fps.",
            "right",
            "-20.5",
            "silence",
            "words written\n1\u{2009}234",
            "refused by the host\n7",
            "127.0.0.1:6455\n3\n0",
            "10.255.255.255:6454\n–\n–",
            "Totals: sent\n3",
        ] {
            assert!(shown.contains(want), "{want:?} not in:\n{shown}");
        }
    }
}
