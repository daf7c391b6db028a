use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::balance::{Active, Port};
use super::*;
use crate::net::{BRIDGE, DEFAULT_SUBNET, Fabric, NetGrant, NetMode, Proto};

fn ep(last: u8, port: u16) -> Endpoint {
    Endpoint {
        ip: IpAddr::V4(Ipv4Addr::new(10, 244, 0, last)),
        port,
    }
}

fn port_with(endpoints: &[Endpoint], affinity: Affinity) -> Port {
    let p = Port::new(String::new(), 80, Proto::Tcp, Arc::new(Active::default()));
    p.set(endpoints, affinity);
    p
}

/// The endpoint each of `n` new connections from `client` goes to.
fn picks(p: &Port, client: Option<IpAddr>, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            let first = p.pick(client).first().cloned().expect("an endpoint");
            p.stick(client, first.ep);
            match first.ep.ip {
                IpAddr::V4(v4) => v4.octets()[3],
                IpAddr::V6(_) => 0,
            }
        })
        .collect()
}

#[test]
fn connections_take_turns() {
    let p = port_with(&[ep(2, 8080), ep(3, 8080), ep(4, 8080)], Affinity::None);
    assert_eq!(picks(&p, None, 7), [2, 3, 4, 2, 3, 4, 2]);
    // The others follow the pick, in turn, for when it cannot be reached.
    let order: Vec<Endpoint> = p.pick(None).iter().map(|b| b.ep).collect();
    assert_eq!(order, [ep(3, 8080), ep(4, 8080), ep(2, 8080)]);
    // A client IP changes nothing without affinity.
    let c = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(picks(&p, c, 3), [4, 2, 3]);
    let empty = port_with(&[], Affinity::None);
    assert!(empty.pick(None).is_empty());
    assert!(!empty.has_ready());
}

#[test]
fn client_ip_affinity_sticks_until_its_timeout() {
    let eps = [ep(2, 80), ep(3, 80), ep(4, 80)];
    let p = port_with(
        &eps,
        Affinity::ClientIp {
            timeout: DEFAULT_AFFINITY_TIMEOUT,
        },
    );
    let a = Some(IpAddr::V4(Ipv4Addr::new(10, 244, 1, 1)));
    let b = Some(IpAddr::V4(Ipv4Addr::new(10, 244, 1, 2)));
    assert_eq!(picks(&p, a, 3), [2, 2, 2]);
    assert_eq!(picks(&p, b, 3), [3, 3, 3]);
    // Without a known client there is nothing to stick to.
    assert_eq!(picks(&p, None, 2), [4, 2]);
    // The sticky endpoint leaves: the client moves, and sticks again.
    p.set(&[ep(3, 80), ep(4, 80)], p_affinity());
    let moved = picks(&p, a, 3);
    assert!(moved.iter().all(|m| *m == moved[0] && *m != 2), "{moved:?}");

    let short = port_with(
        &eps,
        Affinity::ClientIp {
            timeout: Duration::from_millis(30),
        },
    );
    assert_eq!(picks(&short, a, 2), [2, 2]);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(picks(&short, a, 1), [3], "the timeout ran out");
}

fn p_affinity() -> Affinity {
    Affinity::ClientIp {
        timeout: DEFAULT_AFFINITY_TIMEOUT,
    }
}

#[test]
fn a_removed_endpoint_gets_nothing_new_and_drains() {
    let active = Arc::new(Active::default());
    let p = Port::new("http".into(), 80, Proto::Tcp, active.clone());
    p.set(&[ep(2, 80), ep(3, 80)], Affinity::None);
    let first = p.pick(None).first().cloned().expect("an endpoint");
    assert_eq!(first.ep, ep(2, 80));
    let guard = p.begin(&first);
    guard.established();
    assert_eq!(active.to(ep(2, 80).ip), 1);
    p.set(&[ep(3, 80)], Affinity::None);
    for _ in 0..4 {
        let picked: Vec<Endpoint> = p.pick(None).iter().map(|b| b.ep).collect();
        assert_eq!(picked, [ep(3, 80)]);
    }
    let stats = p.stats();
    assert_eq!(stats.len(), 2, "{stats:?}");
    assert!(stats[0].ready && stats[0].ip == ep(3, 80).ip);
    assert!(!stats[1].ready && stats[1].active == 1 && stats[1].connections == 1);
    drop(guard);
    assert_eq!(active.to(ep(2, 80).ip), 0);
    assert_eq!(p.stats().len(), 1, "drained");
    // Coming back, it starts afresh.
    p.set(&[ep(3, 80), ep(2, 80)], Affinity::None);
    assert!(p.stats().iter().all(|s| s.ready));
}

