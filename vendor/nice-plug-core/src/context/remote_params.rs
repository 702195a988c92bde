//! PATCHED (osc-timecode): setting parameters from a plugin thread of its own, with host gestures,
//! while no editor is open (NIH-plug issue #214).
//!
//! A plugin that receives control from elsewhere (OSC, a network protocol, a sequencer thread of
//! its own) needs the host to record those changes as automation, exactly as if the user had
//! turned the knob: a gesture begin, the new value, a gesture end. Upstream lets a plugin do that
//! only through the editor's `GuiContext`, which exists only while the editor is open. A
//! [`RemoteParamSetter`] is the same thing without the editor: the wrapper hands one out in
//! [`ActivateContext::remote_param_setter()`][super::activate::ActivateContext::remote_param_setter()].
//!
//! Contract:
//! - `[thread-safe, !audio-thread]`: call it from any thread but the audio thread (CLAP forbids
//!   `clap_host_params::request_flush()` there, VST3 wants `IComponentHandler` on the UI thread;
//!   the wrapper takes care of the latter). It never blocks for long (a short lock shared with the
//!   editor's parameter changes), never waits for the host.
//! - Each call is one whole gesture: begin, set, end reach the host together, in that order. While
//!   the editor holds a gesture open on the same parameter (a drag), the value joins that gesture
//!   instead, so the host never sees begin/begin/end/end.
//! - Bounded: the wrapper's queues have a fixed size; a full queue refuses the change with
//!   [`RemoteParamError::QueueFull`] (the caller counts it), it never grows or blocks.
//! - The value lands on a block boundary: CLAP applies it when the host next flushes parameters
//!   or after the next `process()` call, VST3 when the host's UI thread runs the task (and the
//!   host passes the value back to the audio thread as a parameter change).
//! - Holds only a weak reference to the plugin instance: once the instance is gone every call
//!   returns [`RemoteParamError::Gone`]. A plugin should still stop the threads using it in
//!   `deactivate()`, so the instance is never dropped on one of them.

/// Why a parameter change from a [`RemoteParamSetter`] was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RemoteParamError {
    /// No parameter has this string ID.
    #[error("no parameter has this ID")]
    UnknownParam,
    /// The value is not a finite number.
    #[error("the value is not a finite number")]
    InvalidValue,
    /// The wrapper's queue to the host is full: the change was dropped (count it).
    #[error("the parameter queue to the host is full")]
    QueueFull,
    /// The plugin instance is gone.
    #[error("the plugin instance is gone")]
    Gone,
    /// This wrapper cannot set parameters this way (`ProcessContext::set_parameter_normalized()`
    /// in a VST3 wrapper).
    #[error("the plugin format cannot set parameters this way")]
    Unsupported,
}

/// Sets the plugin's parameters as host gestures from a thread other than the audio thread.
/// `[thread-safe, !audio-thread]`. The module docs hold the contract.
pub trait RemoteParamSetter: Send + Sync {
    /// Sets the parameter with the string ID `param_id` (its `#[id = "..."]`) to `normalized`
    /// (0.0–1.0, clamped; a stepped parameter snaps to its nearest step) as one gesture: begin,
    /// set, end.
    fn set_parameter_normalized(&self, param_id: &str, normalized: f32) -> Result<(), RemoteParamError>;

    /// Call now and then (every few tens of milliseconds) from the setter's thread while changes
    /// may be waiting: where the wrapper handed them to a host run loop that has not run them for
    /// a while (VST3: a host that offers an `IRunLoop` and never runs it, as headless Ardour 8.7
    /// and later), it delivers them another way. Cheap when nothing waits; a no-op by default.
    fn flush_stalled(&self) {}
}
