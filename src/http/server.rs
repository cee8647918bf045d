//! Serves the routes over hyper directly, because warp's own `serve` has no header-read
//! timeout: a client dribbling its headers would hold a connection forever.

use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_service::Service;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::filters::ClientAddr;
use super::ws::PendingUpgrade;
use crate::config::{Config, limits};

/// Accepts connections until `shutdown` resolves, then gives open requests a few seconds.
pub async fn serve(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    config: &Config,
    shutdown: impl Future<Output = ()>,
) {
    let service = warp::service(routes);
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
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_timeout = config.header_timeout;
        tokio::spawn(async move {
            // hyper's header timer starts with the first byte; a client that connects and
            // says nothing must not hold its slot forever either.
            if !first_byte_within(&stream, header_timeout).await {
                tracing::debug!(%addr, "closed a connection that sent nothing");
                return;
            }
            let mut service = service;
            let with_addr =
                tower_service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ClientAddr(addr));
                    PendingUpgrade::attach(&mut request);
                    service.call(request)
                });
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    TowerToHyperService::new(with_addr),
                )
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, %addr, "connection ended with an error");
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

/// True once the client has sent something (or closed), false if it stayed silent.
async fn first_byte_within(stream: &tokio::net::TcpStream, limit: std::time::Duration) -> bool {
    let mut probe = [0u8; 1];
    matches!(
        tokio::time::timeout(limit, stream.peek(&mut probe)).await,
        Ok(Ok(n)) if n > 0
    )
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
