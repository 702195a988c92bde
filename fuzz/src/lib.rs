//! What the fuzz targets share: how an input is cut into datagrams and how its first bytes pick
//! the receiver's settings and the sender. The seeder (`examples/seed.rs`) writes inputs in the
//! same layout, so the committed corpus starts from real packets.
//!
//! The datagram targets run the code under test on a thread with the plugin cue thread's stack
//! ([`on_cue_thread_stack`]), so that recursion a sender can drive overflows here as it would
//! there (issue 14: an 8 KB packet of nested arrays overflowed the cue thread's stack; libFuzzer's
//! main thread has the process's 8 MiB and would not have noticed).
//!
//! Input layout of the receiver targets (`plugin_cue_receiver`, `serve_decode`):
//! `[settings byte] [sender byte] datagram [SEPARATOR datagram]...`; of `listen_decode`:
//! `datagram [SEPARATOR datagram]...`. The separator is 4 bytes, so datagrams keep OSC's 4-byte
//! alignment in the seeds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, OnceLock};

/// Between two datagrams of one input.
pub const SEPARATOR: &[u8; 4] = b"#sep";

/// Datagrams per input, at most (bounds the work per run).
pub const MAX_DATAGRAMS: usize = 16;

/// The token the receivers are given when the settings byte asks for one.
pub const TOKEN: &str = "s3cret";

/// Stack size of the plugin's cue thread, bytes: it is spawned with `std::thread::Builder`'s
/// default (plugin/src/thread.rs), 2 MiB (`RUST_MIN_STACK` unset, as in a host). `serve` and
/// `listen` handle datagrams on the process's main thread (8 MiB on Linux, 1 MiB on Windows):
/// their targets use the cue thread's too.
pub const CUE_THREAD_STACK: usize = 2 << 20;

/// One input for the worker: its bytes (a buffer passed back and forth, so the worker does not
/// allocate per input) and the function to run on them.
type Job = (Vec<u8>, fn(&[u8]));

/// The long-lived worker thread with [`CUE_THREAD_STACK`] bytes of stack: inputs go in, their
/// buffers come back when done. `[thread-safe]` (libFuzzer runs one input at a time).
struct Worker {
    /// To the worker.
    jobs: SyncSender<Job>,
    /// From the worker, once the job has returned.
    done: Receiver<Vec<u8>>,
    /// The buffer the next input is copied into (empty while the worker holds it).
    buffer: Vec<u8>,
}

static WORKER: OnceLock<Mutex<Worker>> = OnceLock::new();

/// Runs `target(data)` on a thread with the cue thread's stack ([`CUE_THREAD_STACK`]) and
/// returns when it has. A panic there aborts the process (libfuzzer-sys' panic hook), a stack
/// overflow is a deadly signal: libFuzzer reports either with this input.
///
/// One worker thread lives for the whole run; spawning a thread per input costs an `mmap` of
/// the stack and a clone each time (fuzz/README.md has both measured).
pub fn on_cue_thread_stack(data: &[u8], target: fn(&[u8])) {
    let worker = WORKER.get_or_init(|| {
        let (jobs, inbox) = sync_channel::<Job>(0);
        let (outbox, done) = sync_channel::<Vec<u8>>(1);
        std::thread::Builder::new()
            .name("fuzz-cue-stack".into())
            .stack_size(CUE_THREAD_STACK)
            .spawn(move || {
                for (input, target) in inbox {
                    target(&input);
                    if outbox.send(input).is_err() {
                        break;
                    }
                }
            })
            // PANIC: at start, before any input: the fuzzer cannot run without it.
            .expect("spawn the fuzz worker thread");
        Mutex::new(Worker { jobs, done, buffer: Vec::with_capacity(MAX_INPUT) })
    });
    // PANIC: the worker never panics while holding the lock (a panic aborts the process).
    let mut worker = worker.lock().expect("not poisoned");
    let mut input = std::mem::take(&mut worker.buffer);
    input.clear();
    input.extend_from_slice(data);
    // PANIC: the worker lives as long as the process (it ends only when `jobs` is dropped).
    worker.jobs.send((input, target)).expect("the worker is running");
    worker.buffer = worker.done.recv().expect("the worker is running");
}

/// Runs `target(data)` on a new thread with the cue thread's stack, spawned for this input: the
/// slower way [`on_cue_thread_stack`] is measured against (`FUZZ_SPAWN_PER_INPUT=1`).
pub fn on_new_cue_thread_stack(data: &[u8], target: fn(&[u8])) {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(CUE_THREAD_STACK)
            .spawn_scoped(s, || target(data))
            // PANIC: a thread that cannot be spawned ends the run (resources exhausted).
            .expect("spawn a thread")
            .join()
            // PANIC: a panic in the target has already aborted the process (libfuzzer-sys).
            .expect("the target returned");
    });
}

