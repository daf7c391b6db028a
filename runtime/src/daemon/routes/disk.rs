//! Disk use and getting it back: `GET /system/df`, and the prunes of
//! stopped containers, unused images and empty networks.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hyper::StatusCode;

use super::{containers, images};
use crate::api::filters::{Filters, label_holds};
use crate::api::types::{
    BuildCacheRecord, ContainersPruned, DiskUsage, ImagesPruned, NetworksPruned,
};
use crate::daemon::error::DaemonError;
use crate::daemon::events::Event;
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::supervisor::Supervisor;

/// A prune's `until`: a Go duration before now (`24h`, `1h30m`, `90s`),
/// Unix seconds, or an RFC 3339 time.
pub fn until_time(raw: &str) -> Result<DateTime<Utc>, DaemonError> {
    let bad = |why: &str| DaemonError::bad_request(format!("invalid filter until={raw:?}: {why}"));
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = raw.parse::<f64>() {
        return DateTime::from_timestamp(secs.trunc() as i64, (secs.fract() * 1e9) as u32)
            .ok_or_else(|| bad("out of range"));
    }
    // A Go duration: numbers each followed by h, m, s or ms.
    let mut total = 0f64;
    let mut rest = raw;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("a duration needs a unit (h, m, s)"))?;
        let n: f64 = rest[..digits]
            .parse()
            .map_err(|_| bad("expected a number"))?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else {
            match rest.as_bytes().first() {
                Some(b'h') => (3600.0, 1),
                Some(b'm') => (60.0, 1),
                Some(b's') => (1.0, 1),
                _ => {
                    return Err(bad(
                        "expected a time, Unix seconds or a duration such as 24h",
                    ));
                }
            }
        };
        total += n * unit;
        rest = &rest[len..];
    }
    let d = chrono::Duration::milliseconds((total * 1000.0) as i64);
    Ok(Utc::now() - d)
}

/// The filters every prune takes, checked against `labels` and the
/// object's creation time.
struct PruneFilter {
    f: Filters,
    until: Option<DateTime<Utc>>,
}

impl PruneFilter {
    fn new(q: &Query, what: &str, extra: &[&str]) -> Result<Self, DaemonError> {
        let mut accepted = vec!["until", "label", "label!"];
        accepted.extend_from_slice(extra);
        let f = Filters::parse(q.get("filters"), what, &accepted)?;
        let until = f
            .values("until")
            .last()
            .map(|u| until_time(u))
            .transpose()?;
        Ok(Self { f, until })
    }

    fn matches(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
        created: Option<DateTime<Utc>>,
    ) -> bool {
        self.f.labels_match(labels)
            && self
                .f
                .values("label!")
                .iter()
                .all(|c| !label_holds(c, labels))
            && self.until.is_none_or(|u| created.is_some_and(|c| c < u))
    }
}

/// `POST /containers/prune`: removes every container that is not running.
pub async fn prune_containers(sup: &Arc<Supervisor>, q: &Query) -> Result<Resp, DaemonError> {
    let filter = PruneFilter::new(q, "container prune", &[])?;
    let records = sup.db().list()?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for rec in records {
        let status = sup.entry(&rec.id).status();
        if status.running || status.restarting {
            continue;
        }
        if !filter.matches(&rec.spec.labels, Some(rec.created_at)) {
            continue;
        }
        let (size, _) = containers::sizes(sup, &rec);
        match sup.remove(&rec.id, false).await {
            Ok(()) => {
                deleted.push(rec.id.clone());
                reclaimed += u64::try_from(size).unwrap_or(0);
            }
            // Started or removed meanwhile: not this prune's to take.
            Err(e) => tracing::debug!(container = rec.short_id(), error = %e, "not pruned"),
        }
    }
    sup.events
        .publish(Event::new("container", "prune", "").with("reclaimed", reclaimed.to_string()));
    Ok(http::json(
        StatusCode::OK,
        &ContainersPruned {
            containers_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: reclaimed,
        },
    ))
}

/// `POST /images/prune`: removes the images no container uses; only the
/// untagged ones unless `dangling=false`. Then frees the blobs and layers
/// nothing refers to any more.
pub fn prune_images(sup: &Arc<Supervisor>, q: &Query) -> Result<Resp, DaemonError> {
    let filter = PruneFilter::new(q, "image prune", &["dangling"])?;
    let dangling_only = filter.f.bool("dangling")?.unwrap_or(true);
    let rows = images::filtered(sup, &Filters::default())?;
    let mut deleted = Vec::new();
    for row in rows {
        if dangling_only && !row.repo_tags.is_empty() {
            continue;
        }
        let created = DateTime::from_timestamp(row.created, 0);
        if !filter.matches(&row.labels, created) {
            continue;
        }
        if !sup.db().users_of_image(&row.id)?.is_empty() {
            continue;
        }
        let removed = match sup.images().remove(&row.id, true, &[]) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(image = %row.id, error = %e, "not pruned");
                continue;
            }
        };
        deleted.extend(images::removed_items(sup, &row.id, removed));
    }
    let in_use: std::collections::HashSet<String> = sup
        .db()
        .list()?
        .into_iter()
        .flat_map(|r| r.spec.layers)
        .collect();
    let reclaimed = sup.images().collect_garbage(&in_use)?.unwrap_or(0);
    sup.events
        .publish(Event::new("image", "prune", "").with("reclaimed", reclaimed.to_string()));
    Ok(http::json(
        StatusCode::OK,
        &ImagesPruned {
            images_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: reclaimed,
        },
    ))
}

