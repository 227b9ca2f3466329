//! Wires the hub together and serves it until shut down.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fog_protocol::PrivateKeySigner;
use fog_protocol::deploy::Deployment;

use crate::api::router;
use crate::auth::{Auth, AuthLimits};
use crate::blobs::BlobStore;
use crate::chain::Chain;
use crate::config::HubConfig;
use crate::engine::{Engine, EngineConfig};
use crate::metrics::Metrics;
use crate::state::{Limits, Shared};
use crate::store::Store;

/// Why the hub could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("deployment file: {0}")]
    Deployment(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Blobs(#[from] crate::blobs::BlobError),
    #[error("chain: {0}")]
    Chain(#[from] crate::chain::EscrowError),
    #[error("the deployment is for chain {deployment}, but {rpc} serves chain {node}")]
    WrongChain {
        deployment: u64,
        node: u64,
        rpc: String,
    },
    #[error("hub {hub} is not active in the registry (state {state}); register it first")]
    NotActive {
        hub: fog_protocol::Address,
        state: fog_protocol::contracts::HubState,
    },
    #[error(
        "the registry's assignment signer for hub {hub} is {registered}, but this hub's key is {ours}"
    )]
    WrongSigner {
        hub: fog_protocol::Address,
        registered: fog_protocol::Address,
        ours: fog_protocol::Address,
    },
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
}

