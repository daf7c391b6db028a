//! `nc`: netcat for WASI preview 2 sockets. Without threads it works in
//! turns: `nc HOST PORT` sends all of stdin, then prints the reply until EOF;
//! `nc -l -p PORT` prints one incoming connection (or datagram with `-u`);
//! `nc -u HOST PORT` sends stdin as one datagram and prints one reply.

use crate::ctx::{CopyError, Ctx, copy, errmsg};
use crate::opts;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

pub fn main(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    match run(ctx, args) {
        Ok(()) => 0,
        Err(msg) => ctx.fail("nc", msg),
    }
}

fn run(ctx: &mut Ctx<'_>, args: &[String]) -> Result<(), String> {
    let opts = opts::parse(args, "lu", "pw")?;
    let udp = opts.has('u');
    let timeout = match opts.value('w') {
        Some(w) => Some(
            w.parse::<u64>()
                .ok()
                .filter(|&s| s > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| format!("invalid timeout '{w}'"))?,
        ),
        None => None,
    };
    if opts.has('l') {
        let port = match (opts.value('p'), opts.operands.as_slice()) {
            (Some(p), []) => parse_port(p)?,
            (None, [p]) => parse_port(p)?,
            _ => return Err("usage: nc -l [-u] -p PORT".to_string()),
        };
        return if udp {
            listen_udp(ctx, port, timeout)
        } else {
            listen_tcp(ctx, port)
        };
    }
    let [host, port] = opts.operands.as_slice() else {
        return Err("usage: nc [-u] [-w SECS] HOST PORT".to_string());
    };
    let addr = resolve(host, parse_port(port)?)?;
    if udp {
        send_udp(ctx, addr, timeout)
    } else {
        connect_tcp(ctx, addr, timeout)
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse().map_err(|_| format!("bad port '{p}'"))
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("can't resolve '{host}': {}", errmsg(&e)))?
        .next()
        .ok_or_else(|| format!("can't resolve '{host}': no address"))
}

/// Turns a copy failure into a message naming the side that failed.
fn copy_err(from: &str, to: &str) -> impl Fn(CopyError) -> String {
    move |e| match e {
        CopyError::Read(e) => format!("read error on {from}: {}", errmsg(&e)),
        CopyError::Write(e) => format!("write error on {to}: {}", errmsg(&e)),
    }
}

fn connect_tcp(
    ctx: &mut Ctx<'_>,
    addr: SocketAddr,
    timeout: Option<Duration>,
) -> Result<(), String> {
    let mut stream =
        TcpStream::connect(addr).map_err(|e| format!("can't connect to {addr}: {}", errmsg(&e)))?;
    if timeout.is_some() {
        // Not every WASI host supports socket timeouts; go on without one.
        let _ = stream.set_read_timeout(timeout);
    }
    copy(&mut *ctx.stdin, &mut stream).map_err(copy_err("stdin", &addr.to_string()))?;
    // Tell the peer we are done so it can answer and close; some peers have
    // closed already, which is fine.
    let _ = stream.shutdown(Shutdown::Write);
    copy(&mut stream, &mut *ctx.stdout).map_err(copy_err(&addr.to_string(), "stdout"))?;
    Ok(())
}

fn listen_tcp(ctx: &mut Ctx<'_>, port: u16) -> Result<(), String> {
    let listener = TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("can't listen on port {port}: {}", errmsg(&e)))?;
    let (mut stream, peer) = listener
        .accept()
        .map_err(|e| format!("accept failed on port {port}: {}", errmsg(&e)))?;
    copy(&mut stream, &mut *ctx.stdout).map_err(copy_err(&peer.to_string(), "stdout"))?;
    Ok(())
}

fn send_udp(ctx: &mut Ctx<'_>, addr: SocketAddr, timeout: Option<Duration>) -> Result<(), String> {
    let local = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket =
        UdpSocket::bind(local).map_err(|e| format!("can't bind UDP socket: {}", errmsg(&e)))?;
    socket
        .connect(addr)
        .map_err(|e| format!("can't connect to {addr}: {}", errmsg(&e)))?;
    let mut data = Vec::new();
    ctx.stdin
        .read_to_end(&mut data)
        .map_err(|e| format!("read error on stdin: {}", errmsg(&e)))?;
    socket
        .send(&data)
        .map_err(|e| format!("send to {addr} failed: {}", errmsg(&e)))?;
    let mut buf = vec![0u8; 65_536];
    let (n, _) = recv_from(&socket, &mut buf, timeout)
        .map_err(|e| format!("no reply from {addr}: {}", errmsg(&e)))?;
    write_out(ctx, &buf[..n])
}

fn listen_udp(ctx: &mut Ctx<'_>, port: u16, timeout: Option<Duration>) -> Result<(), String> {
    let socket = UdpSocket::bind(("0.0.0.0", port))
        .map_err(|e| format!("can't listen on UDP port {port}: {}", errmsg(&e)))?;
    let mut buf = vec![0u8; 65_536];
    let (n, _) = recv_from(&socket, &mut buf, timeout)
        .map_err(|e| format!("receive on UDP port {port} failed: {}", errmsg(&e)))?;
    write_out(ctx, &buf[..n])
}

/// Receives one datagram, giving up after `timeout`. WASI preview 2 has no
/// socket receive timeouts, so this polls a non-blocking socket instead.
fn recv_from(
    socket: &UdpSocket,
    buf: &mut [u8],
    timeout: Option<Duration>,
) -> io::Result<(usize, SocketAddr)> {
    let Some(timeout) = timeout else {
        return socket.recv_from(buf);
    };
    socket.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    loop {
        match socket.recv_from(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn write_out(ctx: &mut Ctx<'_>, data: &[u8]) -> Result<(), String> {
    ctx.stdout
        .write_all(data)
        .and_then(|()| ctx.stdout.flush())
        .map_err(|e| format!("write error on stdout: {}", errmsg(&e)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ctx::{Env, capture};
    use std::io::{Read, Write};

    fn run_nc(args: &[&str], stdin: &str) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        capture(stdin, &Env::new(), |ctx| main(ctx, &args))
    }

    #[test]
    fn tcp_echo_roundtrip() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            s.write_all(&got.to_ascii_uppercase()).unwrap();
        });
        let (code, out, err) = run_nc(&["127.0.0.1", &port], "ping\n");
        server.join().unwrap();
        assert_eq!((code, out.as_str(), err.as_str()), (0, "PING\n", ""));
    }

    #[test]
    fn udp_roundtrip() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port().to_string();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 100];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server
                .send_to(&buf[..n].to_ascii_uppercase(), from)
                .unwrap();
        });
        let (code, out, _) = run_nc(&["-u", "-w", "5", "127.0.0.1", &port], "hi");
        t.join().unwrap();
        assert_eq!((code, out.as_str()), (0, "HI"));
    }

    #[test]
    fn udp_timeout() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port().to_string();
        let (code, _, err) = run_nc(&["-u", "-w", "1", "127.0.0.1", &port], "x");
        assert_eq!(code, 1);
        assert!(
            err.starts_with("busybox: nc: no reply from 127.0.0.1:"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_object() {
        let (code, _, err) = run_nc(&["127.0.0.1", "notaport"], "");
        assert_eq!(
            (code, err.as_str()),
            (1, "busybox: nc: bad port 'notaport'\n")
        );
        let (code, _, err) = run_nc(&["-l"], "");
        assert_eq!(code, 1);
        assert!(err.contains("usage"), "{err}");
    }
}
