//! What the fuzz targets share: how an input is cut into datagrams and how its first bytes pick
//! the receiver's settings and the sender. The seeder (`examples/seed.rs`) writes inputs in the
//! same layout, so the committed corpus starts from real packets.
//!
//! Input layout of the receiver targets (`plugin_cue_receiver`, `serve_decode`):
//! `[settings byte] [sender byte] datagram [SEPARATOR datagram]...`; of `listen_decode`:
//! `datagram [SEPARATOR datagram]...`. The separator is 4 bytes, so datagrams keep OSC's 4-byte
//! alignment in the seeds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Between two datagrams of one input.
pub const SEPARATOR: &[u8; 4] = b"#sep";

/// Datagrams per input, at most (bounds the work per run).
pub const MAX_DATAGRAMS: usize = 16;

/// The token the receivers are given when the settings byte asks for one.
pub const TOKEN: &str = "s3cret";

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
}
