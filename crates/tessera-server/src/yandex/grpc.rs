//! The gRPC transport: tonic services for `IamTokenService` and `ApiEndpointService`, mounted
//! as an axum router beside REST (gRPC requests are HTTP/2 POSTs to `/<service>/<method>`).

use super::errors::YandexError;
use super::proto::endpoint::api_endpoint_service_server::{
    ApiEndpointService, ApiEndpointServiceServer,
};
use super::proto::endpoint::{
    ApiEndpoint, GetApiEndpointRequest, ListApiEndpointsRequest, ListApiEndpointsResponse,
};
use super::proto::iam::create_iam_token_request::Identity as ProtoIdentity;
use super::proto::iam::iam_token_service_server::{IamTokenService, IamTokenServiceServer};
use super::proto::iam::service_account_service_server::{
    ServiceAccountService, ServiceAccountServiceServer,
};
use super::proto::iam::{
    CreateIamTokenForServiceAccountRequest, CreateIamTokenRequest, CreateIamTokenResponse,
    RevokeIamTokenRequest, RevokeIamTokenResponse,
};
use super::proto::iam::{GetServiceAccountRequest, ServiceAccount};
use super::service::{self, Identity};
use crate::http::RequestContext;
use crate::state::AppState;
use tessera_core::iam_token::MintedIamToken;
use tonic::{Request, Response, Status};

/// Largest gRPC message accepted: the biggest valid request (an 8000-character JWT) with room.
pub const MAX_GRPC_MESSAGE: usize = 16 * 1024;

/// The gRPC services as an axum router, to merge into the application.
pub fn grpc_router(state: AppState) -> axum::Router {
    let iam = IamTokenServiceServer::new(IamTokens {
        state: state.clone(),
    })
    .max_decoding_message_size(MAX_GRPC_MESSAGE);
    let service_accounts = ServiceAccountServiceServer::new(ServiceAccounts {
        state: state.clone(),
    })
    .max_decoding_message_size(MAX_GRPC_MESSAGE);
    let endpoints = ApiEndpointServiceServer::new(Endpoints { state })
        .max_decoding_message_size(MAX_GRPC_MESSAGE);
    let mut routes = tonic::service::Routes::new(iam)
        .add_service(service_accounts)
        .add_service(endpoints);
    // Reflection lets `grpcurl` and similar tools list and call the services without the
    // .proto files. Built from descriptors compiled into the binary, so it cannot fail at run
    // time unless the build is broken; then the server runs without reflection.
    match tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTORS)
        .build_v1()
    {
        Ok(reflection) => routes = routes.add_service(reflection),
        Err(e) => tracing::warn!(error = %e, "gRPC reflection is unavailable"),
    }
    // One middleware for both jobs: each `from_fn` layer costs a boxed future and a service
    // clone per call.
    routes
        .into_axum_router()
        .layer(axum::middleware::from_fn(shape_and_count))
}

/// Every call: tonic's own errors in our shape, then the call counted by the status the client
/// finally sees.
async fn shape_and_count(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = method_label(request.uri().path());
    count_call(method, tonic_errors_in_our_shape(request, next).await)
}

/// Errors that tonic answers by itself, before a service runs (a message over the size limit,
/// one that does not decode), get the surface's shape too: `google.rpc.Status` with the request
/// id. Tonic reports an oversized message as `OUT_OF_RANGE`; gRPC's own status table says
/// `RESOURCE_EXHAUSTED`, which is what our REST twins' 413 corresponds to. Our services never
/// answer `OUT_OF_RANGE` themselves.
async fn tonic_errors_in_our_shape(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let id = request
        .extensions()
        .get::<RequestContext>()
        .map(|ctx| ctx.id.clone())
        .unwrap_or_default();
    let response = next.run(request).await;
    if response.headers().contains_key("grpc-status-details-bin") {
        return response;
    }
    let Some(status) = Status::from_header_map(response.headers()) else {
        return response;
    };
    let error = match status.code() {
        tonic::Code::Ok => return response,
        tonic::Code::OutOfRange => YandexError::too_large(MAX_GRPC_MESSAGE),
        code => YandexError::new(code, status.message()),
    };
    error.to_grpc(&id).into_http()
}

