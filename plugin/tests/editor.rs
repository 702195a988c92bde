//! The plugin window, rendered for real: a headless X server (Xvfb), the plugin's own editor
//! opened the way a host opens it, a screenshot, and checks that it shows something alive.
//!
//! Two processes, so the window gets a display of its own without touching this process's
//! environment:
//! - the test ([`the_window_renders_under_xvfb_and_its_readout_runs`]) starts Xvfb on a free
//!   display, writes a config file (two loopback targets, a free cue port), and runs this same
//!   test again in a child process on that display, with [`HOST_ENV`] set: there it is the
//!   window host ([`host_window`]);
//! - the window host is a small host: it creates the plugin, sets the rate to 29.97 DF and the
//!   start offset to 01:00:00 through the parameters, activates it, runs `process()` on an audio
//!   thread with a rolling transport (so the network and cue threads run as in a host), and
//!   opens the editor (`Plugin::editor` → `Editor::spawn` without a parent window, as nice-plug's
//!   standalone wrapper does) until it is killed;
//! - the test captures the window over X11 (`GetImage`), writes
//!   `target/screenshots/editor.png`, reads it back with the `png` crate, and checks its size,
//!   that it is not blank, and that the readout moved between two captures; then it drives the
//!   window through XTEST (a refused target, a target added live, the host's project rate against
//!   the Frame Rate drop-down, the cue tabs, Learn).
//!
//! The window host reports a project frame rate of 29.97 drop-frame in every block, as a VST3 host
//! does (`Transport::frame_rate`), so choosing 25 fps in the window must put up the red strip and
//! going back to 29.97 DF must take it down.
//!
//! The test is `#[ignore = "needs Xvfb: ..."]` (on macOS and Windows, with no X server to
//! capture: `"captures the window over X11 (Linux only)"`), so `cargo test` lists it as ignored;
//! run explicitly (`-- --ignored`, as `.ci/run` does, after installing Xvfb), it fails with the install
//! command when Xvfb is missing. The window needs no fonts from the system (egui's are built in);
//! it needs libGL with Mesa's software renderer and libX11/libxcb at run time.

use std::collections::{BTreeMap, HashMap};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nice_plug::context::gui::GuiContext;
use nice_plug::context::process::{SendEventError, SmpteFrameRate};
use nice_plug::editor::EditorHandle;
use nice_plug::params::internals::ParamPtr;
use nice_plug::prelude::*;
use osc_timecode_core::cue::{Ack, AckStatus};
use osc_timecode_plugin::OscTimecode;
use osc_timecode_plugin::editor::WINDOW_SIZE;

/// Set (to anything) in the window host's environment: the test, run there, hosts the window.
const HOST_ENV: &str = "OSC_TIMECODE_WINDOW_HOST";
/// The test's name, for running it again as the window host.
const TEST_NAME: &str = "the_window_renders_under_xvfb_and_its_readout_runs";
/// The plugin's config-file override (see `plugin/src/settings.rs`).
const CONFIG_ENV: &str = "OSC_TIMECODE_CONFIG";
/// How long the window may take to show its first frame (a debug build compiling its shaders
/// in Mesa's software renderer on a busy machine).
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(90);

/// One test in two roles, so that no second test exists only to be started by this one: run by
/// a user, it is the test ([`run`]); run by itself in a child process with [`HOST_ENV`] set, it
/// is the window host ([`host_window`]).
#[test]
#[cfg_attr(target_os = "linux", ignore = "needs Xvfb: apt-get install xvfb")]
#[cfg_attr(not(target_os = "linux"), ignore = "captures the window over X11 (Linux only)")]
fn the_window_renders_under_xvfb_and_its_readout_runs() {
    let result = if std::env::var_os(HOST_ENV).is_some() { host_window() } else { run() };
    if let Err(e) = result {
        panic!("{e:#}");
    }
}

