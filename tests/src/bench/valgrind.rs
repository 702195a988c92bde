//! Callgrind's client requests, for counting the instructions of `process()` alone: the bench's
//! child runs under `valgrind --tool=callgrind --collect-atstart=no` and switches collection on
//! just before each measured `process()` call and off just after (collection state is per thread
//! in callgrind, so the plugin's network and cue threads, which run meanwhile, are not counted).
//!
//! A client request is Valgrind's "special instruction sequence" (`valgrind.h`,
//! `VALGRIND_DO_CLIENT_REQUEST_EXPR` for amd64): four rotations of `rdi` that add up to a full
//! turn, then `xchg rbx, rbx`. Natively the sequence changes nothing and costs a few cycles;
//! under Valgrind the core recognises it and runs the request. Other architectures get a no-op.

/// `VG_USERREQ_TOOL_BASE('C', 'T')`: the base of callgrind's requests (`callgrind.h`).
const CALLGRIND_BASE: usize = (b'C' as usize) << 24 | (b'T' as usize) << 16;
/// `VG_USERREQ__TOGGLE_COLLECT`.
const TOGGLE_COLLECT: usize = CALLGRIND_BASE + 2;
/// `VG_USERREQ__RUNNING_ON_VALGRIND` (`valgrind.h`): answers 1 (or the nesting depth) under
/// Valgrind, the default 0 natively.
const RUNNING_ON_VALGRIND: usize = 0x1001;

/// Runs a client request with no arguments and returns its answer (`default` natively).
#[cfg(target_arch = "x86_64")]
fn client_request(default: usize, request: usize) -> usize {
    let args: [usize; 6] = [request, 0, 0, 0, 0, 0];
    let mut result = default;
    // SAFETY: the sequence rotates `rdi` by 128 bits in all (back to its value) and exchanges
    // `rbx` with itself, so natively no register or memory changes (flags are declared
    // clobbered by default). Under Valgrind the core reads the six words at `rax`, which point
    // into `args`, alive for the whole block, and writes the answer to `rdx`.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            out("rdi") _,
            options(nostack),
        );
    }
    result
}

/// No client requests on other architectures: never under Valgrind.
#[cfg(not(target_arch = "x86_64"))]
fn client_request(default: usize, _request: usize) -> usize {
    default
}

/// Whether this process runs under Valgrind.
pub fn running_on_valgrind() -> bool {
    client_request(0, RUNNING_ON_VALGRIND) > 0
}

/// Switches callgrind's collection for the calling thread (`CALLGRIND_TOGGLE_COLLECT`).
pub fn toggle_collect() {
    client_request(0, TOGGLE_COLLECT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_harmless_natively() {
        // `cargo test` does not run under Valgrind: the request answers its default and
        // toggling changes nothing.
        assert!(!running_on_valgrind());
        toggle_collect();
        toggle_collect();
    }
}
