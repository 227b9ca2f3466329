//! Miner sessions over WebSocket (`/v1/miner/ws`).
//!
//! Login: the miner says who it claims to be (`hello`), the hub answers with
//! a fresh challenge, the miner signs it (EIP-191, [`login_message`]) and
//! sends its offer; the hub then welcomes it with a session token (for the
//! blob endpoints) and the heartbeat interval. After that the session relays
//! frames between the miner and the engine. A malformed frame is answered
//! with an error and the session goes on; a frame before login that is not
//! the expected one ends it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use fog_protocol::wire::{
    Envelope, HubMessage, MAX_FRAME_BYTES, MinerMessage, Offer, decode, login_message,
};
use fog_protocol::{Address, B256};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::engine::Event;
use crate::state::AppState;

/// Read and write buffer of a miner session.
const SESSION_BUFFER: usize = 4 * 1024;

/// How long each login step may take.
const LOGIN_STEP: Duration = Duration::from_secs(10);

/// Largest frame before login: the hello, login and offer frames are a few
/// hundred bytes, so an unauthenticated peer may not make the hub buffer more.
pub const MAX_LOGIN_FRAME_BYTES: usize = 64 * 1024;

pub async fn miner_ws(ws: WebSocketUpgrade, State(app): State<AppState>) -> Response {
    // Nothing is kept for a connection before its login but its socket, and
    // only so many unauthenticated sockets at once.
    let Ok(permit) = app.unauthenticated_miners.clone().try_acquire_owned() else {
        return crate::api::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too many miners are logging in at once: retry shortly",
        )
        .into_response();
    };
    // Small buffers: a hub holds thousands of sessions whose frames are a
    // few hundred bytes; tungstenite's 128 KiB defaults would cost ~250 KiB
    // a miner. The read buffer still grows for a large frame, up to the cap.
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(SESSION_BUFFER)
        .write_buffer_size(SESSION_BUFFER)
        .on_upgrade(move |socket| async move {
            if let Err(e) = session(app, socket, permit).await {
                tracing::info!(error = %e, "miner session ended");
            }
        })
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Protocol(String),
    #[error("websocket: {0}")]
    Socket(#[from] axum::Error),
    #[error("the miner closed the connection")]
    Closed,
    #[error("login step timed out")]
    Timeout,
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineGone),
}

async fn send(socket: &mut WebSocket, msg: HubMessage) -> Result<(), SessionError> {
    let frame = Envelope::new(msg)
        .encode()
        .map_err(|e| SessionError::Protocol(e.to_string()))?;
    socket.send(Message::Text(frame.into())).await?;
    Ok(())
}

/// The next text frame, answering pings and skipping pongs.
async fn next_text(socket: &mut WebSocket) -> Result<String, SessionError> {
    loop {
        match socket.next().await {
            None | Some(Ok(Message::Close(_))) => return Err(SessionError::Closed),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Binary(_))) => {
                return Err(SessionError::Protocol(
                    "binary frames are not part of the protocol".into(),
                ));
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn login_step(socket: &mut WebSocket) -> Result<MinerMessage, SessionError> {
    let text = tokio::time::timeout(LOGIN_STEP, next_text(socket))
        .await
        .map_err(|_| SessionError::Timeout)??;
    if text.len() > MAX_LOGIN_FRAME_BYTES {
        return Err(refuse(
            socket,
            format!(
                "a login frame may be at most {MAX_LOGIN_FRAME_BYTES} bytes, this one has {}",
                text.len()
            ),
        )
        .await);
    }
    match decode(&text) {
        Ok(msg) => Ok(msg),
        Err(e) => Err(refuse(socket, format!("frame refused: {e}")).await),
    }
}

async fn refuse(socket: &mut WebSocket, message: String) -> SessionError {
    let _ = send(
        socket,
        HubMessage::Error {
            message: message.clone(),
        },
    )
    .await;
    let _ = socket.close().await;
    SessionError::Protocol(message)
}

async fn login(app: &AppState, socket: &mut WebSocket) -> Result<(Address, Offer), SessionError> {
    let miner = match login_step(socket).await? {
        MinerMessage::Hello { miner, .. } => miner,
        other => {
            return Err(refuse(
                socket,
                format!("expected hello first, got {}", kind(&other)),
            )
            .await);
        }
    };
    let mut nonce = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut nonce);
    let nonce = B256::from(nonce);
    let (hub, chain_id) = (app.chain.hub(), app.chain.chain_id());
    send(
        socket,
        HubMessage::Challenge {
            hub,
            chain_id,
            nonce,
        },
    )
    .await?;
    let signature = match login_step(socket).await? {
        MinerMessage::Login { signature } => signature,
        other => return Err(refuse(socket, format!("expected login, got {}", kind(&other))).await),
    };
    match signature.recover_address_from_msg(login_message(hub, chain_id, nonce)) {
        Ok(signer) if signer == miner => {}
        Ok(signer) => {
            return Err(refuse(socket, format!("login signed by {signer}, not {miner}")).await);
        }
        Err(e) => return Err(refuse(socket, format!("login signature: {e}")).await),
    }
    let offer = match login_step(socket).await? {
        MinerMessage::Offer { offer } => offer,
        other => {
            return Err(refuse(
                socket,
                format!("expected the offer after login, got {}", kind(&other)),
            )
            .await);
        }
    };
    Ok((miner, offer))
}

fn kind(msg: &MinerMessage) -> &'static str {
    match msg {
        MinerMessage::Hello { .. } => "hello",
        MinerMessage::Login { .. } => "login",
        MinerMessage::Offer { .. } => "offer",
        MinerMessage::Heartbeat { .. } => "heartbeat",
        MinerMessage::Accepted { .. } => "accepted",
        MinerMessage::Started { .. } => "started",
        MinerMessage::Rejected { .. } => "rejected",
        MinerMessage::Log { .. } => "log",
        MinerMessage::Finished { .. } => "finished",
        MinerMessage::Failed { .. } => "failed",
        MinerMessage::ServiceStarted { .. } => "serviceStarted",
        MinerMessage::ServiceStopped { .. } => "serviceStopped",
        MinerMessage::Usage { .. } => "usage",
        MinerMessage::Drain => "drain",
    }
}

