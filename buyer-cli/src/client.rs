//! A buyer's client of a hub's `/v1` API.

use std::time::Duration;

use alloy::signers::SignerSync;
use fog_protocol::output::sha256;
use fog_protocol::{B256, InputBlob, PrivateKeySigner, SignedJobSpec};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Why a hub request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the hub at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the hub answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("signing: {0}")]
    Sign(String),
}

/// A logged-in session with a hub.
#[derive(Debug, Clone)]
pub struct HubClient {
    url: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl HubClient {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        }
    }

    async fn json(&self, response: reqwest::Response) -> Result<Value, ClientError> {
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            Ok(body)
        } else {
            Err(ClientError::Refused {
                status: status.as_u16(),
                message: body["error"]
                    .as_str()
                    .map_or_else(|| body.to_string(), str::to_owned),
            })
        }
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let req = self.authed(self.http.post(format!("{}{path}", self.url)).json(body));
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        self.json(response).await
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let req = self.authed(self.http.get(format!("{}{path}", self.url)));
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        self.json(response).await
    }

    /// Logs in with the buyer's key (signed challenge → token).
    pub async fn login(&mut self, key: &PrivateKeySigner) -> Result<(), ClientError> {
        let challenge = self
            .post("/v1/auth/challenge", &json!({ "address": key.address() }))
            .await?;
        let message = challenge["message"].as_str().unwrap_or_default();
        let signature = key
            .sign_message_sync(message.as_bytes())
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        let body = json!({ "address": key.address(), "nonce": challenge["nonce"], "signature": signature.to_string() });
        let answer = self.post("/v1/auth/login", &body).await?;
        self.token = answer["token"].as_str().map(str::to_owned);
        Ok(())
    }

    /// Uploads an input blob; returns the spec's entry for it.
    pub async fn upload(
        &self,
        path_in_job: &str,
        bytes: Vec<u8>,
    ) -> Result<InputBlob, ClientError> {
        let hash = sha256(&bytes);
        let size = bytes.len() as u64;
        let req = self.authed(
            self.http
                .put(format!("{}/v1/blobs/{hash}", self.url))
                .body(bytes),
        );
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        self.json(response).await?;
        Ok(InputBlob {
            contentHash: hash,
            size,
            path: path_in_job.to_owned(),
        })
    }

    pub async fn submit(&self, job_id: B256, signed: &SignedJobSpec) -> Result<Value, ClientError> {
        self.post(
            "/v1/jobs",
            &json!({ "jobId": job_id, "spec": signed.payload, "signature": signed.signature.to_string() }),
        )
        .await
    }

    /// Streams the job's log lines to `sink`: those so far, or with
    /// `follow` everything until the job ends.
    pub async fn logs(
        &self,
        job_id: B256,
        follow: bool,
        mut sink: impl FnMut(&str, &str),
    ) -> Result<(), ClientError> {
        let req = self.authed(self.http.get(format!(
            "{}/v1/jobs/{job_id}/logs?follow={follow}",
            self.url
        )));
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            self.json(response).await?;
            return Ok(());
        }
        let mut stream = response.bytes_stream();
        let mut pending = Vec::new();
        while let Some(chunk) = stream.next().await {
            pending.extend_from_slice(&chunk.map_err(|e| self.unreachable(e))?);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    sink(
                        v["stream"].as_str().unwrap_or("stdout"),
                        v["data"].as_str().unwrap_or(""),
                    );
                }
            }
        }
        Ok(())
    }

    /// Polls until `done` says the status is final.
    pub async fn wait_for(
        &self,
        job_id: B256,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, ClientError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let status = self.get(&format!("/v1/jobs/{job_id}")).await?;
            if done(&status) || std::time::Instant::now() > deadline {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn output(&self, job_id: B256) -> Result<Vec<u8>, ClientError> {
        let req = self.authed(
            self.http
                .get(format!("{}/v1/jobs/{job_id}/output", self.url)),
        );
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            // A failure status always comes back as an error from `json`.
            let status = response.status().as_u16();
            self.json(response).await?;
            return Err(ClientError::Refused {
                status,
                message: "no output".into(),
            });
        }
        Ok(response
            .bytes()
            .await
            .map_err(|e| self.unreachable(e))?
            .to_vec())
    }
}