#[test]
fn names_resolve_from_the_pods_namespace() {
    assert_eq!(service_name("kubia", "default"), Some(("kubia", "default")));
    assert_eq!(
        service_name("kubia.prod", "default"),
        Some(("kubia", "prod"))
    );
    assert_eq!(
        service_name("kubia.prod.svc", "default"),
        Some(("kubia", "prod"))
    );
    assert_eq!(
        service_name("kubia.prod.svc.cluster.local", "default"),
        Some(("kubia", "prod"))
    );
    for bad in [
        "",
        "a.b.c",
        "x.svc",
        "a.b.c.svc",
        ".svc.cluster.local",
        "a..svc",
    ] {
        assert_eq!(service_name(bad, "default"), None, "{bad}");
    }

    let fabric = Fabric::with_bridge(DEFAULT_SUBNET.parse().expect("valid in this test"));
    let proxy = fabric.proxy();
    let vip = Ipv4Addr::new(10, 96, 0, 10);
    proxy.upsert(ServiceSpec {
        namespace: "default".into(),
        name: "kubia".into(),
        cluster_ip: Some(vip),
        ..ServiceSpec::default()
    });
    proxy.upsert(ServiceSpec {
        namespace: "prod".into(),
        name: "db".into(),
        headless: true,
        addresses: vec![ep(5, 0).ip, ep(6, 0).ip],
        ..ServiceSpec::default()
    });
    proxy.upsert(ServiceSpec {
        namespace: "prod".into(),
        name: "empty".into(),
        headless: true,
        ..ServiceSpec::default()
    });
    proxy.upsert(ServiceSpec {
        namespace: "prod".into(),
        name: "search".into(),
        external_name: Some("kubia.default".into()),
        ..ServiceSpec::default()
    });
    assert_eq!(
        proxy.resolve("search.prod.svc", "default"),
        Some(Answer::Alias("kubia.default".into()))
    );
    let v = Some(Answer::Addresses(vec![IpAddr::V4(vip)]));
    assert_eq!(proxy.resolve("kubia", "default"), v);
    assert_eq!(proxy.resolve("KUBIA.default.svc.cluster.local.", "prod"), v);
    assert_eq!(proxy.resolve("kubia", "prod"), None);
    assert_eq!(
        proxy.resolve("db.prod", "default"),
        Some(Answer::Addresses(vec![ep(5, 0).ip, ep(6, 0).ip]))
    );
    assert_eq!(proxy.resolve("empty", "prod"), None);
    proxy.remove("default", "kubia");
    assert_eq!(proxy.resolve("kubia", "default"), None);
    assert_eq!(proxy.route(Proto::Tcp, vip, 80), None);
}

