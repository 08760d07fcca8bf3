//! tonic: an interceptor that verifies the `authorization: Bearer <token>` metadata and puts the
//! [`VerifiedCaller`] into the request's extensions, or answers `UNAUTHENTICATED`; a handler turns
//! an unmet requirement into `PERMISSION_DENIED` with `?` on [`InsufficientScope`].
//!
//! Interceptors are synchronous, so this one verifies against the cached keys
//! ([`Verifier::verify_cached`]) and never blocks the runtime thread that calls it: no fetch, no
//! introspection, no lock held across I/O happens inside it. A token with a `kid` the cache
//! lacks starts the (interval-limited) refetch as a task of its own and fails this once; an
//! opaque token is refused (introspection needs I/O). Tessera publishes a key before it signs
//! with it, so the background refresh normally has it first. For refetch-and-wait and
//! introspection, put [`crate::VerifyLayer`] (feature `tower`) on the tonic server instead
//! (`Server::builder().layer(VerifyLayer::new(verifier))`): it is asynchronous and answers gRPC
//! calls with `UNAUTHENTICATED`/`UNAVAILABLE` statuses.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tessera_verify::{Jwks, TrustedIssuer, VerifiedCaller, Verifier, VerifyInterceptor};
//!
//! # fn demo(jwks: Jwks) -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::builder()
//!     .trust(TrustedIssuer::new("https://iam.example/identity", jwks).any_audience())
//!     .build()?;
//! let interceptor = VerifyInterceptor::new(Arc::new(verifier));
//! // MyServiceServer::with_interceptor(my_service, interceptor)
//! // and in a handler:
//! fn handler(request: tonic::Request<()>) -> Result<(), tonic::Status> {
//!     let caller = request.extensions().get::<VerifiedCaller>()
//!         .ok_or_else(|| tonic::Status::unauthenticated("no caller"))?;
//!     caller.require_scope("ibm")?;
//!     Ok(())
//! }
//! # let _ = (interceptor, handler);
//! # Ok(()) }
//! ```

use crate::caller::{bearer_token, InsufficientScope, VerifiedCaller};
use crate::{clock, Verifier};
use std::sync::Arc;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Verifies each call's bearer token.
#[derive(Debug, Clone)]
pub struct VerifyInterceptor {
    verifier: Arc<Verifier>,
}

impl VerifyInterceptor {
    pub fn new(verifier: Arc<Verifier>) -> Self {
        VerifyInterceptor { verifier }
    }
}

impl Interceptor for VerifyInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(|| Status::unauthenticated("no bearer token"))?;
        let caller: VerifiedCaller = self
            .verifier
            .verify_cached(token, clock::unix_now_ms())
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

impl From<InsufficientScope> for Status {
    fn from(lack: InsufficientScope) -> Self {
        Status::permission_denied(lack.to_string())
    }
}
