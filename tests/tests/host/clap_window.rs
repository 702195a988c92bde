//! The plugin window in the CLAP host, dragged by a person while cues hit the same parameter
//! (issue 19: "a parameter cue and a drag in the open window never interleave gestures"). The
//! scenario ([`drag_under_cues`]) and the display's helpers serve `vst3_window` too.
//!
//! The CLAP host opens the plugin's window the way a Linux host does (`clap.gui`: X11,
//! embedded in a window of the host's own), processes blocks on its audio thread in real time,
//! and records every parameter event the plugin gives it for Cue Macro 1. Meanwhile one thread
//! plays a person (XTEST: press on Cue Macro 1's slider in the window's Macros tab, about 180
//! small moves over 2 s, release) and another sends `/macro/1` cues, 0.25 and 0.75 by turns,
//! every 4 ms, from before the press until after the release. The host must see begin and end
//! strictly by turns (never begin, begin or end, end; none open at the end), every value inside
//! a gesture, exactly one gesture with the drag's values (the slider moves within 0.35–0.65,
//! so no drag value is a cue's), at least one cue value inside it (the overlap happened and was
//! joined), and every other gesture a whole cue: begin, 0.25 or 0.75, end.
//!
//! Two processes, as `plugin/tests/editor.rs`: the test starts Xvfb on a free display and runs
//! itself again in a child process with `DISPLAY` set from the start (the plugin's window opens
//! the display `DISPLAY` names; setting it in this process, where other tests run, would race
//! them), and the child is the host and the person. The test is
//! `#[ignore = "needs Xvfb: ..."]`; run with `--ignored` it fails when Xvfb is missing. Screenshots
//! go to `target/screenshots/clap-window-*.png` (`vst3-window-*.png` for `vst3_window`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use osc_timecode_tests::bundle::{BUNDLE_DIR_ENV, bundles};
use osc_timecode_tests::clap::{OutputEventKind, Param, RunReport, nice_plug_param_hash};
use osc_timecode_tests::cues::{CueSender, message};
use rosc::OscType;
use serde_json::json;

use crate::common::CueRig;

/// Set (to anything) in the child's environment: there the test is the host and the person.
const HOST_ENV: &str = "OSC_TIMECODE_CLAP_WINDOW_HOST";
/// The test's name in this binary, for running it again in the child.
const TEST_NAME: &str = "clap_window::a_drag_in_the_window_and_macro_cues_never_interleave_gestures";
/// How long the child may take: the window's first frame in a debug build with Mesa's software
/// renderer on a busy machine, the drag, and the rest.
const CHILD_WITHIN: Duration = Duration::from_secs(300);
/// How long the window may take to show its first frame.
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(120);
/// How long the window may take to show the effect of a click.
const SETTLE_WITHIN: Duration = Duration::from_secs(15);

/// The window's "Macros" tab, in window coordinates.
const MACROS_TAB: (i16, i16) = (397, 150);
/// Cue Macro 1's slider: its left end, right end and middle row, in window coordinates.
const SLIDER_1: (i16, i16, i16) = (107, 455, 239);
/// The values a cue sends; no drag value is one of them.
const CUE_VALUES: [f64; 2] = [0.25, 0.75];

#[test]
#[cfg_attr(target_os = "linux", ignore = "needs Xvfb: apt-get install xvfb")]
#[cfg_attr(not(target_os = "linux"), ignore = "drives the window over X11 (Linux only)")]
fn a_drag_in_the_window_and_macro_cues_never_interleave_gestures() {
    let result = if std::env::var_os(HOST_ENV).is_some() { host() } else { run_on_xvfb(TEST_NAME, HOST_ENV) };
    if let Err(e) = result {
        panic!("{e:#}");
    }
}