/// Starts the hub and serves until `shutdown` resolves.
pub async fn serve(
    config: HubConfig,
    signer: PrivateKeySigner,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let deployment =
        Deployment::load(&config.deployment).map_err(|e| ServeError::Deployment(e.to_string()))?;
    let chain = Chain::connect(&config.rpc_url, deployment.escrow, config.hub)
        .await?
        .with_confirmations(config.confirmations);
    if chain.chain_id() != deployment.chain_id {
        return Err(ServeError::WrongChain {
            deployment: deployment.chain_id,
            node: chain.chain_id(),
            rpc: config.rpc_url.clone(),
        });
    }
    let (state, registered, fee_bps) = chain.hub_terms(deployment.registry).await?;
    if state != fog_protocol::contracts::HubState::Active {
        return Err(ServeError::NotActive {
            hub: config.hub,
            state,
        });
    }
    if registered != signer.address() {
        return Err(ServeError::WrongSigner {
            hub: config.hub,
            registered,
            ours: signer.address(),
        });
    }
    let store = Store::open(&config.database_url).await?;
    let blobs = BlobStore::open(&config.blob_dir)?;
    let metrics = Metrics::new();
    let domain = deployment.domain();
    let heartbeat_interval = Duration::from_millis(config.miners.heartbeat_interval_ms);
    let rpc_url: reqwest::Url = config
        .rpc_url
        .parse()
        .map_err(|e| ServeError::Deployment(format!("rpc_url {:?}: {e}", config.rpc_url)))?;
    let signer_version = signer_version(&chain, &deployment, config.hub).await?;
    let settler = crate::settle::Settler::new(
        store.clone(),
        chain.clone(),
        rpc_url.clone(),
        signer.clone(),
        config.hub,
        metrics.clone(),
    )
    .with_batch_terms(signer_version, fee_bps);
    // The batched path: when the deployment has it and this hub settles.
    let batch = if config.settlement.enabled && deployment.batch != fog_protocol::Address::ZERO {
        Some(batch_path(&deployment, &config, &rpc_url, &signer, store.clone()).await?)
    } else {
        None
    };
    let epochs_task = match &batch {
        Some(b) => tokio::spawn(b.epochs.clone().run(Duration::from_secs(2))),
        None => tokio::spawn(async {}),
    };
    let settle_task = if config.settlement.enabled {
        tokio::spawn(settler.run())
    } else {
        tracing::warn!(
            "settlement is disabled: completed jobs wait for another settler or their miners"
        );
        tokio::spawn(async {})
    };
    let engine = Engine::new(
        store.clone(),
        signer,
        domain.clone(),
        config.hub,
        EngineConfig {
            miner_timeout: Duration::from_millis(config.miners.timeout_ms),
            max_reassignments: config.miners.max_reassignments,
            assignment_grace: Duration::from_secs(config.miners.assignment_grace_secs),
            prepare_timeout: Duration::from_secs(config.miners.prepare_timeout_secs),
            fee_bps,
            signer_version,
        },
        metrics.clone(),
        crate::engine::Clocks {
            chain: chain.clock(),
            wall: fog_protocol::clock::system(),
        },
    );
    // The chain's clock, read every few seconds: deadlines are the escrow's.
    let chain_clock_task = {
        let chain = chain.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = chain.now().await {
                    tracing::warn!(error = %e, "reading the chain's time");
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let routes = std::sync::Arc::new(crate::proxy::Routes::default());
    let proxy = std::sync::Arc::new(crate::proxy::Proxy::new(routes.clone()));
    let (engine, engine_task) = engine.with_routes(routes).start().await?;
    let prober_task = tokio::spawn(crate::proxy::run_prober(proxy.clone(), engine.clone()));
    let limits = &config.limits;
    let shared = Arc::new(Shared {
        store,
        blobs,
        chain,
        auth: Auth::new(AuthLimits {
            token_ttl: Duration::from_secs(config.token_ttl_secs),
            challenge_ttl: Duration::from_secs(limits.challenge_ttl_secs),
            max_challenges: limits.max_pending_challenges,
            max_tokens: limits.max_tokens,
        }),
        engine,
        metrics,
        limits: Limits {
            max_json_bytes: limits.max_json_bytes,
            max_blob_bytes: limits.max_blob_bytes,
        },
        storage: config.storage.clone(),
        rates: crate::ratelimit::RateLimits::new(limits),
        unauthenticated_miners: Arc::new(tokio::sync::Semaphore::new(
            limits.max_unauthenticated_miners,
        )),
        domain,
        heartbeat_interval,
        fee_bps,
        next_conn: Default::default(),
        batch,
        proxy,
    });
    let sweep_task = tokio::spawn(sweep(shared.clone()));
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    tracing::info!(listen = %config.listen, hub = %config.hub, fee_bps, "hub serving");
    axum::serve(
        listener,
        router(shared).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(ServeError::Serve)?;
    engine_task.abort();
    chain_clock_task.abort();
    settle_task.abort();
    epochs_task.abort();
    sweep_task.abort();
    prober_task.abort();
    Ok(())
}

/// The registry's version of the hub's current signer.
async fn signer_version(
    chain: &Chain,
    deployment: &Deployment,
    hub: fog_protocol::Address,
) -> Result<u16, ServeError> {
    let registry = fog_protocol::contracts::hub_registry::HubRegistry::new(
        deployment.registry,
        chain.provider(),
    );
    let info =
        registry.hubInfo(hub).call().await.map_err(|e| {
            ServeError::Deployment(format!("reading hub {hub} from the registry: {e}"))
        })?;
    Ok(info.signerVersion)
}

/// The batched settlement path of this deployment: its terms, read from the
/// contract, and the epoch duties signed by the hub's signer.
async fn batch_path(
    deployment: &Deployment,
    config: &HubConfig,
    rpc_url: &reqwest::Url,
    signer: &PrivateKeySigner,
    store: Store,
) -> Result<crate::state::BatchPath, ServeError> {
    use alloy::providers::{Provider, ProviderBuilder};
    // Nonces from the node at each send: the settler signs with the same key.
    let provider = ProviderBuilder::new()
        .with_simple_nonce_management()
        .wallet(alloy::network::EthereumWallet::from(signer.clone()))
        .connect_http(rpc_url.clone())
        .erased();
    let contract = fog_protocol::contracts::batch_settlement::BatchSettlement::new(
        deployment.batch,
        &provider,
    );
    let unreadable = |e: String| {
        ServeError::Deployment(format!(
            "reading the batch settlement contract {}: {e}",
            deployment.batch
        ))
    };
    let params = contract
        .params()
        .call()
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    let epochs = crate::epochs::Epochs::new(
        store,
        provider.clone(),
        deployment.batch,
        config.hub,
        deployment.block,
    )
    .await
    .map_err(|e| unreadable(e.to_string()))?;
    Ok(crate::state::BatchPath {
        contract: deployment.batch,
        token: deployment.token,
        domain: deployment.batch_domain(),
        auth_horizon_secs: u64::from(params.authHorizon),
        epochs,
        admitting: tokio::sync::Mutex::new(()),
    })
}

/// Every `storage.sweep_interval_secs`: deletes what the retention rules no
/// longer keep (closed jobs' logs, lapsed ownerships, blobs nobody owns or
/// uses) and forgets rate-limit state of callers gone quiet.
async fn sweep(app: Arc<Shared>) {
    let interval = Duration::from_secs(app.storage.sweep_interval_secs);
    loop {
        tokio::time::sleep(interval).await;
        app.rates.sweep();
        if let Err(e) = retention_sweep(&app, fog_protocol::clock::unix_now()).await {
            tracing::warn!(error = %e, "retention sweep failed; retrying next round");
        }
    }
}

/// One retention sweep as of `now`.
pub async fn retention_sweep(
    app: &Shared,
    now: u64,
) -> Result<crate::store::Purged, crate::store::StoreError> {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    let purged = {
        // Uploads record a blob after its bytes are in place: the sweep and
        // an upload of the same bytes never interleave.
        let _guard = app.blobs.commit_lock().await;
        let purged = app
            .store
            .purge(
                now,
                now.saturating_sub(secs(app.storage.retention_secs)),
                now.saturating_sub(secs(app.storage.unused_blob_secs)),
            )
            .await?;
        for hash in &purged.blobs {
            app.blobs.remove(*hash).await;
        }
        purged
    };
    // Ended services' logs go after the same retention as closed jobs' data.
    let services = app
        .store
        .purge_service_logs(
            u64::try_from(now.saturating_sub(secs(app.storage.retention_secs))).unwrap_or(0),
        )
        .await?;
    if services > 0 {
        tracing::info!(lines = services, "ended services' logs purged");
    }
    app.metrics.jobs_purged.inc_by(purged.jobs);
    app.metrics.blobs_purged.inc_by(purged.blobs.len() as u64);
    if purged.jobs > 0 || !purged.blobs.is_empty() {
        tracing::info!(
            jobs = purged.jobs,
            ownerships = purged.ownerships,
            blobs = purged.blobs.len(),
            "retention sweep"
        );
    }
    Ok(purged)
}