fn run() -> anyhow::Result<()> {
    let Some(xvfb) = find_on_path("Xvfb") else {
        bail!("Xvfb is not installed: this test needs it (apt-get install xvfb; .ci/run does this)");
    };
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("editor-{}", std::process::id()));
    std::fs::create_dir_all(&work).context("could not create the test's scratch directory")?;
    let server = Xvfb::start(&xvfb, &work)?;

    // Where the plugin sends: two sockets of ours (so sending succeeds), and a free cue port.
    let receivers = [UdpSocket::bind("127.0.0.1:0")?, UdpSocket::bind("127.0.0.1:0")?];
    let cue_port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = work.join("config.toml");
    let targets: Vec<String> =
        receivers.iter().map(|r| Ok(format!("{:?}", r.local_addr()?.to_string()))).collect::<anyhow::Result<_>>()?;
    std::fs::write(
        &config,
        format!("[plugin]\ntargets = [{}]\n\n[plugin.cues]\nlisten = \"127.0.0.1:{cue_port}\"\n", targets.join(", ")),
    )
    .context("could not write the plugin config")?;

    let log_path = work.join("window-host.log");
    let log = std::fs::File::create(&log_path).context("could not create the window host's log")?;
    let host = Command::new(std::env::current_exe()?)
        .args(["--exact", TEST_NAME, "--ignored", "--nocapture", "--test-threads=1"])
        .env("DISPLAY", &server.display)
        .env(HOST_ENV, "1")
        .env(CONFIG_ENV, &config)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("could not start the window host")?;
    let mut host = KillOnDrop(host);
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let mut screen = Screen::connect(&server.display)?;
    let first = screen.wait_for_window(&mut host.0).with_context(|| {
        format!("the window never showed (window host log {}):\n{}", log_path.display(), log_text())
    })?;
    // Three cues from an allowed sender: a note, a CC and an address nothing maps.
    send_cues(cue_port)?;
    std::thread::sleep(Duration::from_secs(1));
    // It runs: the host's transport rolls, so the readout moves on from the first capture.
    let (last, moved) = screen.wait_until(SETTLE_WITHIN, |image| image.rows(READOUT) != first.rows(READOUT))?;
    ensure!(host.0.try_wait()?.is_none(), "the window host died:\n{}", log_text());

    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().context("no target dir")?;
    let shots_dir = target_dir.join("screenshots");
    std::fs::create_dir_all(&shots_dir)?;
    let png_path = shots_dir.join("editor.png");
    write_png(&png_path, &last)?;
    eprintln!("screenshot: {}", png_path.display());

    // Check what was written, as anyone opening the file would see it.
    let image = read_png(&png_path)?;
    ensure!(
        (image.width, image.height) == WINDOW_SIZE,
        "the window is {}x{}, the editor asks for {}x{}",
        image.width,
        image.height,
        WINDOW_SIZE.0,
        WINDOW_SIZE.1
    );
    let colours = image.distinct_colours();
    ensure!(colours >= 32, "only {colours} colours: the window is blank or not drawn");
    let background = image.share_of_commonest();
    ensure!(background < 0.97, "{:.1}% of the window is one colour: nothing drawn", background * 100.0);
    // The readout: 76 px digits in near-white across the top band.
    let bright = image.count_in(READOUT, |[r, g, b]| r > 200 && g > 200 && b > 200);
    ensure!(bright > 1500, "only {bright} bright pixels where the timecode readout goes");
    ensure!(moved, "the readout did not change while the transport rolled");

    // A person types a name where an address goes: refused in place, in red, with the reason.
    let reds_before = last.count_in(BELOW_TABS, is_red);
    screen.click(ADD_TARGET_FIELD)?;
    screen.type_text("localhost")?;
    screen.press(KEYSYM_RETURN)?;
    let (refused, _) =
        screen.wait_until(SETTLE_WITHIN, |image| image.count_in(BELOW_TABS, is_red) > reds_before + 100)?;
    write_png(&shots_dir.join("editor-refused.png"), &refused)?;
    let reds = refused.count_in(BELOW_TABS, is_red);
    ensure!(
        reds > reds_before + 100,
        "no reason in red after typing an invalid target ({reds_before} → {reds} red pixels; did the layout \
         move? ADD_TARGET_FIELD is {ADD_TARGET_FIELD:?})"
    );

    // The text stays for fixing: erase it, type a real address, and timecode goes there at once,
    // without re-activating the plugin.
    let added = UdpSocket::bind("127.0.0.1:0")?;
    added.set_read_timeout(Some(Duration::from_secs(10)))?;
    screen.click(ADD_TARGET_FIELD)?; // Enter took the focus away; the click puts the cursor at the end.
    for _ in "localhost".chars() {
        screen.press(KEYSYM_BACKSPACE)?;
    }
    screen.type_text(&added.local_addr()?.to_string())?;
    screen.press(KEYSYM_RETURN)?;
    std::thread::sleep(Duration::from_millis(600));
    write_png(&shots_dir.join("editor-added.png"), &screen.grab()?)?;
    let mut buf = [0u8; 1024];
    let (n, _) = added.recv_from(&mut buf).context("no timecode at the target added in the window")?;
    ensure!(buf[..n].starts_with(b"#bundle"), "not a timecode bundle: {:?}", &buf[..n.min(32)]);

    // The host's project runs at 29.97 DF (the window host reports it as a VST3 host would).
    // Choosing 25 fps in the window: a red strip says the two disagree; back to 29.97 DF, it goes.
    let agreeing = screen.grab()?;
    ensure!(warn_fill_in(&agreeing) == 0, "a warning strip while the host's rate agrees");
    screen.click(FRAME_RATE_COMBO)?;
    let (menu, _) = screen.wait_until(SETTLE_WITHIN, |image| image.rows(BELOW_TABS) != agreeing.rows(BELOW_TABS))?;
    write_png(&shots_dir.join("editor-rate-menu.png"), &menu)?;
    screen.click(FRAME_RATE_25)?;
    let (warned, shown) = screen.wait_until(SETTLE_WITHIN, |image| warn_fill_in(image) > 2000)?;
    write_png(&shots_dir.join("editor-host-rate.png"), &warned)?;
    ensure!(
        shown,
        "no red strip after choosing 25 fps against the host's 29.97 DF ({} pixels; FRAME_RATE_COMBO \
         {FRAME_RATE_COMBO:?}, FRAME_RATE_25 {FRAME_RATE_25:?})",
        warn_fill_in(&warned)
    );
    // The readout says 25 fps now, not DF.
    ensure!(amber_in_rows(&warned, READOUT) < amber_in_rows(&agreeing, READOUT), "the DF marker stayed");
    screen.click(FRAME_RATE_COMBO_WARNED)?;
    let (menu, _) = screen.wait_until(SETTLE_WITHIN, |image| image.rows(BELOW_TABS) != warned.rows(BELOW_TABS))?;
    write_png(&shots_dir.join("editor-rate-menu-warned.png"), &menu)?;
    screen.click(FRAME_RATE_29_97_DF_WARNED)?;
    let (_, gone) = screen.wait_until(SETTLE_WITHIN, |image| warn_fill_in(image) == 0)?;
    ensure!(gone, "the red strip stayed after going back to 29.97 DF");

    // The "Cue input" tab lists the cues just sent, the unmapped one in amber.
    screen.click(CUE_TAB)?;
    let (cues, _) = screen.wait_until(SETTLE_WITHIN, |image| amber_in(image) > 20)?;
    write_png(&shots_dir.join("editor-cues.png"), &cues)?;
    ensure!(cues.rows(BELOW_TABS) != refused.rows(BELOW_TABS), "clicking {CUE_TAB:?} did not change the tab");
    let amber = amber_in(&cues);
    ensure!(amber > 20, "no amber (an unmapped or dropped cue) on the cue tab: {amber} pixels");

    // The "Cue map" tab: Learn takes the next cue's address, Add maps it, and the same cue is
    // then acknowledged `ok` instead of `unmapped`: the cue thread took the new map at once.
    screen.click(MAP_TAB)?;
    let (map, changed) = screen.wait_until(SETTLE_WITHIN, |image| image.rows(BELOW_TABS) != cues.rows(BELOW_TABS))?;
    ensure!(changed, "clicking {MAP_TAB:?} did not change the tab");
    screen.click(LEARN_BUTTON)?;
    let (learning, _) = screen.wait_until(SETTLE_WITHIN, |image| image.rows(BELOW_TABS) != map.rows(BELOW_TABS))?;
    ensure!(cue_status(cue_port, "/show/outro")? == AckStatus::Unmapped, "/show/outro is mapped already");
    let (_, learned) = screen.wait_until(SETTLE_WITHIN, |image| image.rows(BELOW_TABS) != learning.rows(BELOW_TABS))?;
    ensure!(learned, "Learn did not take the cue's address");
    screen.click(ADD_MAPPING_BUTTON)?;
    let deadline = Instant::now() + SETTLE_WITHIN;
    while cue_status(cue_port, "/show/outro")? != AckStatus::Ok {
        ensure!(Instant::now() < deadline, "the learned mapping never took effect ({ADD_MAPPING_BUTTON:?} is Add?)");
        std::thread::sleep(Duration::from_millis(100));
    }
    write_png(&shots_dir.join("editor-map.png"), &screen.grab()?)?;
    ensure!(host.0.try_wait()?.is_none(), "the window host died:\n{}", log_text());

    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Rows of the big readout.
