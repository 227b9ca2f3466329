//! The hub's HTTP surface: the buyer API under `/v1`, the miners' WebSocket
//! and blob endpoints, `/healthz` and `/metrics`.
//!
//! Bodies are the typed structs of [`fog_protocol::api`]; the OpenAPI
//! document is generated from them and from the `#[utoipa::path]` of each
//! handler ([`openapi`]). Every error, whatever its status (405 and 413 from
//! the framework included), is [`ErrorBody`] `{"error": {"code", "message"}}`
//! saying what was wrong and what to do; 5xx only for the hub's own faults.
//!
//! Data isolation: a blob is usable only by the keys that own it (uploaded
//! its bytes, or own the job that produced it) or, once its owner published
//! it, by anyone. Answers never depend on whether another key holds the same
//! bytes: an upload always sends and checks the whole body, a blob the
//! caller does not own is "not yours" whether or not it exists.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use fog_protocol::api::{
    AssignmentView, BlobInfo, Cancelled, Challenge, ChallengeRequest, ErrorBody, Health, HubInfo,
    JobList, JobState, JobStatus, JobSummary, LoginRequest, Quota, QuoteRequest, Session,
    SettlementState, SettlementView, SubmitRequest, Submitted,
};
use fog_protocol::output::output_limit;
use fog_protocol::wire::buyer_login_message;
use fog_protocol::{Address, B256, U256};
use serde::Deserialize;
use utoipa::OpenApi;

use crate::auth::Principal;
use crate::blobs::BlobError;
use crate::chain::EscrowError;
use crate::engine::Event;
use crate::metrics::StateLabel;
use crate::state::{AppState, Shared};
use crate::store::{AssignmentRow, BlobKind, JobRow, OwnedBlob, StoreError};

pub use crate::state::Limits;

mod services;

/// The header naming an escrow the caller has open with this hub, on an
/// upload: what it has at stake raises its storage quota.
pub const ESCROW_HEADER: &str = "x-fog-escrow";

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

/// The stable code of a status, for [`ErrorBody`].
fn code_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        422 => "unprocessable",
        425 => "too_early",
        429 => "rate_limited",
        502 => "bad_gateway",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code_of(status),
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(what: &str, wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after: Some(Duration::from_secs(secs.max(1))),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests {what}: retry in {} s", secs.max(1)),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        }
        let mut response =
            (self.status, Json(ErrorBody::new(self.code, self.message))).into_response();
        if let Some(wait) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::JobExists(id) => Self::new(
                StatusCode::CONFLICT,
                format!("job {id} was already submitted"),
            ),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl From<crate::engine::EngineGone> for ApiError {
    fn from(e: crate::engine::EngineGone) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        let status = match e {
            BlobError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BlobError::HashMismatch { .. } | BlobError::Upload(_) => StatusCode::BAD_REQUEST,
            BlobError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        Self::new(e.status(), format!("request body: {}", e.body_text()))
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Parses a JSON body, saying exactly what is wrong with a bad one.
fn parse_json<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let body = body?;
    serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("request body: {e}")))
}

fn parse_hash(what: &str, text: &str) -> ApiResult<B256> {
    let ok = text.len() == 66 && text.starts_with("0x");
    let hash = if ok { text.parse::<B256>().ok() } else { None };
    hash.ok_or_else(|| {
        let shown: String = text.chars().take(80).collect();
        ApiError::bad(format!(
            "{what} {shown:?} is not a 0x-prefixed 32-byte hex hash"
        ))
    })
}

/// The caller's principal from `Authorization: Bearer TOKEN`.
fn principal(app: &Shared, headers: &HeaderMap) -> ApiResult<Principal> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "missing Authorization: Bearer <token> (log in at /v1/auth/challenge and /v1/auth/login)"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Authorization must be `Bearer <token>`",
            )
        })?;
    app.auth.principal(token.trim()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unknown or expired token: log in again",
        )
    })
}

fn buyer(app: &Shared, headers: &HeaderMap) -> ApiResult<Address> {
    match principal(app, headers)? {
        Principal::Buyer(a) => Ok(a),
        Principal::Miner(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a miner's session token cannot use the buyer API",
        )),
    }
}

/// The connected miner a request's session token belongs to.
pub(crate) fn connected_miner(app: &Shared, headers: &HeaderMap) -> ApiResult<Address> {
    miner(app, headers)
}

fn miner(app: &Shared, headers: &HeaderMap) -> ApiResult<Address> {
    match principal(app, headers)? {
        Principal::Miner(a) => Ok(a),
        Principal::Buyer(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only a connected miner's session token may do this",
        )),
    }
}

/// The job, if `caller` is its buyer. Another buyer's job answers 404 as
/// an unknown one does, so job ids cannot be probed.
async fn own_job(app: &Shared, caller: Address, job_id: B256) -> ApiResult<JobRow> {
    match app.store.job(job_id).await? {
        Some(job) if job.buyer == caller => Ok(job),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("you have no job {job_id}"),
        )),
    }
}

