//! The wire types shared by the server (which encodes them) and the browser (which decodes them).
//!
//! **Invariant:** each JSON shape the two sides exchange is defined here once.

use serde::{Deserialize, Serialize};

/// The body of `GET /healthz` when the server is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Always `"ok"` in a 200 answer.
    pub status: String,
    /// The server's version.
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_report_round_trips_through_json() {
        let report = HealthReport {
            status: "ok".to_owned(),
            version: "0.1.0".to_owned(),
        };
        let json = serde_json::to_string(&report).expect("serializable");
        assert_eq!(json, r#"{"status":"ok","version":"0.1.0"}"#);
        let back: HealthReport = serde_json::from_str(&json).expect("deserializable");
        assert_eq!(back, report);
    }
}
