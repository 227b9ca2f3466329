//! The hub's HTTP surface: the buyer API under `/v1`, the miners' WebSocket
//! and blob endpoints, `/healthz` and `/metrics`.
//!
//! Every error is JSON `{"error": "…"}` with a 4xx status that says what was
//! wrong with the request (5xx only for the hub's own faults). JSON bodies
//! are parsed by hand from bytes so that a malformed body gets serde's own
//! message (field, line, column) rather than a generic rejection.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use fog_protocol::wire::buyer_login_message;
use fog_protocol::{Address, B256, Eip712Domain, JobSpec, Signature, U256};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Auth, Principal};
use crate::blobs::{BlobError, BlobStore};
use crate::chain::{Chain, EscrowError};
use crate::engine::{EngineHandle, Event};
use crate::metrics::{Metrics, StateLabel};
use crate::store::{AssignmentRow, JobRow, JobState, Store, StoreError};

/// Size limits of requests.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest JSON body.
    pub max_json_bytes: usize,
    /// Largest blob (input or output archive).
    pub max_blob_bytes: u64,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    pub store: Store,
    pub blobs: BlobStore,
    pub chain: Chain,
    pub auth: Auth,
    pub engine: EngineHandle,
    pub metrics: Metrics,
    pub limits: Limits,
    pub domain: Eip712Domain,
    pub heartbeat_interval: Duration,
    pub fee_bps: u16,
    pub next_conn: AtomicU64,
}

pub type AppState = Arc<Shared>;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, error = %self.message, "request failed");
        }
        (self.status, Json(json!({ "error": self.message }))).into_response()
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

type ApiResult<T> = Result<T, ApiError>;

/// Parses a JSON body, saying exactly what is wrong with a bad one.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("request body: {e}")))
}

fn parse_hash(what: &str, text: &str) -> ApiResult<B256> {
    let ok = text.len() == 66 && text.starts_with("0x");
    let hash = if ok { text.parse::<B256>().ok() } else { None };
    hash.ok_or_else(|| {
        ApiError::bad(format!(
            "{what} {text:?} is not a 0x-prefixed 32-byte hex hash"
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

/// The buyer API, miners' endpoints and operations, as one router.
pub fn router(app: AppState) -> axum::Router {
    let json_limit = app.limits.max_json_bytes;
    let blob_routes = axum::Router::new()
        .route("/v1/blobs/{hash}", put(put_blob).get(get_blob))
        .route("/v1/miner/jobs/{job_id}/output", put(put_output))
        // Blob bodies stream through BlobStore::put, which enforces max_blob_bytes itself.
        .layer(DefaultBodyLimit::disable());
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/hub", get(hub_info))
        .route("/v1/auth/challenge", post(challenge))
        .route("/v1/auth/login", post(login))
        .route("/v1/quote", post(quote))
        .route("/v1/jobs", post(submit).get(list_jobs))
        .route("/v1/jobs/{job_id}", get(job_status))
        .route("/v1/jobs/{job_id}/logs", get(job_logs))
        .route("/v1/jobs/{job_id}/output", get(job_output))
        .route("/v1/jobs/{job_id}/cancel", post(cancel_job))
        .route("/v1/miner/ws", get(crate::sessions::miner_ws))
        .route("/v1/miner/blobs/{hash}", get(miner_blob))
        .layer(DefaultBodyLimit::max(json_limit))
        .merge(blob_routes)
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such endpoint; see /v1/openapi.json",
            )
        })
        .with_state(app)
}

async fn healthz(State(app): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    app.store.job_counts().await?;
    Ok(Json(json!({ "status": "ok" })))
}

async fn metrics(State(app): State<AppState>) -> ApiResult<Response> {
    for (state, n) in app.store.job_counts().await? {
        app.metrics.jobs.get_or_create(&StateLabel { state }).set(n);
    }
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
async fn hub_info(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "hub": app.chain.hub(),
        "chainId": app.chain.chain_id(),
        "escrow": app.chain.escrow(),
        "feeBps": app.fee_bps,
    }))
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    address: Address,
}

