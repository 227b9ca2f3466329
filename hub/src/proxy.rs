//! The hub as its services' entry point (docs/services.md).
//!
//! Miners sit behind NAT, so a service is reached at
//! `/s/<serviceId>/<path>` on the hub: the request is sent, as HTTP/1.1, over
//! a *tunnel* to one of the service's healthy replicas. A tunnel is one TCP
//! connection's bytes carried by a connection the miner opens back to the hub
//! when asked ([`HubMessage::OpenTunnel`], then an HTTP upgrade at
//! [`tunnel_path`]); the miner connects it to the container's port inside the
//! container's own network namespace. Tunnels are pooled per replica by the
//! HTTP client, so a busy service reuses them. Responses stream through as
//! they come; WebSocket (any `Upgrade`) requests become a byte pipe between
//! the caller and the container.
//!
//! The hub checks each replica's health through the same tunnels
//! ([`run_prober`]): what the buyer pays for is what callers could reach.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use fog_protocol::api::{ErrorBody, ErrorDetail};
use fog_protocol::wire::{HubMessage, TUNNEL_ERROR_HEADER, TUNNEL_PROTOCOL, tunnel_path};
use fog_protocol::{Address, B256};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::engine::{EngineHandle, Event};
use crate::state::AppState;

/// How long a miner has to dial back for a tunnel.
pub const TUNNEL_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests one service may have in flight through this hub at once.
pub const MAX_IN_FLIGHT_PER_SERVICE: usize = 512;
/// Idle tunnels kept per replica, and for how long.
const POOL_IDLE_PER_REPLICA: usize = 32;
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// One replica the proxy may send to.
#[derive(Clone, Debug)]
pub struct Route {
    /// The segment (its batched job id).
    pub job_id: B256,
    pub miner: Address,
    /// Its last health check passed.
    pub healthy: bool,
    /// The miner's session.
    pub tx: mpsc::UnboundedSender<HubMessage>,
    pub health_path: String,
    pub interval: Duration,
}

#[derive(Debug)]
struct ServiceRoutes {
    routes: Vec<Route>,
    in_flight: Arc<Semaphore>,
}

/// The live replicas of every service, kept by the engine, read by requests.
#[derive(Debug, Default)]
pub struct Routes {
    services: RwLock<HashMap<B256, ServiceRoutes>>,
    segments: RwLock<HashMap<B256, Route>>,
    next: AtomicUsize,
}

impl Routes {
    /// Replaces a service's replicas; none removes the service.
    pub fn set(&self, service: B256, routes: Vec<Route>) {
        let mut services = self
            .services
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut segments = self
            .segments
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = services.get(&service) {
            for r in &old.routes {
                segments.remove(&r.job_id);
            }
        }
        for r in &routes {
            segments.insert(r.job_id, r.clone());
        }
        if routes.is_empty() {
            services.remove(&service);
        } else {
            let entry = services.entry(service).or_insert_with(|| ServiceRoutes {
                routes: Vec::new(),
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_SERVICE)),
            });
            entry.routes = routes;
        }
    }

    /// A healthy replica of `service`, round robin, with the service's
    /// in-flight limiter.
    fn pick(&self, service: B256) -> Option<(Route, Arc<Semaphore>)> {
        let services = self.services.read().unwrap_or_else(PoisonError::into_inner);
        let s = services.get(&service)?;
        let healthy: Vec<&Route> = s.routes.iter().filter(|r| r.healthy).collect();
        if healthy.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % healthy.len();
        Some((healthy[i].clone(), Arc::clone(&s.in_flight)))
    }

    fn segment(&self, job_id: B256) -> Option<Route> {
        self.segments
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&job_id)
            .cloned()
    }

    fn all(&self) -> Vec<Route> {
        self.segments
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

type TunnelResult = Result<hyper::upgrade::Upgraded, String>;

/// Tunnels asked of miners and not yet dialled back.
#[derive(Debug, Default)]
struct Tunnels {
    pending: Mutex<HashMap<B256, (Address, oneshot::Sender<TunnelResult>)>>,
}

impl Tunnels {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<B256, (Address, oneshot::Sender<TunnelResult>)>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a tunnel could not be had.
#[derive(Debug, thiserror::Error)]
enum TunnelError {
    #[error("the replica is gone")]
    Gone,
    #[error("the replica's miner did not open a tunnel within {0:?}")]
    Timeout(Duration),
    #[error("the replica's port cannot be reached: {0}")]
    Refused(String),
}

/// A tunnel as the HTTP client's connection.
#[derive(Debug)]
struct TunnelIo(hyper::upgrade::Upgraded);

impl hyper::rt::Read for TunnelIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TunnelIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl Connection for TunnelIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// Opens tunnels for the HTTP client: the URI's host names the segment.
#[derive(Clone, Debug)]
struct Connector {
    routes: Arc<Routes>,
    tunnels: Arc<Tunnels>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TunnelIo;
    type Error = TunnelError;
    type Future = Pin<Box<dyn Future<Output = Result<TunnelIo, TunnelError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let job_id = uri
                .host()
                .and_then(|h| h.strip_suffix(".fog"))
                .and_then(|h| h.parse::<B256>().ok())
                .ok_or(TunnelError::Gone)?;
            let route = me.routes.segment(job_id).ok_or(TunnelError::Gone)?;
            let tunnel = {
                let mut bytes = [0u8; 32];
                rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
                B256::from(bytes)
            };
            let (tx, rx) = oneshot::channel();
            me.tunnels.lock().insert(tunnel, (route.miner, tx));
            if route
                .tx
                .send(HubMessage::OpenTunnel { job_id, tunnel })
                .is_err()
            {
                me.tunnels.lock().remove(&tunnel);
                return Err(TunnelError::Gone);
            }
            let answer = tokio::time::timeout(TUNNEL_TIMEOUT, rx).await;
            me.tunnels.lock().remove(&tunnel);
            match answer {
                Ok(Ok(Ok(upgraded))) => Ok(TunnelIo(upgraded)),
                Ok(Ok(Err(why))) => Err(TunnelError::Refused(why)),
                Ok(Err(_)) => Err(TunnelError::Gone),
                Err(_) => Err(TunnelError::Timeout(TUNNEL_TIMEOUT)),
            }
        })
    }
}