/// The server-reflection method (its descriptors are tonic-reflection's, not ours).
const REFLECTION_METHOD: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

/// The `method` label of a call to `path`: the path itself for a method we serve, `other` for
/// anything else, so that callers cannot grow the label set.
fn method_label(path: &str) -> &'static str {
    use prost::Message;
    static METHODS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let methods = METHODS.get_or_init(|| {
        let mut methods = vec![REFLECTION_METHOD.to_owned()];
        if let Ok(set) = prost_types::FileDescriptorSet::decode(DESCRIPTORS) {
            for file in &set.file {
                for service in &file.service {
                    for method in &service.method {
                        methods.push(format!(
                            "/{}.{}/{}",
                            file.package(),
                            service.name(),
                            method.name()
                        ));
                    }
                }
            }
        }
        methods
    });
    methods
        .iter()
        .find(|m| m.as_str() == path)
        .map(String::as_str)
        .unwrap_or("other")
}

/// The canonical name of a gRPC status code, as in the gRPC specification.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn record_call(method: &'static str, code: tonic::Code) {
    crate::metrics_names::increment(
        crate::metrics_names::GRPC_REQUESTS,
        &[("method", method), ("code", code_name(code))],
    );
}

/// The status of a `grpc-status` value (a missing or garbled one is UNKNOWN, as clients read it).
fn status_of(value: Option<&http::HeaderValue>) -> tonic::Code {
    value.map_or(tonic::Code::Unknown, |v| {
        tonic::Code::from_bytes(v.as_bytes())
    })
}

/// Counts each gRPC call by method and gRPC status. HTTP says 200 for every call; the status is
/// in the response headers when the call failed at once (trailers-only), else in the trailers
/// after the body, which [`CallCounter`] watches for.
fn count_call(
    method: &'static str,
    response: axum::response::Response,
) -> axum::response::Response {
    if let Some(status) = response.headers().get("grpc-status") {
        record_call(method, status_of(Some(status)));
        return response;
    }
    response.map(|body| {
        axum::body::Body::new(CallCounter {
            body,
            method,
            counted: false,
        })
    })
}

/// A response body that records the call's status when its trailers pass, or CANCELLED when
/// the body is dropped before (the client went away).
struct CallCounter {
    body: axum::body::Body,
    method: &'static str,
    counted: bool,
}

impl CallCounter {
    fn count(&mut self, code: tonic::Code) {
        if !self.counted {
            self.counted = true;
            record_call(self.method, code);
        }
    }
}

