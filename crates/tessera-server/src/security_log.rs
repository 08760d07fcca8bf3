//! Security events: the log lines an operator (or a SIEM) watches. Each is one line at `info`
//! (a lock-out at `warn`) on the target [`TARGET`], with a stable `event` name and who (`actor`
//! or the identity claimed), what (`action`, `detail`, `reason`) and from where (`peer`, the
//! connection's address, and `request_id`). Never a secret: the fields are ids, names and the
//! messages clients were sent, which by rule quote no secret.
//!
//! The events: `change` (every admin write, with its audit event: binding grants and removals,
//! credential creation and deletion, …), `token_revoked`, `sign_in_refused` (a token grant, an
//! admin bearer token or a client secret refused), `access_denied` (an authorization refusal)
//! and `locked_out` (brute-force throttling locked a credential or an address).

use crate::http::RequestContext;
use std::net::IpAddr;
use tessera_store::AuditEvent;

/// The log target of every security event (`--log-level` directives can select it).
pub const TARGET: &str = "tessera::security";

/// The peer as a log field: the address, or `unknown` when the app runs without a socket.
fn peer(peer: Option<IpAddr>) -> String {
    peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// One security event of a request, at `info` on [`TARGET`]: its `event` name, the request's
/// id and peer, then the event's own fields and message.
macro_rules! request_event {
    ($ctx:expr, $event:literal, $($fields_and_message:tt)+) => {
        tracing::info!(
            target: TARGET,
            event = $event,
            request_id = %$ctx.id,
            peer = peer($ctx.peer),
            $($fields_and_message)+
        )
    };
}

/// An admin write that is in the store: the audit event it wrote, and where it came from.
pub fn change(ctx: &RequestContext, event: &AuditEvent) {
    operator_action(ctx, &event.actor, &event.action, &event.detail);
}

/// An operator's action on the installation (`change` for a write with one audit event; a key
/// rotation writes several).
pub fn operator_action(ctx: &RequestContext, actor: &str, action: &str, detail: &str) {
    request_event!(ctx, "change", actor, action, detail, "{action} by {actor}");
}

/// A token (or refresh-token family) revoked by `actor`.
pub fn token_revoked(ctx: &RequestContext, event: &AuditEvent) {
    request_event!(
        ctx,
        "token_revoked",
        actor = %event.actor,
        detail = %event.detail,
        "token revoked by {}", event.actor
    );
}

/// A credential refused at sign-in: `surface` (`ibm`, `yandex`, `admin`, `oauth`), `method`
/// (the grant type or credential kind), the identity it claimed when one is known without a
/// secret (a user name, a client id), and the reason the client was given.
pub fn sign_in_refused(
    ctx: &RequestContext,
    surface: &'static str,
    method: &str,
    claimed: Option<&str>,
    reason: &str,
) {
    request_event!(
        ctx,
        "sign_in_refused",
        surface,
        method,
        claimed = claimed.unwrap_or(""),
        reason,
        "sign-in refused"
    );
}

/// An authenticated caller refused by the authorization model.
pub fn access_denied(ctx: &RequestContext, actor: &str, action: &str, reason: &str) {
    request_event!(ctx, "access_denied", actor, action, reason, "access denied");
}

/// Throttling locked out `scope` (`credential`: one credential of `kind` from `source`;
/// `address`: every attempt from `source`) after `failures` failures, for `seconds`.
pub fn locked_out(
    kind: &'static str,
    scope: &'static str,
    source: Option<IpAddr>,
    failures: u32,
    seconds: u64,
) {
    tracing::warn!(
        target: TARGET,
        event = "locked_out",
        peer = peer(source),
        kind,
        scope,
        failures,
        seconds,
        "too many failures; locked for {seconds} s"
    );
}
