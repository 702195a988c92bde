//! A minimal VST3 host on the `vst3` crate's bindings: loads the module's shared library with
//! `libloading`, calls its entry function (`ModuleEntry` on Linux, `bundleEntry` on macOS,
//! `InitDll` on Windows) and `GetPluginFactory`, creates the component,
//! initialises it with a minimal `IHostApplication`, sets state through `IComponent::setState`
//! (nice-plug reads the bare state JSON there), sets up processing and processes blocks with a
//! `ProcessContext` from the [`Transport`] model, keeping what the plugin adds to the output event
//! list ([`Vst3Run`]: control changes such as MTC quarter frames, `kCtrlQuarterFrame`, and
//! `DataEvent` bytes, copied during `addEvent` while the plugin's buffer is valid) and, when
//! asked ([`Vst3Plugin::capture_audio`]), its output audio (LTC tests).

use std::ffi::c_void;
use std::path::Path;
use std::ptr;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use vst3::Steinberg::Linux::{
    FileDescriptor, IEventHandler, IEventHandlerTrait, IRunLoop, IRunLoopTrait, ITimerHandler, TimerInterval,
};
use vst3::Steinberg::Vst::Event_::EventTypes_;
use vst3::Steinberg::Vst::FrameRate_::FrameRateFlags_::{kDropRate, kPullDownRate};
use vst3::Steinberg::Vst::ProcessContext_::StatesAndFlags_::{
    kCycleActive, kCycleValid, kPlaying, kProjectTimeMusicValid, kSmpteValid, kTempoValid, kTimeSigValid,
};
use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, BusDirections_, Event, IAudioProcessor, IAudioProcessorTrait, IComponent,
    IComponentHandler, IComponentHandlerTrait, IComponentTrait, IEditController, IEditControllerTrait, IEventList,
    IEventListTrait, IHostApplication, IHostApplicationTrait, IProcessContextRequirements,
    IProcessContextRequirementsTrait, MediaTypes_, ParamID, ParamValue, ProcessContext, ProcessData, ProcessModes_,
    ProcessSetup, SpeakerArr, SpeakerArrangement, String128, SymbolicSampleSizes_,
};
use vst3::Steinberg::{
    FUnknown, IBStream, IBStream_, IBStreamTrait, IPlugFrame, IPlugFrameTrait, IPlugView, IPlugViewTrait,
    IPluginBaseTrait, IPluginFactory, IPluginFactory2, IPluginFactory2Trait, IPluginFactoryTrait, PClassInfo,
    PClassInfo2, TUID, ViewRect, int32, int64, kInvalidArgument, kPlatformTypeX11EmbedWindowID, kResultFalse,
    kResultOk, tresult,
};
use vst3::{Class, ComPtr, ComRef, ComWrapper, Interface};

use crate::bundle::{PLUGIN_NAME, bundles};
use crate::transport::Transport;

/// The name the host gives by default ([`Vst3Plugin::load`]).
pub const HOST_NAME: &str = "osc-timecode host tests";

/// A minimal host context: a name, no objects to create, and Linux's `IRunLoop` (event handlers
/// on file descriptors, run on the test's thread by [`Vst3Plugin::pump_run_loop`]; no timers).
/// It is also the `IPlugFrame` of the plugin's window ([`Vst3Plugin::open_window_x11`]), where
/// nice-plug looks for the `IRunLoop` of the window's tasks.
struct HostApp {
    /// What `getName` answers.
    name: String,
    /// The event handlers the plugin registered, with their descriptors. `[main-thread]`
    handlers: Mutex<Vec<(ComPtr<IEventHandler>, FileDescriptor)>>,
}

impl Class for HostApp {
    type Interfaces = (IHostApplication, IRunLoop, IPlugFrame);
}

impl IPlugFrameTrait for HostApp {
    /// The host's window has a fixed size.
    unsafe fn resizeView(&self, _view: *mut IPlugView, _new_size: *mut ViewRect) -> tresult {
        kResultFalse
    }
}

/// The host context of a host that offers no `IRunLoop` ([`Vst3Plugin::load_without_run_loop`]):
/// the same name and no objects to create, and `queryInterface(IRunLoop)` fails.
struct HostAppWithoutRunLoop(HostApp);

impl Class for HostAppWithoutRunLoop {
    type Interfaces = (IHostApplication,);
}

impl IHostApplicationTrait for HostAppWithoutRunLoop {
    unsafe fn getName(&self, name: *mut String128) -> tresult {
        // SAFETY: the caller's pointer, passed on.
        unsafe { self.0.getName(name) }
    }

    unsafe fn createInstance(&self, cid: *mut TUID, iid: *mut TUID, obj: *mut *mut c_void) -> tresult {
        // SAFETY: the caller's pointers, passed on.
        unsafe { self.0.createInstance(cid, iid, obj) }
    }
}

/// The host context the plugin was initialised with (kept alive as long as the plugin).
enum HostContext {
    /// With an `IRunLoop` (the default).
    WithRunLoop(ComWrapper<HostApp>),
    /// Without one.
    WithoutRunLoop(ComWrapper<HostAppWithoutRunLoop>),
}

impl IRunLoopTrait for HostApp {
    unsafe fn registerEventHandler(&self, handler: *mut IEventHandler, fd: FileDescriptor) -> tresult {
        // SAFETY: the plugin passes a live handler (or null); we keep a reference of our own.
        let Some(handler) = (unsafe { ComRef::from_raw(handler) }).map(|h| h.to_com_ptr()) else {
            return kInvalidArgument;
        };
        self.handlers.lock().expect("run loop lock").push((handler, fd));
        kResultOk
    }

    unsafe fn unregisterEventHandler(&self, handler: *mut IEventHandler) -> tresult {
        self.handlers.lock().expect("run loop lock").retain(|(h, _)| h.as_ptr() != handler);
        kResultOk
    }

