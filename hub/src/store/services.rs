//! Services (migration 0008, docs/services.md): the service, the buyer's pool
//! of segment authorisations, its segments with their latest receipts, its logs.

use fog_protocol::api::ServiceState;
use fog_protocol::batch::SignedJobAuth;
use fog_protocol::service::ServiceSpec;
use fog_protocol::{Address, B256, Signature, SignedReceipt, U256};
use sqlx::Row;

use super::{LogRow, Store, StoreError, corrupt, hex_addr, log_row, parse};

/// A service as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRow {
    pub service_id: B256,
    pub buyer: Address,
    pub spec: ServiceSpec,
    pub state: ServiceState,
    pub reason: Option<String>,
    pub created_at: u64,
    pub ended_at: Option<u64>,
}

/// One segment authorisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRow {
    pub seq: u64,
    pub job_id: B256,
    pub auth: SignedJobAuth,
    pub used: bool,
}

/// One segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRow {
    pub job_id: B256,
    pub service_id: B256,
    pub replica: u16,
    pub miner: Address,
    pub max_charge: U256,
    pub assignment_signature: Signature,
    pub started_at: u64,
    pub ended_at: Option<u64>,
    pub end_reason: Option<String>,
    pub periods: u64,
    pub receipt: Option<SignedReceipt>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn json<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| corrupt(what, "", e))
}

fn service_row(r: &sqlx::sqlite::SqliteRow) -> Result<ServiceRow, StoreError> {
    let spec: String = r.try_get("spec_json")?;
    Ok(ServiceRow {
        service_id: parse("service id", &r.try_get::<String, _>("service_id")?)?,
        buyer: parse("buyer", &r.try_get::<String, _>("buyer")?)?,
        spec: serde_json::from_str(&spec).map_err(|e| corrupt("service spec", &spec, e))?,
        state: parse("service state", &r.try_get::<String, _>("state")?)?,
        reason: r.try_get("reason")?,
        created_at: to_u64(r.try_get("created_at")?),
        ended_at: r.try_get::<Option<i64>, _>("ended_at")?.map(to_u64),
    })
}

fn segment_row(r: &sqlx::sqlite::SqliteRow) -> Result<SegmentRow, StoreError> {
    let receipt: Option<String> = r.try_get("receipt_json")?;
    Ok(SegmentRow {
        job_id: parse("segment id", &r.try_get::<String, _>("job_id")?)?,
        service_id: parse("service id", &r.try_get::<String, _>("service_id")?)?,
        replica: u16::try_from(r.try_get::<i64, _>("replica")?).unwrap_or(0),
        miner: parse("miner", &r.try_get::<String, _>("miner")?)?,
        max_charge: parse("max charge", &r.try_get::<String, _>("max_charge")?)?,
        assignment_signature: parse(
            "assignment signature",
            &r.try_get::<String, _>("assignment_signature")?,
        )?,
        started_at: to_u64(r.try_get("started_at")?),
        ended_at: r.try_get::<Option<i64>, _>("ended_at")?.map(to_u64),
        end_reason: r.try_get("end_reason")?,
        periods: to_u64(r.try_get("periods")?),
        receipt: receipt
            .map(|j| serde_json::from_str(&j).map_err(|e| corrupt("receipt", &j, e)))
            .transpose()?,
    })
}

