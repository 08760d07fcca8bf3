//! The workload metadata agent under test: `tessera agent` (the same binary as the server)
//! started beside a benchmark server with the benchmark's API key as its credential, listening
//! on a port the kernel picks, and stopped again (kill and wait, also on drop).
//!
//! The agent says `agent listening on ADDR` on stderr when it is bound; it then fetches its
//! token in the background, so it is ready only once the token path answers 200. Its stdout and
//! stderr go to a log file in its temporary directory, shown whenever something fails.

use crate::server::{check_access_token, clear_tessera_env, Credentials, Process};
use anyhow::Context;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tessera_core::model::Algorithm;

/// The path every GCE client asks for its token.
pub const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// The header without which the agent answers 403.
pub const FLAVOR_HEADER: (&str, &str) = ("metadata-flavor", "Google");
/// What the agent prints on stderr once its listener is bound.
const LISTENING: &str = "agent listening on ";

/// A running `tessera agent`, killed when stopped or dropped.
pub struct Agent {
    /// Its process id, memory and log.
    pub process: Process,
    /// Known once the agent has said where it listens.
    addr: Option<SocketAddr>,
    // Dropped last, after the process is killed: the credential file and the log go with it.
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Starts `binary agent --server BASE --credentials FILE --listen 127.0.0.1:0` with `apikey`
    /// in an API key file (`{"apikey": …}`).
    pub fn start(binary: &Path, base: &str, apikey: &str) -> anyhow::Result<Agent> {
        let dir = tempfile::Builder::new()
            .prefix("tessera-bench-agent-")
            .tempdir()
            .context("creating the agent's directory")?;
        // The directory is private to this user (0700), so the key file needs no mode of its own.
        let credentials = dir.path().join("credentials.json");
        std::fs::write(
            &credentials,
            serde_json::json!({ "apikey": apikey }).to_string(),
        )
        .context("writing the agent's credential file")?;
        let log_path = dir.path().join("agent.log");
        let mut command = Command::new(binary);
        command
            .arg("agent")
            .arg("--server")
            .arg(base)
            .arg("--credentials")
            .arg(&credentials)
            .arg("--listen")
            .arg("127.0.0.1:0");
        clear_tessera_env(&mut command);
        let process = Process::start(&mut command, log_path, "the agent log", || {
            format!("starting {} agent", binary.display())
        })?;
        Ok(Agent {
            process,
            addr: None,
            _dir: dir,
        })
    }

    /// Waits until the agent has said where it listens and its token path answers 200 with an
    /// access token; the body of that answer is returned.
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        loop {
            self.ensure_running()?;
            if self.addr.is_none() {
                self.addr = std::fs::read_to_string(self.process.log_path())
                    .ok()
                    .and_then(|log| log.lines().find_map(listening_addr));
            }
            if let Some(addr) = self.addr {
                match http
                    .get(format!("http://{addr}{TOKEN_PATH}"))
                    .header(FLAVOR_HEADER.0, FLAVOR_HEADER.1)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        if status.is_success() {
                            return serde_json::from_str(&text).with_context(|| {
                                format!("the agent's token answer is not JSON: {text}")
                            });
                        }
                        last = format!("{status}: {}", text.trim());
                    }
                    Err(err) => last = format!("{err:#}"),
                }
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "the agent did not answer GET {TOKEN_PATH} with 200 within {} s (last: {last})",
                    limit.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where the agent listens, once [`Agent::wait_ready`] has seen it.
    pub fn addr(&self) -> anyhow::Result<SocketAddr> {
        self.addr.context("the agent has not said where it listens")
    }

    /// An error if the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.process.exited() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => anyhow::bail!("the agent exited ({status})"),
            Err(err) => Err(err).context("checking on the agent process"),
        }
    }

    /// Kills the agent and reaps it.
    pub fn stop(mut self) {
        self.process.kill();
    }
}

/// The address in the agent's `agent listening on ADDR` line, bare or as a log line (timestamp
/// and level before it), whichever the agent's version prints.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once(LISTENING)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The agent's first answer, checked in full: the server's token for the benchmark's service
/// account (signed with `algorithm`), `token_type` Bearer and a positive `expires_in`. The load
/// then checks each answer's status and that it carries an access token.
pub fn check_answer(body: &Value, creds: &Credentials, algorithm: Algorithm) -> anyhow::Result<()> {
    let token = body["access_token"]
        .as_str()
        .with_context(|| format!("the agent answered without access_token: {body}"))?;
    check_access_token(token, creds, algorithm).context("the agent's token")?;
    if body["token_type"].as_str() != Some("Bearer") {
        anyhow::bail!(
            "the agent's token_type is {} instead of Bearer",
            body["token_type"]
        );
    }
    if body["expires_in"]
        .as_i64()
        .is_none_or(|seconds| seconds <= 0)
    {
        anyhow::bail!(
            "the agent's expires_in is {} instead of a positive number of seconds",
            body["expires_in"]
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        assert_eq!(
            listening_addr("agent listening on 127.0.0.1:40123"),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        assert_eq!(
            listening_addr(
                "2026-11-22T20:14:50.386887Z  INFO tessera::agent: agent listening on 127.0.0.1:33295"
            ),
            Some("127.0.0.1:33295".parse().unwrap())
        );
        assert_eq!(listening_addr("agent listening on somewhere"), None);
        assert_eq!(
            listening_addr("2026-11-23T10:00:00Z INFO token refreshed"),
            None
        );
    }

    #[test]
    fn the_first_answer_is_checked_in_full() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let creds = Credentials {
            apikey: "k".to_owned(),
            iam_id: "iam-ServiceId-x".to_owned(),
            account_id: "a".to_owned(),
            admin_token: "t".to_owned(),
            bearer_token: "b".to_owned(),
            introspected_token: "i".to_owned(),
        };
        let jwt = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"iam_id":"iam-ServiceId-x"}"#)
        );
        let answer = |expires_in: i64, token_type: &str| {
            serde_json::json!({
                "access_token": jwt,
                "expires_in": expires_in,
                "token_type": token_type,
            })
        };
        assert!(check_answer(&answer(3300, "Bearer"), &creds, Algorithm::Es256).is_ok());
        assert!(check_answer(&answer(3300, "Bearer"), &creds, Algorithm::Rs256).is_err());
        assert!(check_answer(&answer(0, "Bearer"), &creds, Algorithm::Es256).is_err());
        assert!(check_answer(&answer(3300, "bearer"), &creds, Algorithm::Es256).is_err());
        assert!(check_answer(&serde_json::json!({}), &creds, Algorithm::Es256).is_err());
    }
}