/// The buyer API, miners' endpoints and operations, as one router. Serve it
/// with `into_make_service_with_connect_info::<SocketAddr>()`: rate limits
/// are per source address.
pub fn router(app: AppState) -> axum::Router {
    let json_limit = app.limits.max_json_bytes;
    let blob_routes = axum::Router::new()
        .route("/v1/blobs/{hash}", put(put_blob).get(get_blob))
        .route("/v1/miner/jobs/{jobId}/output", put(put_output))
        // Blob bodies stream through BlobStore::put, which enforces its limit itself.
        .layer(DefaultBodyLimit::disable());
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi_document))
        .route("/v1/hub", get(hub_info))
        .route("/v1/auth/challenge", post(challenge))
        .route("/v1/auth/login", post(login))
        .route("/v1/quote", post(quote))
        .route("/v1/quota", get(quota))
        .route("/v1/jobs", post(submit).get(list_jobs))
        .route("/v1/jobs/{jobId}", get(job_status))
        .route("/v1/jobs/{jobId}/logs", get(job_logs))
        .route("/v1/jobs/{jobId}/output", get(job_output))
        .route("/v1/jobs/{jobId}/proof", get(job_proof))
        .route("/v1/proofs/{jobId}", get(public_proof))
        .route("/v1/jobs/{jobId}/cancel", post(cancel_job))
        .route("/v1/blobs/{hash}/info", get(blob_info))
        .route("/v1/blobs/{hash}/publish", post(publish_blob))
        .route("/v1/miner/ws", get(crate::sessions::miner_ws))
        .route("/v1/miner/blobs/{hash}", get(miner_blob))
        .route(
            "/v1/services",
            post(services::service_up).get(services::list_services),
        )
        .route("/v1/services/{serviceId}", get(services::service_status))
        .route("/v1/services/{serviceId}/logs", get(services::service_logs))
        .route(
            "/v1/services/{serviceId}/stop",
            post(services::stop_service),
        )
        .route(
            "/v1/services/{serviceId}/top-up",
            post(services::service_top_up),
        )
        .layer(DefaultBodyLimit::max(json_limit))
        .merge(blob_routes)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint; see /v1/openapi.json",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint does not take that method; see /v1/openapi.json",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            rate_limit,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .merge(crate::proxy::router())
        .with_state(app)
}

/// Per source address, per key and (for login challenges) per address
/// again, stricter; health and metrics are never limited.
async fn rate_limit(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let path = request.uri().path();
    if path == "/healthz" || path == "/metrics" {
        return Ok(next.run(request).await);
    }
    let limited = |what: String, wait| {
        app.metrics.rate_limited.inc();
        ApiError::rate_limited(&what, wait)
    };
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let ip = peer.ip();
        app.rates
            .address(ip)
            .map_err(|wait| limited(format!("from {ip}"), wait))?;
        if path == "/v1/auth/challenge" {
            app.rates
                .challenge(ip)
                .map_err(|wait| limited(format!("for login challenges from {ip}"), wait))?;
        }
    }
    if let Ok(principal) = principal(&app, request.headers()) {
        let key = match principal {
            Principal::Buyer(a) | Principal::Miner(a) => a,
        };
        app.rates
            .key(key)
            .map_err(|wait| limited(format!("for {key}"), wait))?;
    }
    Ok(next.run(request).await)
}

/// The safety net of the one error shape: an error answer made outside the
/// handlers (a body the framework refused, an unroutable request) that is
/// not JSON yet is wrapped into [`ErrorBody`], its text kept as the message.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        text
    };
    let mut wrapped = ApiError::new(status, message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            wrapped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    wrapped
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The hub and its database answer", body = Health)))]
async fn healthz(State(app): State<AppState>) -> ApiResult<Json<Health>> {
    app.store.job_counts().await?;
    Ok(Json(Health {
        status: "ok".into(),
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus metrics (OpenMetrics text); see docs/hub.md", content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(app): State<AppState>) -> ApiResult<Response> {
    for (state, n) in app.store.job_counts().await? {
        app.metrics.jobs.get_or_create(&StateLabel { state }).set(n);
    }
    app.metrics
        .pending_challenges
        .set(i64::try_from(app.auth.pending_challenges()).unwrap_or(i64::MAX));
    let text = app
        .metrics
        .encode()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Who this hub is on chain: what a client needs to open an escrow with it.
#[utoipa::path(get, path = "/v1/hub", tag = "hub",
    responses((status = 200, description = "The hub's address, chain and escrow", body = HubInfo)))]
async fn hub_info(State(app): State<AppState>) -> Json<HubInfo> {
    Json(HubInfo {
        hub: app.chain.hub(),
        chain_id: app.chain.chain_id(),
        escrow: app.chain.escrow(),
        fee_bps: app.fee_bps,
        batch: app.batch.as_ref().map(|b| fog_protocol::api::BatchTerms {
            contract: b.contract,
            auth_horizon_secs: b.auth_horizon_secs,
        }),
    })
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "hub",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
async fn openapi_document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}

#[utoipa::path(post, path = "/v1/auth/challenge", tag = "auth",
    request_body = ChallengeRequest,
    responses((status = 200, description = "A nonce and the message to sign", body = Challenge)))]
async fn challenge(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Challenge>> {
    let req: ChallengeRequest = parse_json(body)?;
    let nonce = app.auth.challenge(req.address);
    let message = buyer_login_message(app.chain.hub(), app.chain.chain_id(), nonce);
    Ok(Json(Challenge { nonce, message }))
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, description = "A bearer token", body = Session)))]
async fn login(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Session>> {
    let req: LoginRequest = parse_json(body)?;
    let message = buyer_login_message(app.chain.hub(), app.chain.chain_id(), req.nonce);
    let (token, ttl) = app
        .auth
        .login(req.address, req.nonce, &message, &req.signature)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    Ok(Json(Session {
        token,
        expires_in_secs: ttl.as_secs(),
    }))
}

#[utoipa::path(post, path = "/v1/quote", tag = "jobs",
    request_body = QuoteRequest,
    responses((status = 200, description = "What the spec would cost with the miners connected now", body = fog_protocol::api::Quote)))]
async fn quote(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<fog_protocol::api::Quote>> {
    let req: QuoteRequest = parse_json(body)?;
    req.spec
        .validate(app.chain.clock().unix_now())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("spec: {e}")))?;
    let quote = app
        .engine
        .ask(|reply| Event::Quote {
            spec: Box::new(req.spec),
            reply,
        })
        .await?;
    Ok(Json(quote))
}

#[utoipa::path(post, path = "/v1/jobs", tag = "jobs",
    request_body = SubmitRequest,
    security(("bearer" = [])),
    responses((status = 201, description = "Accepted and queued", body = Submitted)))]
