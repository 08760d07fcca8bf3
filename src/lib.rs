//! Tessera's `tessera` binary as a library: the server entry point lives in `tessera-server`;
//! this crate holds the command-line interface ([`cli`]), the async client of a Tessera
//! server ([`client`]), which the end-to-end tests use too, and the workload metadata agent
//! ([`agent`]).

pub mod agent;
pub mod cli;
pub mod client;

#[cfg(test)]
mod tidy;