/// `POST /networks/prune`: removes the user-defined networks with no
/// container on them.
pub fn prune_networks(sup: &Arc<Supervisor>, q: &Query) -> Result<Resp, DaemonError> {
    let filter = PruneFilter::new(q, "network prune", &[])?;
    // Containers that are stopped still belong to their network.
    let used: std::collections::HashSet<String> = sup
        .db()
        .list()?
        .into_iter()
        .map(|r| r.spec.network)
        .collect();
    let mut deleted = Vec::new();
    for (info, members) in sup.networks().fabric().networks() {
        let created = DateTime::parse_from_rfc3339(&info.created)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        if !info.user_defined
            || !members.is_empty()
            || used.contains(&info.name)
            || used.contains(&info.id)
            || !filter.matches(&info.labels, created)
        {
            continue;
        }
        if sup.networks().remove(&info.id).is_ok() {
            sup.events.publish(
                Event::new("network", "destroy", info.id.clone())
                    .with("name", info.name.clone())
                    .with("type", info.driver.clone()),
            );
            deleted.push(info.name);
        }
    }
    sup.events.publish(Event::new("network", "prune", ""));
    Ok(http::json(
        StatusCode::OK,
        &NetworksPruned {
            networks_deleted: (!deleted.is_empty()).then_some(deleted),
        },
    ))
}

/// `GET /system/df`: images with how many containers use each, containers
/// with their sizes, and the build cache.
pub fn df(sup: &Arc<Supervisor>, q: &Query) -> Result<Resp, DaemonError> {
    let types: Vec<&str> = q.all("type");
    for t in &types {
        if !matches!(*t, "container" | "image" | "volume" | "build-cache") {
            return Err(DaemonError::bad_request(format!(
                "invalid type {t:?}: use container, image, volume or build-cache"
            )));
        }
    }
    let wants = |t: &str| types.is_empty() || types.contains(&t);
    let records = sup.db().list()?;
    let mut out = DiskUsage::default();
    if wants("image") {
        let mut rows = images::filtered(sup, &Filters::default())?;
        // Each unpacked layer is stored once, whichever images share it:
        // an image's size is its layers', its shared size theirs that
        // another image also has, and the total counts each layer once.
        let mut layers_of = Vec::new();
        let mut users: std::collections::HashMap<String, usize> = Default::default();
        for row in &rows {
            let diff_ids: Vec<String> = sup
                .images()
                .resolve(&row.id)
                .and_then(|i| i.diff_ids())
                .map(|d| d.iter().map(|d| d.hex().to_string()).collect())
                .unwrap_or_default();
            for d in &diff_ids {
                *users.entry(d.clone()).or_default() += 1;
            }
            layers_of.push(diff_ids);
        }
        let layers_dir = sup.root().layers_dir();
        let sizes: std::collections::HashMap<&String, i64> = users
            .keys()
            .map(|d| {
                let n = crate::image::layer::dir_size(&layers_dir.join(d));
                (d, i64::try_from(n).unwrap_or(i64::MAX))
            })
            .collect();
        out.layers_size = sizes.values().sum();
        for (row, layers) in rows.iter_mut().zip(&layers_of) {
            row.containers = records.iter().filter(|r| r.image_id == row.id).count() as i64;
            row.size = layers.iter().map(|d| sizes[d]).sum();
            row.shared_size = layers
                .iter()
                .filter(|d| users[*d] > 1)
                .map(|d| sizes[d])
                .sum();
        }
        out.images = rows;
    }
    if wants("container") {
        for rec in &records {
            let entry = sup.entry(&rec.id);
            let mut row = containers::summary(sup, rec, &entry.status(), entry.live().as_ref());
            let (rw, root) = containers::sizes(sup, rec);
            row.size_rw = Some(rw);
            row.size_root_fs = Some(root);
            out.containers.push(row);
        }
    }
    if wants("build-cache") {
        let rows: Vec<(String, i64, String)> = {
            let images = sup.images();
            let conn = images.db_ref().conn();
            let mut stmt = conn
                .prepare("SELECT key, size, created_at FROM build_cache ORDER BY created_at")
                .map_err(DaemonError::internal)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(DaemonError::internal)?
                .collect::<Result<_, _>>()
                .map_err(DaemonError::internal)?
        };
        out.build_cache = rows
            .into_iter()
            .map(|(key, size, created)| BuildCacheRecord {
                id: key.chars().take(12).collect(),
                kind: "regular".into(),
                description: "COPY or ADD layer".into(),
                size,
                last_used_at: Some(created.clone()),
                created_at: created,
                ..Default::default()
            })
            .collect();
    }
    Ok(http::json(StatusCode::OK, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_takes_durations_times_and_seconds() {
        let now = Utc::now();
        let t = until_time("1h30m").expect("duration");
        let ago = (now - t).num_minutes();
        assert!((89..=91).contains(&ago), "{ago}");
        assert_eq!(
            until_time("1700000000").expect("secs").timestamp(),
            1_700_000_000
        );
        assert!(until_time("2024-01-01T00:00:00Z").is_ok());
        for bad in ["10x", "h", "soon"] {
            let e = until_time(bad).expect_err("refused").to_string();
            assert!(e.contains("until"), "{e}");
        }
    }
}