/// A server in `ns` at guest port `port` that answers each connection
/// with `tag` and then echoes what it reads.
async fn server(ns: &Arc<crate::net::Namespace>, port: u16, tag: &'static str) {
    let guard = ns.reserve(Proto::Tcp, port).expect("free in this test");
    let l = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    guard.set_real(l.local_addr().expect("local address"));
    tokio::spawn(async move {
        let _guard = guard;
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = s.write_all(tag.as_bytes()).await;
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

async fn first_bytes(addr: SocketAddr) -> (tokio::net::TcpStream, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 1];
    s.read_exact(&mut buf).await.expect("the server's tag");
    (s, String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test]
async fn cluster_ip_connections_take_turns_and_are_counted() {
    let fabric = Fabric::with_bridge(DEFAULT_SUBNET.parse().expect("valid in this test"));
    let pods: Vec<_> = (0..3)
        .map(|i| {
            fabric
                .join_pod(BRIDGE, &format!("pod{i}"), &[], "default")
                .expect("joined")
        })
        .collect();
    for (ns, tag) in pods.iter().zip(["a", "b", "c"]) {
        server(ns, 8080, tag).await;
    }
    let vip = Ipv4Addr::new(10, 96, 0, 20);
    let endpoints: Vec<Endpoint> = pods
        .iter()
        .map(|p| Endpoint {
            ip: IpAddr::V4(p.ip()),
            port: 8080,
        })
        .collect();
    let mut spec = ServiceSpec {
        namespace: "default".into(),
        name: "kubia".into(),
        cluster_ip: Some(vip),
        ports: vec![ServicePort {
            name: String::new(),
            port: 80,
            proto: Proto::Tcp,
            node_port: None,
            load_balancer: false,
            endpoints: Vec::new(),
        }],
        ..ServiceSpec::default()
    };
    let proxy = fabric.proxy().clone();
    assert!(proxy.upsert(spec.clone()).is_empty(), "no host listener");
    assert_eq!(proxy.route(Proto::Tcp, vip, 80), Some(Route::Refused));
    spec.ports[0].endpoints = endpoints.clone();
    proxy.upsert(spec.clone());
    let Some(Route::Real(at)) = proxy.route(Proto::Tcp, vip, 80) else {
        panic!("no route to the ClusterIP");
    };
    assert!(at.ip().is_loopback());
    assert_eq!(proxy.route(Proto::Tcp, vip, 81), Some(Route::Refused));
    assert_eq!(proxy.route(Proto::Udp, vip, 80), Some(Route::Refused));

    // A pod's grant routes the ClusterIP there; a container's does not.
    let grant = NetGrant {
        mode: NetMode::Virtual(pods[0].clone()),
        ..NetGrant::default()
    };
    assert_eq!(
        grant.route(Proto::Tcp, SocketAddr::from((vip, 80))),
        Route::Real(at)
    );
    assert_eq!(
        grant.lookup("kubia.default.svc.cluster.local"),
        Some(vec![IpAddr::V4(vip)])
    );
    let container = NetGrant {
        mode: NetMode::Virtual(fabric.join(BRIDGE, "c", &[]).expect("joined")),
        ..NetGrant::default()
    };
    assert_eq!(
        container.route(Proto::Tcp, SocketAddr::from((vip, 80))),
        Route::Refused
    );
    assert_eq!(container.lookup("kubia"), None);

    let mut tags = String::new();
    for _ in 0..6 {
        let (_, tag) = first_bytes(at).await;
        tags.push_str(&tag);
    }
    assert_eq!(tags, "abcabc");

    // Bytes are counted both ways; an open connection is active.
    let (mut open, tag) = first_bytes(at).await;
    assert_eq!(tag, "a");
    open.write_all(b"hello").await.expect("write");
    let mut echo = [0u8; 5];
    open.read_exact(&mut echo).await.expect("echo");
    assert_eq!(&echo, b"hello");
    assert_eq!(proxy.active_to(endpoints[0].ip), 1);
    let stats = proxy.stats();
    let counted = &stats[0].ports[0].endpoints;
    assert_eq!(
        counted.iter().map(|e| e.connections).collect::<Vec<_>>(),
        [3, 2, 2]
    );
    assert_eq!((counted[0].bytes_in, counted[0].bytes_out), (5, 3 + 5));

    // Removed while open: nothing new goes there, the open one goes on.
    spec.ports[0].endpoints = endpoints[1..].to_vec();
    proxy.upsert(spec.clone());
    for _ in 0..4 {
        let (_, tag) = first_bytes(at).await;
        assert_ne!(tag, "a");
    }
    open.write_all(b"still").await.expect("write");
    let mut echo = [0u8; 5];
    open.read_exact(&mut echo)
        .await
        .expect("echo after removal");
    drop(open);
    let drained = eventually(|| proxy.active_to(endpoints[0].ip) == 0);
    assert!(drained.await, "the connection was not counted as closed");

    // An endpoint whose port is not bound is skipped.
    spec.ports[0].endpoints = vec![
        Endpoint {
            ip: endpoints[0].ip,
            port: 9,
        },
        endpoints[2],
    ];
    proxy.upsert(spec.clone());
    for _ in 0..3 {
        let (_, tag) = first_bytes(at).await;
        assert_eq!(tag, "c");
    }
    proxy.remove("default", "kubia");
    assert_eq!(
        grant.route(Proto::Tcp, SocketAddr::from((vip, 80))),
        Route::Refused
    );
}

/// Polls `f` for up to five seconds.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn host_ports_listen_and_are_retried() {
    let fabric = Fabric::with_bridge(DEFAULT_SUBNET.parse().expect("valid in this test"));
    let pod = fabric
        .join_pod(BRIDGE, "pod", &[], "default")
        .expect("joined");
    server(&pod, 8080, "a").await;
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let free_port = {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    let spec = ServiceSpec {
        namespace: "default".into(),
        name: "lb".into(),
        cluster_ip: Some(Ipv4Addr::new(10, 96, 0, 30)),
        ports: vec![ServicePort {
            name: "http".into(),
            port: taken_port,
            proto: Proto::Tcp,
            node_port: Some(free_port),
            load_balancer: true,
            endpoints: vec![Endpoint {
                ip: IpAddr::V4(pod.ip()),
                port: 8080,
            }],
        }],
        ..ServiceSpec::default()
    };
    let proxy = fabric.proxy().clone();
    let report = proxy.upsert(spec.clone());
    assert_eq!(report.len(), 2, "{report:?}");
    let lb = report
        .iter()
        .find(|h| h.kind == HostPortKind::LoadBalancer)
        .expect("the LoadBalancer port");
    assert_eq!(lb.port, taken_port);
    assert!(lb.error.is_some(), "{report:?}");
    let np = report
        .iter()
        .find(|h| h.kind == HostPortKind::NodePort)
        .expect("the nodePort");
    assert_eq!(np.error, None);
    let (_, tag) = first_bytes(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port))).await;
    assert_eq!(tag, "a");
    assert!(proxy.retry_pending().is_empty(), "still taken");
    drop(taken);
    assert_eq!(
        proxy.retry_pending(),
        [("default".to_string(), "lb".to_string())]
    );
    let ports = proxy.host_ports("default", "lb").expect("programmed");
    assert!(ports.iter().all(|h| h.error.is_none()), "{ports:?}");
    let (_, tag) = first_bytes(SocketAddr::from((Ipv4Addr::LOCALHOST, taken_port))).await;
    assert_eq!(tag, "a");
    // The same spec again keeps the listeners as they are.
    assert_eq!(proxy.upsert(spec), ports);

    // A new generation forgets the services and closes their listeners;
    // the old one's last clear leaves the new one alone.
    let generation = proxy.reset();
    assert!(proxy.names().is_empty());
    let closed =
        eventually(|| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, taken_port)).is_ok());
    assert!(closed.await, "the LoadBalancer port stayed open");
    proxy.upsert(ServiceSpec {
        namespace: "default".into(),
        name: "x".into(),
        ..ServiceSpec::default()
    });
    proxy.clear_if(generation - 1);
    assert_eq!(proxy.names().len(), 1);
    proxy.clear_if(generation);
    assert!(proxy.names().is_empty());
}

