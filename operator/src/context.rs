//! What every reconciler shares: the API client, the settings, the view of the nodes, the
//! event recorder and the metrics.

use std::sync::Arc;

use kube::api::ApiResource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::metrics::Metrics;
use crate::observe::Hub;
use crate::Settings;

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    /// PodDisruptionBudget's API on this server (policy/v1, or v1beta1 on Kubernetes 1.20).
    pub budget_api: ApiResource,
    /// Contract deploys in flight or done.
    pub deploys: crate::controllers::contracts::Deploys,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        budget_api: ApiResource,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: crate::labels::MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Arc::new(Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            hub,
            metrics,
            budget_api,
            deploys: Default::default(),
        })
    }

    /// Publishes an event about `obj`; a failure to publish is logged, never fatal.
    pub async fn event<K>(&self, obj: &K, type_: EventType, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::warn!(reason, "cannot publish event: {err}");
        }
    }
}
