//! Send times of a paced run, kept by one thread on the operating system's timer.
//!
//! Tokio's timer wheel ticks once a millisecond, so connections that each slept until their own
//! due time woke together at the next tick: a run paced at R requests/s sent a burst of R/1000
//! requests every millisecond (25 at once at 25,000/s), and its p99 measured the queue behind
//! the burst rather than the server. Here a thread sleeps with `std::thread::sleep` (a high-
//! resolution timer, tens of microseconds late at worst) until each send's due time and then
//! releases that one send to its connection, so the sends arrive spread as the schedule says.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Connection `index`'s schedule: send `n` is due at `first + n × period`, and is released by
/// the [`Pacer`] through `released` (one permit a send, so a busy connection keeps its turns).
#[derive(Debug, Clone)]
pub struct Pace {
    pub first: Instant,
    pub period: Duration,
    released: Arc<Semaphore>,
}

impl Pace {
    /// When send `n` is due.
    pub fn due(&self, n: u32) -> Instant {
        self.first + self.period * n
    }

    /// Waits until the pacer releases the next send; `false` if it never will (the run ended).
    pub async fn released(&self, deadline: Instant) -> bool {
        // The pacer stops at the deadline; the margin keeps a send due just before it from
        // racing the stop.
        let limit = deadline + Duration::from_millis(100);
        match tokio::time::timeout_at(limit.into(), self.released.acquire()).await {
            Ok(Ok(permit)) => {
                permit.forget();
                true
            }
            _ => false,
        }
    }
}

/// The thread that releases every connection's sends at their due times, in due order.
#[derive(Debug)]
pub struct Pacer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    /// Paces `connections` at `rate` requests/s in total from `started` until `deadline`: each
    /// connection sends every `connections / rate` seconds, offset so that they take turns
    /// evenly. Returns the pacer and each connection's [`Pace`].
    pub fn start(
        connections: usize,
        rate: f64,
        started: Instant,
        deadline: Instant,
    ) -> std::io::Result<(Pacer, Vec<Pace>)> {
        let period = Duration::from_secs_f64(connections as f64 / rate);
        let paces: Vec<Pace> = (0..connections)
            .map(|index| Pace {
                first: started + period.mul_f64(index as f64 / connections as f64),
                period,
                released: Arc::new(Semaphore::new(0)),
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let paces = paces.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("pacer".to_owned())
                .spawn(move || release_in_order(&paces, deadline, &stop))?
        };
        Ok((
            Pacer {
                stop,
                thread: Some(thread),
            },
            paces,
        ))
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The thread ends by itself at the deadline or at its next send after `stop`.
            let _ = thread.join();
        }
    }
}

/// Send `k` of the merged schedule belongs to connection `k mod n` (its send `k / n`): the
/// offsets interleave the connections, so this is due order.
fn release_in_order(paces: &[Pace], deadline: Instant, stop: &AtomicBool) {
    let Ok(connections) = u64::try_from(paces.len()) else {
        return;
    };
    if connections == 0 {
        return;
    }
    for k in 0u64.. {
        let Some(pace) = usize::try_from(k % connections)
            .ok()
            .and_then(|index| paces.get(index))
        else {
            return;
        };
        let Ok(n) = u32::try_from(k / connections) else {
            return;
        };
        let due = pace.due(n);
        if due >= deadline || stop.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        pace.released.add_permits(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every send is released, none before its due time, and a connection that is busy keeps
    /// the turns released meanwhile (one permit each).
    #[tokio::test]
    async fn every_send_is_released_at_or_after_its_due_time() {
        let started = Instant::now() + Duration::from_millis(5);
        let deadline = started + Duration::from_millis(60);
        let (pacer, paces) = Pacer::start(4, 2_000.0, started, deadline).expect("pacer thread");
        let mut counts = Vec::new();
        for (index, pace) in paces.iter().enumerate() {
            let mut n = 0u32;
            if index == 0 {
                // Busy past the end: every turn is already released when it looks.
                tokio::time::sleep_until((deadline + Duration::from_millis(20)).into()).await;
            }
            while pace.due(n) < deadline {
                assert!(
                    pace.released(deadline).await,
                    "send {n} of {index} released"
                );
                assert!(Instant::now() >= pace.due(n), "send {n} of {index} early");
                n += 1;
            }
            counts.push(n);
        }
        drop(pacer);
        // 2,000/s for 60 ms over 4 connections: 30 sends each (period 2 ms).
        assert_eq!(counts, vec![30, 30, 30, 30]);
        assert!(
            !paces[1].released(Instant::now()).await,
            "nothing after the deadline"
        );
    }
}