async fn submit(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: SubmitRequest = parse_json(body)?;
    req.spec
        .validate(app.chain.clock().unix_now())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("spec: {e}")))?;
    let signed = fog_protocol::SignedJobSpec {
        payload: req.spec,
        signature: req.signature,
    };
    let buyer = signed
        .signer(&app.domain)
        .map_err(|e| ApiError::bad(format!("signature: {e}")))?;
    let spec = signed.payload;
    for input in &spec.inputs {
        match app.store.usable_blob(input.contentHash, buyer).await? {
            Some(size) if size == input.size => {}
            Some(size) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "input {:?}: your blob {} has {size} bytes, the spec says {}",
                        input.path, input.contentHash, input.size
                    ),
                ));
            }
            // The same answer whether or not another key holds these bytes.
            None => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "input {:?}: you have no blob {}: upload it first (PUT /v1/blobs/{}), or name a blob its owner published",
                        input.path, input.contentHash, input.contentHash
                    ),
                ));
            }
        }
    }
    // Paid through an escrow opened on chain, or (batched) authorised by the
    // buyer's signature against its batch account.
    let (row, max_payment, deadline) = match &req.auth {
        Some(auth) => {
            let batch = app.batch.as_ref().ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "this hub does not take batched jobs: open an escrow and submit without `auth`",
                )
            })?;
            // One batched admission at a time: two cannot both spend the same balance.
            let _admitting = batch.admitting.lock().await;
            let funding = check_batched(
                &app,
                batch,
                req.job_id,
                buyer,
                &spec,
                auth,
                req.funding.as_ref(),
            )
            .await?;
            if let Some(f) = &funding
                && !app.store.add_funding(f).await?
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "a permit of yours already waits for the hub's next epoch: submit without `funding` until it is used",
                ));
            }
            let row = app
                .store
                .insert_job_with_auth(req.job_id, buyer, &spec, &signed.signature, Some(auth))
                .await?;
            (row, spec.maxPayment, spec.deadline)
        }
        None => {
            let escrow = app
                .chain
                .check_escrow(req.job_id, buyer, &spec)
                .await
                .map_err(escrow_refusal)?;
            let row = app
                .store
                .insert_job(req.job_id, buyer, &spec, &signed.signature)
                .await?;
            (row, escrow.max_payment, escrow.deadline)
        }
    };
    let inputs: Vec<B256> = spec.inputs.iter().map(|i| i.contentHash).collect();
    app.store.link_job_blobs(req.job_id, &inputs).await?;
    app.store
        .add_stake(req.job_id, buyer, max_payment, deadline)
        .await?;
    app.engine
        .send(Event::JobQueued { job_id: req.job_id })
        .await?;
    app.metrics.submissions.inc();
    tracing::info!(job = %req.job_id, %buyer, "job submitted");
    Ok((
        StatusCode::CREATED,
        Json(Submitted {
            job_id: row.job_id,
            spec_hash: row.spec_hash,
            state: row.state,
        }),
    )
        .into_response())
}

/// A batched submission's authorisation: signed by the buyer, for this job,
/// this hub and this spec's terms, within the horizon, and covered by the
/// buyer's batch account beyond what it already authorised.
async fn check_batched(
    app: &Shared,
    batch: &crate::state::BatchPath,
    job_id: B256,
    buyer: Address,
    spec: &fog_protocol::JobSpec,
    auth: &fog_protocol::batch::SignedJobAuth,
    funding: Option<&fog_protocol::api::Funding>,
) -> ApiResult<Option<crate::store::FundingRow>> {
    let unfit = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    check_auth("auth", app, batch, buyer, auth)?;
    let a = &auth.payload;
    let expected = fog_protocol::batch::batch_job_id(buyer, a.salt);
    if job_id != expected {
        return Err(unfit(format!(
            "jobId must be the batched id of your salt {}: {expected}",
            a.salt
        )));
    }
    if a.specHash != spec.spec_hash()
        || a.maxPayment != spec.maxPayment
        || a.deadline != spec.deadline
        || a.replicas != spec.replicas
    {
        return Err(unfit(
            "auth's specHash, maxPayment, deadline and replicas must be the spec's".into(),
        ));
    }
    ensure_covered(app, batch, buyer, spec.maxPayment, funding, a.deadline).await
}

/// An authorisation (`what` names it in messages) signed by `buyer` for
/// this hub, accepting its commission, with a deadline within the horizon.
fn check_auth(
    what: &str,
    app: &Shared,
    batch: &crate::state::BatchPath,
    buyer: Address,
    auth: &fog_protocol::batch::SignedJobAuth,
) -> ApiResult<()> {
    let unfit = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    let signer = auth
        .signer(&batch.domain)
        .map_err(|e| ApiError::bad(format!("{what}.signature: {e}")))?;
    if signer != buyer {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{what} is signed by {signer}, not by the buyer {buyer}: the buyer signs every authorisation"
            ),
        ));
    }
    let a = &auth.payload;
    if a.hub != app.chain.hub() {
        return Err(unfit(format!(
            "{what} names hub {}, this hub is {}",
            a.hub,
            app.chain.hub()
        )));
    }
    if a.maxFeeBps < app.fee_bps {
        return Err(unfit(format!(
            "{what} accepts a commission of {} bps; this hub takes {}",
            a.maxFeeBps, app.fee_bps
        )));
    }
    let now = app.chain.clock().unix_now();
    if a.deadline <= now {
        return Err(unfit(format!(
            "{what}'s deadline {} has passed",
            a.deadline
        )));
    }
    if a.deadline > now + batch.auth_horizon_secs {
        return Err(unfit(format!(
            "{what}'s deadline is {} s away; batched work takes at most {} s (use an escrow for longer jobs, top up services)",
            a.deadline.saturating_sub(now),
            batch.auth_horizon_secs
        )));
    }
    Ok(())
}