#[test]
fn without_a_runtime_listeners_fail_without_panicking() {
    let fabric = Fabric::with_bridge(DEFAULT_SUBNET.parse().expect("valid in this test"));
    let report = fabric.proxy().upsert(ServiceSpec {
        namespace: "default".into(),
        name: "np".into(),
        cluster_ip: Some(Ipv4Addr::new(10, 96, 0, 40)),
        ports: vec![ServicePort {
            name: String::new(),
            port: 80,
            proto: Proto::Tcp,
            node_port: Some(30080),
            load_balancer: false,
            endpoints: vec![ep(2, 80)],
        }],
        ..ServiceSpec::default()
    });
    assert!(report[0].error.is_some(), "{report:?}");
    assert_eq!(
        fabric
            .proxy()
            .route(Proto::Tcp, Ipv4Addr::new(10, 96, 0, 40), 80),
        Some(Route::Refused)
    );
}

#[tokio::test]
async fn a_loopback_endpoint_is_dialled_as_it_is() {
    // As the `kubernetes` service's endpoint, the API server on 127.0.0.1.
    let api = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let api_port = api.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = api.accept().await {
            let _ = s.write_all(b"k").await;
        }
    });
    let fabric = Fabric::with_bridge(DEFAULT_SUBNET.parse().expect("valid in this test"));
    let vip = Ipv4Addr::new(10, 96, 0, 1);
    let not_virtual = |ip: [u8; 4]| Endpoint {
        ip: IpAddr::V4(Ipv4Addr::from(ip)),
        port: api_port,
    };
    fabric.proxy().upsert(ServiceSpec {
        namespace: "default".into(),
        name: "kubernetes".into(),
        cluster_ip: Some(vip),
        ports: vec![ServicePort {
            name: "https".into(),
            port: 443,
            proto: Proto::Tcp,
            node_port: None,
            load_balancer: false,
            // A virtual address with no namespace behind it is never
            // dialled; it is skipped.
            endpoints: vec![not_virtual([10, 88, 0, 99]), not_virtual([127, 0, 0, 1])],
        }],
        ..ServiceSpec::default()
    });
    let Some(Route::Real(at)) = fabric.proxy().route(Proto::Tcp, vip, 443) else {
        panic!("no route to the ClusterIP");
    };
    for _ in 0..2 {
        let (_, tag) = first_bytes(at).await;
        assert_eq!(tag, "k");
    }
}
