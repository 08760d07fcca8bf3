//! The Yandex Cloud IAM surface: `IamTokenService`, `ApiEndpointService` and the read side of
//! `ServiceAccountService` over gRPC, and their REST twins, on the same listener as everything
//! else.
//!
//! `service` holds the rules once (what each call accepts, who may call it); `grpc` and `rest`
//! only translate. Errors are `google.rpc.Status` on both transports, mapped in `errors`.
//! Stability: frozen by Yandex's API (`../shared/protocols/yandex.md`).

pub mod codec;
mod errors;
mod grpc;
mod rest;
mod service;
#[cfg(test)]
mod service_tests;

pub use grpc::{grpc_router, MAX_GRPC_MESSAGE};
pub use rest::router;

/// Generated protocol types and stubs (server and client; tests use the clients).
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    /// `yandex.cloud.iam.v1`
    pub mod iam {
        tonic::include_proto!("yandex.cloud.iam.v1");
    }
    /// `yandex.cloud.endpoint`
    pub mod endpoint {
        tonic::include_proto!("yandex.cloud.endpoint");
    }
}