/// The buyer's batch account (with permits waiting for an epoch, and
/// `funding` if given) covers `extra` on top of everything it already
/// authorised for unsettled jobs and services; 402 says how much is missing.
async fn ensure_covered(
    app: &Shared,
    batch: &crate::state::BatchPath,
    buyer: Address,
    extra: U256,
    funding: Option<&fog_protocol::api::Funding>,
    used_until: u64,
) -> ApiResult<Option<crate::store::FundingRow>> {
    let contract = fog_protocol::contracts::batch_settlement::BatchSettlement::new(
        batch.contract,
        app.chain.provider(),
    );
    let account = contract.accountOf(buyer).call().await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("reading your batch account: {e}"),
        )
    })?;
    let funding = match funding {
        Some(f) => Some(check_funding(app, batch, buyer, f, used_until).await?),
        None => None,
    };
    let balance = U256::from(account.balance)
        + app.store.pending_funding_of(buyer).await?
        + funding.as_ref().map_or(U256::ZERO, |f| f.value);
    let outstanding = app.store.outstanding_batched(buyer).await?.saturating_add(
        app.store
            .outstanding_services(buyer, app.chain.clock().unix_now())
            .await?,
    );
    let needed = outstanding.saturating_add(extra);
    if balance < needed {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            format!(
                "your batch account holds {balance} (base units, with any permit waiting for an epoch) and {outstanding} is already authorised for unsettled jobs and services: deposit at least {} more (`fog account deposit`, or a permit in `funding`)",
                needed - balance
            ),
        ));
    }
    Ok(funding)
}

/// A permit the buyer asks the hub to carry: signed by the buyer for the
/// batch contract under the token's domain with its current nonce, valid past
/// the job's deadline, for tokens the buyer holds.
async fn check_funding(
    app: &Shared,
    batch: &crate::state::BatchPath,
    buyer: Address,
    f: &fog_protocol::api::Funding,
    job_deadline: u64,
) -> ApiResult<crate::store::FundingRow> {
    use alloy::sol_types::SolStruct;
    use fog_protocol::contracts::fog_token::FogToken;
    let unfit = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    let gateway = |e: alloy::contract::Error| {
        ApiError::new(StatusCode::BAD_GATEWAY, format!("reading the token: {e}"))
    };
    if f.deadline <= job_deadline {
        return Err(unfit(format!(
            "funding.deadline {} must be after the job's deadline {job_deadline}: the permit is used in an epoch before it",
            f.deadline
        )));
    }
    let token_address = batch.token;
    let token = FogToken::new(token_address, app.chain.provider());
    let nonce = token.nonces(buyer).call().await.map_err(gateway)?;
    let name = token.name().call().await.map_err(gateway)?;
    let permit = fog_protocol::batch::Permit {
        owner: buyer,
        spender: batch.contract,
        value: f.value,
        nonce,
        deadline: fog_protocol::U256::from(f.deadline),
    };
    let domain = alloy::sol_types::eip712_domain! {
        name: name,
        version: "1",
        chain_id: app.chain.chain_id(),
        verifying_contract: token_address,
    };
    let signer = f
        .signature
        .recover_address_from_prehash(&permit.eip712_signing_hash(&domain))
        .map_err(|e| ApiError::bad(format!("funding.signature: {e}")))?;
    if signer != buyer {
        return Err(unfit(format!(
            "funding is a permit signed by {signer} (with permit nonce {nonce}); it must be yours, for the batch contract {}",
            batch.contract
        )));
    }
    let held = token.balanceOf(buyer).call().await.map_err(gateway)?;
    if held < f.value {
        return Err(unfit(format!(
            "funding.value {} is more than the {held} you hold",
            f.value
        )));
    }
    Ok(crate::store::FundingRow {
        owner: buyer,
        value: f.value,
        deadline: f.deadline,
        nonce,
        signature: f.signature,
    })
}

/// Where a settled batched job is: its epoch, leaf and Merkle proof.
#[utoipa::path(get, path = "/v1/jobs/{jobId}/proof", tag = "jobs",
    params(("jobId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex job id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The job's epoch, leaf and Merkle proof: check the epoch against BatchSettlement.epochHash and the leaf's receiptsCommitment against the receipts", body = fog_protocol::api::schema::JobProof)))]
async fn job_proof(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> ApiResult<Response> {
    let caller = buyer(&app, &headers)?;
    let job = own_job(&app, caller, parse_hash("job id", &job_id)?).await?;
    let not_yet = || {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("job {} is not in a committed epoch (yet)", job.job_id),
        )
    };
    let batch = app.batch.as_ref().ok_or_else(not_yet)?;
    let proof = batch
        .epochs
        .proof(job.job_id)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(not_yet)?;
    Ok(Json(proof).into_response())
}

/// A batched job's settlement evidence, for anyone: its miners (who claim a
/// job no epoch paid), verifiers and the DAO. What it shows — the leaf's
/// buyer, total and receipts' commitment — is what a dispute would put on
/// chain anyway; job ids are salted hashes, not enumerable.
#[utoipa::path(get, path = "/v1/proofs/{jobId}", tag = "jobs",
    params(("jobId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex job id")),
    responses((status = 200, description = "The job's epoch, leaf and Merkle proof", body = fog_protocol::api::schema::JobProof)))]
async fn public_proof(
    State(app): State<AppState>,
    Path(job_id): Path<String>,
) -> ApiResult<Response> {
    let job_id = parse_hash("job id", &job_id)?;
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no committed batched job {job_id}"),
        )
    };
    let batch = app.batch.as_ref().ok_or_else(unknown)?;
    let proof = batch
        .epochs
        .proof(job_id)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .ok_or_else(unknown)?;
    Ok(Json(proof).into_response())
}

