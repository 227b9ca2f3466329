//! A buyer's client of a hub's `/v1` API.

use std::time::Duration;

use alloy::signers::SignerSync;
use fog_protocol::api::{
    BlobInfo, Cancelled, Challenge, ChallengeRequest, ErrorBody, HubInfo, JobList, JobStatus,
    LogLine, LoginRequest, Quote, QuoteRequest, Session, SubmitRequest, Submitted,
};
use fog_protocol::output::sha256;
use fog_protocol::{B256, InputBlob, JobSpec, PrivateKeySigner, SignedJobSpec};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a hub request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the hub at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the hub answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the hub's answer to {what} is not what this client speaks: {reason}")]
    Unexpected { what: String, reason: String },
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

    /// The hub's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn unreachable(&self, e: reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        }
    }

    /// The error a failed answer carries: its [`ErrorBody`] message, or its
    /// text when a proxy in between answered.
    async fn refusal(&self, response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => return self.unreachable(e),
        };
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error.message)
            .unwrap_or(text);
        ClientError::Refused { status, message }
    }

    async fn typed<T: DeserializeOwned>(
        &self,
        what: &str,
        response: reqwest::Response,
    ) -> Result<T, ClientError> {
        if !response.status().is_success() {
            return Err(self.refusal(response).await);
        }
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_str(&text).map_err(|e| ClientError::Unexpected {
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let req = self.authed(self.http.post(format!("{}{path}", self.url)).json(body));
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        self.typed(path, response).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let req = self.authed(self.http.get(format!("{}{path}", self.url)));
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        self.typed(path, response).await
    }

    /// Who the hub is on chain.
    pub async fn hub_info(&self) -> Result<HubInfo, ClientError> {
        self.get("/v1/hub").await
    }

    /// Logs in with the buyer's key (signed challenge → token).
    pub async fn login(&mut self, key: &PrivateKeySigner) -> Result<(), ClientError> {
        let challenge: Challenge = self
            .post(
                "/v1/auth/challenge",
                &ChallengeRequest {
                    address: key.address(),
                },
            )
            .await?;
        let signature = key
            .sign_message_sync(challenge.message.as_bytes())
            .map_err(|e| ClientError::Sign(e.to_string()))?;
        let session: Session = self
            .post(
                "/v1/auth/login",
                &LoginRequest {
                    address: key.address(),
                    nonce: challenge.nonce,
                    signature,
                },
            )
            .await?;
        self.token = Some(session.token);
        Ok(())
    }

    /// What the spec would cost on this hub now.
    pub async fn quote(&self, spec: &JobSpec) -> Result<Quote, ClientError> {
        self.post("/v1/quote", &QuoteRequest { spec: spec.clone() })
            .await
    }

    /// Uploads an input blob, naming the escrow the buyer has open for it
    /// (what a key has at stake raises its storage quota); returns the
    /// spec's entry for it and when the hub deletes it unless a job uses it.
    pub async fn upload(
        &self,
        path_in_job: &str,
        bytes: Vec<u8>,
        escrow: Option<B256>,
    ) -> Result<(InputBlob, BlobInfo), ClientError> {
        let hash = sha256(&bytes);
        let size = bytes.len() as u64;
        let mut req = self.http.put(format!("{}/v1/blobs/{hash}", self.url));
        if let Some(job) = escrow {
            req = req.header("x-fog-escrow", job.to_string());
        }
        let response = self
            .authed(req.body(bytes))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let info: BlobInfo = self.typed("the upload", response).await?;
        Ok((
            InputBlob {
                contentHash: hash,
                size,
                path: path_in_job.to_owned(),
            },
            info,
        ))
    }

    pub async fn submit(
        &self,
        job_id: B256,
        signed: &SignedJobSpec,
    ) -> Result<Submitted, ClientError> {
        self.submit_with(job_id, signed, None, None).await
    }

    /// Submits a job paid by an escrow (`auth` None) or, batched, by the
    /// buyer's signed authorisation against its batch account.
    pub async fn submit_with(
        &self,
        job_id: B256,
        signed: &SignedJobSpec,
        auth: Option<fog_protocol::batch::SignedJobAuth>,
        funding: Option<fog_protocol::api::Funding>,
    ) -> Result<Submitted, ClientError> {
        self.post(
            "/v1/jobs",
            &SubmitRequest {
                job_id,
                spec: signed.payload.clone(),
                signature: signed.signature,
                auth,
                funding,
            },
        )
        .await
    }

    /// Where a batched job was settled: its epoch, leaf and Merkle proof.
    pub async fn proof(&self, job_id: B256) -> Result<fog_protocol::batch::JobProof, ClientError> {
        self.get(&format!("/v1/jobs/{job_id}/proof")).await
    }

    /// A batched job's proof, public (anyone may check a settlement).
    pub async fn public_proof(
        &self,
        job_id: B256,
    ) -> Result<fog_protocol::batch::JobProof, ClientError> {
        self.get(&format!("/v1/proofs/{job_id}")).await
    }

    /// A job of the caller's, its spec and its replicas' runs.
    pub async fn status(&self, job_id: B256) -> Result<JobStatus, ClientError> {
        self.get(&format!("/v1/jobs/{job_id}")).await
    }

    /// The caller's newest jobs.
    pub async fn jobs(&self, limit: u32) -> Result<JobList, ClientError> {
        self.get(&format!("/v1/jobs?limit={limit}")).await
    }

    pub async fn cancel(&self, job_id: B256) -> Result<Cancelled, ClientError> {
        self.post(
            &format!("/v1/jobs/{job_id}/cancel"),
            &serde_json::Map::new(),
        )
        .await
    }

    /// Streams the job's log lines to `sink`: those so far, or with
    /// `follow` everything until the job ends.
    pub async fn logs(
        &self,
        job_id: B256,
        follow: bool,
        sink: impl FnMut(&LogLine),
    ) -> Result<(), ClientError> {
        self.log_lines(&format!("/v1/jobs/{job_id}/logs"), follow, sink)
            .await
    }

    /// Streams a service's log lines (all replicas) to `sink`; with
    /// `follow` until the service ends.
    pub async fn service_logs(
        &self,
        service_id: B256,
        follow: bool,
        sink: impl FnMut(&LogLine),
    ) -> Result<(), ClientError> {
        self.log_lines(&format!("/v1/services/{service_id}/logs"), follow, sink)
            .await
    }

    /// Starts a service.
    pub async fn service_up(
        &self,
        req: &fog_protocol::api::ServiceUpRequest,
    ) -> Result<fog_protocol::api::ServiceStatus, ClientError> {
        self.post("/v1/services", req).await
    }

    /// The caller's services.
    pub async fn services(&self) -> Result<fog_protocol::api::ServiceList, ClientError> {
        self.get("/v1/services").await
    }

    pub async fn service(
        &self,
        service_id: B256,
    ) -> Result<fog_protocol::api::ServiceStatus, ClientError> {
        self.get(&format!("/v1/services/{service_id}")).await
    }

    pub async fn stop_service(
        &self,
        service_id: B256,
    ) -> Result<fog_protocol::api::ServiceStatus, ClientError> {
        self.post(
            &format!("/v1/services/{service_id}/stop"),
            &serde_json::Map::new(),
        )
        .await
    }

    pub async fn top_up(
        &self,
        service_id: B256,
        req: &fog_protocol::api::TopUpRequest,
    ) -> Result<fog_protocol::api::ServiceStatus, ClientError> {
        self.post(&format!("/v1/services/{service_id}/top-up"), req)
            .await
    }

    async fn log_lines(
        &self,
        path: &str,
        follow: bool,
        mut sink: impl FnMut(&LogLine),
    ) -> Result<(), ClientError> {
        let req = self.authed(self.http.get(format!("{}{path}?follow={follow}", self.url)));
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            return Err(self.refusal(response).await);
        }
        let mut stream = response.bytes_stream();
        let mut pending = Vec::new();
        while let Some(chunk) = stream.next().await {
            pending.extend_from_slice(&chunk.map_err(|e| self.unreachable(e))?);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let parsed: LogLine =
                    serde_json::from_slice(&line).map_err(|e| ClientError::Unexpected {
                        what: "a log line".into(),
                        reason: e.to_string(),
                    })?;
                sink(&parsed);
            }
        }
        Ok(())
    }

    /// Polls until `done` says the status is final, or `within` has passed
    /// (then the last status is returned).
    pub async fn wait_for(
        &self,
        job_id: B256,
        within: Duration,
        done: impl Fn(&JobStatus) -> bool,
    ) -> Result<JobStatus, ClientError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let status = self.status(job_id).await?;
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
            return Err(self.refusal(response).await);
        }
        Ok(response
            .bytes()
            .await
            .map_err(|e| self.unreachable(e))?
            .to_vec())
    }
}