    unsafe fn registerTimer(&self, _handler: *mut ITimerHandler, _milliseconds: TimerInterval) -> tresult {
        kResultFalse
    }

    unsafe fn unregisterTimer(&self, _handler: *mut ITimerHandler) -> tresult {
        kResultFalse
    }
}

/// A call the plugin made on the host's `IComponentHandler`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EditCall {
    /// `beginEdit(id)`.
    Begin(u32),
    /// `performEdit(id, normalized value)`.
    Perform(u32, f64),
    /// `endEdit(id)`.
    End(u32),
    /// `restartComponent(flags)`.
    Restart(i32),
}

/// An [`EditCall`] and the thread it came on: whether it was the host's main (UI) thread, the
/// thread that loaded the plugin and runs [`Vst3Plugin::pump_run_loop`], and which one it was.
#[derive(Debug, Clone, PartialEq)]
pub struct EditCallAt {
    /// The call.
    pub call: EditCall,
    /// It came on the main thread.
    pub on_main_thread: bool,
    /// The thread it came on.
    pub thread: ThreadId,
    /// That thread's name, if it has one: the operating system's (a thread the plugin spawned has
    /// its name there; the plugin's copy of `std` keeps it from ours).
    pub thread_name: Option<String>,
}

/// The calling thread's name as the operating system knows it.
#[cfg(unix)]
fn os_thread_name() -> Option<String> {
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: the calling thread, a buffer of the length given.
    if unsafe { libc::pthread_getname_np(libc::pthread_self(), buf.as_mut_ptr(), buf.len()) } != 0 {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
    (!name.is_empty()).then_some(name)
}

/// The calling thread's name as the operating system knows it (not asked here).
#[cfg(not(unix))]
fn os_thread_name() -> Option<String> {
    None
}

/// The host's `IComponentHandler`: records every call. `[thread-safe]`
struct ComponentHandler {
    /// The thread that loaded the plugin.
    main_thread: ThreadId,
    /// The calls so far, shared with [`Vst3Plugin`].
    calls: Arc<Mutex<Vec<EditCallAt>>>,
}

impl Class for ComponentHandler {
    type Interfaces = (IComponentHandler,);
}

impl ComponentHandler {
    fn record(&self, call: EditCall) -> tresult {
        let current = std::thread::current();
        let at = EditCallAt {
            call,
            on_main_thread: current.id() == self.main_thread,
            thread: current.id(),
            thread_name: os_thread_name().or_else(|| current.name().map(str::to_owned)),
        };
        self.calls.lock().expect("calls lock").push(at);
        kResultOk
    }
}

impl IComponentHandlerTrait for ComponentHandler {
    unsafe fn beginEdit(&self, id: ParamID) -> tresult {
        self.record(EditCall::Begin(id))
    }

    unsafe fn performEdit(&self, id: ParamID, value: ParamValue) -> tresult {
        self.record(EditCall::Perform(id, value))
    }

    unsafe fn endEdit(&self, id: ParamID) -> tresult {
        self.record(EditCall::End(id))
    }

    unsafe fn restartComponent(&self, flags: int32) -> tresult {
        self.record(EditCall::Restart(flags))
    }
}

impl IHostApplicationTrait for HostApp {
    unsafe fn getName(&self, name: *mut String128) -> tresult {
        if name.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: the caller passes a valid String128.
        let name = unsafe { &mut *name };
        let text: Vec<u16> = self.name.encode_utf16().collect();
        name.fill(0);
        for (d, s) in name.iter_mut().zip(text.iter().take(127)) {
            *d = *s as _;
        }
        kResultOk
    }

    unsafe fn createInstance(&self, _cid: *mut TUID, _iid: *mut TUID, obj: *mut *mut c_void) -> tresult {
        if !obj.is_null() {
            // SAFETY: the caller passes a valid out pointer.
            unsafe { *obj = ptr::null_mut() };
        }
        kResultFalse
    }
}

/// An in-memory `IBStream`.
struct MemStream {
    inner: Mutex<(Vec<u8>, usize)>,
}

impl Class for MemStream {
    type Interfaces = (IBStream,);
}

impl MemStream {
    fn new(data: Vec<u8>) -> Self {
        Self { inner: Mutex::new((data, 0)) }
    }
}

impl IBStreamTrait for MemStream {
    unsafe fn read(&self, buffer: *mut c_void, num_bytes: int32, num_bytes_read: *mut int32) -> tresult {
        let mut g = self.inner.lock().expect("stream lock");
        let (data, pos) = &mut *g;
        let n = (num_bytes.max(0) as usize).min(data.len().saturating_sub(*pos));
        if n > 0 {
            // SAFETY: the caller gives a buffer of at least `num_bytes` bytes.
            unsafe { ptr::copy_nonoverlapping(data[*pos..].as_ptr(), buffer as *mut u8, n) };
        }
        *pos += n;
        if !num_bytes_read.is_null() {
            // SAFETY: valid out pointer.
            unsafe { *num_bytes_read = n as int32 };
        }
        kResultOk
    }

    unsafe fn write(&self, buffer: *mut c_void, num_bytes: int32, num_bytes_written: *mut int32) -> tresult {
        let mut g = self.inner.lock().expect("stream lock");
        let (data, pos) = &mut *g;
        let n = num_bytes.max(0) as usize;
        // SAFETY: the caller gives a buffer of `num_bytes` bytes.
        let src = unsafe { std::slice::from_raw_parts(buffer as *const u8, n) };
        if data.len() < *pos + n {
            data.resize(*pos + n, 0);
        }
        data[*pos..*pos + n].copy_from_slice(src);
        *pos += n;
        if !num_bytes_written.is_null() {
            // SAFETY: valid out pointer.
            unsafe { *num_bytes_written = n as int32 };
        }
        kResultOk
    }

    unsafe fn seek(&self, pos: int64, mode: int32, result: *mut int64) -> tresult {
        let mut g = self.inner.lock().expect("stream lock");
        let (data, cur) = &mut *g;
        let base = match mode {
            m if m == IBStream_::IStreamSeekMode_::kIBSeekSet as int32 => 0,
            m if m == IBStream_::IStreamSeekMode_::kIBSeekCur as int32 => *cur as i64,
            m if m == IBStream_::IStreamSeekMode_::kIBSeekEnd as int32 => data.len() as i64,
            _ => return kInvalidArgument,
        };
        let new = base + pos;
        if new < 0 {
            return kInvalidArgument;
        }
        *cur = new as usize;
        if !result.is_null() {
            // SAFETY: valid out pointer.
            unsafe { *result = new };
        }
        kResultOk
    }

    unsafe fn tell(&self, pos: *mut int64) -> tresult {
        let g = self.inner.lock().expect("stream lock");
        if pos.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: valid out pointer.
        unsafe { *pos = g.1 as int64 };
        kResultOk
    }
}

/// `kCtrlQuarterFrame`: the `LegacyMIDICCOutEvent::controlNumber` of an MTC quarter frame
/// (VST3 SDK `ivstmidicontrollers.h`).
pub const CTRL_QUARTER_FRAME: u8 = 132;

/// One event the plugin added to the output event list, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vst3OutputEvent {
    /// The block (an index into [`Vst3Run::blocks`]).
    pub block: usize,
    /// `sampleOffset`: samples into the block.
    pub offset: i32,
    /// `busIndex`.
    pub bus: i32,
    /// What it is.
    pub kind: Vst3EventKind,
}