/// The test's first role: starts Xvfb and runs the test `test_name` of this binary again in a
/// child process on its display, with `host_env` set (so that there it takes its second role);
/// fails with the child's log if the child fails or takes longer than [`CHILD_WITHIN`].
pub(crate) fn run_on_xvfb(test_name: &str, host_env: &str) -> anyhow::Result<()> {
    let Some(xvfb) = find_on_path("Xvfb") else {
        bail!("Xvfb is not installed: this test needs it (apt-get install xvfb; .ci/run does this)");
    };
    let bundle_dir = bundles().clap.parent().context("the CLAP bundle has no directory")?.to_owned();
    let work = std::env::temp_dir().join(format!("osc-timecode-window-{}-{test_name}", std::process::id()));
    std::fs::create_dir_all(&work).context("could not create the test's scratch directory")?;
    let server = Xvfb::start(&xvfb, &work)?;

    let log_path = work.join("host.log");
    let log = std::fs::File::create(&log_path).context("could not create the child's log")?;
    let child = Command::new(std::env::current_exe()?)
        .args(["--exact", test_name, "--ignored", "--nocapture", "--test-threads=1"])
        .env("DISPLAY", &server.display)
        .env(host_env, "1")
        .env(BUNDLE_DIR_ENV, &bundle_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("could not start the host")?;
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + CHILD_WITHIN;
    let status = loop {
        if let Some(status) = child.0.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        None => bail!("the host did not finish within {CHILD_WITHIN:?}; its log:\n{log_text}"),
        Some(status) if !status.success() => bail!("the host failed ({status}); its log:\n{log_text}"),
        Some(_) => eprintln!("{log_text}"),
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

// -------------------------------------------------------------------------------------------------
// The child: the host and the person, on the display `DISPLAY` names.

fn host() -> anyhow::Result<()> {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let screen = Screen::connect()?;
    // The host's window, over the whole screen at (0, 0): window coordinates are the screen's.
    let parent = screen.host_window()?;
    let size = cr.rig.plugin.open_window_x11(parent).map_err(|e| anyhow::anyhow!(e))?;
    let listen = cr.listen;
    let mut clap = ClapHost { cr, macro1: nice_plug_param_hash(Param::Macro(1).string_id()) };
    let result = drag_under_cues(&mut clap, listen, &screen, (size.width, size.height), "clap");
    clap.cr.rig.plugin.close_window();
    result?;
    let (_, on_audio) = clap.cr.rig.plugin.flush_requests();
    ensure!(on_audio == 0, "request_flush was called on the audio thread {on_audio} times");
    Ok(())
}

/// A host with the plugin's window open, as [`drag_under_cues`] drives it.
pub(crate) trait WindowHost {
    /// Keeps the host going for about 50 ms (blocks in real time, the UI thread's work) and
    /// returns Cue Macro 1's value and gesture events since the last call, in the order the host
    /// got them.
    fn tick(&mut self) -> anyhow::Result<Vec<OutputEventKind>>;
}

/// The CLAP host: its output events.
struct ClapHost {
    /// The plugin, its transport and its cue port.
    cr: CueRig,
    /// Cue Macro 1's CLAP id.
    macro1: u32,
}

impl WindowHost for ClapHost {
    fn tick(&mut self) -> anyhow::Result<Vec<OutputEventKind>> {
        let block = self.cr.block;
        let report = self.cr.rig.plugin.run_realtime(&mut self.cr.rig.transport, u64::from(block) * 10, block);
        Ok(param_events(&report, self.macro1))
    }
}

/// The scenario, the window open in `host` (`size` pixels at the screen's top left) and the
/// plugin listening for cues on `listen`: waits for the window's first frame, opens the Macros
/// tab, drags Cue Macro 1 while `/macro/1` cues arrive, and checks what the host got.
/// Screenshots are `<name>-window-*.png`.
pub(crate) fn drag_under_cues(
    host: &mut impl WindowHost,
    listen: SocketAddr,
    screen: &Screen,
    size: (u32, u32),
    name: &str,
) -> anyhow::Result<()> {
    let (width, height) = (u16::try_from(size.0)?, u16::try_from(size.1)?);
    let shots = shots_dir()?;
    let shot = |what: &str, image: &Image| write_png(&shots.join(format!("{name}-window-{what}.png")), image);

    // Blocks go on (in real time) while we wait for the window's first frame.
    let mut events = Vec::new();
    let deadline = Instant::now() + FIRST_FRAME_WITHIN;
    loop {
        events.extend(host.tick()?);
        if screen.grab(width, height)?.distinct_colours() >= 32 {
            break;
        }
        ensure!(Instant::now() < deadline, "the window showed nothing within {FIRST_FRAME_WITHIN:?}");
    }
    // Half a second more for the layout to settle before anything is clicked.
    for _ in 0..10 {
        events.extend(host.tick()?);
    }
    let first = screen.grab(width, height)?;
    shot("first", &first)?;

    screen.click(MACROS_TAB)?;
    let deadline = Instant::now() + SETTLE_WITHIN;
    let tab = loop {
        events.extend(host.tick()?);
        let image = screen.grab(width, height)?;
        if image.rows(170..u32::from(height)) != first.rows(170..u32::from(height)) {
            break image;
        }
        ensure!(Instant::now() < deadline, "clicking {MACROS_TAB:?} did not change the tab");
    };
    shot("macros", &tab)?;
    ensure!(events.is_empty(), "parameter events before anyone touched anything: {events:?}");

    // The cues, from before the press until after the release, and the person.
    let stop_cues = Arc::new(AtomicBool::new(false));
    let cues = {
        let stop = Arc::clone(&stop_cues);
        std::thread::spawn(move || {
            let sender = CueSender::new(listen);
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let value = CUE_VALUES[sent % 2] as f32;
                sender.send_packet(&message("/macro/1", vec![OscType::Float(value)]));
                sent += 1;
                std::thread::sleep(Duration::from_millis(4));
            }
            sent
        })
    };
    let person = std::thread::spawn(move || -> anyhow::Result<()> {
        let screen = Screen::connect()?;
        std::thread::sleep(Duration::from_millis(400));
        screen.drag(SLIDER_1)?;
        std::thread::sleep(Duration::from_millis(400));
        Ok(())
    });
    while !person.is_finished() {
        events.extend(host.tick()?);
    }
    person.join().map_err(|_| anyhow::anyhow!("the person's thread panicked"))??;
    stop_cues.store(true, Ordering::Relaxed);
    let sent = cues.join().map_err(|_| anyhow::anyhow!("the cue thread panicked"))?;
    // The last cues and gestures reach the host in the next blocks.
    for _ in 0..5 {
        events.extend(host.tick()?);
    }
    shot("dragged", &screen.grab(width, height)?)?;

    let gestures = gestures(&events)?;
    let (drags, cue_gestures): (Vec<_>, Vec<_>) =
        gestures.iter().partition(|values| values.iter().any(|v| !CUE_VALUES.contains(v)));
    eprintln!(
        "{name}: {sent} cues sent, {} parameter events: {} gestures, {} of them cues outside the drag",
        events.len(),
        gestures.len(),
        cue_gestures.len()
    );
    ensure!(drags.len() == 1, "one drag, one gesture; got {} gestures with drag values: {drags:?}", drags.len());
    let joined = drags[0].iter().filter(|v| CUE_VALUES.contains(v)).count();
    ensure!(joined > 0, "no cue value inside the drag's gesture (the overlap never happened?): {:?}", drags[0]);
    eprintln!("{name}: the drag: {} values, {joined} of them cues joined to it", drags[0].len());
    ensure!(!cue_gestures.is_empty(), "no cue gesture outside the drag");
    for values in &cue_gestures {
        ensure!(values.len() == 1, "a cue outside the drag is one value in its own gesture: {values:?}");
    }
    Ok(())
}

/// Macro 1's value and gesture events in `report`, in order.
fn param_events(report: &RunReport, param: u32) -> Vec<OutputEventKind> {
    report
        .events
        .iter()
        .map(|e| e.kind)
        .filter(|kind| match *kind {
            OutputEventKind::ParamValue { param_id, .. }
            | OutputEventKind::GestureBegin { param_id }
            | OutputEventKind::GestureEnd { param_id } => param_id == param,
            _ => false,
        })
        .collect()
}

/// The values of each gesture in `events`, checking that begin and end come strictly by turns,
/// that every value is inside a gesture and that none is open at the end.
pub(crate) fn gestures(events: &[OutputEventKind]) -> anyhow::Result<Vec<Vec<f64>>> {
    let mut done = Vec::new();
    let mut open: Option<Vec<f64>> = None;
    let around = |i: usize| &events[i.saturating_sub(4)..(i + 4).min(events.len())];
    for (i, event) in events.iter().enumerate() {
        match *event {
            OutputEventKind::GestureBegin { .. } => {
                ensure!(open.is_none(), "begin, begin: event {i} of {}: {:?}", events.len(), around(i));
                open = Some(Vec::new());
            }
            OutputEventKind::ParamValue { value, .. } => match open.as_mut() {
                Some(values) => values.push(value),
                None => bail!("a value outside any gesture: event {i}: {:?}", around(i)),
            },
            OutputEventKind::GestureEnd { .. } => {
                let values = open.take().with_context(|| format!("end, end: event {i}: {:?}", around(i)))?;
                done.push(values);
            }
            _ => {}
        }
    }
    ensure!(open.is_none(), "a gesture left open at the end: {:?}", open);
    Ok(done)
}

/// The checker itself: it refuses what the host must never see.
#[test]
fn the_gesture_checker_refuses_interleaved_open_and_stray_events() {
    let (b, e) = (OutputEventKind::GestureBegin { param_id: 1 }, OutputEventKind::GestureEnd { param_id: 1 });
    let v = |value| OutputEventKind::ParamValue { param_id: 1, value };
    assert_eq!(gestures(&[b, v(0.5), v(0.25), e, b, v(0.75), e]).unwrap(), [vec![0.5, 0.25], vec![0.75]]);
    for (bad, why) in [
        (vec![b, v(0.5), b, v(0.25), e, e], "begin, begin"),
        (vec![b, v(0.5), e, e], "end, end"),
        (vec![v(0.5)], "a value outside any gesture"),
        (vec![b, v(0.5)], "left open"),
    ] {
        let error = gestures(&bad).expect_err(why).to_string();
        assert!(error.contains(why), "{bad:?}: {error}");
    }
}

fn shots_dir() -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().context("no target dir")?.join("screenshots");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// The X display (`DISPLAY`): the host's window, captures, and a person's pointer (XTEST).
pub(crate) struct Screen {
    /// The connection.
    conn: x11rb::rust_connection::RustConnection,
    /// The root window.
    root: u32,
    /// The screen's size in pixels.
    size: (u16, u16),
}

impl Screen {
    pub(crate) fn connect() -> anyhow::Result<Self> {
        use x11rb::connection::Connection;
        let (conn, screen) = x11rb::connect(None).context("could not connect to the X display in DISPLAY")?;
        let setup = &conn.setup().roots[screen];
        let (root, size) = (setup.root, (setup.width_in_pixels, setup.height_in_pixels));
        Ok(Self { conn, root, size })
    }

    /// A mapped window of the screen's size at (0, 0), for the plugin's window to live in (no
    /// window manager moves it).
    pub(crate) fn host_window(&self) -> anyhow::Result<u32> {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ConnectionExt, CreateWindowAux, WindowClass};
        let window = self.conn.generate_id()?;
        let (width, height) = self.size;
        self.conn
            .create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                window,
                self.root,
                0,
                0,
                width,
                height,
                0,
                WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &CreateWindowAux::new(),
            )?
            .check()?;
        self.conn.map_window(window)?.check()?;
        self.conn.flush()?;
        Ok(window)
    }

    /// The screen's top-left `width` × `height` pixels (depth 24: 32 bits per pixel, BGRX).
    fn grab(&self, width: u16, height: u16) -> anyhow::Result<Image> {
        use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};
        let reply = self.conn.get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, width, height, !0)?.reply()?;
        let pixels = usize::from(width) * usize::from(height);
        ensure!(
            reply.depth == 24 && reply.data.len() == pixels * 4,
            "unexpected image: depth {}, {} bytes",
            reply.depth,
            reply.data.len()
        );
        let rgb = reply.data.chunks_exact(4).flat_map(|bgrx| [bgrx[2], bgrx[1], bgrx[0]]).collect();
        Ok(Image { width: u32::from(width), height: u32::from(height), rgb })
    }

    /// A left click at `(x, y)`.
    fn click(&self, (x, y): (i16, i16)) -> anyhow::Result<()> {
        use x11rb::protocol::xproto::{BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, MOTION_NOTIFY_EVENT};
        self.fake(MOTION_NOTIFY_EVENT, 0, x, y)?;
        std::thread::sleep(Duration::from_millis(100));
        self.fake(BUTTON_PRESS_EVENT, 1, x, y)?;
        std::thread::sleep(Duration::from_millis(50));
        self.fake(BUTTON_RELEASE_EVENT, 1, x, y)?;
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    }

    /// A person's drag on a slider (`left`, `right`, `y`): press at 40 % of its width, move in
    /// steps of a pixel to 60 %, back to 40 % and to the middle, 11 ms apart (about 2 s on a
    /// 360-pixel slider),
    /// release. The slider's value stays within 0.35–0.65.
    fn drag(&self, (left, right, y): (i16, i16, i16)) -> anyhow::Result<()> {
        use x11rb::protocol::xproto::{BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, MOTION_NOTIFY_EVENT};
        let at = |share: f64| left + (f64::from(right - left) * share).round() as i16;
        let (from, to, middle) = (at(0.4), at(0.6), at(0.5));
        self.fake(MOTION_NOTIFY_EVENT, 0, from, y)?;
        std::thread::sleep(Duration::from_millis(100));
        self.fake(BUTTON_PRESS_EVENT, 1, from, y)?;
        let path = (from..=to).chain((from..to).rev()).chain(from..=middle);
        for x in path {
            std::thread::sleep(Duration::from_millis(11));
            self.fake(MOTION_NOTIFY_EVENT, 0, x, y)?;
        }
        std::thread::sleep(Duration::from_millis(50));
        self.fake(BUTTON_RELEASE_EVENT, 1, middle, y)?;
        Ok(())
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

/// An RGB image, 8 bits per channel, rows top to bottom.
pub(crate) struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn distinct_colours(&self) -> usize {
        let mut seen: Vec<[u8; 3]> = self.rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    /// The bytes of rows `rows`.
    fn rows(&self, rows: std::ops::Range<u32>) -> &[u8] {
        let stride = self.width as usize * 3;
        let end = (rows.end.min(self.height) as usize) * stride;
        &self.rgb[(rows.start as usize * stride).min(end)..end]
    }
}

fn write_png(path: &Path, image: &Image) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("could not create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("could not write the PNG header")?;
    writer.write_image_data(&image.rgb).context("could not write the PNG")?;
    writer.finish().context("could not finish the PNG")?;
    Ok(())
}

/// A running Xvfb on a display of its own; killed on drop.
struct Xvfb {
    /// `:N`.
    display: String,
    /// The server.
    _server: KillOnDrop,
}

impl Xvfb {
    /// Starts Xvfb on the first free display from :190, 1024x768 at depth 24 (`plugin/tests/
    /// editor.rs` starts from :90, so the two can run at once).
    fn start(xvfb: &Path, work: &Path) -> anyhow::Result<Self> {
        for n in 190..290 {
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            let lock = PathBuf::from(format!("/tmp/.X{n}-lock"));
            if socket.exists() || lock.exists() {
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
                // Ours only if its lock file names our server: two tests starting at once may
                // both try a display, and the one that lost answers on the winner's socket
                // until it exits.
                let ours = std::fs::read_to_string(&lock).is_ok_and(|pid| pid.trim() == child.0.id().to_string());
                if ours && socket.exists() && x11rb::connect(Some(&display)).is_ok() {
                    return Ok(Self { display, _server: child });
                }
                if child.0.try_wait()?.is_some() {
                    break; // Another server took the display first: try the next.
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bail!("could not start Xvfb on any display from :190 to :289")
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
