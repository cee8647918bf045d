//! `GET /metrics` (Prometheus, off unless configured) and `GET /api/admin/status`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use warp::Reply;
use warp::reply::Response;

use super::error::ApiError;
use super::filters::{Admin, QueryParams};
use crate::app::App;
use crate::auth::password::constant_time_eq;
use crate::config::MetricsAccess;
use crate::{metrics, status, store};

/// What `/metrics` does with one request.
#[derive(Debug, PartialEq, Eq)]
pub enum MetricsDecision {
    Serve,
    /// Token mode without the right token: 401.
    NeedToken,
    /// Off, or loopback-only and the request came from elsewhere: 404, as for any unknown
    /// path, so a scanner learns nothing.
    Hidden,
}

/// Loopback mode admits 127.0.0.1 and ::1 without a token; a token admits anyone.
pub fn metrics_decision(
    access: &MetricsAccess,
    from: Option<SocketAddr>,
    authorization: Option<&str>,
) -> MetricsDecision {
    if access.loopback && from.is_some_and(|addr| is_localhost(addr.ip())) {
        return MetricsDecision::Serve;
    }
    let Some(expected) = &access.token else {
        return MetricsDecision::Hidden;
    };
    let offered = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    match offered {
        Some(token) if same_secret(token, expected) => MetricsDecision::Serve,
        _ => MetricsDecision::NeedToken,
    }
}

/// Compares digests, so neither the content nor the length of the token leaks through timing.
fn same_secret(offered: &str, expected: &str) -> bool {
    constant_time_eq(
        &Sha256::digest(offered.as_bytes()),
        &Sha256::digest(expected.as_bytes()),
    )
}

fn is_localhost(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4 == Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

pub async fn metrics(app: Arc<App>) -> Result<Response, ApiError> {
    let text = tokio::task::spawn_blocking(move || app.metrics.render(&status::live(&app)))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(warp::reply::with_header(text, "content-type", metrics::CONTENT_TYPE).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// Unix ms; "today" starts at the admin's local midnight, which only the browser knows.
    since: Option<u64>,
}

impl QueryParams for StatusQuery {}

pub async fn admin_status(
    app: Arc<App>,
    _admin: Admin,
    query: StatusQuery,
) -> Result<Response, ApiError> {
    let day_ago = store::now_millis().saturating_sub(24 * 3600 * 1000);
    let since = query.since.unwrap_or(day_ago);
    let status = store::blocking(move || status::server_status(&app, since)).await?;
    Ok(warp::reply::json(&status).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(token: Option<&str>, loopback: bool) -> MetricsAccess {
        MetricsAccess {
            token: token.map(str::to_owned),
            loopback,
        }
    }

    fn from(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("ip"), 40000))
    }

    #[test]
    fn loopback_means_exactly_localhost() {
        let loopback = access(None, true);
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(
                metrics_decision(&loopback, from(ip), None),
                MetricsDecision::Serve
            );
        }
        for ip in ["127.0.0.2", "192.168.1.20", "::2"] {
            assert_eq!(
                metrics_decision(&loopback, from(ip), None),
                MetricsDecision::Hidden
            );
        }
        assert_eq!(
            metrics_decision(&loopback, None, None),
            MetricsDecision::Hidden
        );
    }

    #[test]
    fn token_needs_the_exact_bearer() {
        let token = access(Some("0123456789abcdef"), false);
        let lan = from("192.168.1.20");
        let decide = |header| metrics_decision(&token, lan, header);
        assert_eq!(
            decide(Some("Bearer 0123456789abcdef")),
            MetricsDecision::Serve
        );
        assert_eq!(
            decide(Some("Bearer 0123456789abcdeF")),
            MetricsDecision::NeedToken
        );
        assert_eq!(
            decide(Some("Bearer 0123456789abcde")),
            MetricsDecision::NeedToken
        );
        assert_eq!(decide(Some("0123456789abcdef")), MetricsDecision::NeedToken);
        assert_eq!(decide(None), MetricsDecision::NeedToken);
        assert_eq!(
            metrics_decision(&access(None, false), lan, Some("Bearer x")),
            MetricsDecision::Hidden
        );
    }
}
