//! The accept loop and the life of each connection, plaintext and TLS alike.
//!
//! Every connection is bounded ([`ConnectionLimits`]):
//! - at most `max_connections` are served at once; the next is accepted only when one closes
//!   (until then it waits in the kernel's listen queue, and open connections are unaffected);
//! - the TLS handshake, and each request's headers, must arrive within `header_read_timeout`
//!   (for HTTP/1.1: counted from the first byte of the request, or for a request that never
//!   starts, from the connection's start);
//! - a connection with no request in flight is closed after `idle_timeout` (for one that has
//!   never sent a request: after `header_read_timeout`).
//!
//! A connection's watchdog sees what it needs through [`Activity`]: the IO wrapper notes when
//! bytes arrive, the service wrapper counts requests in flight. Hyper's own header timer is not
//! used: it would also close idle keep-alive connections after the header timeout.
//!
//! On shutdown the loop stops accepting, asks every connection to finish its requests and
//! close, and waits at most [`DRAIN_TIMEOUT`].

use crate::config::ConnectionLimits;
use crate::http::PeerAddr;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

/// How long open connections may take to finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection asked to close may take before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The service behind the listener, as the server builds it.
pub type AppService =
    tower::util::MapRequest<axum::Router, fn(axum::extract::Request) -> axum::extract::Request>;

/// Serves `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: AppService,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A free slot first, then a connection: at the limit, new clients wait in the backlog.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, remote)) => {
                    // An HTTP/2 (gRPC) answer goes out in several small writes (headers, data,
                    // trailers); with Nagle's algorithm the later ones would wait for the
                    // client's delayed ACK, about 40 ms per call.
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
                    }
                    let connection = Connection {
                        remote,
                        tls: tls.clone(),
                        app: app.clone(),
                        limits,
                        stop: stop_rx.clone(),
                    };
                    connections.spawn(async move {
                        connection.run(tcp).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections did not drain within 10 s; closing"
        );
        connections.abort_all();
    }
}

