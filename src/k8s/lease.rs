//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! Every replica takes webhooks and creates PipelineRuns; only the holder
//! of the Lease runs the controller, so two replicas never reconcile the
//! same run. Each write carries the Lease's resourceVersion, so of two
//! replicas racing for an expired Lease the API server lets exactly one win
//! (the other gets 409). A leader that cannot renew steps down before its
//! Lease can expire, so there is never a moment with two leaders that each
//! believe in their lease.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Error;

pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// How long a lease holds without renewal.
    duration: Duration,
    /// How often the holder renews (and others try): well under `duration`.
    retry: Duration,
    leader: Arc<AtomicBool>,
}

impl LeaderElection {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> LeaderElection {
        LeaderElection {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            retry: duration / 3,
            leader: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether this replica leads right now (for readiness and metrics).
    pub fn is_leader(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.leader)
    }

    /// One round: take the lease if it is free or expired, renew it if ours.
    /// `Ok(true)` when we hold it afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, Error> {
        let now = Utc::now();
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = self.lease(None, now, now, 0)?;
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e.into()),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(self.duration);
        let renewed = spec.renew_time.as_ref().and_then(time_of);
        let expired = renewed
            .is_none_or(|at| at + chrono::Duration::from_std(duration).unwrap_or_default() < now);
        let transitions = spec.lease_transitions.unwrap_or(0);
        let version = current.metadata.resource_version.clone();
        let lease = if holder == self.identity {
            let acquired = spec.acquire_time.as_ref().and_then(time_of).unwrap_or(now);
            self.lease(version, acquired, now, transitions)?
        } else if holder.is_empty() || expired {
            self.lease(version, now, now, transitions + 1)?
        } else {
            return Ok(false);
        };
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the lease up so another replica need not wait for it to expire.
    pub async fn release(&self) -> Result<(), Error> {
        let Some(current) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let spec = current.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let lease: Lease = serde_json::from_value(json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "resourceVersion": current.metadata.resource_version,
            },
            "spec": { "leaseDurationSeconds": 1, "leaseTransitions": spec.lease_transitions },
        }))?;
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn lease(
        &self,
        resource_version: Option<String>,
        acquired: DateTime<Utc>,
        renewed: DateTime<Utc>,
        transitions: i32,
    ) -> Result<Lease, Error> {
        let micro = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        Ok(serde_json::from_value(json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": { "name": self.name, "resourceVersion": resource_version },
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration.as_secs().max(1),
                "acquireTime": micro(acquired),
                "renewTime": micro(renewed),
                "leaseTransitions": transitions,
            },
        }))?)
    }

    /// Runs `work` while this replica leads, until `stop` is cancelled. The
    /// token handed to `work` is cancelled the moment leadership is lost.
    pub async fn run<F, Fut>(&self, stop: CancellationToken, work: F)
    where
        F: Fn(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut current: Option<(CancellationToken, tokio::task::JoinHandle<()>)> = None;
        let mut last_renewal = Instant::now();
        loop {
            let held = match self.try_acquire_or_renew().await {
                Ok(held) => {
                    if held {
                        last_renewal = Instant::now();
                    }
                    held
                }
                Err(e) => {
                    tracing::warn!("lease {}: {e}", self.name);
                    // Keep leading through a blip, but never past the point
                    // where another replica may take the lease over.
                    current.is_some() && last_renewal.elapsed() < self.duration - self.retry
                }
            };
            match (&current, held) {
                (None, true) => {
                    tracing::info!("{} is now the leader", self.identity);
                    let token = stop.child_token();
                    let handle = tokio::spawn(work(token.clone()));
                    current = Some((token, handle));
                }
                (Some(_), false) => {
                    tracing::warn!("{} lost the lease; stopping the controller", self.identity);
                    if let Some((token, handle)) = current.take() {
                        token.cancel();
                        let _ = handle.await;
                    }
                }
                _ => {}
            }
            self.leader.store(current.is_some(), Ordering::SeqCst);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(self.retry) => {}
            }
        }
        if let Some((token, handle)) = current.take() {
            token.cancel();
            let _ = handle.await;
            if let Err(e) = self.release().await {
                tracing::warn!("could not release lease {}: {e}", self.name);
            }
        }
        self.leader.store(false, Ordering::SeqCst);
    }
}

fn time_of<T: serde::Serialize>(t: &T) -> Option<DateTime<Utc>> {
    let text = serde_json::to_value(t).ok()?;
    DateTime::parse_from_rfc3339(text.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
