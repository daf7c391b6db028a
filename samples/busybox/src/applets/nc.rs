//! `nc`: netcat for WASI preview 2 sockets. Without threads it works in
//! turns: `nc HOST PORT` sends all of stdin, then prints the reply until EOF;
//! `nc -l -p PORT` prints one incoming connection (or datagram with `-u`);
//! `nc -u HOST PORT` sends stdin as one datagram and prints one reply.
//!
//! Options: `-v` reports to stderr, as real nc does, `listening on ADDR`
//! (the listener's local address), `connect from PEER` for each accepted
//! connection or received datagram, and `connected to PEER` for a client;
//! `-r` (with `-l -u`) replies: the received datagram is also sent back to
//! its sender, which makes a one-shot UDP echo server; `-w SECS` bounds the
//! wait for a reply, a datagram or (with `-l`) a connection.

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

/// What the options ask of every mode.
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// `-v`: report addresses on stderr.
    verbose: bool,
    /// `-w SECS`: how long to wait for a connection, a datagram, or a TCP
    /// read (where the host supports read timeouts).
    timeout: Option<Duration>,
}

impl Mode {
    /// Prints one `-v` line to stderr. A broken stderr must not end the
    /// transfer, so its errors are ignored.
    fn note(&self, ctx: &mut Ctx<'_>, line: std::fmt::Arguments<'_>) {
        if self.verbose {
            let _ = writeln!(ctx.stderr, "{line}");
            let _ = ctx.stderr.flush();
        }
    }
}