impl axum::body::HttpBody for CallCounter {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = status_of(trailers.get("grpc-status"));
                    self.count(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.count(tonic::Code::Internal),
            Poll::Ready(None) => self.count(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for CallCounter {
    fn drop(&mut self) {
        self.count(tonic::Code::Cancelled);
    }
}

/// The encoded descriptors of our protocol files (written by build.rs).
const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/yandex_descriptors.bin"));

struct IamTokens {
    state: AppState,
}

struct Endpoints {
    state: AppState,
}

struct ServiceAccounts {
    state: AppState,
}

/// The request id the HTTP layer assigned (it is also sent back as `x-request-id`).
fn request_id<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<RequestContext>()
        .map(|ctx| ctx.id.clone())
        .unwrap_or_default()
}

/// The request's context, set by the router's middleware for every call (gRPC ones too); a
/// call driven without it (no router) gets an empty id and no peer.
fn context<T>(request: &Request<T>, state: &AppState) -> RequestContext {
    request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(|| RequestContext::detached("", state.clock.now_utc()))
}

/// The caller's token from `authorization: Bearer …` metadata (gRPC metadata is HTTP headers).
fn bearer<T>(request: &Request<T>) -> Option<&str> {
    crate::http::bearer_token(request.metadata().as_ref())
}

fn token_response(minted: MintedIamToken) -> Response<CreateIamTokenResponse> {
    Response::new(CreateIamTokenResponse {
        iam_token: minted.token,
        expires_at: Some(prost_types::Timestamp {
            seconds: minted.claims.exp,
            nanos: 0,
        }),
    })
}

#[tonic::async_trait]
impl IamTokenService for IamTokens {
    async fn create(
        &self,
        request: Request<CreateIamTokenRequest>,
    ) -> Result<Response<CreateIamTokenResponse>, Status> {
        let ctx = context(&request, &self.state);
        let (oauth, jwt) = match &request.get_ref().identity {
            Some(ProtoIdentity::YandexPassportOauthToken(token)) => (Some(token.as_str()), None),
            Some(ProtoIdentity::Jwt(jwt)) => (None, Some(jwt.as_str())),
            None => (None, None),
        };
        let identity = Identity::exactly_one(oauth, jwt).map_err(|e| e.to_grpc(&ctx.id))?;
        service::create(&self.state, identity, &ctx, self.state.clock.now())
            .await
            .map(token_response)
            .map_err(|e| e.to_grpc(&ctx.id))
    }

    async fn create_for_service_account(
        &self,
        request: Request<CreateIamTokenForServiceAccountRequest>,
    ) -> Result<Response<CreateIamTokenResponse>, Status> {
        let ctx = context(&request, &self.state);
        let id = &ctx.id;
        service::create_for_service_account(
            &self.state,
            &ctx,
            bearer(&request),
            &request.get_ref().service_account_id,
            self.state.clock.now(),
        )
        .map(token_response)
        .map_err(|e| e.to_grpc(id))
    }

    async fn revoke(
        &self,
        request: Request<RevokeIamTokenRequest>,
    ) -> Result<Response<RevokeIamTokenResponse>, Status> {
        let ctx = context(&request, &self.state);
        service::revoke(
            &self.state,
            bearer(&request),
            &request.get_ref().iam_token,
            self.state.clock.now(),
            &ctx,
        )
        .await
        .map(|subject_id| Response::new(RevokeIamTokenResponse { subject_id }))
        .map_err(|e| e.to_grpc(&ctx.id))
    }
}

#[tonic::async_trait]
impl ApiEndpointService for Endpoints {
    async fn get(
        &self,
        request: Request<GetApiEndpointRequest>,
    ) -> Result<Response<ApiEndpoint>, Status> {
        let id = request_id(&request);
        let wanted = &request.get_ref().api_endpoint_id;
        service::endpoints(&self.state)
            .into_iter()
            .find(|(endpoint, _)| endpoint == wanted)
            .map(|(endpoint, address)| {
                Response::new(ApiEndpoint {
                    id: endpoint.to_owned(),
                    address,
                })
            })
            .ok_or_else(|| {
                let shown: String = wanted.chars().take(64).collect();
                YandexError::new(
                    tonic::Code::NotFound,
                    format!(
                        "api endpoint {shown:?} not found; this server serves {}",
                        service::ENDPOINT_IDS.join(", ")
                    ),
                )
                .to_grpc(&id)
            })
    }

    async fn list(
        &self,
        _request: Request<ListApiEndpointsRequest>,
    ) -> Result<Response<ListApiEndpointsResponse>, Status> {
        // page_size and page_token are ignored: the list is short and always complete.
        let endpoints = service::endpoints(&self.state)
            .into_iter()
            .map(|(id, address)| ApiEndpoint {
                id: id.to_owned(),
                address,
            })
            .collect();
        Ok(Response::new(ListApiEndpointsResponse {
            endpoints,
            next_page_token: String::new(),
        }))
    }
}

#[tonic::async_trait]
impl ServiceAccountService for ServiceAccounts {
    async fn get(
        &self,
        request: Request<GetServiceAccountRequest>,
    ) -> Result<Response<ServiceAccount>, Status> {
        let ctx = context(&request, &self.state);
        let id = &ctx.id;
        service::get_service_account(
            &self.state,
            &ctx,
            bearer(&request),
            &request.get_ref().service_account_id,
            self.state.clock.now(),
        )
        .map(|sa| {
            Response::new(ServiceAccount {
                created_at: Some(prost_types::Timestamp {
                    seconds: sa.created_at,
                    nanos: 0,
                }),
                id: sa.id,
                folder_id: sa.account_id,
                name: sa.name,
                description: sa.description,
            })
        })
        .map_err(|e| e.to_grpc(id))
    }
}