/// The proxy's state: routes, pending tunnels, the pooled client.
#[derive(Debug)]
pub struct Proxy {
    routes: Arc<Routes>,
    tunnels: Arc<Tunnels>,
    client: Client<Connector, Body>,
}

impl Proxy {
    pub fn new(routes: Arc<Routes>) -> Self {
        let tunnels = Arc::new(Tunnels::default());
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_IDLE_PER_REPLICA)
            .build(Connector {
                routes: Arc::clone(&routes),
                tunnels: Arc::clone(&tunnels),
            });
        Self {
            routes,
            tunnels,
            client,
        }
    }

    pub fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }
}

fn segment_uri(job_id: B256, path_and_query: &str) -> Result<Uri, axum::http::Error> {
    Uri::builder()
        .scheme("http")
        .authority(format!("{job_id}.fog"))
        .path_and_query(path_and_query)
        .build()
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        }),
    )
        .into_response()
}

/// Headers that belong to one hop, not to the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !(keep_upgrade && n == header::UPGRADE))
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in &HOP_BY_HOP {
        headers.remove(n);
    }
    if !keep_upgrade {
        headers.remove(header::UPGRADE);
    }
}

/// `ANY /s/{serviceId}` and `/s/{serviceId}/{*path}`: the service's answer.
async fn proxy(
    State(app): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    mut request: Request,
) -> Response {
    let Some(service) = params.get("serviceId").and_then(|s| s.parse::<B256>().ok()) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such service: /s/<serviceId>/ takes a 0x-hex service id".into(),
        );
    };
    let Some((route, in_flight)) = app.proxy.routes.pick(service) else {
        let known = matches!(app.store.service(service).await, Ok(Some(_)));
        return if known {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("service {service} has no healthy replica right now"),
            )
        } else {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no service {service} at this hub"),
            )
        };
    };
    let Ok(_permit) = in_flight.try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "service {service} has {MAX_IN_FLIGHT_PER_SERVICE} requests in flight; try again"
            ),
        );
    };
    let prefix = format!("/s/{}", params.get("serviceId").map_or("", String::as_str));
    let path = request.uri().path();
    let rest = path.strip_prefix(&prefix).unwrap_or("/");
    let rest = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match request.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let uri = match segment_uri(route.job_id, &path_and_query) {
        Ok(u) => u,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    let upgrading = request.headers().contains_key(header::UPGRADE);
    let caller_upgrade = upgrading.then(|| hyper::upgrade::on(&mut request));
    let (mut parts, body) = request.into_parts();
    strip_hop_by_hop(&mut parts.headers, upgrading);
    if upgrading {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
    if let Ok(v) = HeaderValue::from_str(&peer.ip().to_string()) {
        parts.headers.append("x-forwarded-for", v);
    }
    if let Ok(v) = HeaderValue::from_str(&prefix) {
        parts.headers.insert("x-forwarded-prefix", v);
    }
    parts.uri = uri;
    parts.version = axum::http::Version::HTTP_11;
    let upstream = Request::from_parts(parts, body);
    let mut response = match app.proxy.client.request(upstream).await {
        Ok(r) => r,
        Err(e) => {
            let why =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
            return error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                format!("service {service}: {why}"),
            );
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(caller_upgrade) = caller_upgrade
    {
        let service_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(caller), Ok(service_side)) = (caller_upgrade.await, service_upgrade.await)
            else {
                return;
            };
            let _permit = _permit;
            let mut caller = TokioIo::new(caller);
            let mut service_side = TokioIo::new(service_side);
            let _ = tokio::io::copy_bidirectional(&mut caller, &mut service_side).await;
        });
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    Response::from_parts(parts, Body::new(body))
}