fn run(ctx: &mut Ctx<'_>, args: &[String]) -> Result<(), String> {
    let opts = opts::parse(args, "lurv", "pw")?;
    let udp = opts.has('u');
    let listen = opts.has('l');
    let reply = opts.has('r');
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
    let mode = Mode {
        verbose: opts.has('v'),
        timeout,
    };
    if reply && !(listen && udp) {
        return Err("option -r needs -l and -u".to_string());
    }
    if listen {
        let port = match (opts.value('p'), opts.operands.as_slice()) {
            (Some(p), []) => parse_port(p)?,
            (None, [p]) => parse_port(p)?,
            _ => return Err("usage: nc -l [-v] [-u [-r]] [-w SECS] -p PORT".to_string()),
        };
        return if udp {
            listen_udp(ctx, port, mode, reply)
        } else {
            listen_tcp(ctx, port, mode)
        };
    }
    let [host, port] = opts.operands.as_slice() else {
        return Err("usage: nc [-v] [-u] [-w SECS] HOST PORT".to_string());
    };
    let addr = resolve(host, parse_port(port)?)?;
    if udp {
        send_udp(ctx, addr, mode)
    } else {
        connect_tcp(ctx, addr, mode)
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

/// A socket's local address, for `-v`.
fn local(addr: io::Result<SocketAddr>) -> Result<SocketAddr, String> {
    addr.map_err(|e| format!("can't get the local address: {}", errmsg(&e)))
}

fn connect_tcp(ctx: &mut Ctx<'_>, addr: SocketAddr, mode: Mode) -> Result<(), String> {
    let mut stream =
        TcpStream::connect(addr).map_err(|e| format!("can't connect to {addr}: {}", errmsg(&e)))?;
    mode.note(
        ctx,
        format_args!("connected to {}", stream.peer_addr().unwrap_or(addr)),
    );
    if mode.timeout.is_some() {
        // Not every WASI host supports socket timeouts; go on without one.
        let _ = stream.set_read_timeout(mode.timeout);
    }
    copy(&mut *ctx.stdin, &mut stream).map_err(copy_err("stdin", &addr.to_string()))?;
    // Tell the peer we are done so it can answer and close; some peers have
    // closed already, which is fine.
    let _ = stream.shutdown(Shutdown::Write);
    copy(&mut stream, &mut *ctx.stdout).map_err(copy_err(&addr.to_string(), "stdout"))?;
    Ok(())
}

fn listen_tcp(ctx: &mut Ctx<'_>, port: u16, mode: Mode) -> Result<(), String> {
    let listener = TcpListener::bind(("0.0.0.0", port))
        .map_err(|e| format!("can't listen on port {port}: {}", errmsg(&e)))?;
    if mode.verbose {
        let addr = local(listener.local_addr())?;
        mode.note(ctx, format_args!("listening on {addr}"));
    }
    let (mut stream, peer) = accept(&listener, mode.timeout)
        .map_err(|e| format!("accept failed on port {port}: {}", errmsg(&e)))?;
    mode.note(ctx, format_args!("connect from {peer}"));
    copy(&mut stream, &mut *ctx.stdout).map_err(copy_err(&peer.to_string(), "stdout"))?;
    Ok(())
}

fn send_udp(ctx: &mut Ctx<'_>, addr: SocketAddr, mode: Mode) -> Result<(), String> {
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
    mode.note(
        ctx,
        format_args!("connected to {}", socket.peer_addr().unwrap_or(addr)),
    );
    let mut data = Vec::new();
    ctx.stdin
        .read_to_end(&mut data)
        .map_err(|e| format!("read error on stdin: {}", errmsg(&e)))?;
    socket
        .send(&data)
        .map_err(|e| format!("send to {addr} failed: {}", errmsg(&e)))?;
    let mut buf = vec![0u8; 65_536];
    let (n, _) = recv_from(&socket, &mut buf, mode.timeout)
        .map_err(|e| format!("no reply from {addr}: {}", errmsg(&e)))?;
    write_out(ctx, &buf[..n])
}

/// Receives one datagram on `port` and prints it; with `reply` (`-r`) also
/// sends it back to where it came from.
fn listen_udp(ctx: &mut Ctx<'_>, port: u16, mode: Mode, reply: bool) -> Result<(), String> {
    let socket = UdpSocket::bind(("0.0.0.0", port))
        .map_err(|e| format!("can't listen on UDP port {port}: {}", errmsg(&e)))?;
    if mode.verbose {
        let addr = local(socket.local_addr())?;
        mode.note(ctx, format_args!("listening on {addr}"));
    }
    let mut buf = vec![0u8; 65_536];
    let (n, from) = recv_from(&socket, &mut buf, mode.timeout)
        .map_err(|e| format!("receive on UDP port {port} failed: {}", errmsg(&e)))?;
    mode.note(ctx, format_args!("connect from {from}"));
    if reply {
        socket
            .send_to(&buf[..n], from)
            .map_err(|e| format!("reply to {from} failed: {}", errmsg(&e)))?;
    }
    write_out(ctx, &buf[..n])
}

/// Accepts one connection, giving up after `timeout`, polling a
/// non-blocking listener as [`recv_from`] does.
fn accept(
    listener: &TcpListener,
    timeout: Option<Duration>,
) -> io::Result<(TcpStream, SocketAddr)> {
    let Some(timeout) = timeout else {
        return listener.accept();
    };
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok((stream, peer)) => {
                stream.set_nonblocking(false)?;
                return Ok((stream, peer));
            }
            Err(e) => return Err(e),
        }
    }
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
    use std::sync::mpsc;
    use std::thread::JoinHandle;

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

    /// Sends each complete stderr line to the test as it is written, so a
    /// test can read `listening on ADDR` while `nc` still runs.
    struct LineSender {
        tx: mpsc::Sender<String>,
        buf: Vec<u8>,
    }

    impl Write for LineSender {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.buf.extend_from_slice(data);
            while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line[..i]).into_owned();
                // The test may have stopped listening; that is its business.
                let _ = self.tx.send(line);
            }
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Runs `nc args` on a thread; its stderr lines arrive on the receiver,
    /// its status and stdout when the thread is joined.
    fn spawn_nc(args: &[&str]) -> (mpsc::Receiver<String>, JoinHandle<(i32, String)>) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (tx, rx) = mpsc::channel();
        let nc = std::thread::spawn(move || {
            let env = Env::new();
            let mut stdin = io::Cursor::new(Vec::new());
            let mut out = Vec::new();
            let mut err = LineSender {
                tx,
                buf: Vec::new(),
            };
            let code = main(
                &mut Ctx {
                    stdin: &mut stdin,
                    stdout: &mut out,
                    stderr: &mut err,
                    env: &env,
                },
                &args,
            );
            (code, String::from_utf8_lossy(&out).into_owned())
        });
        (rx, nc)
    }

    /// The next stderr line of a spawned `nc`, failing after a minute.
    fn next_line(rx: &mpsc::Receiver<String>) -> String {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a line on nc's stderr")
    }

    /// The port of `listening on 0.0.0.0:PORT`.
    fn listening_port(line: &str) -> u16 {
        let port = line
            .strip_prefix("listening on 0.0.0.0:")
            .unwrap_or_else(|| panic!("not a listening line: {line:?}"));
        let port: u16 = port.parse().unwrap();
        assert_ne!(port, 0, "{line}");
        port
    }

    #[test]
    fn verbose_tcp_listen_names_both_ends() {
        let (rx, nc) = spawn_nc(&["-v", "-l", "-p", "0"]);
        let port = listening_port(&next_line(&rx));
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let me = client.local_addr().unwrap();
        client.write_all(b"hello\n").unwrap();
        drop(client);
        assert_eq!(next_line(&rx), format!("connect from {me}"));
        let (code, out) = nc.join().unwrap();
        assert_eq!((code, out.as_str()), (0, "hello\n"));
        assert!(rx.try_recv().is_err(), "nothing more on stderr");
    }

    #[test]
    fn verbose_tcp_client_names_its_peer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"hi\n").unwrap();
        });
        let port = addr.port().to_string();
        let (code, out, err) = run_nc(&["-v", "127.0.0.1", &port], "");
        server.join().unwrap();
        assert_eq!(
            (code, out.as_str(), err),
            (0, "hi\n", format!("connected to {addr}\n"))
        );
        // Without -v, nothing is reported.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let server = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let (code, _, err) = run_nc(&["127.0.0.1", &port], "");
        server.join().unwrap();
        assert_eq!((code, err.as_str()), (0, ""));
    }

    #[test]
    fn udp_listen_with_reply_echoes_the_datagram() {
        let (rx, nc) = spawn_nc(&["-v", "-l", "-u", "-r", "-w", "60", "-p", "0"]);
        let port = listening_port(&next_line(&rx));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let me = client.local_addr().unwrap();
        client.send_to(b"ping\n", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 100];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping\n");
        assert_eq!(from.port(), port);
        assert_eq!(next_line(&rx), format!("connect from {me}"));
        let (code, out) = nc.join().unwrap();
        assert_eq!((code, out.as_str()), (0, "ping\n"));
    }

    #[test]
    fn udp_listen_without_reply_stays_silent() {
        let (rx, nc) = spawn_nc(&["-v", "-u", "-l", "0"]);
        let port = listening_port(&next_line(&rx));
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"x", ("127.0.0.1", port)).unwrap();
        let (code, out) = nc.join().unwrap();
        assert_eq!((code, out.as_str()), (0, "x"));
        // No echo came back.
        client.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 10];
        assert_eq!(
            client.recv_from(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn verbose_udp_client_names_its_peer() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 100];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        });
        let port = addr.port().to_string();
        let (code, out, err) = run_nc(&["-v", "-u", "-w", "5", "127.0.0.1", &port], "yo");
        t.join().unwrap();
        assert_eq!(
            (code, out.as_str(), err),
            (0, "yo", format!("connected to {addr}\n"))
        );
    }

    #[test]
    fn tcp_listen_gives_up_after_the_timeout() {
        let (rx, nc) = spawn_nc(&["-v", "-l", "-w", "1", "-p", "0"]);
        listening_port(&next_line(&rx));
        let (code, out) = nc.join().unwrap();
        assert_eq!((code, out.as_str()), (1, ""));
        assert_eq!(
            next_line(&rx),
            "busybox: nc: accept failed on port 0: timed out"
        );
    }

    #[test]
    fn reply_needs_udp_listen() {
        for args in [
            &["-r", "127.0.0.1", "9"][..],
            &["-r", "-u", "127.0.0.1", "9"],
            &["-r", "-l", "-p", "9"],
        ] {
            let (code, _, err) = run_nc(args, "");
            assert_eq!(
                (code, err.as_str()),
                (1, "busybox: nc: option -r needs -l and -u\n"),
                "{args:?}"
            );
        }
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
