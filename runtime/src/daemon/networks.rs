//! The daemon's networks: user-defined ones kept in the database and loaded
//! into the fabric at start, and each container run's attachment (its
//! namespace, egress rules and published ports), made when it starts and
//! dropped when it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use chrono::Utc;
use ipnet::Ipv4Net;
use rusqlite::params;

use super::error::DaemonError;
use crate::container::ContainerRecord;
use crate::net::publish::{PortSpec, Published, publish};
use crate::net::{
    EgressRule, Fabric, HOST, NONE, Namespace, NetGrant, NetMode, NetworkInfo, Proto,
};
use crate::state::{Db, StateRoot};

/// One run's network: dropping it frees the namespace's address and
/// closes the published ports.
#[derive(Debug, Default)]
pub struct RunNet {
    pub grant: NetGrant,
    pub published: Vec<Published>,
}

impl RunNet {
    /// Closes the published host ports, and waits until they are closed.
    pub async fn close(&self) {
        for p in &self.published {
            p.close().await;
        }
    }
}

pub struct Networks {
    fabric: Arc<Fabric>,
    db: Mutex<Db>,
    /// Pods' namespaces, which their containers join (`pod:<uid>`); the
    /// node agent holds each while the pod lives.
    pods: Mutex<HashMap<String, Weak<Namespace>>>,
}

/// The built-in network of pod IPs (Kubernetes' usual pod CIDR).
pub const POD_NETWORK: &str = "wrun-pods";
const POD_SUBNET: &str = "10.244.0.0/16";
/// The network mode of a pod's containers: `pod:<pod uid>`.
pub const POD_PREFIX: &str = "pod:";

impl std::fmt::Debug for Networks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Networks").finish_non_exhaustive()
    }
}

fn db_err(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::internal(format!("networks database: {e}"))
}

impl Networks {
    /// Builds the fabric with the default network on `bridge_subnet`, and
    /// the user-defined networks recorded in the database.
    pub fn open(root: &StateRoot, bridge_subnet: Ipv4Net) -> Result<Self, DaemonError> {
        let fabric = Fabric::with_bridge(bridge_subnet);
        let db = root.db().map_err(db_err)?;
        type Row = (String, String, String, String, String);
        let rows: Vec<Row> = {
            let mut stmt = db
                .conn()
                .prepare(
                    "SELECT id, name, subnet, created_at, labels FROM networks ORDER BY created_at",
                )
                .map_err(db_err)?;
            stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(db_err)?
            .collect::<Result<_, _>>()
            .map_err(db_err)?
        };
        for (id, name, subnet, created, labels) in rows {
            let labels = serde_json::from_str(&labels).unwrap_or_else(|e| {
                tracing::warn!(network = %name, error = %e, "stored labels unreadable");
                Default::default()
            });
            let loaded = subnet
                .parse::<Ipv4Net>()
                .map_err(|e| crate::net::NetError::BadNetwork {
                    name: name.clone(),
                    message: format!("stored subnet {subnet:?}: {e}"),
                })
                .and_then(|subnet| {
                    fabric.add_network(NetworkInfo {
                        labels,
                        ..NetworkInfo::virtual_net(id, name.clone(), subnet, true, created)
                    })
                });
            if let Err(e) = loaded {
                tracing::warn!(network = %name, error = %e, "network not loaded");
            }
        }
        let pod_subnet: Ipv4Net = POD_SUBNET.parse().map_err(DaemonError::internal)?;
        if let Err(e) = fabric.add_network(NetworkInfo::virtual_net(
            format!("{:0>64}", hex::encode(POD_NETWORK)),
            POD_NETWORK.into(),
            pod_subnet,
            false,
            "1970-01-01T00:00:00Z".into(),
        )) {
            tracing::warn!(error = %e, "the pod network is not available");
        }
        Ok(Self {
            fabric,
            db: Mutex::new(db),
            pods: Mutex::new(HashMap::new()),
        })
    }

    fn pods(&self) -> MutexGuard<'_, HashMap<String, Weak<Namespace>>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new namespace for the pod `name` of the Kubernetes namespace
    /// `namespace`, on the pod network, which its containers join with
    /// the network mode `pod:<uid>` while the caller holds it. Its guests
    /// resolve Services' names from `namespace` and reach their
    /// ClusterIPs.
    pub fn pod_namespace(
        &self,
        uid: &str,
        name: &str,
        namespace: &str,
    ) -> Result<Arc<Namespace>, DaemonError> {
        let ns = self
            .fabric
            .join_pod(POD_NETWORK, uid, &[name.to_string()], namespace)?;
        let mut pods = self.pods();
        pods.retain(|_, w| w.strong_count() > 0);
        pods.insert(uid.to_string(), Arc::downgrade(&ns));
        Ok(ns)
    }

    fn pod(&self, network: &str) -> Option<Arc<Namespace>> {
        let uid = network.strip_prefix(POD_PREFIX)?;
        self.pods().get(uid).and_then(Weak::upgrade)
    }