fn escrow_refusal(e: EscrowError) -> ApiError {
    match e {
        EscrowError::Rpc(_) => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
        // 425 Too Early: the same request will succeed once the chain moves on.
        EscrowError::Unconfirmed { .. } => ApiError::new(StatusCode::TOO_EARLY, e.to_string()),
        other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    }
}

fn assignment_view(a: AssignmentRow) -> AssignmentView {
    AssignmentView {
        miner: a.miner,
        replica: a.replica,
        state: a.state,
        max_charge: a.max_charge,
        error: a.error,
        receipt: a.receipt,
        assignment_signature: a.signature,
    }
}

fn job_summary(app: &Shared, job: &JobRow) -> JobSummary {
    JobSummary {
        job_id: job.job_id,
        spec_hash: job.spec_hash,
        state: job.state,
        error: job.error.clone(),
        output_hash: job.output_hash,
        replicas: job.spec.replicas,
        created_at: job.created_at,
        updated_at: job.updated_at,
        cursor: job.seq,
        settlement: SettlementView {
            state: job.settlement,
            tx: job.settle_tx,
            error: job.settle_error.clone(),
        },
        data_expires_at: job.closed_at.map(|closed| {
            closed.saturating_add(i64::try_from(app.storage.retention_secs).unwrap_or(i64::MAX))
        }),
    }
}

#[utoipa::path(get, path = "/v1/jobs/{jobId}", tag = "jobs",
    params(("jobId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex job id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The job, its spec and its replicas' runs", body = JobStatus)))]
async fn job_status(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> ApiResult<Json<JobStatus>> {
    let caller = buyer(&app, &headers)?;
    let job = own_job(&app, caller, parse_hash("job id", &job_id)?).await?;
    let assignments = app
        .store
        .assignments_of(job.job_id)
        .await?
        .into_iter()
        .map(assignment_view)
        .collect();
    Ok(Json(JobStatus {
        summary: job_summary(&app, &job),
        spec: job.spec,
        assignments,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// A `cursor` from an earlier page: only older jobs.
    before: Option<i64>,
    /// Jobs per page, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/jobs", tag = "jobs",
    params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's jobs, newest first", body = JobList)))]
async fn list_jobs(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<JobList>> {
    let caller = buyer(&app, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad("limit must be 1-500"));
    }
    let jobs = app.store.jobs_of(caller, query.before, limit).await?;
    let next_before = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.seq))
        .flatten();
    Ok(Json(JobList {
        jobs: jobs.iter().map(|j| job_summary(&app, j)).collect(),
        next_before,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    /// Only lines after this `seq`.
    after: Option<i64>,
    /// Keep the response open until the job ends.
    follow: Option<bool>,
}

/// Logs as NDJSON lines ([`fog_protocol::api::LogLine`]); with
/// `follow=true` the response stays open until the job ends.
#[utoipa::path(get, path = "/v1/jobs/{jobId}/logs", tag = "jobs",
    params(("jobId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex job id"), LogQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "NDJSON, one LogLine per line", content_type = "application/x-ndjson", body = fog_protocol::api::LogLine)))]
async fn job_logs(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let caller = buyer(&app, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let job = own_job(&app, caller, parse_hash("job id", &job_id)?).await?;
    Ok(log_response(app, LogSource::Job(job.job_id), &query))
}

/// Whose logs a log response streams.
#[derive(Clone, Copy, Debug)]
enum LogSource {
    Job(B256),
    Service(B256),
}

impl LogSource {
    async fn read(self, app: &Shared, after: i64) -> Result<Vec<crate::store::LogRow>, StoreError> {
        match self {
            Self::Job(id) => app.store.logs(id, after, 500).await,
            Self::Service(id) => app.store.service_logs(id, after, 500).await,
        }
    }

    /// No more lines will come.
    async fn ended(self, app: &Shared) -> bool {
        match self {
            Self::Job(id) => matches!(app.store.job(id).await, Ok(Some(j)) if j.state.is_final()),
            Self::Service(id) => {
                matches!(app.store.service(id).await, Ok(Some(s)) if s.state.is_final())
            }
        }
    }
}

/// NDJSON log lines after `query.after`; with `follow` the response stays
/// open until the job or service ends.
fn log_response(app: AppState, source: LogSource, query: &LogQuery) -> Response {
    let follow = query.follow.unwrap_or(false);
    let start = query.after.unwrap_or(0);
    let stream =
        futures_util::stream::unfold((app, start, false), move |(app, after, done)| async move {
            if done {
                return None;
            }
            loop {
                let rows = match source.read(&app, after).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        return Some((
                            Err(std::io::Error::other(e.to_string())),
                            (app, after, true),
                        ));
                    }
                };
                if let Some(last) = rows.last() {
                    let next = last.seq;
                    let mut text = String::new();
                    for row in &rows {
                        text.push_str(&serde_json::to_string(row).unwrap_or_default());
                        text.push('\n');
                    }
                    return Some((Ok::<_, std::io::Error>(text), (app, next, false)));
                }
                if !follow {
                    return None;
                }
                if source.ended(&app).await {
                    // One last read: lines stored just before the end.
                    let rest = source.read(&app, after).await.unwrap_or_default();
                    if rest.is_empty() {
                        return None;
                    }
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/jobs/{jobId}/output", tag = "jobs",
    params(("jobId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex job id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The output archive the replicas agreed on (a tar; its sha256 is the receipts' outputHash), once the job is settled on chain", content_type = "application/octet-stream", body = Vec<u8>)))]
async fn job_output(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> ApiResult<Response> {
    let caller = buyer(&app, &headers)?;
    let job = own_job(&app, caller, parse_hash("job id", &job_id)?).await?;
    let Some(hash) = job.output_hash.filter(|_| job.state == JobState::Completed) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "job {} is {}: no verified output yet",
                job.job_id,
                job.state.as_str()
            ),
        ));
    };
    // Released only once paid for: a buyer who could download before settlement could refund
    // after the deadline and keep the result for nothing.
    if job.settlement != Some(SettlementState::Settled) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "job {}'s output is released once its settlement is on chain (settlement: {}); wait for it (`fog job status`)",
                job.job_id,
                job.settlement
                    .map_or("not yet sent", SettlementState::as_str)
            ),
        ));
    }
    send_blob(&app, hash).await
}

