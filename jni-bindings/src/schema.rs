//! The one schema of what crosses JNI as JSON: results, the health snapshot (SPEC T1.4
//! counters, T4.3 feature age, T3 authinfo, T8 next restart: every field of the Rust
//! `Health`, straight from its serde form) and the engine's events (`EngineEvent`, T1.4,
//! T4.3, T3, T7, T8). Durations become integer milliseconds (same key); an
//! event is an object whose `type` is its variant name. [`schema_json`] lists the error
//! codes, face-service op numbers, health keys, event names and service states as Rust
//! knows them, so a JVM test fails when the Kotlin constants drift from them. No JSON
//! here carries personal data: the core's types hold ids and codes only.

use facepay::terminal::face_service::Op;
use facepay::terminal::health::{EngineEvent, Health};
use facepay::terminal::lifecycle::LinkState;
use facepay::ErrorCode;
use serde_json::{json, Map, Value};

/// Every error code, in number order (kept beside [`error_name`], whose exhaustive match
/// makes a new code a compile error here).
pub const ERROR_CODES: [ErrorCode; 19] = [
    ErrorCode::InvalidArgument,
    ErrorCode::InvalidConfig,
    ErrorCode::ConfigMismatch,
    ErrorCode::NotInitialised,
    ErrorCode::ServiceDisconnected,
    ErrorCode::CallTimeout,
    ErrorCode::FeaturesNotReady,
    ErrorCode::Closed,
    ErrorCode::OutOfOrder,
    ErrorCode::FlowBusy,
    ErrorCode::FlowTimeout,
    ErrorCode::FlowCancelled,
    ErrorCode::NoSuchFlow,
    ErrorCode::AuthInfoUnavailable,
    ErrorCode::Network,
    ErrorCode::Backend,
    ErrorCode::Store,
    ErrorCode::Vendor,
    ErrorCode::Internal,
];

/// The Kotlin constant name of an error code (`FacePayException.FLOW_CANCELLED`).
pub fn error_name(c: ErrorCode) -> &'static str {
    match c {
        ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
        ErrorCode::InvalidConfig => "INVALID_CONFIG",
        ErrorCode::ConfigMismatch => "CONFIG_MISMATCH",
        ErrorCode::NotInitialised => "NOT_INITIALISED",
        ErrorCode::ServiceDisconnected => "SERVICE_DISCONNECTED",
        ErrorCode::CallTimeout => "CALL_TIMEOUT",
        ErrorCode::FeaturesNotReady => "FEATURES_NOT_READY",
        ErrorCode::Closed => "CLOSED",
        ErrorCode::OutOfOrder => "OUT_OF_ORDER",
        ErrorCode::FlowBusy => "FLOW_BUSY",
        ErrorCode::FlowTimeout => "FLOW_TIMEOUT",
        ErrorCode::FlowCancelled => "FLOW_CANCELLED",
        ErrorCode::NoSuchFlow => "NO_SUCH_FLOW",
        ErrorCode::AuthInfoUnavailable => "AUTHINFO_UNAVAILABLE",
        ErrorCode::Network => "NETWORK",
        ErrorCode::Backend => "BACKEND",
        ErrorCode::Store => "STORE",
        ErrorCode::Vendor => "VENDOR",
        ErrorCode::Internal => "INTERNAL",
    }
}

/// Every event name, and the name of one event (exhaustive: a new variant is a compile
/// error until it is named here, and the Kotlin side's test then fails until it has it).
pub const EVENT_NAMES: [&str; 19] = [
    "StateChanged",
    "Disconnected",
    "Reconnected",
    "FeaturesStale",
    "FeaturesFresh",
    "FeaturesUpdated",
    "AuthInfoRefreshed",
    "AuthInfoFailed",
    "ConfigMismatch",
    "PreviewBound",
    "PreviewAspect",
    "RecognitionFailed",
    "FlowEnded",
    "GateRecognised",
    "PaymentQueued",
    "PaymentFinal",
    "RestartPlanned",
    "RestartNow",
    EVENTS_LOST,
];

/// Not an engine event: the JNI pump fell behind the engine's channel and lost this many.
pub const EVENTS_LOST: &str = "EventsLost";

