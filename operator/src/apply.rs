//! How the operator writes objects: server-side apply with a fixed field manager for what it
//! owns, create-once for what must never change (CA keys, certificates, genesis blocks), and
//! status applied under its own manager only when it changed.

use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::labels::{MANAGER, STATUS_MANAGER};
use crate::Result;

/// Applies `obj` as the operator's field manager, taking over conflicting fields (the
/// operator is the source of truth for what it makes).
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(obj)).await?)
}

/// The annotation that records a digest of what the operator last applied to an object.
pub const APPLIED: &str = "raftnet.dev/applied";

/// Applies `obj` unless the object already carries the digest of this very content (as the
/// operator last applied it). A no-op apply still writes on some servers (1.20 bumps a
/// StatefulSet's resourceVersion), and every write wakes the watches again; this keeps an
/// unchanged cluster free of writes. Changes made by others to fields the operator set are
/// left alone until the operator's own content changes (as `kubectl scale` expects).
pub async fn apply_changed<K>(api: &Api<K>, mut obj: K) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let digest = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        &serde_json::to_vec(&obj)?,
    ));
    obj.meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(APPLIED.to_owned(), digest.clone());
    let name = obj.meta().name.clone().unwrap_or_default();
    if let Some(existing) = api.get_opt(&name).await? {
        let applied = existing
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED));
        if applied == Some(&digest) {
            return Ok(existing);
        }
    }
    apply(api, &obj).await
}

/// The existing object named like `obj`, or `obj` created. An existing object is never
/// changed: keys and certificates are issued once, a genesis block is built once.
/// Returns whether it was created now.
pub async fn create_once<K>(api: &Api<K>, obj: &K) -> Result<(K, bool)>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    if let Some(existing) = api.get_opt(&name).await? {
        return Ok((existing, false));
    }
    match api.create(&PostParams::default(), obj).await {
        Ok(created) => Ok((created, true)),
        // Another reconcile created it meanwhile: theirs stands.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok((api.get(&name).await?, false)),
        Err(err) => Err(err.into()),
    }
}

/// Applies `status` to the status of `obj` when it differs from what the object shows, so that
/// an unchanged cluster causes no writes (and a restarted operator changes nothing).
pub async fn apply_status<K, S>(
    api: &Api<K>,
    obj: &K,
    current: Option<&S>,
    status: &S,
) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(false);
    }
    let name = obj.meta().name.clone().unwrap_or_default();
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(STATUS_MANAGER).force();
    api.patch_status(&name, &params, &Patch::Apply(&body))
        .await?;
    Ok(true)
}

/// Whether a Kubernetes error is "not found".
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}
