//! Names of the Prometheus metrics, in one place so dashboards and code agree.

pub const HTTP_REQUESTS: &str = "tessera_http_requests_total";
pub const HTTP_DURATION: &str = "tessera_http_request_duration_seconds";
pub const TOKENS_ISSUED: &str = "tessera_tokens_issued_total";
pub const ERRORS: &str = "tessera_errors_total";
pub const SNAPSHOT_API_KEYS: &str = "tessera_snapshot_api_keys";
pub const SNAPSHOT_SEQ: &str = "tessera_snapshot_change_seq";
/// Token requests delayed or refused by brute-force throttling (labels `key`, `action`).
pub const THROTTLED: &str = "tessera_throttled_total";