pub fn event_name(e: &EngineEvent) -> &'static str {
    match e {
        EngineEvent::StateChanged { .. } => "StateChanged",
        EngineEvent::Disconnected { .. } => "Disconnected",
        EngineEvent::Reconnected { .. } => "Reconnected",
        EngineEvent::FeaturesStale { .. } => "FeaturesStale",
        EngineEvent::FeaturesFresh => "FeaturesFresh",
        EngineEvent::FeaturesUpdated { .. } => "FeaturesUpdated",
        EngineEvent::AuthInfoRefreshed { .. } => "AuthInfoRefreshed",
        EngineEvent::AuthInfoFailed { .. } => "AuthInfoFailed",
        EngineEvent::ConfigMismatch => "ConfigMismatch",
        EngineEvent::PreviewBound { .. } => "PreviewBound",
        EngineEvent::PreviewAspect { .. } => "PreviewAspect",
        EngineEvent::RecognitionFailed { .. } => "RecognitionFailed",
        EngineEvent::FlowEnded(_) => "FlowEnded",
        EngineEvent::GateRecognised { .. } => "GateRecognised",
        EngineEvent::PaymentQueued { .. } => "PaymentQueued",
        EngineEvent::PaymentFinal { .. } => "PaymentFinal",
        EngineEvent::RestartPlanned { .. } => "RestartPlanned",
        EngineEvent::RestartNow => "RestartNow",
    }
}

pub const SERVICE_STATES: [LinkState; 4] =
    [LinkState::Uninitialised, LinkState::Initialising, LinkState::Ready, LinkState::Disconnected];

/// `{"secs": s, "nanos": n}` (serde's `Duration`) → integer milliseconds, same key (a key
/// holding an `Option<Duration>` is the same whether it is set or null).
fn millis(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            if m.len() == 2 {
                if let (Some(s), Some(n)) =
                    (m.get("secs").and_then(Value::as_u64), m.get("nanos").and_then(Value::as_u64))
                {
                    return json!(s.saturating_mul(1000).saturating_add(n / 1_000_000));
                }
            }
            Value::Object(m.into_iter().map(|(k, v)| (k, millis(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(millis).collect()),
        other => other,
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    // The core's types serialise to JSON infallibly (string map keys, no non-finite floats).
    millis(serde_json::to_value(v).expect("core types serialise to JSON"))
}

/// The health as JSON: every field of the Rust `Health`.
pub fn health_value(h: &Health) -> Value {
    to_value(h)
}

pub fn health_json(h: &Health) -> String {
    health_value(h).to_string()
}

/// An event as JSON: `{"type": name, ...fields}`.
pub fn event_value(e: &EngineEvent) -> Value {
    let name = event_name(e);
    let mut out = Map::new();
    out.insert("type".into(), json!(name));
    // Struct and newtype variants serialise as `{name: {fields}}`, unit variants as the name.
    if let Value::Object(mut m) = to_value(e) {
        if let Some(Value::Object(fields)) = m.remove(name) {
            out.extend(fields);
        }
    }
    Value::Object(out)
}

pub fn event_json(e: &EngineEvent) -> String {
    event_value(e).to_string()
}

pub fn events_lost_json(n: u64) -> String {
    json!({"type": EVENTS_LOST, "count": n}).to_string()
}

/// Everything both sides must agree on, as Rust knows it.
pub fn schema_json() -> String {
    let codes: Map<String, Value> =
        ERROR_CODES.iter().map(|c| (error_name(*c).to_string(), json!(c.as_u32()))).collect();
    let ops: Map<String, Value> = Op::ALL.iter().map(|o| (format!("{o:?}"), json!(o.index()))).collect();
    let health_keys: Vec<String> = match health_value(&Health::default()) {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let states: Vec<Value> = SERVICE_STATES.iter().map(to_value).collect();
    json!({
        "error_codes": codes,
        "ops": ops,
        "health_keys": health_keys,
        "event_names": EVENT_NAMES,
        "service_states": states,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_become_milliseconds_under_the_same_key() {
        let h = Health { authinfo_valid_for: Some(Duration::from_millis(1500)), ..Health::default() };
        let v = health_value(&h);
        assert_eq!(v["authinfo_valid_for"], json!(1500));
        assert_eq!(health_value(&Health::default())["authinfo_valid_for"], Value::Null);
        assert_eq!(v["state"], json!("uninitialised"));
        assert_eq!(v["next_restart_unix_ms"], Value::Null);
    }

    #[test]
    fn events_carry_their_name_as_type() {
        let e = event_value(&EngineEvent::Reconnected { after: Duration::from_millis(20) });
        assert_eq!(e, json!({"type": "Reconnected", "after": 20}));
        assert_eq!(event_value(&EngineEvent::RestartNow), json!({"type": "RestartNow"}));
        for n in EVENT_NAMES {
            assert_eq!(EVENT_NAMES.iter().filter(|m| **m == n).count(), 1, "{n} listed once");
        }
    }

    #[test]
    fn the_code_list_is_in_order_and_complete_in_numbers() {
        let nums: Vec<u32> = ERROR_CODES.iter().map(|c| c.as_u32()).collect();
        let mut sorted = nums.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(nums, sorted);
        let s: Value = serde_json::from_str(&schema_json()).expect("schema is JSON");
        assert_eq!(s["error_codes"]["FLOW_CANCELLED"], json!(303));
        assert_eq!(s["ops"]["Credential"], json!(10));
        assert!(s["health_keys"].as_array().expect("keys").contains(&json!("gate_running")));
    }
}