/// One accepted connection and what it needs to run.
struct Connection {
    remote: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: AppService,
    limits: ConnectionLimits,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, tcp: tokio::net::TcpStream) {
        let remote = self.remote;
        let Some(tls) = self.tls.take() else {
            return self.serve_http(tcp, false).await;
        };
        let handshake = tokio::time::timeout(self.limits.header_read_timeout, tls.accept(tcp));
        let stream = tokio::select! {
            result = handshake => match result {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            },
            _ = self.stop.wait_for(|stopping| *stopping) => return,
        };
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        self.serve_http(stream, h2).await;
    }

    /// HTTP/1.1 or HTTP/2 over `io` until the client closes, the watchdog closes an idle or slow
    /// connection, or shutdown asks it to finish. `h2`: the protocol is known to be HTTP/2.
    async fn serve_http<IO>(self, io: IO, h2: bool)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        let remote = self.remote;
        let activity = Arc::new(Activity::new(h2));
        let io = Watched {
            inner: io,
            activity: activity.clone(),
        };
        let service = hyper_util::service::TowerToHyperService::new(CountedService {
            app: self.app,
            peer: PeerAddr(remote),
            activity: activity.clone(),
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        // The watchdog enforces the header timeout; hyper's would also cut idle keep-alives.
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(None);
        builder.http2().timer(TokioTimer::new());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        let mut connection = std::pin::pin!(connection);
        let mut stop = self.stop;
        // Since when the connection has been asked to close, and how long it may take: the
        // whole drain time on shutdown (requests in flight finish), a short grace otherwise.
        let mut closing: Option<(Instant, Duration)> = None;
        loop {
            let check_in = match closing {
                Some((since, grace)) => grace.saturating_sub(since.elapsed()),
                None => activity.next_check(&self.limits),
            };
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%remote, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = stop.wait_for(|stopping| *stopping), if closing.is_none() => {
                    closing = Some((Instant::now(), DRAIN_TIMEOUT));
                    connection.as_mut().graceful_shutdown();
                }
                () = tokio::time::sleep(check_in) => {
                    if closing.is_some() {
                        tracing::debug!(%remote, "connection did not close in time; dropping it");
                        return;
                    }
                    match activity.overdue(&self.limits) {
                        None => {}
                        // Half a request head and nothing in flight: nothing to finish.
                        Some(why @ Overdue::SlowHeaders) => {
                            tracing::debug!(%remote, why = why.as_str(), "closing connection");
                            return;
                        }
                        Some(why @ Overdue::Idle) => {
                            tracing::debug!(%remote, why = why.as_str(), "closing connection");
                            closing = Some((Instant::now(), CLOSE_GRACE));
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        }
    }
}

/// What a connection's watchdog knows, shared with its IO and service wrappers. Instants are
/// milliseconds since the connection started.
struct Activity {
    started: Instant,
    /// Requests whose answer is not complete yet.
    in_flight: AtomicUsize,
    /// Whether any request was ever answered here.
    served: AtomicBool,
    /// When the last request finished (or the connection started).
    idle_since: AtomicU64,
    /// When the first byte after `idle_since` arrived: the next request's head has begun.
    /// `u64::MAX`: nothing has arrived since.
    head_started: AtomicU64,
    /// HTTP/2 (known from ALPN or the connection preface): control frames arrive while idle,
    /// so arriving bytes say nothing about a request's head.
    h2: AtomicBool,
}

impl Activity {
    fn new(h2: bool) -> Activity {
        Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(u64::MAX),
            h2: AtomicBool::new(h2),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn bytes_arrived(&self, first_bytes: &[u8]) {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return;
        }
        if first_bytes.starts_with(b"PRI ") && !self.served.load(Ordering::Relaxed) {
            self.h2.store(true, Ordering::Relaxed);
        }
        let now = self.now_ms();
        let _ =
            self.head_started
                .compare_exchange(u64::MAX, now, Ordering::AcqRel, Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(u64::MAX, Ordering::Release);
    }

    fn request_finished(&self) {
        self.served.store(true, Ordering::Relaxed);
        self.idle_since.store(self.now_ms(), Ordering::Release);
        self.head_started.store(u64::MAX, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Why the connection should close now, if it should.
    fn overdue(&self, limits: &ConnectionLimits) -> Option<Overdue> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now_ms();
        let header = limits.header_read_timeout.as_millis() as u64;
        let head_started = self.head_started.load(Ordering::Acquire);
        if head_started != u64::MAX
            && !self.h2.load(Ordering::Relaxed)
            && now.saturating_sub(head_started) >= header
        {
            return Some(Overdue::SlowHeaders);
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        let idle_limit = if self.served.load(Ordering::Relaxed) {
            limits.idle_timeout.as_millis() as u64
        } else {
            header
        };
        if now.saturating_sub(idle_since) >= idle_limit {
            return Some(Overdue::Idle);
        }
        None
    }

    /// How long until [`Activity::overdue`] could next say yes.
    fn next_check(&self, limits: &ConnectionLimits) -> Duration {
        // Checking at a quarter of the shortest limit closes connections at most 25 % late.
        (limits.header_read_timeout.min(limits.idle_timeout) / 4).max(Duration::from_millis(50))
    }
}

/// Why the watchdog closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overdue {
    /// A request's head did not arrive within the header-read timeout: dropped at once.
    SlowHeaders,
    /// No request in flight for the idle timeout (or, before any request, the header-read
    /// timeout): asked to close, which lets HTTP/2 say GOAWAY.
    Idle,
}

impl Overdue {
    fn as_str(self) -> &'static str {
        match self {
            Overdue::SlowHeaders => "request headers not received in time",
            Overdue::Idle => "idle",
        }
    }
}

/// The connection's IO, noting when bytes arrive.
struct Watched<IO> {
    inner: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let filled = &buf.filled()[before..];
            if !filled.is_empty() {
                self.activity.bytes_arrived(filled);
            }
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The app for one connection: puts the peer's address into every request (what brute-force
/// throttling counts by) and counts requests in flight for the watchdog.
#[derive(Clone)]
struct CountedService {
    app: AppService,
    peer: PeerAddr,
    activity: Arc<Activity>,
}

/// Marks a request finished when dropped, however its future ends.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

impl tower::Service<http::Request<hyper::body::Incoming>> for CountedService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<axum::extract::Request>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        self.activity.request_started();
        let guard = InFlight(self.activity.clone());
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(self.peer);
        let future = tower::Service::call(&mut self.app, request);
        Box::pin(async move {
            let response = future.await;
            drop(guard);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            max_connections: 4,
        }
    }

    #[test]
    fn a_silent_connection_is_closed_after_the_header_timeout() {
        let activity = Activity::new(false);
        assert_eq!(activity.overdue(&limits()), None);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(activity.overdue(&limits()), Some(Overdue::Idle));
    }

    #[test]
    fn a_slow_head_is_closed_but_a_request_in_flight_is_not() {
        let activity = Activity::new(false);
        activity.request_started();
        activity.request_finished();
        activity.bytes_arrived(b"POST /identity/token HTTP/1.1\r\n");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(activity.overdue(&limits()), Some(Overdue::SlowHeaders));
        activity.request_started();
        assert_eq!(activity.overdue(&limits()), None);
        activity.request_finished();
        assert_eq!(activity.overdue(&limits()), None, "idle only from now");
        std::thread::sleep(Duration::from_millis(320));
        assert_eq!(activity.overdue(&limits()), Some(Overdue::Idle));
    }

    #[test]
    fn http2_control_frames_do_not_start_a_header_deadline() {
        let activity = Activity::new(false);
        activity.bytes_arrived(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        activity.request_started();
        activity.request_finished();
        activity.bytes_arrived(b"\x00\x00\x08\x06");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(
            activity.overdue(&limits()),
            None,
            "an idle h2 connection may ping"
        );
    }
}