async fn send_blob(app: &Shared, hash: B256) -> ApiResult<Response> {
    let path = app.blobs.path(hash);
    let file = tokio::fs::File::open(&path).await.map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("blob {hash} is no longer stored (its retention period is over)"),
        )
    })?;
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/jobs/{jobId}/cancel", tag = "jobs",
    params(("jobId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex job id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The job is cancelled", body = Cancelled)))]
async fn cancel_job(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> ApiResult<Json<Cancelled>> {
    let caller = buyer(&app, &headers)?;
    let job = own_job(&app, caller, parse_hash("job id", &job_id)?).await?;
    app.engine
        .ask(|reply| Event::Cancel {
            job_id: job.job_id,
            reply,
        })
        .await?
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    // `cancelled` at once, or still `running` while its runs are stopped
    // and report the time they used.
    let state = app
        .store
        .job(job.job_id)
        .await?
        .map_or(JobState::Cancelled, |j| j.state);
    Ok(Json(Cancelled {
        job_id: job.job_id,
        state,
    }))
}

// ---- blobs -----------------------------------------------------------------------

/// What a key may store now: its free allowance plus what its stake buys,
/// capped. Returns (max bytes, max blobs, stake).
async fn quota_of(app: &Shared, key: Address) -> ApiResult<Quota> {
    let stake = app.store.stake(key, app.chain.clock().unix_now()).await?;
    let (used_bytes, used_blobs) = app.store.usage(key).await?;
    let st = &app.storage;
    let tokens = stake / U256::from(10u64).pow(U256::from(18u64));
    let grow = |per_token: u64| {
        u64::try_from(tokens.saturating_mul(U256::from(per_token))).unwrap_or(u64::MAX)
    };
    Ok(Quota {
        used_bytes,
        used_blobs,
        max_bytes: st
            .free_bytes
            .saturating_add(grow(st.bytes_per_token))
            .min(st.max_bytes),
        max_blobs: st
            .free_blobs
            .saturating_add(grow(st.blobs_per_token))
            .min(st.max_blobs),
        stake,
    })
}

fn quota_message(q: &Quota, adding: &str, app: &Shared) -> String {
    format!(
        "storage quota exceeded: you hold {} bytes in {} blobs and {adding}; your quota is {} bytes and {} blobs ({} bytes and {} blobs free, plus {} bytes and {} blobs per whole token you have in open escrows with this hub: {} base units now). Open your job's escrow first and name it in the {ESCROW_HEADER} header, or wait for your older blobs to expire",
        q.used_bytes,
        q.used_blobs,
        q.max_bytes,
        q.max_blobs,
        app.storage.free_bytes,
        app.storage.free_blobs,
        app.storage.bytes_per_token,
        app.storage.blobs_per_token,
        q.stake
    )
}

fn blob_view(app: &Shared, owned: &OwnedBlob) -> BlobInfo {
    BlobInfo {
        hash: owned.hash,
        size: owned.size,
        public: owned.public,
        expires_at: owned
            .created_at
            .saturating_add(i64::try_from(app.storage.unused_blob_secs).unwrap_or(i64::MAX)),
    }
}

/// Records what the caller has at stake when it names an open escrow.
async fn note_escrow(app: &Shared, caller: Address, headers: &HeaderMap) -> ApiResult<()> {
    let Some(value) = headers.get(ESCROW_HEADER) else {
        return Ok(());
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad(format!("{ESCROW_HEADER}: not text")))?;
    let job_id = parse_hash(ESCROW_HEADER, text.trim())?;
    let escrow = app
        .chain
        .open_escrow(job_id, caller)
        .await
        .map_err(escrow_refusal)?;
    app.store
        .add_stake(job_id, caller, escrow.max_payment, escrow.deadline)
        .await?;
    Ok(())
}

/// Buyers upload inputs by hash: the body must hash to it. The whole body
/// is always read and checked, whoever else stored the same bytes: owning a
/// blob takes having its bytes.
#[utoipa::path(put, path = "/v1/blobs/{hash}", tag = "blobs",
    params(("hash" = fog_protocol::api::schema::Hash, Path, description = "0x-hex sha256 of the body"),
           ("x-fog-escrow" = Option<fog_protocol::api::schema::Hash>, Header, description = "A job id whose escrow the caller has open with this hub: raises the storage quota")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses((status = 201, description = "Stored; the caller owns it", body = BlobInfo)))]
async fn put_blob(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let mut upload = body.into_data_stream();
    let stored = store_upload(&app, &headers, &hash, &mut upload).await;
    if stored.is_err() {
        drain(&mut upload).await;
    }
    stored
}

/// Bytes of a refused upload the hub still reads before answering, so that
/// a client still sending gets the answer rather than a reset connection.
const DRAIN_LIMIT: u64 = 16 << 20;

/// Reads and drops what is left of a refused request body, up to [`DRAIN_LIMIT`].
async fn drain(body: &mut axum::body::BodyDataStream) {
    use futures_util::StreamExt;
    let mut read = 0u64;
    while let Some(Ok(chunk)) = body.next().await {
        read = read.saturating_add(chunk.len() as u64);
        if read > DRAIN_LIMIT {
            break;
        }
    }
}

