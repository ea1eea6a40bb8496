//! Which objects the remote lacks, asked the way DVC asks.
//!
//! For a few ids (up to [`S3Tuning::head_max`](super::S3Tuning::head_max)) one HEAD
//! per object, concurrently. For more, listings (ListObjectsV2, paginated), where
//! a page answers up to 1,000 ids at once: the remote's size is estimated from one
//! `files/md5/<2 hex>/` shard (as DVC does); a small remote (up to about 20,000
//! objects) is listed in one go, a larger one shard by shard for the shards the
//! ids fall in, concurrently. Each listing starts just before the smallest wanted
//! key and stops after the largest. A 404 means missing; any other error is an
//! error (never "missing", which would re-upload, nor "present", which would lose
//! data).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::{StreamExt, TryStreamExt};

use super::{errors, Shared};
use crate::dvc::ObjectId;
use crate::remote::RemoteError;

/// Keys asked for per listing page. S3, Garage and MinIO cap pages at 1,000 (more
/// is allowed to ask for); servers that give more (s3s-fs, which walks the whole
/// bucket for every page) are then asked far fewer times.
const LIST_PAGE_KEYS: i32 = 10_000;

/// The ids among `ids` that the remote does not hold (no duplicates).
pub(super) async fn missing(
    shared: &Shared,
    ids: &[ObjectId],
) -> Result<Vec<ObjectId>, RemoteError> {
    let unique: BTreeSet<ObjectId> = ids.iter().copied().collect();
    let tuning = &shared.settings.tuning;
    let jobs = tuning.check_jobs.max(1);
    if unique.len() <= tuning.head_max {
        let found: Vec<Option<ObjectId>> =
            futures::stream::iter(unique)
                .map(|id| async move {
                    Ok::<_, RemoteError>((!exists(shared, id).await?).then_some(id))
                })
                .buffer_unordered(jobs)
                .try_collect()
                .await?;
        return Ok(found.into_iter().flatten().collect());
    }
    let wanted: BTreeSet<String> = unique.iter().map(|id| shared.key(id)).collect();
    let found = if remote_is_small(shared, &unique).await? {
        let all = shared.settings.location.md5_prefix();
        list_between(shared, all, &wanted).await?
    } else {
        let mut shards: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for id in &unique {
            let hex = id.md5.to_hex();
            shards
                .entry(hex[..2].to_string())
                .or_default()
                .insert(shared.key(id));
        }
        let lists: Vec<HashSet<String>> = futures::stream::iter(shards)
            .map(|(shard, keys)| async move {
                let prefix = shared.settings.location.shard_prefix(&shard);
                list_between(shared, prefix, &keys).await
            })
            .buffer_unordered(jobs)
            .try_collect()
            .await?;
        lists.into_iter().flatten().collect()
    };
    Ok(unique
        .into_iter()
        .filter(|id| !found.contains(&shared.key(id)))
        .collect())
}

/// Whether the remote holds so few objects that one listing of all of
/// `files/md5/` is cheaper than a listing per shard, estimated (as DVC does) from
/// the size of one shard: at most
/// [`S3Tuning::list_all_max`](super::S3Tuning::list_all_max) objects.
async fn remote_is_small(shared: &Shared, ids: &BTreeSet<ObjectId>) -> Result<bool, RemoteError> {
    let Some(probe) = ids.first() else {
        return Ok(true);
    };
    let shard = probe.md5.to_hex()[..2].to_string();
    let prefix = shared.settings.location.shard_prefix(&shard);
    let page = shared
        .client()
        .await
        .list_objects_v2()
        .bucket(shared.bucket())
        .prefix(&prefix)
        .send()
        .await
        .map_err(|e| {
            errors::sdk(
                shared.url(),
                None,
                &format!("check (ListObjectsV2 {prefix})"),
                e,
            )
        })?;
    let listed = page.contents().len() as u64;
    let max = shared.settings.tuning.list_all_max;
    Ok(page.is_truncated() != Some(true) && listed.saturating_mul(256) <= max)
}

/// HEAD one object: true if present, false on 404.
pub(super) async fn exists(shared: &Shared, id: ObjectId) -> Result<bool, RemoteError> {
    Ok(head(shared, id, "check").await?.is_some())
}

/// HEAD one object: its stored size.
pub(super) async fn size(shared: &Shared, id: ObjectId) -> Result<u64, RemoteError> {
    let Some(length) = head(shared, id, "size").await? else {
        return Err(RemoteError::NotFound {
            remote: shared.url(),
            id,
        });
    };
    length.ok_or_else(|| RemoteError::Other {
        remote: shared.url(),
        id: Some(id),
        message: "size (HeadObject) failed: the answer has no Content-Length".into(),
    })
}

/// HEAD one object for `op`: `None` on 404, else its Content-Length if the
/// answer had one.
async fn head(shared: &Shared, id: ObjectId, op: &str) -> Result<Option<Option<u64>>, RemoteError> {
    let head = shared
        .client()
        .await
        .head_object()
        .bucket(shared.bucket())
        .key(shared.key(&id))
        .send()
        .await;
    match head {
        Ok(h) => Ok(Some(h.content_length().and_then(|n| u64::try_from(n).ok()))),
        Err(e) if errors::is_not_found(&e) => Ok(None),
        Err(e) => Err(errors::sdk(
            shared.url(),
            Some(id),
            &format!("{op} (HeadObject)"),
            e,
        )),
    }
}

/// Lists `prefix` from just before the smallest of `keys` to the largest;
/// returns those of `keys` that were listed.
async fn list_between(
    shared: &Shared,
    prefix: String,
    keys: &BTreeSet<String>,
) -> Result<HashSet<String>, RemoteError> {
    let mut found = HashSet::new();
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return Ok(found);
    };
    // Everything after a strict prefix of the smallest key includes that key.
    let start_after = first[..first.len() - 1].to_string();
    let mut pages = shared
        .client()
        .await
        .list_objects_v2()
        .bucket(shared.bucket())
        .prefix(&prefix)
        .start_after(start_after)
        .max_keys(LIST_PAGE_KEYS)
        .into_paginator()
        .send();
    'pages: while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            errors::sdk(
                shared.url(),
                None,
                &format!("check (ListObjectsV2 {prefix})"),
                e,
            )
        })?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            if key > last.as_str() {
                break 'pages;
            }
            if keys.contains(key) {
                found.insert(key.to_string());
            }
        }
    }
    Ok(found)
}
