//! The daemon's networks: user-defined ones kept in the database and loaded
//! into the fabric at start, and each container run's attachment (its
//! namespace, egress rules and published ports), made when it starts and
//! dropped when it ends.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use ipnet::Ipv4Net;
use rusqlite::params;

use super::error::DaemonError;
use crate::container::ContainerRecord;
use crate::net::publish::{PortSpec, Published, publish};
use crate::net::{EgressRule, Fabric, HOST, NONE, NetGrant, NetMode, NetworkInfo, Proto};
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
}

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
        let rows: Vec<(String, String, String, String)> = {
            let mut stmt = db
                .conn()
                .prepare("SELECT id, name, subnet, created_at FROM networks ORDER BY created_at")
                .map_err(db_err)?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?
        };
        for (id, name, subnet, created) in rows {
            let loaded = subnet
                .parse::<Ipv4Net>()
                .map_err(|e| crate::net::NetError::BadNetwork {
                    name: name.clone(),
                    message: format!("stored subnet {subnet:?}: {e}"),
                })
                .and_then(|subnet| {
                    fabric.add_network(NetworkInfo::virtual_net(
                        id,
                        name.clone(),
                        subnet,
                        true,
                        created,
                    ))
                });
            if let Err(e) = loaded {
                tracing::warn!(network = %name, error = %e, "network not loaded");
            }
        }
        Ok(Self {
            fabric,
            db: Mutex::new(db),
        })
    }

    pub fn fabric(&self) -> &Arc<Fabric> {
        &self.fabric
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `network create`: a new virtual network, on `subnet` or the next
    /// free /16.
    pub fn create(&self, name: &str, subnet: Option<&str>) -> Result<NetworkInfo, DaemonError> {
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
        let info = NetworkInfo::virtual_net(
            hex::encode(raw),
            name.to_string(),
            subnet,
            true,
            Utc::now().to_rfc3339(),
        );
        self.fabric.add_network(info.clone())?;
        let stored = self.db().conn().execute(
            "INSERT INTO networks (id, name, subnet, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![info.id, info.name, subnet.to_string(), info.created],
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
        self.fabric.network(network)?;
        Ok(())
    }

    /// Attaches one run of a container: its namespace (or host sockets,
    /// or none), its egress rules (names resolved now), and its published
    /// ports. Blocking: call it off the async executor's worker threads
    /// (it must still be inside the runtime, for the port listeners).
    pub fn attach(&self, rec: &ContainerRecord) -> Result<RunNet, DaemonError> {
        let spec = &rec.spec;
        let info = self.fabric.network(&spec.network)?;
        let own_names = vec![rec.name.clone(), rec.short_id().to_string()];
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
