//! Tessera's `tessera` binary as a library: the server entry point lives in `tessera-server`
//! and the client of a server in `tessera-client`; this crate holds the command-line interface
//! ([`cli`]) and the workload metadata agent ([`agent`]), both built on that client.

pub mod agent;
pub mod cli;
pub mod transport;

#[cfg(test)]
mod tidy;