async fn challenge(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: ChallengeRequest = parse_json(&body)?;
    let nonce = app.auth.challenge(req.address);
    let message = buyer_login_message(app.chain.hub(), app.chain.chain_id(), nonce);
    Ok(Json(json!({ "nonce": nonce, "message": message })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    address: Address,
    nonce: B256,
    #[serde(with = "fog_protocol::signature_hex")]
    signature: Signature,
}

async fn login(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: LoginRequest = parse_json(&body)?;
    let message = buyer_login_message(app.chain.hub(), app.chain.chain_id(), req.nonce);
    let (token, ttl) = app
        .auth
        .login(req.address, req.nonce, &message, &req.signature)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    Ok(Json(
        json!({ "token": token, "expiresInSecs": ttl.as_secs() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteRequest {
    spec: JobSpec,
}

async fn quote(
    State(app): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: QuoteRequest = parse_json(&body)?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    req.spec
        .validate(now)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("spec: {e}")))?;
    let quote = app
        .engine
        .ask(|reply| Event::Quote {
            spec: Box::new(req.spec),
            reply,
        })
        .await?;
    Ok(Json(serde_json::to_value(quote).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    })?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubmitRequest {
    /// The escrow's job id (`keccak256(buyer, salt)`).
    job_id: B256,
    spec: JobSpec,
    /// The buyer's EIP-712 signature of the spec; its signer is the buyer.
    #[serde(with = "fog_protocol::signature_hex")]
    signature: Signature,
}

async fn submit(State(app): State<AppState>, body: axum::body::Bytes) -> ApiResult<Response> {
    let req: SubmitRequest = parse_json(&body)?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    req.spec
        .validate(now)
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
        match app.store.blob(input.contentHash).await? {
            Some((size, _)) if size == input.size => {}
            Some((size, _)) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "input {:?}: the blob {} has {size} bytes, the spec says {}",
                        input.path, input.contentHash, input.size
                    ),
                ));
            }
            None => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!(
                        "input {:?}: upload blob {} first (PUT /v1/blobs/{})",
                        input.path, input.contentHash, input.contentHash
                    ),
                ));
            }
        }
    }
    app.chain
        .check_escrow(req.job_id, buyer, &spec)
        .await
        .map_err(|e| match e {
            EscrowError::Rpc(_) => ApiError::new(StatusCode::BAD_GATEWAY, e.to_string()),
            // 425 Too Early: the same request will succeed once the chain moves on.
            EscrowError::Unconfirmed { .. } => ApiError::new(StatusCode::TOO_EARLY, e.to_string()),
            other => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
        })?;
    let row = app
        .store
        .insert_job(req.job_id, buyer, &spec, &signed.signature)
        .await?;
    app.engine
        .send(Event::JobQueued { job_id: req.job_id })
        .await?;
    app.metrics.submissions.inc();
    tracing::info!(job = %req.job_id, %buyer, "job submitted");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "jobId": row.job_id, "specHash": row.spec_hash, "state": row.state })),
    )
        .into_response())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentView {
    miner: Address,
    replica: u16,
    state: crate::store::AssignmentState,
    max_charge: U256,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<fog_protocol::SignedReceipt>,
    /// The hub's signature of the Assignment (for settling the receipt).
    #[serde(with = "fog_protocol::signature_hex")]
    assignment_signature: Signature,
}

impl From<AssignmentRow> for AssignmentView {
    fn from(a: AssignmentRow) -> Self {
        Self {
            miner: a.miner,
            replica: a.replica,
            state: a.state,
            max_charge: a.max_charge,
            error: a.error,
            receipt: a.receipt,
            assignment_signature: a.signature,
        }
    }
}

fn job_summary(job: &JobRow) -> serde_json::Value {
    json!({
        "jobId": job.job_id,
        "specHash": job.spec_hash,
        "state": job.state,
        "error": job.error,
        "outputHash": job.output_hash,
        "replicas": job.spec.replicas,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "cursor": job.seq,
        "settlement": {
            "state": job.settlement,
            "tx": job.settle_tx,
            "error": job.settle_error,
        },
    })
}