async fn store_upload(
    app: &Shared,
    headers: &HeaderMap,
    hash: &str,
    upload: &mut axum::body::BodyDataStream,
) -> ApiResult<Response> {
    let caller = buyer(app, headers)?;
    let expected = parse_hash("blob hash", hash)?;
    note_escrow(app, caller, headers).await?;
    // A blob the caller already uploaded is counted in its quota already;
    // its body is still read and checked like any other.
    let counted = app
        .store
        .owned_blob(expected, caller)
        .await?
        .is_some_and(|owned| owned.kind == BlobKind::Upload);
    let mut quota = quota_of(app, caller).await?;
    if counted {
        quota.max_blobs = quota.max_blobs.max(quota.used_blobs.saturating_add(1));
        quota.max_bytes = u64::MAX;
    }
    if quota.used_blobs >= quota.max_blobs {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            quota_message(&quota, "may store no further blob", app),
        )
        .with_code("quota_exceeded"));
    }
    let room = quota.max_bytes.saturating_sub(quota.used_bytes);
    let limit = room.min(app.limits.max_blob_bytes);
    let staged = match app.blobs.stage(upload, limit, Some(expected)).await {
        Err(BlobError::TooLarge { .. }) if room < app.limits.max_blob_bytes => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                quota_message(
                    &quota,
                    &format!("this upload needs more than the {room} bytes left"),
                    app,
                ),
            )
            .with_code("quota_exceeded"));
        }
        other => other?,
    };
    let _committing = app.blobs.commit_lock().await;
    let (hash, size) = app.blobs.commit(staged).await?;
    app.store.record_blob(hash, size, caller).await?;
    let owned = app
        .store
        .add_owner(hash, caller, size, BlobKind::Upload)
        .await?;
    Ok((StatusCode::CREATED, Json(blob_view(app, &owned))).into_response())
}

/// The caller's own blob, or 404 — whether or not anyone else has it.
async fn mine(app: &Shared, caller: Address, hash: B256) -> ApiResult<OwnedBlob> {
    app.store
        .owned_blob(hash, caller)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("you have no blob {hash}")))
}

/// Buyers read back the blobs they own (outputs also at `/v1/jobs/{id}/output`).
#[utoipa::path(get, path = "/v1/blobs/{hash}", tag = "blobs",
    params(("hash" = fog_protocol::api::schema::Hash, Path, description = "0x-hex sha256")),
    security(("bearer" = [])),
    responses((status = 200, description = "The blob's bytes", content_type = "application/octet-stream", body = Vec<u8>)))]
async fn get_blob(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    let caller = buyer(&app, &headers)?;
    let hash = parse_hash("blob hash", &hash)?;
    let owned = mine(&app, caller, hash).await?;
    send_blob(&app, owned.hash).await
}

#[utoipa::path(get, path = "/v1/blobs/{hash}/info", tag = "blobs",
    params(("hash" = fog_protocol::api::schema::Hash, Path, description = "0x-hex sha256")),
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's blob: size, whether published, when it expires unless used", body = BlobInfo)))]
async fn blob_info(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> ApiResult<Json<BlobInfo>> {
    let caller = buyer(&app, &headers)?;
    let owned = mine(&app, caller, parse_hash("blob hash", &hash)?).await?;
    Ok(Json(blob_view(&app, &owned)))
}

/// Publishes the caller's blob: any buyer's spec may then name it.
#[utoipa::path(post, path = "/v1/blobs/{hash}/publish", tag = "blobs",
    params(("hash" = fog_protocol::api::schema::Hash, Path, description = "0x-hex sha256")),
    security(("bearer" = [])),
    responses((status = 200, description = "Published", body = BlobInfo)))]
async fn publish_blob(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> ApiResult<Json<BlobInfo>> {
    let caller = buyer(&app, &headers)?;
    let hash = parse_hash("blob hash", &hash)?;
    mine(&app, caller, hash).await?;
    app.store.publish_blob(hash, caller).await?;
    let owned = mine(&app, caller, hash).await?;
    Ok(Json(blob_view(&app, &owned)))
}

#[utoipa::path(get, path = "/v1/quota", tag = "blobs",
    security(("bearer" = [])),
    responses((status = 200, description = "What the caller stores and may store", body = Quota)))]
async fn quota(State(app): State<AppState>, headers: HeaderMap) -> ApiResult<Json<Quota>> {
    let caller = buyer(&app, &headers)?;
    Ok(Json(quota_of(&app, caller).await?))
}

// ---- miners -----------------------------------------------------------------------

/// A miner uploads the output archive of a job it holds; it belongs to the
/// job's buyer and is at most `output_limit` of the job's disk.
#[utoipa::path(put, path = "/v1/miner/jobs/{jobId}/output", tag = "miners",
    params(("jobId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex job id")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses((status = 201, description = "Stored for the job's buyer", body = BlobInfo)))]
async fn put_output(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let mut upload = body.into_data_stream();
    let stored = store_output(&app, &headers, &job_id, &mut upload).await;
    if stored.is_err() {
        drain(&mut upload).await;
    }
    stored
}

async fn store_output(
    app: &Shared,
    headers: &HeaderMap,
    job_id: &str,
    upload: &mut axum::body::BodyDataStream,
) -> ApiResult<Response> {
    let caller = miner(app, headers)?;
    let job_id = parse_hash("job id", job_id)?;
    let allowed = app
        .engine
        .ask(|reply| Event::MayUpload {
            miner: caller,
            job_id,
            reply,
        })
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!("job {job_id} is not assigned to you"),
            )
        })?;
    let limit = output_limit(allowed.disk_bytes).min(app.limits.max_blob_bytes);
    let staged = app.blobs.stage(upload, limit, None).await?;
    let _committing = app.blobs.commit_lock().await;
    let (hash, size) = app.blobs.commit(staged).await?;
    app.store.record_blob(hash, size, caller).await?;
    let owned = app
        .store
        .add_owner(hash, allowed.buyer, size, BlobKind::Output)
        .await?;
    app.store.link_job_blobs(job_id, &[hash]).await?;
    Ok((StatusCode::CREATED, Json(blob_view(app, &owned))).into_response())
}

