//! Network setup shared by the plugin and the client (issue 18): what both masters and the
//! stage client need beyond std's sockets, with one owner. Core stays free of I/O; this crate is
//! where the sockets' options and the service announcements live.
//!
//! Everything here runs at setup, on `[main-thread]` or a network thread before it sends: never
//! on the audio thread, never on a timing path.

#![forbid(unsafe_code)]

pub mod dnssd;
pub mod iface;
