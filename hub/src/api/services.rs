//! `/v1/services`: start, follow, top up and stop long-running services
//! (docs/services.md). Services are paid on the batched path: the buyer signs
//! a pool of segment authorisations; the hub spends one per segment.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use fog_protocol::api::{
    SegmentView, ServiceList, ServiceState, ServiceStatus, ServiceSummary, ServiceUpRequest,
    SettlementState, TopUpRequest,
};
use fog_protocol::batch::{SignedJobAuth, batch_job_id};
use fog_protocol::service::{segment_salt, service_id, service_limits, service_path};
use fog_protocol::{Address, B256, U256};

use super::{
    ApiError, ApiResult, LogQuery, LogSource, buyer, check_auth, ensure_covered, log_response,
    parse_hash, parse_json,
};
use crate::engine::Event;
use crate::state::{AppState, BatchPath, Shared};
use crate::store::{ServiceRow, StoreError};

fn batch_path(app: &Shared) -> ApiResult<&BatchPath> {
    app.batch.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "this hub does not offer batched settlement, which services are paid on",
        )
    })
}

/// Segment authorisations as checked: with their segment ids, their total,
/// and the last of their deadlines.
struct CheckedAuths {
    auths: Vec<(B256, SignedJobAuth)>,
    total: U256,
    last_deadline: u64,
}

/// Checks segment authorisations `first_seq..` of service `service`: each
/// signed by the buyer for the service's spec and its own salt, one replica,
/// paying at least one period.
fn check_segment_auths(
    app: &Shared,
    batch: &BatchPath,
    buyer: Address,
    (service, spec): (B256, &fog_protocol::service::ServiceSpec),
    first_seq: u64,
    auths: Vec<SignedJobAuth>,
) -> ApiResult<CheckedAuths> {
    let spec_hash = spec.spec_hash();
    let unfit = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    if auths.is_empty() {
        return Err(unfit(
            "auths: at least one segment authorisation is needed".into(),
        ));
    }
    if auths.len() > service_limits::MAX_AUTHS {
        return Err(unfit(format!(
            "auths: {} is more than the {} taken at once",
            auths.len(),
            service_limits::MAX_AUTHS
        )));
    }
    let mut total = U256::ZERO;
    let mut last_deadline = 0;
    let mut out = Vec::with_capacity(auths.len());
    for (i, auth) in auths.into_iter().enumerate() {
        let what = format!("auths[{i}]");
        check_auth(&what, app, batch, buyer, &auth)?;
        let a = &auth.payload;
        let seq = first_seq + i as u64;
        let salt = segment_salt(service, seq);
        if a.salt != salt {
            return Err(unfit(format!(
                "{what}.salt must be segment_salt(serviceId {service}, {seq}) = {salt}"
            )));
        }
        if a.specHash != spec_hash || a.replicas != 1 {
            return Err(unfit(format!(
                "{what} must be for the service's spec hash {spec_hash} with replicas 1"
            )));
        }
        if spec.periods_paid_by(a.maxPayment) == 0 {
            return Err(unfit(format!(
                "{what}.maxPayment {} does not pay one period ({})",
                a.maxPayment, spec.pricePerPeriod
            )));
        }
        total = total.saturating_add(a.maxPayment);
        last_deadline = last_deadline.max(a.deadline);
        out.push((batch_job_id(buyer, a.salt), auth));
    }
    Ok(CheckedAuths {
        auths: out,
        total,
        last_deadline,
    })
}

/// Starts a service: its replicas are placed on miners and it answers at
/// `/s/<serviceId>/` once one passes its health check.
#[utoipa::path(post, path = "/v1/services", tag = "services",
    request_body = ServiceUpRequest,
    responses(
        (status = 201, description = "Stored; replicas are being placed", body = ServiceStatus),
        (status = 402, description = "The buyer's batch account does not cover the authorisations on top of what it already authorised"),
        (status = 409, description = "This hub has no batched settlement, or the service exists")))]
