//! The chain's time for a running miner: deadlines are the escrow's.

/// Keeps `clock` on the chain's time: the latest block's timestamp, read
/// every 5 s (a failed read keeps the last offset).
pub async fn follow(rpc_url: String, clock: std::sync::Arc<fog_protocol::clock::ChainClock>) {
    use alloy::providers::{Provider, ProviderBuilder};
    let Ok(url) = rpc_url.parse() else {
        tracing::warn!(
            rpc_url,
            "the chain's RPC URL does not parse: deadlines by the machine's clock"
        );
        return;
    };
    let provider = ProviderBuilder::new().connect_http(url);
    loop {
        match provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
        {
            Ok(Some(block)) => clock.observe(block.header.timestamp),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "reading the chain's time"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}