/// `GET /v1/miner/tunnel/{tunnel}`: a miner dials back for a tunnel it was asked for.
async fn tunnel(
    State(app): State<AppState>,
    Path(tunnel): Path<String>,
    mut request: Request,
) -> Response {
    let miner = match crate::api::connected_miner(&app, request.headers()) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let Ok(tunnel) = tunnel.parse::<B256>() else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such tunnel".into());
    };
    let pending = {
        let mut tunnels = app.proxy.tunnels.lock();
        match tunnels.get(&tunnel) {
            Some((owner, _)) if *owner == miner => tunnels.remove(&tunnel),
            _ => None,
        }
    };
    // Absent, expired and another miner's tunnels answer alike.
    let Some((_, waiting)) = pending else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such tunnel".into());
    };
    if let Some(why) = request.headers().get(TUNNEL_ERROR_HEADER) {
        let why = String::from_utf8_lossy(why.as_bytes())
            .chars()
            .take(500)
            .collect();
        let _ = waiting.send(Err(why));
        return StatusCode::NO_CONTENT.into_response();
    }
    let asks_tunnel = request.headers().get(header::UPGRADE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(TUNNEL_PROTOCOL.as_bytes())
    });
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .filter(|_| asks_tunnel)
    else {
        let _ = waiting.send(Err("the miner did not upgrade the connection".into()));
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("a tunnel needs `Connection: upgrade` and `Upgrade: {TUNNEL_PROTOCOL}`"),
        );
    };
    tokio::spawn(async move {
        let _ = waiting.send(on_upgrade.await.map_err(|e| e.to_string()));
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, TUNNEL_PROTOCOL)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The proxy's routes: public, outside the API's rate limits and JSON error
/// rewriting (a service's own answers pass through as they are).
pub fn router() -> axum::Router<AppState> {
    use axum::routing::{any, get};
    axum::Router::new()
        .route("/s/{serviceId}", any(proxy))
        .route("/s/{serviceId}/", any(proxy))
        .route("/s/{serviceId}/{*path}", any(proxy))
        .route(&tunnel_path_pattern(), get(tunnel))
}

fn tunnel_path_pattern() -> String {
    tunnel_path(B256::ZERO).replace(&B256::ZERO.to_string(), "{tunnel}")
}

/// Checks every replica's health through its tunnels, each at its service's
/// interval, and tells the engine. Runs until the engine is gone.
pub async fn run_prober(proxy: Arc<Proxy>, engine: EngineHandle) {
    let mut due: HashMap<B256, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let now = Instant::now();
        let routes = proxy.routes.all();
        due.retain(|job, _| routes.iter().any(|r| r.job_id == *job));
        for route in routes {
            let next = due.entry(route.job_id).or_insert(now);
            if *next > now {
                continue;
            }
            *next = now + route.interval;
            let proxy = Arc::clone(&proxy);
            let engine = engine.clone();
            tokio::spawn(async move {
                let ok = probe(&proxy, &route).await;
                let _ = engine
                    .send(Event::Probe {
                        job_id: route.job_id,
                        ok,
                    })
                    .await;
            });
        }
        if engine.is_closed() {
            return;
        }
    }
}

async fn probe(proxy: &Proxy, route: &Route) -> bool {
    let Ok(uri) = segment_uri(route.job_id, &route.health_path) else {
        return false;
    };
    let Ok(request) = Request::builder()
        .uri(uri)
        .header(header::USER_AGENT, "fog-hub health check")
        .body(Body::empty())
    else {
        return false;
    };
    let limit = route
        .interval
        .clamp(Duration::from_secs(1), Duration::from_secs(10));
    match tokio::time::timeout(limit, proxy.client.request(request)).await {
        Ok(Ok(response)) => {
            let ok = response.status().as_u16() < 400;
            // Read (and drop) the body so the tunnel returns to the pool.
            let _ = tokio::time::timeout(
                limit,
                http_body_util::BodyExt::collect(response.into_body()),
            )
            .await;
            ok
        }
        _ => false,
    }
}