/// The output events the MTC tests look at, with their raw VST3 fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vst3EventKind {
    /// `kLegacyMIDICCOutEvent` (`controlNumber` 0-127 a CC, 128 aftertouch, 129 pitch bend, 130
    /// program change, 132 [`CTRL_QUARTER_FRAME`]).
    LegacyCc {
        /// `controlNumber`.
        control: u8,
        /// `channel`.
        channel: i8,
        /// `value`.
        value: i8,
        /// `value2`.
        value2: i8,
    },
    /// `kDataEvent`: its `type` (0 `kMidiSysEx`) and bytes.
    Data {
        /// `DataEvent::type`.
        data_type: u32,
        /// The bytes, copied during `addEvent`.
        bytes: Vec<u8>,
    },
    /// Any other event type.
    Other {
        /// `Event::type`.
        type_id: u16,
    },
}

/// How a VST3 system message reached the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vst3Carrier {
    /// `LegacyMIDICCOutEvent` with `controlNumber` [`CTRL_QUARTER_FRAME`].
    QuarterFrameCc,
    /// `DataEvent` of type `kMidiSysEx`, the bytes verbatim.
    DataEvent,
}

/// A MIDI system message out of the VST3 plugin, as bytes, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vst3SystemAt {
    /// The block (an index into [`Vst3Run::blocks`]).
    pub block: usize,
    /// Samples into the block.
    pub offset: i32,
    /// The event that carried it.
    pub carrier: Vst3Carrier,
    /// The raw MIDI bytes: `F1 dd` for a quarter frame control event.
    pub bytes: Vec<u8>,
}

/// One block as [`Vst3Plugin::run_events`] processed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vst3Block {
    /// Samples in the block.
    pub len: u32,
    /// The transport model's exact timeline sample at the block's first sample.
    pub timeline_start: i64,
    /// The transport was rolling.
    pub playing: bool,
}

/// What [`Vst3Plugin::run_events`] saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vst3Run {
    /// Output samples that were not the input (the plugin is a pass-through).
    pub mismatches: u64,
    /// Every block, in order.
    pub blocks: Vec<Vst3Block>,
    /// Every output event, block by block in the order added.
    pub events: Vec<Vst3OutputEvent>,
    /// The plugin's output audio, left and right, every sample of the run in order, when
    /// [`Vst3Plugin::capture_audio`] is on (else empty).
    pub audio: [Vec<f32>; 2],
}

impl Vst3Run {
    /// The MIDI system messages (MTC quarter frames and full frames), in order: quarter-frame
    /// control events as `F1 dd`, `DataEvent`s as their bytes. Other events are left out.
    pub fn system_messages(&self) -> Vec<Vst3SystemAt> {
        self.events
            .iter()
            .filter_map(|e| {
                let (carrier, bytes) = match &e.kind {
                    Vst3EventKind::LegacyCc { control: CTRL_QUARTER_FRAME, value, .. } => {
                        (Vst3Carrier::QuarterFrameCc, vec![0xf1, *value as u8])
                    }
                    Vst3EventKind::Data { bytes, .. } => (Vst3Carrier::DataEvent, bytes.clone()),
                    _ => return None,
                };
                Some(Vst3SystemAt { block: e.block, offset: e.offset, carrier, bytes })
            })
            .collect()
    }
}

/// The host's output event list: keeps a copy of every event added (the bytes of a
/// `DataEvent` too, which are only valid during the call). `[audio-thread]` during `process()`.
struct OutputEventList {
    /// The events of the current block: the raw event (its data pointer cleared) and our copy.
    events: Mutex<Vec<(Event, Vst3EventKind)>>,
}

impl Class for OutputEventList {
    type Interfaces = (IEventList,);
}

impl IEventListTrait for OutputEventList {
    unsafe fn getEventCount(&self) -> int32 {
        self.events.lock().expect("event list lock").len() as int32
    }

