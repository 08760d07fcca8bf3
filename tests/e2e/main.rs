//! End-to-end tests: each test starts a server on a free port with its own data directory and
//! talks to it over real sockets (HTTP via reqwest, and the CLI binary). The server is the real
//! `tessera` binary (`TestServer::start*`) where the test needs a process (first start, signals,
//! restarts, logs, `/metrics`, the CLI, TLS files, the agent, several nodes), else the same
//! wiring in-process (`TestServer::in_process*`) on a test clock the test advances instead of
//! sleeping through expiry.
//!
//! One test binary, one module per surface. What belongs where:
//! - `attacks`: the attacks of issue 12 (cross-tenant takeover, delegated administrators
//!   becoming stronger principals, derived tokens outliving their credential, lockout, ...)
//!   replayed end to end and refused.
//! - `ibm_token`: `POST /identity/token`, every grant, error shapes, tenant pins.
//! - `oidc`: JWKS, discovery, introspection, revocation.
//! - `admin`: the admin API, authorization, deletion taking effect.
//! - `audit`: the audit log: account-scoped reading, filters, paging.
//! - `ops`: health, readiness, metrics, logs, configuration, restart persistence.
//! - `cli`: the `tessera` command line against a running server.
//! - `cluster`: several nodes on one PostgreSQL database, key rotation, database outage.
//! - `operations`: operator commands: `keys list/rotate`, `migrate`, `export`/`import`.
//! - `durability`: first start, the data-directory lock, backup and restore, SIGTERM and
//!   SIGKILL rounds, `admin recover`.
//! - `dev`: `serve --dev`, the throw-away installation with fixed printed keys.
//! - `connections`: slow, idle and too many connections on both listeners.
//! - `failures`: every body limit answers 413, gRPC decode errors, and a stopped PostgreSQL
//!   giving 503 on every surface without driver text.
//! - `yandex`: the Yandex IAM surface over gRPC (generated stubs) and REST: discovery, every
//!   rpc and its REST twin, bad input, `t1.` tokens accepted everywhere.
//! - `yandex_credentials`: authorized keys and OAuth tokens through the admin API and the CLI.
//! - `delegated`: delegated refresh tokens, refresh-token guarantees, revoke-everything.
//! - `authz`: authorization policies and the `iam-authz` grant.
//! - `tls`: the listener over TLS (self-signed local CA, PEM files, bad files) and h2c.
//! - `profiles`: trusted profiles in the admin API and the `assume` grant.
//! - `password`: the password grant, TOTP MFA (enrolment, codes, replay) and brute-force throttling.
//! - `observability`: `/metrics` content (help and type, process, snapshot, keys, throttling,
//!   gRPC status), the scope of `--log-level`, OTLP traces reaching a receiver.
//! - `verify`: `tessera-verify` in a resource service (axum layer on a real socket): every
//!   token surface (profile, CRN and cr-token tokens included), forgeries, forced rotations
//!   under load, the unknown-`kid` fetch limit, an issuer outage and persisted keys,
//!   introspection and its cache, the tonic interceptor and the layer on a tonic server.
//! - `agent`: the workload metadata agent (`tessera agent`) as a real process beside a real
//!   server: GCE paths, host mode, ID tokens, the IBM VPC flavour, server outage and recovery.
//!
//! `TESSERA_E2E_STORE=postgres` (with `TESSERA_TEST_DATABASE_URL`) runs every test on PostgreSQL,
//! each in a schema of its own.

// A panic is how a test fails; the workspace denies these for shipped code only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod agent;
mod attacks;
mod audit;
mod authz;
mod cli;
mod cluster;
mod connections;
mod console;
mod cr_token;
mod delegated;
mod dev;
mod durability;
mod failures;
mod harness;
mod ibm_token;
pub mod observability;
mod oidc;
mod operations;
mod ops;
mod password;
mod profiles;
mod security_log;
mod tls;
mod verify;
mod yandex;
mod yandex_credentials;
