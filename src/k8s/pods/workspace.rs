//! A run's workspace: a sub-path of the shared claim, or a claim made for
//! the run alone.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::names::{run_claim_name, run_label};
use super::{owner_reference, MANAGED_BY, WORKSPACE_MOUNT};
use crate::k8s::crd::{PipelineRun, LABEL_RUN};
use crate::k8s::settings::{ExecutorSettings, Workspace};

/// The claim made for one run, when the workspace comes from a template.
pub fn run_claim(run: &PipelineRun, settings: &ExecutorSettings) -> Option<PersistentVolumeClaim> {
    let Workspace::PerRun {
        storage_class,
        size,
        access_mode,
    } = &settings.workspace
    else {
        return None;
    };
    let run_name = run.metadata.name.as_deref()?;
    Some(PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(run_claim_name(run_name)),
            namespace: run.metadata.namespace.clone(),
            labels: Some(BTreeMap::from([
                (LABEL_RUN.to_string(), run_label(run_name)),
                (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            ])),
            owner_references: owner_reference(run).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![access_mode.clone()]),
            storage_class_name: storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    })
}

pub(super) fn workspace_mount(run: &str, settings: &ExecutorSettings) -> VolumeMount {
    VolumeMount {
        name: "workspace".into(),
        mount_path: WORKSPACE_MOUNT.into(),
        // A sub-path per run: concurrent runs on one claim never meet.
        sub_path: match settings.workspace {
            Workspace::SharedClaim { .. } => Some(format!("runs/{}", run_label(run))),
            Workspace::PerRun { .. } => None,
        },
        ..Default::default()
    }
}

pub(super) fn workspace_volume(run: &str, settings: &ExecutorSettings) -> Volume {
    let claim_name = match &settings.workspace {
        Workspace::SharedClaim { claim } => claim.clone(),
        Workspace::PerRun { .. } => run_claim_name(run),
    };
    Volume {
        name: "workspace".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name,
            read_only: Some(false),
        }),
        ..Default::default()
    }
}