/// A miner fetches an input of a job it holds.
#[utoipa::path(get, path = "/v1/miner/blobs/{hash}", tag = "miners",
    params(("hash" = fog_protocol::api::schema::Hash, Path, description = "0x-hex sha256")),
    security(("bearer" = [])),
    responses((status = 200, description = "The input's bytes", content_type = "application/octet-stream", body = Vec<u8>)))]
async fn miner_blob(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    let caller = miner(&app, &headers)?;
    let hash = parse_hash("blob hash", &hash)?;
    let allowed = app
        .engine
        .ask(|reply| Event::MayFetch {
            miner: caller,
            hash,
            reply,
        })
        .await?;
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("no job of yours needs blob {hash}"),
        ));
    }
    send_blob(&app, hash).await
}

/// The miners' WebSocket (documented here; served by [`crate::sessions`]).
#[utoipa::path(get, path = "/v1/miner/ws", tag = "miners",
    responses((status = 101, description = "Switching to the miner wire protocol (fog_protocol::wire)")))]
#[allow(dead_code)]
fn miner_ws_doc() {}

// ---- the OpenAPI document ------------------------------------------------------------

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fog hub API",
        version = "1",
        description = "Buyers submit buyer-signed job specs backed by an open on-chain escrow, upload inputs, follow their jobs and download verified outputs. Every error is JSON {\"error\": {\"code\", \"message\"}} saying what was wrong and what to do. Amounts are token base units as strings (0x-hex as the hub writes them; decimal accepted); hashes and addresses are 0x-hex. Blobs belong to the keys that uploaded them; storage is quota'd per key by what it has at stake, and data is deleted after a retention period once its job is closed."
    ),
    paths(
        healthz, metrics, openapi_document, hub_info, challenge, login, quote, quota, submit,
        list_jobs, job_status, job_logs, job_output, job_proof, public_proof, cancel_job, put_blob, get_blob,
        blob_info, publish_blob, put_output, miner_blob, miner_ws_doc,
        services::service_up, services::list_services, services::service_status,
        services::service_logs, services::stop_service, services::service_top_up
    ),
    components(schemas(ErrorBody)),
    modifiers(&Conventions)
)]
struct ApiDoc;

/// What every operation shares: the bearer scheme and the error answers.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A buyer token from /v1/auth/login, or (miner endpoints) a miner's session token from its WebSocket welcome."))
                    .build(),
            ),
        );
        let errors: [(&str, &str); 12] = [
            (
                "400",
                "Malformed request: body, path parameter or query (the message names it)",
            ),
            ("401", "Missing, unknown or expired token"),
            (
                "402",
                "A batched job your batch account does not cover: deposit the amount named",
            ),
            (
                "403",
                "Not allowed: another key's data, or the wrong kind of token",
            ),
            ("404", "No such job, blob or endpoint of yours"),
            ("405", "The endpoint does not take this method"),
            ("409", "The job is not in a state for this"),
            (
                "413",
                "Body too large, or the storage quota exceeded (code quota_exceeded)",
            ),
            (
                "422",
                "Well-formed but refused: the spec, its escrow or its inputs",
            ),
            ("429", "Rate limited: see Retry-After"),
            ("500", "The hub's own fault"),
            ("503", "The hub is shutting down or overloaded"),
        ];
        let paths: Vec<String> = doc.paths.paths.keys().cloned().collect();
        for path in paths {
            let Some(item) = doc.paths.paths.get_mut(&path) else {
                continue;
            };
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in errors {
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                    "ErrorBody",
                                ))))
                                .build(),
                        )
                        .build();
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert(RefOr::T(response));
                }
                if matches!(path.as_str(), "/v1/jobs" | "/v1/quote") {
                    for (status, description) in [
                        (
                            "425",
                            "The escrow is not yet deep enough: submit again shortly",
                        ),
                        ("502", "The chain could not be read"),
                    ] {
                        let response = ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(RefOr::Ref(
                                        utoipa::openapi::Ref::from_schema_name("ErrorBody"),
                                    )))
                                    .build(),
                            )
                            .build();
                        operation
                            .responses
                            .responses
                            .entry(status.to_owned())
                            .or_insert(RefOr::T(response));
                    }
                }
            }
        }
    }
}

/// The OpenAPI document of this API, generated from its types and handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served and as committed in `hub/openapi.json`.
pub fn openapi_json() -> String {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut text = openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        text.push('\n');
        text
    })
    .clone()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The committed document is the generated one: change the types or the
    /// handlers, then run `fog-hub openapi > hub/openapi.json`.
    #[test]
    fn the_committed_openapi_document_is_the_generated_one() {
        let committed = include_str!("../openapi.json");
        let generated = super::openapi_json();
        assert!(
            committed == generated,
            "hub/openapi.json is stale: run `cargo run -p fog-hub -- openapi > hub/openapi.json`"
        );
    }

    /// Every route the router serves is in the OpenAPI document, and nothing else.
    #[test]
    fn openapi_document_lists_every_route() {
        let doc = super::openapi();
        let documented: std::collections::BTreeSet<String> =
            doc.paths.paths.keys().cloned().collect();
        let source = include_str!("api.rs");
        let served: std::collections::BTreeSet<String> = source
            .match_indices(".route(")
            .filter_map(|(i, m)| {
                // rustfmt may put the path on the next line.
                let rest = source[i + m.len()..].trim_start().strip_prefix('"')?;
                let path = &rest[..rest.find('"')?];
                path.starts_with('/').then(|| path.to_owned())
            })
            .collect();
        assert_eq!(documented, served);
    }
}
