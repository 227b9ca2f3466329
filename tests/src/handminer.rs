//! A miner driven by hand over the hub's WebSocket protocol, for tests of
//! what a rogue, cheating or flooding miner can and cannot do: it speaks the
//! real wire protocol and signs with a real key, but does whatever the test
//! says instead of running containers.

use std::time::Duration;

use alloy::signers::SignerSync;
use anyhow::{Context, bail};
use fog_protocol::wire::{
    Envelope, HubMessage, MinerMessage, Offer, PriceRate, decode, login_message,
};
use fog_protocol::{PrivateKeySigner, Resources, U256};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::fleet::Fleet;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends one message.
pub async fn send(ws: &mut Ws, msg: MinerMessage) -> anyhow::Result<()> {
    let frame = Envelope::new(msg).encode()?;
    ws.send(Message::Text(frame.into())).await?;
    Ok(())
}

/// The hub's next message (10 s at most).
pub async fn recv(ws: &mut Ws) -> anyhow::Result<HubMessage> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("no message from the hub in 10 s")?
            .context("the hub closed the connection")??;
        if let Message::Text(t) = frame {
            return Ok(decode(&t)?);
        }
    }
}

/// Logs in as `key` at the hub's miner endpoint `ws_url` (hello, signed
/// challenge, `offer`, welcome); returns the socket, the session token the
/// miner's HTTP endpoints take, and the heartbeat period the hub asks for.
pub async fn connect(
    ws_url: &str,
    key: &PrivateKeySigner,
    offer: Offer,
) -> anyhow::Result<(Ws, String, Duration)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await?;
    send(
        &mut ws,
        MinerMessage::Hello {
            miner: key.address(),
            agent: "hand-driven".into(),
        },
    )
    .await?;
    let HubMessage::Challenge {
        hub,
        chain_id,
        nonce,
    } = recv(&mut ws).await?
    else {
        bail!("no challenge")
    };
    let signature = key.sign_message_sync(login_message(hub, chain_id, nonce).as_bytes())?;
    send(&mut ws, MinerMessage::Login { signature }).await?;
    send(&mut ws, MinerMessage::Offer { offer }).await?;
    let HubMessage::Welcome {
        session,
        heartbeat_interval_ms,
    } = recv(&mut ws).await?
    else {
        bail!("no welcome")
    };
    Ok((ws, session, Duration::from_millis(heartbeat_interval_ms)))
}

/// Logs in to the fleet's hub as `key`, offering `cpu_millicores` and plenty
/// of memory and disk, for free; returns the socket and the session token.
pub async fn log_in(
    fleet: &Fleet,
    key: &PrivateKeySigner,
    cpu_millicores: u64,
) -> anyhow::Result<(Ws, String)> {
    let ws_url = format!("{}/v1/miner/ws", fleet.hub_url.replace("http://", "ws://"));
    let offer = Offer {
        capacity: Resources {
            cpuMillicores: cpu_millicores,
            memoryBytes: 8 << 30,
            diskBytes: 8 << 30,
            gpuCount: 0,
        },
        rate: PriceRate {
            per_core_hour: U256::ZERO,
            per_gib_hour: U256::ZERO,
        },
        region: String::new(),
        labels: vec![],
        allows_network: false,
        available_until: None,
        runtime: None,
    };
    let (ws, session, _) = connect(&ws_url, key, offer).await?;
    Ok((ws, session))
}