pub(super) async fn service_up(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: ServiceUpRequest = parse_json(body)?;
    let batch = batch_path(&app)?;
    req.spec
        .validate()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("spec: {e}")))?;
    let first = req.auths.first().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "auths: at least one segment authorisation is needed",
        )
    })?;
    let buyer = first
        .signer(&batch.domain)
        .map_err(|e| ApiError::bad(format!("auths[0].signature: {e}")))?;
    let spec_hash = req.spec.spec_hash();
    let service = service_id(buyer, spec_hash);
    let CheckedAuths {
        auths,
        total,
        last_deadline,
    } = check_segment_auths(&app, batch, buyer, (service, &req.spec), 0, req.auths)?;
    if total > req.spec.maxSpend {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the authorisations total {total}, more than the spec's maxSpend {}",
                req.spec.maxSpend
            ),
        ));
    }
    let _admitting = batch.admitting.lock().await;
    let funding = ensure_covered(
        &app,
        batch,
        buyer,
        total,
        req.funding.as_ref(),
        last_deadline,
    )
    .await?;
    let row = ServiceRow {
        service_id: service,
        buyer,
        spec: req.spec,
        state: ServiceState::Starting,
        reason: None,
        created_at: app.chain.clock().unix_now(),
        ended_at: None,
    };
    match app.store.insert_service(&row, &auths).await {
        Ok(()) => {}
        Err(StoreError::JobExists(_)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("service {service} exists: change the spec's salt to start another"),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(f) = funding {
        app.store.add_funding(&f).await?;
    }
    drop(_admitting);
    app.engine
        .send(Event::ServiceQueued {
            service_id: service,
        })
        .await?;
    tracing::info!(%service, %buyer, "service started");
    Ok((StatusCode::CREATED, Json(status(&app, row).await?)).into_response())
}

/// More segment authorisations: the service may spend more and run longer.
#[utoipa::path(post, path = "/v1/services/{serviceId}/top-up", tag = "services",
    params(("serviceId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex service id")),
    request_body = TopUpRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "Added", body = ServiceStatus)))]
pub(super) async fn service_top_up(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let caller = buyer(&app, &headers)?;
    let req: TopUpRequest = parse_json(body)?;
    let batch = batch_path(&app)?;
    let row = own_service(&app, caller, parse_hash("service id", &id)?).await?;
    if row.state.is_final() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "service {} has {}: start a new one",
                row.service_id, row.state
            ),
        ));
    }
    let _admitting = batch.admitting.lock().await;
    let first_seq = app.store.service_auths(row.service_id).await?.len() as u64;
    let CheckedAuths {
        auths,
        total,
        last_deadline,
    } = check_segment_auths(
        &app,
        batch,
        caller,
        (row.service_id, &row.spec),
        first_seq,
        req.auths,
    )?;
    let funding = ensure_covered(
        &app,
        batch,
        caller,
        total,
        req.funding.as_ref(),
        last_deadline,
    )
    .await?;
    app.store
        .add_service_auths(row.service_id, first_seq, &auths)
        .await?;
    if let Some(f) = funding {
        app.store.add_funding(&f).await?;
    }
    drop(_admitting);
    app.engine
        .send(Event::ServiceQueued {
            service_id: row.service_id,
        })
        .await?;
    Ok(Json(status(&app, row).await?).into_response())
}

/// The caller's services, newest first.
#[utoipa::path(get, path = "/v1/services", tag = "services",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's services", body = ServiceList)))]
pub(super) async fn list_services(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ServiceList>> {
    let caller = buyer(&app, &headers)?;
    let mut services = Vec::new();
    for row in app.store.services_of(caller, 200).await? {
        let view = status(&app, row).await?;
        services.push(ServiceSummary {
            service_id: view.service_id,
            state: view.state,
            path: view.path,
            healthy_replicas: u16::try_from(
                view.segments
                    .iter()
                    .filter(|g| g.ended_at.is_none() && g.healthy)
                    .count(),
            )
            .unwrap_or(u16::MAX),
            replicas: view.spec.replicas,
            spent: view.spent,
            created_at: view.created_at,
        });
    }
    Ok(Json(ServiceList { services }))
}

/// A service: its replicas, segments, spending and settlement.
#[utoipa::path(get, path = "/v1/services/{serviceId}", tag = "services",
    params(("serviceId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex service id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The service", body = ServiceStatus)))]