    unsafe fn getEvent(&self, index: int32, e: *mut Event) -> tresult {
        let events = self.events.lock().expect("event list lock");
        match (usize::try_from(index).ok().and_then(|i| events.get(i)), e.is_null()) {
            (Some((event, _)), false) => {
                // SAFETY: the caller passes a valid out pointer.
                unsafe { *e = *event };
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }

    unsafe fn addEvent(&self, e: *mut Event) -> tresult {
        if e.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: the caller passes a valid event for the call.
        let mut event = unsafe { *e };
        #[allow(clippy::unnecessary_cast)]
        let kind = match u32::from(event.r#type) {
            t if t == EventTypes_::kLegacyMIDICCOutEvent as u32 => {
                // SAFETY: the type says which union field is set.
                let cc = unsafe { event.__field0.midiCCOut };
                Vst3EventKind::LegacyCc {
                    control: cc.controlNumber,
                    channel: cc.channel as i8,
                    value: cc.value as i8,
                    value2: cc.value2 as i8,
                }
            }
            t if t == EventTypes_::kDataEvent as u32 => {
                // SAFETY: the type says which union field is set.
                let data = unsafe { event.__field0.data };
                let bytes = if data.bytes.is_null() {
                    Vec::new()
                } else {
                    // SAFETY: a DataEvent's `bytes` is valid for `size` bytes during the call.
                    unsafe { std::slice::from_raw_parts(data.bytes, data.size as usize) }.to_vec()
                };
                // The plugin's buffer is gone after the call: keep no pointer to it.
                event.__field0.data.bytes = ptr::null();
                Vst3EventKind::Data { data_type: data.r#type, bytes }
            }
            _ => Vst3EventKind::Other { type_id: event.r#type },
        };
        self.events.lock().expect("event list lock").push((event, kind));
        kResultOk
    }
}

/// The loaded module.
struct Module {
    lib: libloading::Library,
}

impl Module {
    fn load(path: &Path) -> Self {
        // SAFETY: loading the plugin under test runs its initialisers.
        let lib =
            unsafe { libloading::Library::new(path) }.unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()));
        let entered = enter(&lib);
        assert!(entered != Some(false), "{} returned false", ENTRY_EXIT.0);
        Self { lib }
    }

    fn factory(&self) -> ComPtr<IPluginFactory> {
        // SAFETY: `GetPluginFactory` is `IPluginFactory* PLUGIN_API GetPluginFactory()`.
        let get = unsafe { self.lib.get::<unsafe extern "system" fn() -> *mut c_void>(b"GetPluginFactory\0") }
            .expect("the module exports GetPluginFactory");
        // SAFETY: the factory comes with a reference we now own.
        let raw = unsafe { get() };
        // SAFETY: non-null pointers from GetPluginFactory are IPluginFactory objects.
        unsafe { ComPtr::from_raw(raw as *mut IPluginFactory) }.expect("GetPluginFactory returned null")
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        exit(&self.lib);
    }
}

/// The module's entry and exit functions on this OS, as the VST3 SDK's hosting code calls them
/// (`source/main/linuxmain.cpp`, `macmain.cpp`, `dllmain.cpp`; nice-plug exports the pair of the
/// OS it is built for): the entry once after loading, before anything else, the exit once after
/// every object is released.
const ENTRY_EXIT: (&str, &str) = if cfg!(target_os = "macos") {
    ("bundleEntry", "bundleExit")
} else if cfg!(windows) {
    ("InitDll", "ExitDll")
} else {
    ("ModuleEntry", "ModuleExit")
};

/// Calls the module's entry function ([`ENTRY_EXIT`]); `None` if the module exports none.
///
/// Linux's `bool ModuleEntry(void* sharedLibraryHandle)` and macOS's
/// `bool bundleEntry(CFBundleRef)` take a handle that nice-plug ignores: null stands in (the SDK
/// passes the dlopen handle, which libloading does not expose without consuming the library,
/// and the bundle reference, which would need CoreFoundation). Windows's `bool InitDll()` takes
/// nothing and uses the system calling convention.
fn enter(lib: &libloading::Library) -> Option<bool> {
    let name = format!("{}\0", ENTRY_EXIT.0);
    if cfg!(windows) {
        // SAFETY: the symbol's type is the VST3 SDK's `bool PLUGIN_API InitDll()`.
        let entry = unsafe { lib.get::<unsafe extern "system" fn() -> bool>(name.as_bytes()) }.ok()?;
        // SAFETY: calling the module's documented entry point once.
        Some(unsafe { entry() })
    } else {
        // SAFETY: the symbol's type is the VST3 SDK's `bool ModuleEntry(void*)` (Linux) or
        // `bool bundleEntry(CFBundleRef)` (macOS; a pointer too).
        let entry = unsafe { lib.get::<unsafe extern "C" fn(*mut c_void) -> bool>(name.as_bytes()) }.ok()?;
        // SAFETY: calling the module's documented entry point once; nice-plug ignores the handle.
        Some(unsafe { entry(ptr::null_mut()) })
    }
}

/// Calls the module's exit function ([`ENTRY_EXIT`]) if it exports one: `bool ModuleExit()`,
/// `bool bundleExit()` or `bool PLUGIN_API ExitDll()`.
fn exit(lib: &libloading::Library) {
    let name = format!("{}\0", ENTRY_EXIT.1);
    if cfg!(windows) {
        // SAFETY: the SDK's `bool PLUGIN_API ExitDll()`, once, after every object is released.
        if let Ok(exit) = unsafe { lib.get::<unsafe extern "system" fn() -> bool>(name.as_bytes()) } {
            // SAFETY: see above.
            unsafe { exit() };
        }
    } else {
        // SAFETY: the SDK's `bool ModuleExit()` or `bool bundleExit()`, once, after every
        // object is released.
        if let Ok(exit) = unsafe { lib.get::<unsafe extern "C" fn() -> bool>(name.as_bytes()) } {
            // SAFETY: see above.
            unsafe { exit() };
        }
    }
}

/// One class of the module's factory as `IPluginFactory2::getClassInfo2` describes it (what a
/// host's plugin scanner reads to sort plugins into its browser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vst3ClassInfo {
    /// `category`: `Audio Module Class` for the processor, `Component Controller Class` for an
    /// edit controller.
    pub category: String,
    /// `name`.
    pub name: String,
    /// `subCategories`: `|`-separated (`Fx|Tools`).
    pub sub_categories: String,
    /// `vendor`.
    pub vendor: String,
    /// `version`.
    pub version: String,
    /// `sdkVersion`.
    pub sdk_version: String,
}

/// Every class of the VST3 module's factory (building the bundles first if needed). Panics if
/// the factory is not an `IPluginFactory2`.
pub fn vst3_class_infos() -> Vec<Vst3ClassInfo> {
    let module = Module::load(&bundles().vst3_so);
    let factory = module.factory();
    let factory2 = factory.cast::<IPluginFactory2>().expect("the factory implements IPluginFactory2");
    // SAFETY: COM calls on the live factory with a valid out pointer to a zeroed POD struct.
    let infos = unsafe {
        (0..factory2.countClasses())
            .map(|i| {
                let mut info: PClassInfo2 = std::mem::zeroed();
                check(factory2.getClassInfo2(i, &mut info), "getClassInfo2");
                Vst3ClassInfo {
                    category: cstr_field(&info.category),
                    name: cstr_field(&info.name),
                    sub_categories: cstr_field(&info.subCategories),
                    vendor: cstr_field(&info.vendor),
                    version: cstr_field(&info.version),
                    sdk_version: cstr_field(&info.sdkVersion),
                }
            })
            .collect()
    };
    // The factory's references go before the module (and ModuleExit).
    drop(factory2);
    drop(factory);
    infos
}

/// One VST3 plugin instance.
pub struct Vst3Plugin {
    processor: ComPtr<IAudioProcessor>,
    component: ComPtr<IComponent>,
    /// The same object as its `IEditController`.
    controller: ComPtr<IEditController>,
    /// What the plugin called on the host's `IComponentHandler`, in order.
    edit_calls: Arc<Mutex<Vec<EditCallAt>>>,
    /// The plugin's window, while open ([`Vst3Plugin::open_window_x11`]).
    view: Option<ComPtr<IPlugView>>,
    /// The host context the plugin was initialised with (the plugin may hold it until dropped).
    _host: HostContext,
    active: bool,
    process_mode: int32,
    sample_rate: u32,
    max_block: u32,
    input: [Vec<f32>; 2],
    output: [Vec<f32>; 2],
    /// The project frame rate the process contexts report, if any.
    project_rate: Option<ProjectRate>,
    /// Keep the output audio of every run in [`Vst3Run::audio`] (LTC tests); off by default.
    pub capture_audio: bool,
    // Last: dropped (and ModuleExit called) after the objects above are released.
    _module: Module,
}

impl std::fmt::Debug for Vst3Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vst3Plugin")
            .field("active", &self.active)
            .field("sample_rate", &self.sample_rate)
            .finish_non_exhaustive()
    }
}