/// Runs `target(data)` on the cue thread's stack: on the long-lived worker, or on a thread of
/// its own when the environment has `FUZZ_SPAWN_PER_INPUT=1` (to measure the difference).
pub fn with_cue_thread_stack(data: &[u8], target: fn(&[u8])) {
    static SPAWN: OnceLock<bool> = OnceLock::new();
    if *SPAWN.get_or_init(|| std::env::var_os("FUZZ_SPAWN_PER_INPUT").is_some_and(|v| v == "1")) {
        on_new_cue_thread_stack(data, target);
    } else {
        on_cue_thread_stack(data, target);
    }
}

/// The largest input the datagram targets are run with (`-max_len` in fuzz/run): a UDP
/// datagram's payload is at most this (65,535 - 8 - 20 over IPv4; 65,536 rounds it to a
/// power of two and leaves room for the settings and sender bytes).
pub const MAX_INPUT: usize = 65_536;

/// The datagrams of `data`, split at [`SEPARATOR`], at most [`MAX_DATAGRAMS`].
pub fn datagrams(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < MAX_DATAGRAMS {
        match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

/// `datagrams` joined as an input (for the seeder).
pub fn join(datagrams: &[Vec<u8>]) -> Vec<u8> {
    datagrams.join(&SEPARATOR[..])
}

/// The receiver settings a settings byte selects, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    /// Every message must carry [`TOKEN`] first.
    pub token: bool,
    /// Plugin: quantise cues to frame starts. Serve: the transport rolls.
    pub quantise_or_rolling: bool,
    /// Plugin: a few named mappings besides the defaults. Serve: the rate is 29.97df, not 25.
    pub named_or_drop_frame: bool,
    /// Plugin: no default `/cue/N` and `/trigger/N` mappings.
    pub no_defaults: bool,
    /// Every sender is allowed, not only loopback.
    pub allow_all: bool,
    /// Plugin: a negative output latency (timetags move later) instead of a positive one.
    pub negative_latency: bool,
    /// Plugin: a ring of 4 to the audio thread instead of 1024 (so it fills).
    pub small_ring: bool,
    /// Plugin: retries are remembered for 0 ms (deduplication off).
    pub no_dedupe: bool,
}

impl Knobs {
    /// The knobs of a settings byte.
    pub fn from_byte(b: u8) -> Self {
        let bit = |n: u8| b & (1 << n) != 0;
        Self {
            token: bit(0),
            quantise_or_rolling: bit(1),
            named_or_drop_frame: bit(2),
            no_defaults: bit(3),
            allow_all: bit(4),
            negative_latency: bit(5),
            small_ring: bit(6),
            no_dedupe: bit(7),
        }
    }
}

/// The sender a sender byte selects: loopback (v4, v6) or not (a LAN address, v4 and v6), and a
/// port.
pub fn sender(b: u8) -> SocketAddr {
    let ip = match b % 4 {
        0 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        1 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        2 => IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20)),
        _ => IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
    };
    SocketAddr::new(ip, 9000 + u16::from(b / 4))
}

/// Splits a receiver input into its settings byte, sender byte and the rest.
pub fn receiver_input(data: &[u8]) -> Option<(u8, u8, &[u8])> {
    match data {
        [knobs, sender, rest @ ..] => Some((*knobs, *sender, rest)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_split_and_join_back() {
        let parts = vec![b"/a\0\0".to_vec(), Vec::new(), b"xyz".to_vec()];
        let joined = join(&parts);
        assert_eq!(datagrams(&joined), parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert_eq!(datagrams(b""), vec![&b""[..]]);
        assert_eq!(datagrams(&SEPARATOR.repeat(100)).len(), MAX_DATAGRAMS);
    }

    /// What the target saw last, and on which thread.
    static SEEN: Mutex<Option<(Vec<u8>, Option<String>)>> = Mutex::new(None);

    fn record(data: &[u8]) {
        let name = std::thread::current().name().map(str::to_owned);
        *SEEN.lock().unwrap() = Some((data.to_vec(), name));
    }

    #[test]
    fn inputs_run_whole_on_the_worker_thread_one_after_the_other() {
        for len in [0, 1, 8 * 1024, MAX_INPUT, 3] {
            let input: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            on_cue_thread_stack(&input, record);
            let (seen, thread) = SEEN.lock().unwrap().take().expect("the target ran before the call returned");
            assert_eq!(seen, input);
            assert_eq!(thread.as_deref(), Some("fuzz-cue-stack"));
            on_new_cue_thread_stack(&input, record);
            assert_eq!(SEEN.lock().unwrap().take().expect("ran").0, input);
        }
    }
}