const READOUT: std::ops::Range<u32> = 0..105;
/// Rows below the tab bar.
const BELOW_TABS: std::ops::Range<u32> = 170..WINDOW_SIZE.1;
/// Window coordinates of the "add target" field on the Timecode tab.
const ADD_TARGET_FIELD: (i16, i16) = (110, 443);
/// Window coordinates of the Frame Rate drop-down on the Timecode tab.
const FRAME_RATE_COMBO: (i16, i16) = (245, 217);
/// Its "25 fps" entry, the list open.
const FRAME_RATE_25: (i16, i16) = (245, 295);
/// The drop-down with the warning strip above it.
const FRAME_RATE_COMBO_WARNED: (i16, i16) = (245, 267);
/// Its "29.97 fps drop-frame" entry, the list open, with the warning strip.
const FRAME_RATE_29_97_DF_WARNED: (i16, i16) = (245, 397);
/// Window coordinates of the "Cue input" tab.
const CUE_TAB: (i16, i16) = (144, 150);
/// Window coordinates of the "Cue map" tab.
const MAP_TAB: (i16, i16) = (234, 150);
/// Window coordinates of the "Learn" button of the Cue map tab's "add" row (empty map).
const LEARN_BUTTON: (i16, i16) = (33, 319);
/// Window coordinates of the "Add" button of that row.
const ADD_MAPPING_BUTTON: (i16, i16) = (621, 293);
/// X keysym of the Return key.
const KEYSYM_RETURN: u32 = 0xff0d;
/// X keysym of the BackSpace key.
const KEYSYM_BACKSPACE: u32 = 0xff08;
/// X keysym of the left Shift key.
const KEYSYM_SHIFT: u32 = 0xffe1;