impl Store {
    /// Stores a new service with its first authorisations (salt order).
    pub async fn insert_service(
        &self,
        row: &ServiceRow,
        auths: &[(B256, SignedJobAuth)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO services (service_id, buyer, spec_hash, spec_json, state, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (service_id) DO NOTHING",
        )
        .bind(row.service_id.to_string())
        .bind(hex_addr(row.buyer))
        .bind(row.spec.spec_hash().to_string())
        .bind(json("service spec", &row.spec)?)
        .bind(row.state.as_str())
        .bind(to_i64(row.created_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::JobExists(row.service_id));
        }
        insert_auths(&mut tx, row.service_id, 0, auths).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds authorisations after the service's last (a top-up).
    pub async fn add_service_auths(
        &self,
        service_id: B256,
        first_seq: u64,
        auths: &[(B256, SignedJobAuth)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_auths(&mut tx, service_id, first_seq, auths).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn service(&self, service_id: B256) -> Result<Option<ServiceRow>, StoreError> {
        sqlx::query("SELECT * FROM services WHERE service_id = $1")
            .bind(service_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(service_row)
            .transpose()
    }

    /// The buyer's services, newest first.
    pub async fn services_of(
        &self,
        buyer: Address,
        limit: u32,
    ) -> Result<Vec<ServiceRow>, StoreError> {
        sqlx::query(
            "SELECT * FROM services WHERE buyer = $1 ORDER BY created_at DESC, service_id LIMIT $2",
        )
        .bind(hex_addr(buyer))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(service_row)
        .collect()
    }

    /// Services that should be running.
    pub async fn live_services(&self) -> Result<Vec<ServiceRow>, StoreError> {
        sqlx::query("SELECT * FROM services WHERE state IN ('starting', 'running')")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(service_row)
            .collect()
    }

    pub async fn set_service_state(
        &self,
        service_id: B256,
        state: ServiceState,
        reason: Option<&str>,
        now: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE services SET state = $1, reason = COALESCE($2, reason),
                 ended_at = CASE WHEN $3 THEN $4 ELSE ended_at END
             WHERE service_id = $5",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(state.is_final())
        .bind(to_i64(now))
        .bind(service_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The service's authorisations in salt order.
    pub async fn service_auths(&self, service_id: B256) -> Result<Vec<AuthRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, job_id, auth_json, used FROM service_auths WHERE service_id = $1 ORDER BY seq",
        )
        .bind(service_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let auth: String = r.try_get("auth_json")?;
                Ok(AuthRow {
                    seq: to_u64(r.try_get("seq")?),
                    job_id: parse("segment id", &r.try_get::<String, _>("job_id")?)?,
                    auth: serde_json::from_str(&auth).map_err(|e| corrupt("auth", &auth, e))?,
                    used: r.try_get("used")?,
                })
            })
            .collect()
    }

    /// Starts a segment on an authorisation, marking it used.
    pub async fn insert_segment(&self, s: &SegmentRow) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let took =
            sqlx::query("UPDATE service_auths SET used = TRUE WHERE job_id = $1 AND used = FALSE")
                .bind(s.job_id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if took == 0 {
            return Err(StoreError::JobExists(s.job_id));
        }
        sqlx::query(
            "INSERT INTO service_segments (job_id, service_id, replica, miner, max_charge,
                 assignment_signature, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(s.job_id.to_string())
        .bind(s.service_id.to_string())
        .bind(i64::from(s.replica))
        .bind(hex_addr(s.miner))
        .bind(s.max_charge.to_string())
        .bind(s.assignment_signature.to_string())
        .bind(to_i64(s.started_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a segment's newer receipt.
    pub async fn set_segment_receipt(
        &self,
        job_id: B256,
        periods: u64,
        receipt: &SignedReceipt,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE service_segments SET periods = $1, receipt_json = $2
             WHERE job_id = $3 AND periods <= $1",
        )
        .bind(to_i64(periods))
        .bind(json("receipt", receipt)?)
        .bind(job_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a segment; `batched` (its last receipt, as an epoch takes it) is
    /// queued for the next epoch in the same transaction.
    pub async fn end_segment(
        &self,
        job_id: B256,
        reason: &str,
        now: u64,
        batched: Option<&fog_protocol::batch::BatchedJob>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let ended = sqlx::query(
            "UPDATE service_segments SET ended_at = $1, end_reason = $2
             WHERE job_id = $3 AND ended_at IS NULL",
        )
        .bind(to_i64(now))
        .bind(reason)
        .bind(job_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if ended == 1
            && let Some(job) = batched
        {
            sqlx::query(
                "INSERT INTO batch_jobs (job_id, buyer, body, deadline, state, created_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT (job_id) DO NOTHING",
            )
            .bind(job.job_id().to_string())
            .bind(hex_addr(job.buyer))
            .bind(json("batched job", job)?)
            .bind(to_i64(job.auth.payload.deadline))
            .bind(to_i64(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The service's segments, oldest first.
    pub async fn segments_of(&self, service_id: B256) -> Result<Vec<SegmentRow>, StoreError> {
        sqlx::query(
            "SELECT * FROM service_segments WHERE service_id = $1 ORDER BY started_at, job_id",
        )
        .bind(service_id.to_string())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(segment_row)
        .collect()
    }

    /// What the buyer's services hold of its batch account: the unused
    /// authorisations of live services, the authorisations of live segments,
    /// and those of ended segments whose epoch has not come (each at its
    /// authorised maximum, the most it can cost). Unused authorisations whose
    /// deadline is at or before `now` can never be spent and do not count.
    pub async fn outstanding_services(&self, buyer: Address, now: u64) -> Result<U256, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT a.max_payment FROM service_auths a
               JOIN services s ON s.service_id = a.service_id
               LEFT JOIN service_segments g ON g.job_id = a.job_id
               LEFT JOIN batch_jobs b ON b.job_id = a.job_id
              WHERE s.buyer = $1 AND (
                    (a.used = FALSE AND a.deadline > $2 AND s.state IN ('starting', 'running'))
                 OR (g.job_id IS NOT NULL AND g.ended_at IS NULL)
                 OR (b.state = 'pending'))",
        )
        .bind(hex_addr(buyer))
        .bind(to_i64(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().try_fold(U256::ZERO, |sum, v| {
            Ok(sum.saturating_add(parse::<U256>("max payment", v)?))
        })
    }

    /// The settlement of ended segments' batched jobs: job id → state.
    pub async fn segment_settlements(
        &self,
        service_id: B256,
    ) -> Result<Vec<(B256, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT b.job_id, b.state FROM batch_jobs b
               JOIN service_segments g ON g.job_id = b.job_id WHERE g.service_id = $1",
        )
        .bind(service_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse("segment id", &r.try_get::<String, _>("job_id")?)?,
                    r.try_get("state")?,
                ))
            })
            .collect()
    }

    pub async fn append_service_log(
        &self,
        service_id: B256,
        miner: Address,
        stream: &str,
        data: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO service_logs (service_id, seq, miner, stream, data)
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM service_logs WHERE service_id = $1), $2, $3, $4)
             RETURNING seq",
        )
        .bind(service_id.to_string())
        .bind(hex_addr(miner))
        .bind(stream)
        .bind(data)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("seq")?)
    }

    /// Log chunks after `after_seq`, in order.
    pub async fn service_logs(
        &self,
        service_id: B256,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<LogRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, miner, stream, data FROM service_logs WHERE service_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(service_id.to_string())
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(log_row).collect()
    }

    /// Deletes the logs of services that ended before `ended_before`.
    pub async fn purge_service_logs(&self, ended_before: u64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM service_logs WHERE service_id IN (
                 SELECT service_id FROM services WHERE ended_at IS NOT NULL AND ended_at < $1)",
        )
        .bind(to_i64(ended_before))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

async fn insert_auths(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    service_id: B256,
    first_seq: u64,
    auths: &[(B256, SignedJobAuth)],
) -> Result<(), StoreError> {
    for (i, (job_id, auth)) in auths.iter().enumerate() {
        sqlx::query(
            "INSERT INTO service_auths (service_id, seq, job_id, auth_json, max_payment, deadline)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(service_id.to_string())
        .bind(to_i64(first_seq + i as u64))
        .bind(job_id.to_string())
        .bind(json("auth", auth)?)
        .bind(auth.payload.maxPayment.to_string())
        .bind(to_i64(auth.payload.deadline))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use fog_protocol::batch::{JobAuth, batch_job_id};
    use fog_protocol::service::segment_salt;

    fn auth(
        key: &fog_protocol::PrivateKeySigner,
        service: B256,
        n: u64,
        deadline: u64,
    ) -> (B256, SignedJobAuth) {
        let a = JobAuth {
            salt: segment_salt(service, n),
            maxPayment: U256::from(100u64),
            deadline,
            replicas: 1,
            ..Default::default()
        };
        let domain = fog_protocol::batch::batch_domain(1, Address::ZERO);
        let signed = fog_protocol::Signed::sign(a, key, &domain).unwrap();
        (batch_job_id(key.address(), signed.payload.salt), signed)
    }

    /// What a buyer's services hold: unused live authorisations (not past
    /// their deadline), live segments, segments waiting for an epoch; nothing
    /// once the service stopped and its segments settled.
    #[tokio::test]
    async fn a_buyers_services_hold_what_they_may_still_spend() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let key = fog_protocol::PrivateKeySigner::random();
        let buyer = key.address();
        let service = B256::repeat_byte(9);
        let row = ServiceRow {
            service_id: service,
            buyer,
            spec: ServiceSpec::default(),
            state: ServiceState::Starting,
            reason: None,
            created_at: 1,
            ended_at: None,
        };
        let auths = vec![
            auth(&key, service, 0, 1_000),
            auth(&key, service, 1, 1_000),
            auth(&key, service, 2, 50),
        ];
        store.insert_service(&row, &auths).await.unwrap();
        assert_eq!(
            store.outstanding_services(buyer, 100).await.unwrap(),
            U256::from(200u64)
        );
        assert_eq!(
            store.outstanding_services(buyer, 10).await.unwrap(),
            U256::from(300u64)
        );
        // A second insert of the same service is refused.
        assert!(matches!(
            store.insert_service(&row, &auths).await,
            Err(StoreError::JobExists(_))
        ));
        let segment = SegmentRow {
            job_id: auths[0].0,
            service_id: service,
            replica: 0,
            miner: Address::repeat_byte(3),
            max_charge: U256::from(95u64),
            assignment_signature: auths[0].1.signature,
            started_at: 1,
            ended_at: None,
            end_reason: None,
            periods: 0,
            receipt: None,
        };
        store.insert_segment(&segment).await.unwrap();
        // An authorisation is spent once.
        assert!(store.insert_segment(&segment).await.is_err());
        assert_eq!(
            store.outstanding_services(buyer, 100).await.unwrap(),
            U256::from(200u64)
        );
        // Ended without a receipt: nothing to pay, nothing held for it.
        store
            .end_segment(segment.job_id, "test", 2, None)
            .await
            .unwrap();
        assert_eq!(
            store.outstanding_services(buyer, 100).await.unwrap(),
            U256::from(100u64)
        );
        store
            .set_service_state(service, ServiceState::Stopped, Some("stopped"), 3)
            .await
            .unwrap();
        assert_eq!(
            store.outstanding_services(buyer, 100).await.unwrap(),
            U256::ZERO
        );
        let stored = store.service(service).await.unwrap().unwrap();
        assert_eq!(
            (stored.state, stored.ended_at),
            (ServiceState::Stopped, Some(3))
        );
    }
}