async fn session(
    app: AppState,
    mut socket: WebSocket,
    unauthenticated: tokio::sync::OwnedSemaphorePermit,
) -> Result<(), SessionError> {
    let (miner, offer) = login(&app, &mut socket).await?;
    drop(unauthenticated);
    let conn = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let token = app.auth.miner_session(miner);
    let heartbeat_interval_ms =
        u64::try_from(app.heartbeat_interval.as_millis()).unwrap_or(u64::MAX);
    send(
        &mut socket,
        HubMessage::Welcome {
            session: token.clone(),
            heartbeat_interval_ms,
        },
    )
    .await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    app.engine
        .send(Event::MinerJoined {
            miner,
            conn,
            offer,
            tx,
        })
        .await?;
    let result = relay(&app, &mut socket, miner, conn, &mut rx).await;
    app.auth.revoke(&token);
    // The engine gives the miner's jobs `miner_timeout` to come back.
    let _ = app.engine.send(Event::MinerLeft { miner, conn }).await;
    result
}

async fn relay(
    app: &AppState,
    socket: &mut WebSocket,
    miner: Address,
    conn: u64,
    rx: &mut mpsc::UnboundedReceiver<HubMessage>,
) -> Result<(), SessionError> {
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(msg) = out else { return Ok(()) };
                let closing = matches!(msg, HubMessage::Error { .. });
                send(socket, msg).await?;
                if closing {
                    let _ = socket.close().await;
                    return Ok(());
                }
            }
            text = next_text(socket) => {
                let text = match text {
                    Err(SessionError::Protocol(p)) => {
                        send(socket, HubMessage::Error { message: p }).await?;
                        continue;
                    }
                    other => other?,
                };
                let msg: MinerMessage = match decode(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        send(socket, HubMessage::Error { message: format!("frame refused: {e}") }).await?;
                        continue;
                    }
                };
                let event = match msg {
                    MinerMessage::Offer { offer } => Event::MinerOffer { miner, conn, offer },
                    MinerMessage::Heartbeat { running, services, .. } => Event::Heartbeat { miner, conn, running, services },
                    MinerMessage::ServiceStarted { job_id } => Event::ServiceStarted { miner, job_id },
                    MinerMessage::ServiceStopped { job_id, error } => Event::ServiceStopped { miner, job_id, error },
                    MinerMessage::Usage { receipt } => Event::Usage { miner, receipt: Box::new(receipt) },
                    MinerMessage::Drain => Event::Drain { miner, conn },
                    MinerMessage::Accepted { job_id } => Event::Accepted { miner, job_id },
                    MinerMessage::Started { job_id } => Event::Started { miner, job_id },
                    MinerMessage::Rejected { job_id, reason } => Event::Rejected { miner, job_id, reason },
                    MinerMessage::Log { job_id, stream, data } => Event::Log { miner, job_id, stream, data },
                    MinerMessage::Failed { job_id, error, fault } => Event::Failed { miner, job_id, error, fault },
                    MinerMessage::Finished { receipt, failure, .. } => {
                        let answer = app
                            .engine
                            .ask(|reply| Event::Finished { miner, receipt: Box::new(receipt), failure, reply })
                            .await?;
                        if let Err(message) = answer {
                            send(socket, HubMessage::Error { message: format!("receipt refused: {message}") }).await?;
                        }
                        continue;
                    }
                    other @ (MinerMessage::Hello { .. } | MinerMessage::Login { .. }) => {
                        send(socket, HubMessage::Error { message: format!("already logged in: {} is out of place", kind(&other)) }).await?;
                        continue;
                    }
                };
                app.engine.send(event).await?;
            }
        }
    }
}