/// How long the window may take to show the effect of a click or a key.
const SETTLE_WITHIN: Duration = Duration::from_secs(15);

/// Pixels in the window's amber (refused cues, drop counts) below the tabs, anti-aliased.
fn amber_in(image: &Image) -> usize {
    amber_in_rows(image, BELOW_TABS)
}

/// Pixels in the fill of a warning strip (`WARN_FILL` in `plugin/src/editor/view.rs`).
fn warn_fill_in(image: &Image) -> usize {
    image.count_in(0..WINDOW_SIZE.1, |p| p == [0x6e, 0x1c, 0x1c])
}

/// Amber pixels (the DF marker, refused cues) in `rows`.
fn amber_in_rows(image: &Image, rows: std::ops::Range<u32>) -> usize {
    image.count_in(rows, |[r, g, b]| r > 180 && (120..220).contains(&g) && b < 110)
}

/// The window's red (refusals), anti-aliased.
fn is_red([r, g, b]: [u8; 3]) -> bool {
    r > 200 && g < 140 && b < 140
}

/// `/cue/60` (velocity 100, ID 1), `/trigger/7` (0.5) and `/show/intro` (unmapped) to the cue port.
fn send_cues(port: u16) -> anyhow::Result<()> {
    use rosc::{OscMessage, OscPacket, OscType};
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    for (addr, args) in [
        ("/cue/60", vec![OscType::Int(100), OscType::Int(1)]),
        ("/trigger/7", vec![OscType::Float(0.5)]),
        ("/show/intro", vec![]),
    ] {
        let packet = OscPacket::Message(OscMessage { addr: addr.into(), args });
        let bytes = rosc::encoder::encode(&packet).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        socket.send_to(&bytes, ("127.0.0.1", port))?;
    }
    Ok(())
}

