//! The gRPC load loop of the Yandex JWT grant: `yandex.cloud.iam.v1.IamTokenService/Create` with
//! `{jwt}`, over plaintext HTTP/2 (h2c) on the server's one port.
//!
//! N callers (`--connections`), each one task with at most one unary call in flight, share
//! [`channel_count`] tonic channels: caller `i` uses channel `i / CALLS_PER_CHANNEL`, and
//! channel `c` goes to node `c mod nodes`. So 64 callers make 4 HTTP/2 connections with 16
//! concurrent streams each, which is how a gRPC client multiplexes. Pacing, timeouts and counting
//! are those of the HTTP/1.1 loop ([`crate::load`]): a call succeeds when it returns OK with a
//! `t1.` IAM token; any other status is counted by its gRPC code.

use crate::load::{next_turn, ConnectionResult, REQUEST_TIMEOUT};
use crate::pacer::Pace;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tessera_server::yandex::proto::iam::create_iam_token_request::Identity;
use tessera_server::yandex::proto::iam::iam_token_service_client::IamTokenServiceClient;
use tessera_server::yandex::proto::iam::CreateIamTokenRequest;
use tonic::transport::{Channel, Endpoint};

/// Concurrent callers per HTTP/2 connection.
pub const CALLS_PER_CHANNEL: usize = 16;

/// HTTP/2 connections for `callers` concurrent callers.
pub fn channel_count(callers: usize) -> usize {
    callers.div_ceil(CALLS_PER_CHANNEL).max(1)
}

/// The nodes to call and the pre-signed JWTs (caller `i` sends `jwts[i mod len]`).
#[derive(Debug)]
pub struct GrpcTarget {
    endpoints: Vec<Endpoint>,
    jwts: Vec<String>,
}

impl GrpcTarget {
    pub fn new(addrs: &[SocketAddr], jwts: &[String]) -> anyhow::Result<GrpcTarget> {
        if addrs.is_empty() {
            anyhow::bail!("no server to send requests to");
        }
        if jwts.is_empty() {
            anyhow::bail!("the Yandex JWT grant needs at least one signed JWT");
        }
        let endpoints = addrs
            .iter()
            .map(|addr| {
                Ok(Endpoint::from_shared(format!("http://{addr}"))
                    .context("the gRPC endpoint")?
                    .tcp_nodelay(true)
                    .connect_timeout(REQUEST_TIMEOUT))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(GrpcTarget {
            endpoints,
            jwts: jwts.to_vec(),
        })
    }

    /// Fresh channels (HTTP/2 connections, opened on first use) for `callers` callers, spread
    /// round-robin over the nodes.
    pub fn channels(&self, callers: usize) -> anyhow::Result<Vec<Channel>> {
        (0..channel_count(callers))
            .map(|index| {
                self.endpoints
                    .get(index % self.endpoints.len())
                    .map(Endpoint::connect_lazy)
                    .context("no gRPC endpoint")
            })
            .collect()
    }

    fn request(&self, index: usize) -> CreateIamTokenRequest {
        let jwt = self
            .jwts
            .get(index % self.jwts.len())
            .cloned()
            .unwrap_or_default();
        CreateIamTokenRequest {
            identity: Some(Identity::Jwt(jwt)),
        }
    }
}

/// Caller `index`'s loop until `deadline`: one unary call in flight at a time.
pub async fn caller(
    channel: Channel,
    target: Arc<GrpcTarget>,
    index: usize,
    deadline: Instant,
    pace: Option<Pace>,
) -> ConnectionResult {
    let mut client = IamTokenServiceClient::new(channel);
    let mut result = ConnectionResult::default();
    let mut sent = 0u32;
    while next_turn(pace.as_ref(), &mut sent, deadline, &mut result).await {
        let request = target.request(index);
        let started = Instant::now();
        match tokio::time::timeout(REQUEST_TIMEOUT, client.create(request)).await {
            Ok(Ok(response)) if response.get_ref().iam_token.starts_with("t1.") => {
                result.success(started);
            }
            Ok(Ok(_)) => {
                result.failures.unexpected += 1;
                result
                    .failures
                    .note(|| "gRPC OK without a t1. IAM token".to_owned());
            }
            Ok(Err(status)) => {
                *result
                    .failures
                    .by_grpc_code
                    .entry(i32::from(status.code()))
                    .or_default() += 1;
                result
                    .failures
                    .note(|| format!("gRPC {:?}: {}", status.code(), status.message()));
            }
            Err(_) => {
                result.failures.timeouts += 1;
                result.failures.note(|| {
                    format!(
                        "gRPC call: no answer within {} s",
                        REQUEST_TIMEOUT.as_secs()
                    )
                });
            }
        }
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_callers_share_a_connection() {
        assert_eq!(channel_count(1), 1);
        assert_eq!(channel_count(16), 1);
        assert_eq!(channel_count(17), 2);
        assert_eq!(channel_count(64), 4);
    }

    #[test]
    fn callers_send_the_jwts_in_turn() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1001".parse().unwrap()];
        let target = GrpcTarget::new(&addrs, &["a".to_owned(), "b".to_owned()]).unwrap();
        assert_eq!(
            target.request(3).identity,
            Some(Identity::Jwt("b".to_owned()))
        );
        assert!(GrpcTarget::new(&addrs, &[]).is_err());
        assert!(GrpcTarget::new(&[], &["a".to_owned()]).is_err());
    }
}