pub(super) async fn service_status(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<ServiceStatus>> {
    let caller = buyer(&app, &headers)?;
    let row = own_service(&app, caller, parse_hash("service id", &id)?).await?;
    Ok(Json(status(&app, row).await?))
}

/// Stops a service: each replica's last period is settled, the rest of
/// its authorisations released.
#[utoipa::path(post, path = "/v1/services/{serviceId}/stop", tag = "services",
    params(("serviceId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex service id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Stopped; its last segments settle in the next epoch", body = ServiceStatus)))]
pub(super) async fn stop_service(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<ServiceStatus>> {
    let caller = buyer(&app, &headers)?;
    let row = own_service(&app, caller, parse_hash("service id", &id)?).await?;
    if !row.state.is_final() {
        let service_id = row.service_id;
        app.engine
            .ask(|reply| Event::StopService { service_id, reply })
            .await?
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, e))?;
        // The answer shows what was spent: each segment's last receipt
        // comes within a few seconds (the hub waits for it at most that long).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(7);
        while std::time::Instant::now() < until
            && app
                .store
                .segments_of(service_id)
                .await?
                .iter()
                .any(|g| g.ended_at.is_none())
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let row = own_service(&app, caller, row.service_id).await?;
    Ok(Json(status(&app, row).await?))
}

/// The service's logs, all replicas, as NDJSON; `follow=true` streams until it ends.
#[utoipa::path(get, path = "/v1/services/{serviceId}/logs", tag = "services",
    params(("serviceId" = fog_protocol::api::schema::Hash, Path, description = "0x-hex service id"), LogQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "NDJSON, one LogLine per line", content_type = "application/x-ndjson", body = fog_protocol::api::LogLine)))]
pub(super) async fn service_logs(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let caller = buyer(&app, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let row = own_service(&app, caller, parse_hash("service id", &id)?).await?;
    Ok(log_response(
        app,
        LogSource::Service(row.service_id),
        &query,
    ))
}

/// The service, if `caller` is its buyer; another buyer's answers 404 like
/// an unknown one.
async fn own_service(app: &Shared, caller: Address, id: B256) -> ApiResult<ServiceRow> {
    match app.store.service(id).await? {
        Some(row) if row.buyer == caller => Ok(row),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no service {id} of yours at this hub"),
        )),
    }
}

async fn status(app: &Shared, row: ServiceRow) -> ApiResult<ServiceStatus> {
    let service_id = row.service_id;
    let live = app
        .engine
        .ask(|reply| Event::ServiceHealth { service_id, reply })
        .await?;
    let settlements = app.store.segment_settlements(service_id).await?;
    let mut spent = U256::ZERO;
    let mut segments = Vec::new();
    for g in app.store.segments_of(service_id).await? {
        let now = live.iter().find(|(id, _, _)| *id == g.job_id);
        let amount = row.spec.cost_of(g.periods);
        spent = spent.saturating_add(amount);
        let settlement = settlements
            .iter()
            .find(|(id, _)| *id == g.job_id)
            .map(|(_, state)| match state.as_str() {
                "committed" => SettlementState::Settled,
                "pending" => SettlementState::Pending,
                _ => SettlementState::Failed,
            });
        segments.push(SegmentView {
            job_id: g.job_id,
            miner: g.miner,
            replica: g.replica,
            started_at: g.started_at,
            ended_at: g.ended_at,
            periods: g.periods,
            amount,
            healthy: g.ended_at.is_none() && now.is_some_and(|(_, healthy, _)| *healthy),
            end_reason: g.end_reason,
            settlement,
        });
    }
    let auths = app.store.service_auths(service_id).await?;
    let authorised = auths
        .iter()
        .filter(|a| !a.used && !row.state.is_final())
        .fold(U256::ZERO, |sum, a| {
            sum.saturating_add(a.auth.payload.maxPayment)
        });
    Ok(ServiceStatus {
        service_id,
        spec_hash: row.spec.spec_hash(),
        state: row.state,
        reason: row.reason,
        path: service_path(service_id),
        spec: row.spec,
        segments,
        spent,
        authorised,
        authorisations: auths.len() as u64,
        created_at: row.created_at,
        ended_at: row.ended_at,
    })
}