/// Sends `address` to the cue port and returns the ack's status.
fn cue_status(port: u16, address: &str) -> anyhow::Result<AckStatus> {
    use rosc::{OscMessage, OscPacket};
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_secs(5)))?;
    let packet = OscPacket::Message(OscMessage { addr: address.into(), args: vec![] });
    let bytes = rosc::encoder::encode(&packet).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    socket.send_to(&bytes, ("127.0.0.1", port))?;
    let mut buf = [0u8; 1024];
    let n = socket.recv(&mut buf).with_context(|| format!("no /ack for {address}"))?;
    let reply = match rosc::decoder::decode_udp(&buf[..n]).map_err(|e| anyhow::anyhow!("{e:?}"))?.1 {
        OscPacket::Message(m) => m,
        OscPacket::Bundle(_) => bail!("a bundle where an /ack was expected"),
    };
    Ok(Ack::from_osc(&reply).with_context(|| format!("not an /ack: {reply:?}"))?.status)
}

/// The X display the window is on: finds the window, captures it, and plays a person at it
/// (XTEST: pointer moves, clicks, keys).
struct Screen {
    /// The connection.
    conn: x11rb::rust_connection::RustConnection,
    /// The root window.
    root: u32,
    /// The editor's window, once found.
    window: u32,
}

impl Screen {
    fn connect(display: &str) -> anyhow::Result<Self> {
        use x11rb::connection::Connection;
        let (conn, screen) = x11rb::connect(Some(display)).context("could not connect to Xvfb")?;
        let root = conn.setup().roots[screen].root;
        Ok(Self { conn, root, window: 0 })
    }