fn cstr_field(bytes: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = bytes.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(result: tresult, what: &str) {
    assert_eq!(result, kResultOk, "{what} returned {result}");
}

impl Vst3Plugin {
    /// Loads the VST3 module (building the bundles first if needed) and creates and initialises
    /// the plugin's component, with [`HOST_NAME`] as the host's name.
    pub fn load() -> Self {
        Self::load_as(HOST_NAME)
    }

    /// [`Vst3Plugin::load`], the host calling itself `host_name` (`IHostApplication::getName`).
    pub fn load_as(host_name: &str) -> Self {
        Self::load_with(host_name, true)
    }

    /// [`Vst3Plugin::load`] by a host whose context offers no `IRunLoop` (`queryInterface` fails),
    /// so the plugin cannot run anything on the host's UI thread through it.
    pub fn load_without_run_loop() -> Self {
        Self::load_with(HOST_NAME, false)
    }

    /// Loads and initialises the plugin, the host calling itself `host_name`, its context offering
    /// an `IRunLoop` if `run_loop`.
    fn load_with(host_name: &str, run_loop: bool) -> Self {
        let module = Module::load(&bundles().vst3_so);
        let factory = module.factory();
        // SAFETY (this block): COM calls on a live factory with valid out pointers.
        // SAFETY: COM calls on the live factory with valid out pointers; the created object is
        // an IComponent (we asked for that IID) and is owned by the ComPtr.
        let (component, host) = unsafe {
            let count = factory.countClasses();
            let mut found = None;
            for i in 0..count {
                let mut info: PClassInfo = std::mem::zeroed();
                check(factory.getClassInfo(i, &mut info), "getClassInfo");
                let (category, name) = (cstr_field(&info.category), cstr_field(&info.name));
                if category == "Audio Module Class" && name == PLUGIN_NAME {
                    found = Some(info.cid);
                }
            }
            let cid = found.unwrap_or_else(|| panic!("no \"Audio Module Class\" named {PLUGIN_NAME:?} in the factory"));
            let mut obj: *mut c_void = ptr::null_mut();
            check(
                factory.createInstance(cid.as_ptr(), IComponent::IID.as_ptr() as *const _, &mut obj),
                "createInstance(IComponent)",
            );
            let component = ComPtr::from_raw(obj as *mut IComponent).expect("createInstance gave null");
            let app = HostApp { name: host_name.to_owned(), handlers: Mutex::new(Vec::new()) };
            let host = if run_loop {
                HostContext::WithRunLoop(ComWrapper::new(app))
            } else {
                HostContext::WithoutRunLoop(ComWrapper::new(HostAppWithoutRunLoop(app)))
            };
            let host_unknown = match &host {
                HostContext::WithRunLoop(h) => h.as_com_ref::<IHostApplication>().expect("IHostApplication").as_ptr(),
                HostContext::WithoutRunLoop(h) => {
                    h.as_com_ref::<IHostApplication>().expect("IHostApplication").as_ptr()
                }
            } as *mut FUnknown;
            check(component.initialize(host_unknown), "IComponent::initialize");
            (component, host)
        };
        let processor = component.cast::<IAudioProcessor>().expect("the component is an IAudioProcessor");
        // nice-plug's component is its own edit controller; the host gives it a handler, as hosts do.
        let controller = component.cast::<IEditController>().expect("the component is an IEditController");
        let edit_calls = Arc::new(Mutex::new(Vec::new()));
        let handler =
            ComWrapper::new(ComponentHandler { main_thread: std::thread::current().id(), calls: edit_calls.clone() });
        let handler_ptr = handler.to_com_ptr::<IComponentHandler>().expect("IComponentHandler");
        // SAFETY: a live controller and handler (the controller keeps its own reference).
        check(unsafe { controller.setComponentHandler(handler_ptr.as_ptr()) }, "setComponentHandler");
        drop(factory);
        Self {
            processor,
            component,
            controller,
            edit_calls,
            view: None,
            _host: host,
            active: false,
            process_mode: ProcessModes_::kRealtime as int32,
            sample_rate: 0,
            max_block: 0,
            input: [Vec::new(), Vec::new()],
            output: [Vec::new(), Vec::new()],
            project_rate: None,
            capture_audio: false,
            _module: module,
        }
    }

    /// `IComponent::getState`: nice-plug's bare state JSON.
    pub fn get_state(&mut self) -> Vec<u8> {
        let stream = ComWrapper::new(MemStream::new(Vec::new()));
        let ptr = stream.to_com_ptr::<IBStream>().expect("IBStream");
        // SAFETY: a live component and stream.
        check(unsafe { self.component.getState(ptr.as_ptr()) }, "IComponent::getState");
        drop(ptr);
        stream.inner.lock().expect("stream lock").0.clone()
    }

    /// `IComponent::setState` with `bytes`.
    pub fn set_state(&mut self, bytes: &[u8]) {
        let stream = ComWrapper::new(MemStream::new(bytes.to_vec()));
        let ptr = stream.to_com_ptr::<IBStream>().expect("IBStream");
        // SAFETY: a live component and stream.
        check(unsafe { self.component.setState(ptr.as_ptr()) }, "IComponent::setState");
    }

    /// Sets up realtime processing at `sample_rate` with blocks up to `max_block`, activates and
    /// starts processing.
    pub fn activate(&mut self, sample_rate: u32, max_block: u32) {
        self.activate_with_mode(sample_rate, max_block, false);
    }

    /// Like [`Vst3Plugin::activate`], in `kOffline` process mode if `offline`.
    pub fn activate_with_mode(&mut self, sample_rate: u32, max_block: u32, offline: bool) {
        assert!(!self.active, "already active");
        self.process_mode = if offline { ProcessModes_::kOffline } else { ProcessModes_::kRealtime } as int32;
        // SAFETY: COM calls on a live component with pointers to locals that outlive them.
        unsafe {
            let mut ins: [SpeakerArrangement; 1] = [SpeakerArr::kStereo];
            let mut outs: [SpeakerArrangement; 1] = [SpeakerArr::kStereo];
            check(self.processor.setBusArrangements(ins.as_mut_ptr(), 1, outs.as_mut_ptr(), 1), "setBusArrangements");
            let mut setup = ProcessSetup {
                processMode: self.process_mode,
                symbolicSampleSize: SymbolicSampleSizes_::kSample32 as int32,
                maxSamplesPerBlock: max_block as int32,
                sampleRate: f64::from(sample_rate),
            };
            check(self.processor.setupProcessing(&mut setup), "setupProcessing");
            let audio = MediaTypes_::kAudio as int32;
            check(self.component.activateBus(audio, BusDirections_::kInput as int32, 0, 1), "activateBus(in)");
            check(self.component.activateBus(audio, BusDirections_::kOutput as int32, 0, 1), "activateBus(out)");
            check(self.component.setActive(1), "setActive(true)");
            // nice-plug returns kResultOk; some plugins return kNotImplemented here.
            let r = self.processor.setProcessing(1);
            assert!(r == kResultOk || r == vst3::Steinberg::kNotImplemented, "setProcessing(true) returned {r}");
        }
        self.active = true;
        self.sample_rate = sample_rate;
        self.max_block = max_block;
        let n = max_block as usize;
        self.input = [vec![0.0; n], vec![0.0; n]];
        self.output = [vec![0.0; n], vec![0.0; n]];
    }

    /// Calls `IAudioProcessor::setupProcessing` at `sample_rate` while active and processing, as a
    /// host that changes the device's rate without deactivating would. VST3 allows the call only
    /// while inactive (`setActive(false)` first), so this is a host breaking the contract. Returns
    /// what the plugin answered; the process contexts from now on carry the new rate.
    pub fn setup_processing_while_active(&mut self, sample_rate: u32) -> tresult {
        assert!(self.active, "activate first");
        let mut setup = ProcessSetup {
            processMode: self.process_mode,
            symbolicSampleSize: SymbolicSampleSizes_::kSample32 as int32,
            maxSamplesPerBlock: self.max_block as int32,
            sampleRate: f64::from(sample_rate),
        };
        // SAFETY: a COM call on a live component with a pointer to a local that outlives it.
        let result = unsafe { self.processor.setupProcessing(&mut setup) };
        self.sample_rate = sample_rate;
        result
    }

    /// The calls the plugin made on the host's `IComponentHandler` so far, in order.
    pub fn edit_calls(&self) -> Vec<EditCallAt> {
        self.edit_calls.lock().expect("calls lock").clone()
    }

    /// Runs the host's run loop once on this (the main) thread: calls `onFDIsSet` for every
    /// registered handler whose descriptor is readable. Returns how many were called (0 when the
    /// host offers no run loop: [`Vst3Plugin::load_without_run_loop`]).
    pub fn pump_run_loop(&self) -> usize {
        let HostContext::WithRunLoop(host) = &self._host else { return 0 };
        let ready: Vec<(ComPtr<IEventHandler>, FileDescriptor)> = host
            .handlers
            .lock()
            .expect("run loop lock")
            .iter()
            .filter(|(_, fd)| {
                let mut pfd = libc::pollfd { fd: *fd, events: libc::POLLIN, revents: 0 };
                // SAFETY: one valid pollfd, no waiting.
                let n = unsafe { libc::poll(&mut pfd, 1, 0) };
                n > 0 && pfd.revents & libc::POLLIN != 0
            })
            .cloned()
            .collect();
        for (handler, fd) in &ready {
            // SAFETY: a live handler the plugin registered, called on the main thread.
            unsafe { handler.onFDIsSet(*fd) };
        }
        ready.len()
    }

    /// `[main-thread]` Opens the plugin's window (`createView("editor")`) in the X11 window
    /// `parent` (on the display `$DISPLAY` names, which the plugin opens itself), as a Linux host
    /// does: `isPlatformTypeSupported(X11EmbedWindowID)`, `setFrame` (the host context, with its
    /// `IRunLoop`), `attached`. Returns the view's size. Needs the default host (with a run loop).
    pub fn open_window_x11(&mut self, parent: u32) -> Result<(u32, u32), String> {
        let HostContext::WithRunLoop(host) = &self._host else { return Err("this host has no run loop".into()) };
        let frame = host.to_com_ptr::<IPlugFrame>().ok_or("IPlugFrame")?;
        // SAFETY: a live controller; the view it returns (or null) is ours to release.
        let view = unsafe { ComPtr::from_raw(self.controller.createView(vst3::Steinberg::Vst::ViewType::kEditor)) }
            .ok_or("createView(\"editor\") gave null")?;
        // SAFETY: COM calls on the live view with a live frame (which the host context keeps
        // alive as long as this instance), a pointer to a local and `parent`, a window the caller
        // keeps until `close_window` (or dropping this instance) runs.
        let size = unsafe {
            if view.isPlatformTypeSupported(kPlatformTypeX11EmbedWindowID) != kResultOk {
                return Err("X11EmbedWindowID is not supported".into());
            }
            if view.setFrame(frame.as_ptr()) != kResultOk {
                return Err("setFrame failed".into());
            }
            if view.attached(parent as usize as *mut c_void, kPlatformTypeX11EmbedWindowID) != kResultOk {
                let _ = view.setFrame(ptr::null_mut());
                return Err("attached failed".into());
            }
            let mut rect = ViewRect { left: 0, top: 0, right: 0, bottom: 0 };
            let got = view.getSize(&mut rect);
            (got == kResultOk).then(|| ((rect.right - rect.left) as u32, (rect.bottom - rect.top) as u32))
        };
        self.view = Some(view);
        size.ok_or_else(|| "getSize failed".into())
    }

    /// `[main-thread]` Closes the plugin's window (`removed`, `setFrame(null)`), if it is open.
    pub fn close_window(&mut self) {
        if let Some(view) = self.view.take() {
            // SAFETY: COM calls on the live view.
            unsafe {
                let _ = view.removed();
                let _ = view.setFrame(ptr::null_mut());
            }
        }
    }

    /// `IEditController::getParamNormalized` for the parameter `id`.
    pub fn param_normalized(&self, id: u32) -> f64 {
        // SAFETY: a live controller.
        unsafe { self.controller.getParamNormalized(id) }
    }

    /// `IAudioProcessor::setProcessing` (the host pauses processing while staying active).
    pub fn set_processing(&mut self, on: bool) {
        // SAFETY: a live processor.
        let r = unsafe { self.processor.setProcessing(u8::from(on)) };
        assert!(r == kResultOk || r == vst3::Steinberg::kNotImplemented, "setProcessing({on}) returned {r}");
    }

    /// Stops processing and deactivates.
    pub fn deactivate(&mut self) {
        assert!(self.active, "not active");
        // SAFETY: COM calls on a live component.
        unsafe {
            let _ = self.processor.setProcessing(0);
            check(self.component.setActive(0), "setActive(false)");
        }
        self.active = false;
    }

    /// The `ProcessContext` for the transport's next block.
    pub fn process_context(&self, t: &Transport) -> ProcessContext {
        ContextMaker { sample_rate: self.sample_rate, project_rate: self.project_rate }.make(t)
    }

    /// From the next block on, the process contexts report `rate` as the project's frame rate
    /// (`kSmpteValid` and `frameRate`), or none.
    pub fn set_project_rate(&mut self, rate: Option<ProjectRate>) {
        self.project_rate = rate;
    }

    /// `IProcessContextRequirements::getProcessContextRequirements`: the `kNeed…` flags.
    pub fn process_context_requirements(&self) -> u32 {
        let requirements = self
            .component
            .cast::<IProcessContextRequirements>()
            .expect("the component has IProcessContextRequirements");
        // SAFETY: a COM call on a live object.
        unsafe { requirements.getProcessContextRequirements() }
    }

    /// Processes `total` samples in blocks of `block` on an audio thread, with a process context
    /// from `transport` (advanced after every block). Returns the number of output samples that
    /// were not the input (the plugin is a pass-through).
    pub fn run(&mut self, transport: &mut Transport, total: u64, block: u32) -> u64 {
        self.run_events(transport, total, block).mismatches
    }

    /// [`Vst3Plugin::run`], with an output event list: returns the blocks and the events the
    /// plugin added.
    pub fn run_events(&mut self, transport: &mut Transport, total: u64, block: u32) -> Vst3Run {
        assert!(self.active, "activate first");
        assert!(block >= 1 && block <= self.max_block);
        let processor = &self.processor;
        let (input, output) = (&mut self.input, &mut self.output);
        let (sample_rate, process_mode, capture_audio) = (self.sample_rate, self.process_mode, self.capture_audio);
        let contexts = ContextMaker { sample_rate, project_rate: self.project_rate };
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut left = total;
                let mut n_done = 0u64;
                let mut run = Vst3Run::default();
                let list = ComWrapper::new(OutputEventList { events: Mutex::new(Vec::with_capacity(256)) });
                let list_ptr = list.to_com_ptr::<IEventList>().expect("IEventList");
                while left > 0 {
                    let len = left.min(u64::from(block)) as usize;
                    for (ch, buf) in input.iter_mut().enumerate() {
                        for (i, v) in buf[..len].iter_mut().enumerate() {
                            *v = ((n_done + i as u64) % 101) as f32 / 101.0 * if ch == 0 { 1.0 } else { -1.0 };
                        }
                    }
                    let mut ctx = contexts.make(transport);
                    let [il, ir] = input;
                    let [ol, or] = output;
                    let mut in_ptrs = [il.as_mut_ptr(), ir.as_mut_ptr()];
                    let mut out_ptrs = [ol.as_mut_ptr(), or.as_mut_ptr()];
                    let mut in_bus = AudioBusBuffers {
                        numChannels: 2,
                        silenceFlags: 0,
                        __field0: AudioBusBuffers__type0 { channelBuffers32: in_ptrs.as_mut_ptr() },
                    };
                    let mut out_bus = AudioBusBuffers {
                        numChannels: 2,
                        silenceFlags: 0,
                        __field0: AudioBusBuffers__type0 { channelBuffers32: out_ptrs.as_mut_ptr() },
                    };
                    let mut data = ProcessData {
                        processMode: process_mode,
                        symbolicSampleSize: SymbolicSampleSizes_::kSample32 as int32,
                        numSamples: len as int32,
                        numInputs: 1,
                        numOutputs: 1,
                        inputs: &mut in_bus,
                        outputs: &mut out_bus,
                        inputParameterChanges: ptr::null_mut(),
                        outputParameterChanges: ptr::null_mut(),
                        inputEvents: ptr::null_mut(),
                        outputEvents: list_ptr.as_ptr(),
                        processContext: &mut ctx,
                    };
                    let index = run.blocks.len();
                    run.blocks.push(Vst3Block {
                        len: len as u32,
                        timeline_start: transport.position,
                        playing: transport.playing,
                    });
                    // SAFETY: every pointer in `data` is live for the call.
                    check(unsafe { processor.process(&mut data) }, "IAudioProcessor::process");
                    let added = std::mem::take(&mut *list.events.lock().expect("event list lock"));
                    run.events.extend(added.into_iter().map(|(event, kind)| Vst3OutputEvent {
                        block: index,
                        offset: event.sampleOffset,
                        bus: event.busIndex,
                        kind,
                    }));
                    for ch in 0..2 {
                        let (i, o) = if ch == 0 { (&il[..len], &ol[..len]) } else { (&ir[..len], &or[..len]) };
                        run.mismatches += i.iter().zip(o).filter(|(a, b)| a.to_bits() != b.to_bits()).count() as u64;
                        if capture_audio {
                            run.audio[ch].extend_from_slice(o);
                        }
                    }
                    transport.advance(len as u32);
                    n_done += len as u64;
                    left -= len as u64;
                }
                run
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

/// A project frame rate as VST3 describes it (`ProcessContext::frameRate`). `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectRate {
    /// `framesPerSecond`: 24, 25, 30, ...
    pub fps: u32,
    /// `kPullDownRate`: × 1000/1001.
    pub pull_down: bool,
    /// `kDropRate`.
    pub drop: bool,
}

/// Builds process contexts off the plugin struct (so the audio thread needs no `&Vst3Plugin`).
struct ContextMaker {
    sample_rate: u32,
    project_rate: Option<ProjectRate>,
}

impl ContextMaker {
    fn make(&self, t: &Transport) -> ProcessContext {
        // SAFETY: ProcessContext is plain old data; all-zero is a valid value.
        let mut ctx: ProcessContext = unsafe { std::mem::zeroed() };
        let pos = t.reported_position();
        let mut state = kProjectTimeMusicValid | kTempoValid | kTimeSigValid;
        if t.playing {
            state |= kPlaying;
        }
        if let Some((ls, le)) = t.loop_range {
            state |= kCycleActive | kCycleValid;
            ctx.cycleStartMusic = t.beats(ls);
            ctx.cycleEndMusic = t.beats(le);
        }
        if let Some(rate) = self.project_rate {
            state |= kSmpteValid;
            ctx.frameRate.framesPerSecond = rate.fps;
            #[allow(clippy::unnecessary_cast)]
            {
                ctx.frameRate.flags = (if rate.pull_down { kPullDownRate as u32 } else { 0 })
                    | (if rate.drop { kDropRate as u32 } else { 0 });
            }
        }
        // The flag type is the SDK's enum type, which differs between platforms.
        #[allow(clippy::unnecessary_cast)]
        {
            ctx.state = state as u32;
        }
        ctx.sampleRate = f64::from(self.sample_rate);
        ctx.projectTimeSamples = pos;
        ctx.continousTimeSamples = pos;
        ctx.projectTimeMusic = t.beats(pos);
        ctx.barPositionMusic = (t.beats(pos) / 4.0).floor() * 4.0;
        ctx.tempo = t.tempo;
        ctx.timeSigNumerator = 4;
        ctx.timeSigDenominator = 4;
        ctx
    }
}

impl Drop for Vst3Plugin {
    fn drop(&mut self) {
        self.close_window();
        if self.active && !std::thread::panicking() {
            self.deactivate();
        }
        // SAFETY: a live component, terminated once before release.
        unsafe {
            let _ = self.component.terminate();
        }
    }
}
