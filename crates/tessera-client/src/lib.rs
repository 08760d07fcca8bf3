//! The one typed client of a Tessera server: the token surfaces (IBM `/identity/token`, Yandex
//! `/iam/v1/tokens` and `:createForServiceAccount`, `/v1/id_tokens`) and the admin API. The CLI,
//! the metadata agent and the end-to-end tests use it; it prints nothing and reads no files.
//!
//! Requests and answers are the wire types of [`tessera_api`], the same types the server
//! renders, so the client cannot drift from the server. Each admin collection is a
//! [`Resource`]; `list`, `get`, `delete` and `create` are written once over it:
//!
//! ```no_run
//! # async fn demo() -> Result<(), tessera_client::Error> {
//! use tessera_client::api::admin::{ListQuery, ServiceAccountCreate};
//! use tessera_client::{resource::ServiceAccounts, Client};
//!
//! let client = Client::new("https://iam.example.com")?;
//! let token = client.token_from_apikey("my-api-key").await?;
//! let admin = client.with_token(token.access_token.unwrap_or_default());
//! let me = admin.whoami().await?;
//! let sa = admin
//!     .create::<ServiceAccounts>(&ServiceAccountCreate {
//!         account_id: Some(me.account_id.clone()),
//!         name: "ci".into(),
//!         description: None,
//!     })
//!     .await?;
//! let all = admin.list::<ServiceAccounts>(&ListQuery::default()).await?;
//! # let _ = (sa, all);
//! # Ok(())
//! # }
//! ```
//!
//! Secrets (API keys, passwords, tokens, client secrets) never appear in an error message or in
//! `Debug` output: the answer types that hold them implement `Debug` by hand (in `tessera-api`),
//! request types that hold them have no `Debug`, the client's own `Debug` redacts its bearer
//! token, and decoding errors of secret-bearing answers leave out the offending value.
//!
//! Unknown fields of an answer are not kept: the views are the server's own types, so a server
//! of the same version sends nothing else (see `ARCHITECTURE.md`).

mod client;
mod error;
pub mod resource;

pub use client::{Client, ClientBuilder, TrustedProfileSelector};
pub use error::{ApiError, Error, Result, TokenError, YandexError};
pub use resource::Resource;
/// The wire types, re-exported so that users of the client need no second dependency.
pub use tessera_api as api;