    /// Waits for the window to be mapped and drawn; its first full frame, once the layout settled.
    fn wait_for_window(&mut self, host: &mut Child) -> anyhow::Result<Image> {
        let deadline = Instant::now() + FIRST_FRAME_WITHIN;
        loop {
            if let Some(status) = host.try_wait()? {
                bail!("the window host exited with {status}");
            }
            if let Some(window) = find_window(&self.conn, self.root)? {
                self.window = window;
                if self.grab().is_ok_and(|image| image.distinct_colours() >= 32) {
                    break;
                }
            }
            ensure!(
                Instant::now() < deadline,
                "no drawn {}x{} window within {FIRST_FRAME_WITHIN:?}",
                WINDOW_SIZE.0,
                WINDOW_SIZE.1
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_millis(500));
        self.grab()
    }

    fn grab(&self) -> anyhow::Result<Image> {
        grab(&self.conn, self.window)
    }

    /// Captures every 100 ms until `done` holds (at most `within`): that capture and `true`, or
    /// the last one and `false`.
    fn wait_until(&self, within: Duration, done: impl Fn(&Image) -> bool) -> anyhow::Result<(Image, bool)> {
        let deadline = Instant::now() + within;
        loop {
            let image = self.grab()?;
            if done(&image) {
                return Ok((image, true));
            }
            if Instant::now() >= deadline {
                return Ok((image, false));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A left click at `(x, y)` in the window.
    fn click(&self, (x, y): (i16, i16)) -> anyhow::Result<()> {
        use x11rb::protocol::xproto::{BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, ConnectionExt, MOTION_NOTIFY_EVENT};
        let origin = self.conn.translate_coordinates(self.window, self.root, 0, 0)?.reply()?;
        let (x, y) = (origin.dst_x + x, origin.dst_y + y);
        self.fake(MOTION_NOTIFY_EVENT, 0, x, y)?;
        std::thread::sleep(Duration::from_millis(100));
        self.fake(BUTTON_PRESS_EVENT, 1, x, y)?;
        std::thread::sleep(Duration::from_millis(50));
        self.fake(BUTTON_RELEASE_EVENT, 1, x, y)?;
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    }

    /// Types `text` (ASCII; Latin-1 characters are their own keysyms), with Shift where the
    /// keyboard map needs it (`:`).
    fn type_text(&self, text: &str) -> anyhow::Result<()> {
        for c in text.chars() {
            self.press(u32::from(c))?;
        }
        Ok(())
    }

    /// Presses and releases the key that makes `keysym`, holding Shift if it is the key's
    /// second symbol.
    fn press(&self, keysym: u32) -> anyhow::Result<()> {
        use x11rb::protocol::xproto::{KEY_PRESS_EVENT, KEY_RELEASE_EVENT};
        let (keycode, shifted) = self.key_for(keysym)?;
        let shift = if shifted { Some(self.key_for(KEYSYM_SHIFT)?.0) } else { None };
        if let Some(shift) = shift {
            self.fake(KEY_PRESS_EVENT, shift, 0, 0)?;
        }
        self.fake(KEY_PRESS_EVENT, keycode, 0, 0)?;
        std::thread::sleep(Duration::from_millis(20));
        self.fake(KEY_RELEASE_EVENT, keycode, 0, 0)?;
        if let Some(shift) = shift {
            self.fake(KEY_RELEASE_EVENT, shift, 0, 0)?;
        }
        std::thread::sleep(Duration::from_millis(20));
        Ok(())
    }

    /// The keycode that makes `keysym`, and whether it takes Shift.
    fn key_for(&self, keysym: u32) -> anyhow::Result<(u8, bool)> {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::ConnectionExt;
        let setup = self.conn.setup();
        let count = setup.max_keycode - setup.min_keycode + 1;
        let mapping = self.conn.get_keyboard_mapping(setup.min_keycode, count)?.reply()?;
        let per = usize::from(mapping.keysyms_per_keycode).max(1);
        for level in [0, 1] {
            if let Some(index) = mapping.keysyms.chunks(per).position(|syms| syms.get(level) == Some(&keysym)) {
                return Ok((setup.min_keycode + u8::try_from(index)?, level == 1));
            }
        }
        bail!("no key makes keysym {keysym:#x}")
    }

    /// One fake input event through XTEST.
    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> anyhow::Result<()> {
        use x11rb::connection::Connection;
        use x11rb::protocol::xtest::ConnectionExt;
        self.conn.xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)?.check()?;
        self.conn.flush()?;
        Ok(())
    }
}

/// The mapped top-level window of the editor's size.
fn find_window(conn: &impl x11rb::connection::Connection, root: u32) -> anyhow::Result<Option<u32>> {
    use x11rb::protocol::xproto::{ConnectionExt, MapState};
    for window in conn.query_tree(root)?.reply()?.children {
        let Ok(attributes) = conn.get_window_attributes(window)?.reply() else { continue };
        let Ok(geometry) = conn.get_geometry(window)?.reply() else { continue };
        if attributes.map_state == MapState::VIEWABLE
            && (u32::from(geometry.width), u32::from(geometry.height)) == WINDOW_SIZE
        {
            return Ok(Some(window));
        }
    }
    Ok(None)
}

/// The window's pixels (Xvfb at depth 24: 32 bits per pixel, BGRX).
fn grab(conn: &impl x11rb::connection::Connection, window: u32) -> anyhow::Result<Image> {
    use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};
    let geometry = conn.get_geometry(window)?.reply()?;
    let (width, height) = (u32::from(geometry.width), u32::from(geometry.height));
    let reply = conn.get_image(ImageFormat::Z_PIXMAP, window, 0, 0, geometry.width, geometry.height, !0)?.reply()?;
    let pixels = (width * height) as usize;
    ensure!(
        reply.depth == 24 && reply.data.len() == pixels * 4,
        "unexpected image: depth {}, {} bytes",
        reply.depth,
        reply.data.len()
    );
    let rgb = reply.data.chunks_exact(4).flat_map(|bgrx| [bgrx[2], bgrx[1], bgrx[0]]).collect();
    Ok(Image { width, height, rgb })
}

/// An RGB image, 8 bits per channel, rows top to bottom.
#[derive(PartialEq)]
struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn pixels(&self) -> impl Iterator<Item = [u8; 3]> + '_ {
        self.rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]])
    }

    fn distinct_colours(&self) -> usize {
        let mut seen: Vec<[u8; 3]> = self.pixels().collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    /// The share of pixels that have the commonest colour.
    fn share_of_commonest(&self) -> f64 {
        let mut counts: HashMap<[u8; 3], usize> = HashMap::new();
        for p in self.pixels() {
            *counts.entry(p).or_default() += 1;
        }
        let most = counts.values().copied().max().unwrap_or(0);
        most as f64 / (self.width * self.height).max(1) as f64
    }

    /// The bytes of rows `rows`.
    fn rows(&self, rows: std::ops::Range<u32>) -> &[u8] {
        let stride = self.width as usize * 3;
        let end = (rows.end.min(self.height) as usize) * stride;
        &self.rgb[(rows.start as usize * stride).min(end)..end]
    }

    /// Pixels in rows `rows` for which `pick` holds.
    fn count_in(&self, rows: std::ops::Range<u32>, pick: impl Fn([u8; 3]) -> bool) -> usize {
        self.rows(rows).chunks_exact(3).filter(|p| pick([p[0], p[1], p[2]])).count()
    }
}