    pub fn fabric(&self) -> &Arc<Fabric> {
        &self.fabric
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `network create`: a new virtual network, on `subnet` or the next
    /// free /16, with the user's `labels`.
    pub fn create(
        &self,
        name: &str,
        subnet: Option<&str>,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<NetworkInfo, DaemonError> {
        let bad = |message: String| crate::net::NetError::BadNetwork {
            name: name.to_string(),
            message,
        };
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(
                bad("invalid name: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed".into()).into(),
            );
        }
        let subnet = match subnet {
            Some(s) => s
                .parse::<Ipv4Net>()
                .map_err(|e| bad(format!("invalid subnet {s:?}: {e}")))?
                .trunc(),
            None => self
                .fabric
                .free_subnet()
                .ok_or_else(|| bad("no free subnet left in 10.0.0.0/8".into()))?,
        };
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(DaemonError::internal)?;
        let info = NetworkInfo {
            labels,
            ..NetworkInfo::virtual_net(
                hex::encode(raw),
                name.to_string(),
                subnet,
                true,
                Utc::now().to_rfc3339(),
            )
        };
        let labels_json = serde_json::to_string(&info.labels).map_err(DaemonError::internal)?;
        self.fabric.add_network(info.clone())?;
        let stored = self.db().conn().execute(
            "INSERT INTO networks (id, name, subnet, created_at, labels) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![info.id, info.name, subnet.to_string(), info.created, labels_json],
        );
        if let Err(e) = stored {
            let _ = self.fabric.remove_network(&info.id);
            return Err(db_err(e));
        }
        Ok(info)
    }

    /// `network rm`.
    pub fn remove(&self, name_or_id: &str) -> Result<NetworkInfo, DaemonError> {
        let info = self.fabric.remove_network(name_or_id)?;
        self.db()
            .conn()
            .execute("DELETE FROM networks WHERE id = ?1", params![info.id])
            .map_err(db_err)?;
        Ok(info)
    }

    /// Checks that a container can be created on `network`.
    pub fn check(&self, network: &str) -> Result<(), DaemonError> {
        if network.starts_with(POD_PREFIX) {
            return match self.pod(network) {
                Some(_) => Ok(()),
                None => Err(DaemonError::NotFound(format!(
                    "network {network}: no such pod is running"
                ))),
            };
        }
        self.fabric.network(network)?;
        Ok(())
    }

    /// Attaches one run of a container: its namespace (or host sockets,
    /// or none), its egress rules (names resolved now), and its published
    /// ports. Blocking: call it off the async executor's worker threads
    /// (it must still be inside the runtime, for the port listeners).
    pub fn attach(&self, rec: &ContainerRecord) -> Result<RunNet, DaemonError> {
        let spec = &rec.spec;
        if spec.network.starts_with(POD_PREFIX) {
            // A pod's container: the pod's namespace, nothing published.
            let ns = self.pod(&spec.network).ok_or_else(|| {
                DaemonError::Conflict(format!(
                    "container {}: its pod's network ({}) is gone",
                    rec.short_id(),
                    spec.network
                ))
            })?;
            return Ok(RunNet {
                grant: NetGrant {
                    mode: NetMode::Virtual(ns),
                    egress: Vec::new(),
                },
                published: Vec::new(),
            });
        }
        let info = self.fabric.network(&spec.network)?;
        let mut own_names = vec![rec.name.clone(), rec.short_id().to_string()];
        if info.user_defined {
            own_names.extend(spec.aliases.iter().cloned());
        }
        let mode = match info.name.as_str() {
            NONE => return Ok(RunNet::default()),
            HOST => NetMode::Host,
            _ => NetMode::Virtual(self.fabric.join(&info.name, &rec.id, &own_names)?),
        };
        let mut egress = Vec::new();
        for r in &spec.allow_net {
            let mut rule = EgressRule::parse(r)?;
            rule.resolve()?;
            egress.push(rule);
        }
        let mut published = Vec::new();
        if let NetMode::Virtual(ns) = &mode {
            let mut wanted = spec
                .ports
                .iter()
                .map(|p| PortSpec::parse(p))
                .collect::<Result<Vec<_>, _>>()?;
            if spec.publish_all {
                let exposed = (spec.exposed.iter().map(|p| (*p, Proto::Tcp)))
                    .chain(spec.exposed_udp.iter().map(|p| (*p, Proto::Udp)));
                for (port, proto) in exposed {
                    if !wanted
                        .iter()
                        .any(|w| w.container_port == port && w.proto == proto)
                    {
                        wanted.push(PortSpec {
                            host_ip: None,
                            host_port: 0,
                            container_port: port,
                            proto,
                        });
                    }
                }
            }
            for w in wanted {
                published.push(publish(ns, w)?);
            }
        }
        Ok(RunNet {
            grant: NetGrant { mode, egress },
            published,
        })
    }
}