async fn job_status(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = buyer(&app, &headers)?;
    let job = own_job(&app, caller, parse_hash("job id", &job_id)?).await?;
    let assignments: Vec<AssignmentView> = app
        .store
        .assignments_of(job.job_id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let mut view = job_summary(&job);
    view["spec"] = serde_json::to_value(&job.spec).unwrap_or_default();
    view["assignments"] = serde_json::to_value(assignments).unwrap_or_default();
    Ok(Json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

async fn list_jobs(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = buyer(&app, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad("limit must be 1-500"));
    }
    let jobs = app.store.jobs_of(caller, query.before, limit).await?;
    let next = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.seq))
        .flatten();
    Ok(Json(
        json!({ "jobs": jobs.iter().map(job_summary).collect::<Vec<_>>(), "nextBefore": next }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    after: Option<i64>,
    follow: Option<bool>,
}

/// Logs as NDJSON lines `{"seq", "miner", "stream", "data"}`; with
/// `follow=true` the response stays open until the job ends.
async fn job_logs(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let caller = buyer(&app, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let job = own_job(&app, caller, parse_hash("job id", &job_id)?).await?;
    let follow = query.follow.unwrap_or(false);
    let start = query.after.unwrap_or(0);
    let stream = futures_util::stream::unfold(
        (app, job.job_id, start, false),
        move |(app, job_id, after, done)| async move {
            if done {
                return None;
            }
            loop {
                let rows = match app.store.logs(job_id, after, 500).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        return Some((
                            Err(std::io::Error::other(e.to_string())),
                            (app, job_id, after, true),
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
                    return Some((Ok::<_, std::io::Error>(text), (app, job_id, next, false)));
                }
                if !follow {
                    return None;
                }
                let ended =
                    matches!(app.store.job(job_id).await, Ok(Some(j)) if j.state.is_final());
                if ended {
                    // One last read: lines stored just before the end.
                    let rest = app.store.logs(job_id, after, 500).await.unwrap_or_default();
                    if rest.is_empty() {
                        return None;
                    }
                    continue;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        },
    );
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

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
    send_blob(&app, hash).await
}

async fn send_blob(app: &Shared, hash: B256) -> ApiResult<Response> {
    let path = app.blobs.path(hash);
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, format!("no blob {hash}")))?;
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

async fn cancel_job(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = buyer(&app, &headers)?;
    let job = own_job(&app, caller, parse_hash("job id", &job_id)?).await?;
    app.engine
        .ask(|reply| Event::Cancel {
            job_id: job.job_id,
            reply,
        })
        .await?
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
    Ok(Json(
        json!({ "jobId": job.job_id, "state": JobState::Cancelled }),
    ))
}

/// Buyers upload inputs by hash: the body must hash to it.
async fn put_blob(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let caller = buyer(&app, &headers)?;
    let expected = parse_hash("blob hash", &hash)?;
    store_blob(&app, body, caller, Some(expected)).await
}

/// Streams an upload into the blob store and records who uploaded it.
async fn store_blob(
    app: &Shared,
    body: Body,
    uploader: Address,
    expected: Option<B256>,
) -> ApiResult<Response> {
    let (hash, size) = app
        .blobs
        .put(body.into_data_stream(), app.limits.max_blob_bytes, expected)
        .await?;
    app.store.put_blob(hash, size, uploader).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "hash": hash, "size": size })),
    )
        .into_response())
}

/// Buyers read back the blobs they uploaded (outputs: `/v1/jobs/{id}/output`).
async fn get_blob(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    let caller = buyer(&app, &headers)?;
    let hash = parse_hash("blob hash", &hash)?;
    match app.store.blob(hash).await? {
        Some((_, uploader)) if uploader == caller => send_blob(&app, hash).await,
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("you uploaded no blob {hash}"),
        )),
    }
}

/// A miner uploads the output archive of a job it holds.
async fn put_output(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let caller = miner(&app, &headers)?;
    let job_id = parse_hash("job id", &job_id)?;
    let allowed = app
        .engine
        .ask(|reply| Event::MayUpload {
            miner: caller,
            job_id,
            reply,
        })
        .await?;
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("job {job_id} is not assigned to you"),
        ));
    }
    store_blob(&app, body, caller, None).await
}

/// A miner fetches an input of a job it holds.
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Every route the router serves is in the OpenAPI document, and nothing else.
    #[test]
    fn openapi_document_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
        let documented: std::collections::BTreeSet<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        let source = include_str!("api.rs");
        let served: std::collections::BTreeSet<String> = source
            .match_indices(".route(\"")
            .map(|(i, m)| {
                let rest = &source[i + m.len()..];
                rest[..rest.find('"').unwrap()].replace("{job_id}", "{jobId}")
            })
            .collect();
        assert_eq!(documented, served);
    }
}
