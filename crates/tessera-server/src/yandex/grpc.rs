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
use crate::state::{now, AppState};
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
    routes.into_axum_router()
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
        let id = request_id(&request);
        let (oauth, jwt) = match &request.get_ref().identity {
            Some(ProtoIdentity::YandexPassportOauthToken(token)) => (Some(token.as_str()), None),
            Some(ProtoIdentity::Jwt(jwt)) => (None, Some(jwt.as_str())),
            None => (None, None),
        };
        let source = request
            .extensions()
            .get::<crate::http::PeerAddr>()
            .map(|peer| peer.0.ip());
        let identity = Identity::exactly_one(oauth, jwt).map_err(|e| e.to_grpc(&id))?;
        service::create(&self.state, identity, source, now())
            .await
            .map(token_response)
            .map_err(|e| e.to_grpc(&id))
    }

    async fn create_for_service_account(
        &self,
        request: Request<CreateIamTokenForServiceAccountRequest>,
    ) -> Result<Response<CreateIamTokenResponse>, Status> {
        let id = request_id(&request);
        service::create_for_service_account(
            &self.state,
            bearer(&request),
            &request.get_ref().service_account_id,
            now(),
        )
        .map(token_response)
        .map_err(|e| e.to_grpc(&id))
    }

    async fn revoke(
        &self,
        request: Request<RevokeIamTokenRequest>,
    ) -> Result<Response<RevokeIamTokenResponse>, Status> {
        let id = request_id(&request);
        service::revoke(
            &self.state,
            bearer(&request),
            &request.get_ref().iam_token,
            now(),
            &id,
        )
        .await
        .map(|subject_id| Response::new(RevokeIamTokenResponse { subject_id }))
        .map_err(|e| e.to_grpc(&id))
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
        let id = request_id(&request);
        service::get_service_account(
            &self.state,
            bearer(&request),
            &request.get_ref().service_account_id,
            now(),
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
        .map_err(|e| e.to_grpc(&id))
    }
}
