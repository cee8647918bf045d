//! Serves the routes over hyper directly, because warp's own `serve` has no header-read
//! timeout: a client dribbling its headers would hold a connection forever.
//!
//! With TLS, HTTPS and plain HTTP share the port: the first byte of a connection tells a TLS
//! handshake (0x16) from an HTTP request, which gets the plain routes (a redirect to HTTPS,
//! and the page that explains how to trust the server).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::filters::ClientAddr;
use super::ws::PendingUpgrade;
use crate::config::{Config, limits};
use crate::tls::Tls;

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What a connection is served: the routes, and with TLS the plain-HTTP routes too.
pub struct Surface {
    pub routes: BoxedFilter<(Response,)>,
    pub tls: Option<(Tls, BoxedFilter<(Response,)>)>,
}

/// Accepts connections until `shutdown` resolves, then gives open requests a few seconds.
pub async fn serve(
    listener: TcpListener,
    surface: Surface,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) {
    let service = warp::service(surface.routes);
    let tls = surface
        .tls
        .map(|(tls, plain)| Arc::new((tls, warp::service(plain))));
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);

    tokio::pin!(shutdown);
    loop {
        // Wait for a free slot before accepting: past the cap, clients queue in the backlog.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually out of file descriptors; back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Frames are small and latency matters more than packet count: without this, an ack
        // can wait 40 ms for Nagle's algorithm and a delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = service.clone();
        let tls = tls.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_timeout = config.header_timeout;
        tokio::spawn(async move {
            // hyper's header timer starts with the first byte; a client that connects and
            // says nothing must not hold its slot forever either.
            let Some(first) = first_byte_within(&stream, header_timeout).await else {
                tracing::debug!(%addr, "closed a connection that sent nothing");
                return;
            };
            let served = Served {
                builder,
                watcher,
                addr,
            };
            match tls.as_deref() {
                None => served.over(stream, service).await,
                Some((_, plain)) if first != TLS_HANDSHAKE => {
                    served.over(stream, plain.clone()).await
                }
                Some((tls, _)) => {
                    // The handshake gets the same limit as the headers that follow it.
                    match tokio::time::timeout(header_timeout, tls.acceptor().accept(stream)).await
                    {
                        Ok(Ok(stream)) => served.over(stream, service).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits::SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some requests were still running at shutdown");
    }
}

/// One accepted connection's serving kit.
struct Served {
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    addr: std::net::SocketAddr,
}

impl Served {
    /// Serves HTTP/1.1 (and WebSocket upgrades) on `io` until the client or shutdown ends it.
    async fn over<I, S>(self, io: I, mut service: S)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: Service<http::Request<hyper::body::Incoming>, Response = Response, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let Served {
            builder,
            watcher,
            addr,
        } = self;
        let with_addr =
            tower_service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ClientAddr(addr));
                PendingUpgrade::attach(&mut request);
                service.call(request)
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(with_addr))
            .into_owned();
        if let Err(e) = watcher.watch(connection).await {
            tracing::debug!(error = %e, %addr, "connection ended with an error");
        }
    }
}

/// The first byte the client sent, left unread; `None` if it stayed silent or closed.
async fn first_byte_within(stream: &TcpStream, limit: std::time::Duration) -> Option<u8> {
    let mut probe = [0u8; 1];
    match tokio::time::timeout(limit, stream.peek(&mut probe)).await {
        Ok(Ok(n)) if n > 0 => Some(probe[0]),
        _ => None,
    }
}

/// A tower service from a closure (tower's `service_fn`, without the tower dependency).
fn tower_service_fn<F>(f: F) -> ServiceFn<F> {
    ServiceFn(f)
}

#[derive(Clone)]
struct ServiceFn<F>(F);

impl<F, R, Fut, T, E> Service<R> for ServiceFn<F>
where
    F: FnMut(R) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Response = T;
    type Error = E;
    type Future = Fut;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> Fut {
        (self.0)(request)
    }
}
