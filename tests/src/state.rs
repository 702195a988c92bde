//! nice-plug's plugin state, as the CLAP and VST3 wrappers save it (nice-plug 0.4.2,
//! `src/wrapper/state.rs`; this workspace does not enable its `zstd` feature, so the state is
//! plain JSON):
//!
//! ```json
//! {"version": "0.1.0",
//!  "params": {"rate": {"string": "25"}, "output": {"bool": true}, "offset": {"i32": 0}, ...},
//!  "fields": {"settings": "{\"targets\":[\"127.0.0.1:5006\"],\"keepalive_ms\":1000,...}"}}
//! ```
//!
//! Each persisted field is itself a JSON string. CLAP frames the JSON with its length as a
//! little-endian `u64` first (CLAP streams do not say where they end); VST3 stores the bare JSON.

use serde_json::{Map, Value};

/// A parsed nice-plug state.
#[derive(Debug, Clone, PartialEq)]
pub struct NiceState {
    /// The whole state object.
    pub json: Value,
}

impl NiceState {
    /// Parses a state saved through `clap.state` (length-prefixed JSON).
    pub fn from_clap_bytes(bytes: &[u8]) -> Self {
        assert!(bytes.len() >= 8, "CLAP state too short ({} bytes)", bytes.len());
        let (len, json) = bytes.split_at(8);
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes")) as usize;
        assert_eq!(len, json.len(), "CLAP state length prefix says {len}, {} bytes follow", json.len());
        Self::from_json_bytes(json)
    }

    /// Parses bare state JSON (as VST3 `getState` writes it).
    pub fn from_json_bytes(json: &[u8]) -> Self {
        let json: Value = serde_json::from_slice(json).unwrap_or_else(|e| {
            panic!("plugin state is not JSON ({e}); zstd-compressed? first bytes {:02x?}", &json[..json.len().min(16)])
        });
        assert!(json.get("params").is_some_and(Value::is_object), "state has no params object: {json}");
        assert!(json.get("fields").is_some_and(Value::is_object), "state has no fields object: {json}");
        Self { json }
    }

    /// The state framed for `clap.state` `load`.
    pub fn to_clap_bytes(&self) -> Vec<u8> {
        let json = self.to_json_bytes();
        let mut out = (json.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&json);
        out
    }

    /// The bare JSON (for VST3 `setState`).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json).expect("serialise state")
    }

    /// The `settings` persisted field, parsed.
    pub fn settings(&self) -> Map<String, Value> {
        let text = self.json["fields"]
            .get("settings")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("state has no `settings` field (a JSON string): {}", self.json["fields"]));
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            other => panic!("`settings` is not a JSON object: {other:?} from {text:?}"),
        }
    }

    /// Edits the `settings` field. Every target must be a loopback address: the tests never send
    /// anywhere else.
    pub fn edit_settings(&mut self, edit: impl FnOnce(&mut Map<String, Value>)) {
        let mut settings = self.settings();
        edit(&mut settings);
        assert_loopback_targets(&settings);
        let text = serde_json::to_string(&Value::Object(settings)).expect("serialise settings");
        self.json["fields"]["settings"] = Value::String(text);
    }

    /// A parameter's saved value (`{"i32": 3}`, `{"bool": true}`, `{"string": "25"}` …).
    pub fn param(&self, id: &str) -> Option<&Value> {
        self.json["params"].get(id)
    }

    /// Sets a parameter's saved value.
    pub fn set_param(&mut self, id: &str, value: Value) {
        self.json["params"][id] = value;
    }
}

/// Panics unless every entry of `settings["targets"]` is a loopback socket address, or, in a
/// network namespace whose only interface is loopback ([`only_loopback_here`]), an address of the
/// tests' own 198.51.100.0/24 (unreachable there: nothing leaves the machine).
pub fn assert_loopback_targets(settings: &Map<String, Value>) {
    if let Some(targets) = settings.get("targets") {
        let targets = targets.as_array().unwrap_or_else(|| panic!("targets is not an array: {targets}"));
        for t in targets {
            let addr: std::net::SocketAddr =
                t.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("target {t} is not a socket address"));
            let test_net = matches!(addr.ip(), std::net::IpAddr::V4(v4) if v4.octets()[..3] == [198, 51, 100]);
            assert!(
                addr.ip().is_loopback() || (test_net && only_loopback_here()),
                "tests only send to loopback (or to 198.51.100.0/24 in a namespace with loopback alone), not {addr}"
            );
        }
    }
}

/// This process's network namespace has no interface but loopback (`/proc/self/net/dev`, which
/// is per namespace, lists `lo` alone): what a test's own namespace looks like. Always `false`
/// where that cannot be read.
pub fn only_loopback_here() -> bool {
    std::fs::read_to_string("/proc/self/net/dev").is_ok_and(|table| {
        let names: Vec<&str> = table.lines().skip(2).filter_map(|l| l.split_once(':')).map(|(n, _)| n.trim()).collect();
        names == ["lo"]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_net_targets_only_where_loopback_is_all_there_is() {
        let settings = |t: &str| serde_json::json!({ "targets": ["127.0.0.1:5006", t] }).as_object().cloned().unwrap();
        assert_loopback_targets(&settings("[::1]:5006"));
        let outside = std::panic::catch_unwind(|| assert_loopback_targets(&settings("198.51.100.7:5006")));
        assert_eq!(outside.is_ok(), only_loopback_here(), "198.51.100.0/24 only in a namespace of loopback alone");
        assert!(std::panic::catch_unwind(|| assert_loopback_targets(&settings("192.0.2.7:5006"))).is_err());
    }
}