fn write_png(path: &Path, image: &Image) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("could not create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header().context("could not write the PNG header")?;
    writer.write_image_data(&image.rgb).context("could not write the PNG")?;
    writer.finish().context("could not finish the PNG")?;
    Ok(())
}

fn read_png(path: &Path) -> anyhow::Result<Image> {
    let file = std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().context("not a PNG")?;
    let mut rgb = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut rgb).context("could not decode the PNG")?;
    ensure!(info.color_type == png::ColorType::Rgb && info.bit_depth == png::BitDepth::Eight, "not 8-bit RGB");
    rgb.truncate(info.buffer_size());
    Ok(Image { width: info.width, height: info.height, rgb })
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// A running Xvfb on a display of its own; killed on drop.
struct Xvfb {
    /// `:N`.
    display: String,
    /// The server.
    _server: KillOnDrop,
}

impl Xvfb {
    /// Starts Xvfb on the first free display from :90, 1024x768 at depth 24.
    fn start(xvfb: &Path, work: &Path) -> anyhow::Result<Self> {
        for n in 90..190 {
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            if socket.exists() || Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            let display = format!(":{n}");
            let log = std::fs::File::create(work.join("xvfb.log"))?;
            let child = Command::new(xvfb)
                .args([display.as_str(), "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("could not start {}", xvfb.display()))?;
            let mut child = KillOnDrop(child);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if socket.exists() && x11rb::connect(Some(&display)).is_ok() {
                    return Ok(Self { display, _server: child });
                }
                if child.0.try_wait()?.is_some() {
                    break; // Another server took the display first: try the next.
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bail!("could not start Xvfb on any display from :90 to :189")
    }
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// -------------------------------------------------------------------------------------------------
// The window host: runs in a child process, on the display the test gives it.

fn host_window() -> anyhow::Result<()> {
    let mut plugin = OscTimecode::default();
    let params = plugin.params().param_map();
    set_plain(&params, "rate", 4.0)?; // 29.97 fps drop-frame (index 4 of the frozen list)
    set_plain(&params, "offset", 3600.0)?; // 01:00:00

    let layout = OscTimecode::AUDIO_IO_LAYOUTS[0];
    let config = BufferConfig {
        sample_rate: 48_000.0,
        min_buffer_size: None,
        max_buffer_size: BLOCK as u32,
        process_mode: ProcessMode::Realtime,
    };
    ensure!(plugin.activate(&layout, &config, &mut HostContext), "the plugin refused to activate");
    let editor =
        plugin.editor(AsyncExecutor::new(Arc::new(|_| {}), Arc::new(|_| {}))).context("the plugin has no editor")?;
    std::thread::Builder::new().name("audio".into()).spawn(move || play(plugin))?;

    let gui = GuiContext::new(Arc::new(HostGui { params }));
    let spawned = editor.spawn(None, false, None, gui, None).map_err(|e| anyhow::anyhow!("could not open: {e}"))?;
    let _handle = spawned.handle;
    <<<OscTimecode as Plugin>::Editor as Editor>::Handle as EditorHandle>::run_until_closed(spawned.window)
        .map_err(|e| anyhow::anyhow!("the window failed: {e}"))?;
    Ok(())
}

/// Samples per block.
const BLOCK: usize = 512;

/// The audio thread: a rolling transport from the project's start, one block per block period.
fn play(mut plugin: OscTimecode) {
    let mut channels = vec![vec![0.0f32; BLOCK]; 2];
    let period = Duration::from_secs_f64(BLOCK as f64 / 48_000.0);
    let start = Instant::now();
    for block in 0u64.. {
        let mut transport = Transport::new(48_000.0);
        transport.playing = true;
        transport.pos_samples = Some((block * BLOCK as u64) as i64);
        // A VST3-like host whose project runs at 29.97 drop-frame, as the plugin does at first.
        transport.frame_rate = Some(SmpteFrameRate { frames_per_second: 30, pull_down: Some(true), drop_frame: true });
        let mut context = HostProcess { transport };
        let mut buffer = Buffer::default();
        // SAFETY: the slices point into `channels`, which outlives the `process` call, and both
        // are BLOCK samples long.
        unsafe {
            buffer.set_slices(BLOCK, |slices| {
                let (left, right) = channels.split_at_mut(1);
                *slices = vec![&mut left[0][..], &mut right[0][..]];
            });
        }
        let mut aux = AuxiliaryBuffers { inputs: &mut [], outputs: &mut [] };
        plugin.process(&mut buffer, &mut aux, &mut context);
        let next = start + period.mul_f64((block + 1) as f64);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Sets the parameter `id` to the plain value `plain` directly, as a host restoring a project.
fn set_plain(params: &[(String, ParamPtr, String)], id: &str, plain: f32) -> anyhow::Result<()> {
    let (_, ptr, _) = params.iter().find(|(i, ..)| i == id).with_context(|| format!("no parameter {id}"))?;
    // SAFETY: the pointer comes from the plugin's `param_map()`, and the plugin (which owns the
    // parameters through an `Arc`) is alive for the whole call.
    unsafe {
        ptr._internal_set_normalized_value(ptr.preview_normalized(plain));
    }
    Ok(())
}

/// `activate()`'s context: nothing to do.
struct HostContext;

impl ActivateContext<OscTimecode> for HostContext {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute(&self, _task: ()) {}
    fn set_latency_samples(&self, _samples: u32) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

/// `process()`'s context: the transport; MIDI out is dropped.
struct HostProcess {
    transport: Transport,
}

impl ProcessContext<OscTimecode> for HostProcess {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    fn execute_background(&self, _task: ()) {}
    fn execute_gui(&self, _task: ()) {}
    fn transport(&self) -> &Transport {
        &self.transport
    }
    fn next_event(&mut self) -> Option<PluginNoteEvent<OscTimecode>> {
        None
    }
    fn try_send_event(
        &mut self,
        _event: PluginNoteEvent<OscTimecode>,
    ) -> Result<(), (PluginNoteEvent<OscTimecode>, SendEventError)> {
        Ok(())
    }
    fn set_latency_samples(&self, _samples: u32) {}
    fn request_restart(&self) {}
    fn set_current_voice_capacity(&self, _capacity: u32) {}
}

/// The editor's host connection: parameter changes go straight to the parameters.
struct HostGui {
    /// The plugin's parameters, to check that a pointer is one of them.
    params: Vec<(String, ParamPtr, String)>,
}

// SAFETY: `ParamPtr`s point into the plugin's parameters, which are `Sync` and live (behind an
// `Arc` the editor holds) as long as the window.
unsafe impl Send for HostGui {}
// SAFETY: as for `Send`.
unsafe impl Sync for HostGui {}

impl GuiContextInner for HostGui {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    unsafe fn raw_begin_set_parameter(&self, _param: ParamPtr) {}
    unsafe fn raw_set_parameter_normalized(&self, param: ParamPtr, normalized: f32) {
        if self.params.iter().any(|(_, p, _)| *p == param) {
            // SAFETY: `param` is one of the plugin's parameters (checked), which are alive.
            unsafe {
                param._internal_set_normalized_value(normalized);
            }
        }
    }
    unsafe fn raw_end_set_parameter(&self, _param: ParamPtr) {}
    fn get_state(&self) -> PluginState {
        PluginState { version: String::new(), params: BTreeMap::new(), fields: BTreeMap::new() }
    }
    fn set_state(&self, _state: PluginState) {}
    fn request_restart(&self) {}
}
