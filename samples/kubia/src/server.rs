//! kubia's event loop on raw `wasi:sockets`: one listener and many
//! connections, each kept alive across requests, all driven by
//! `wasi:io/poll`, as node's http server drives its sockets from one thread.

use std::io::{self, Write as _};

use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

use crate::http::{self, Parsed};

const PORT: u16 = 8080;
const BACKLOG: u64 = 1024;
/// Connections beyond this wait in the listen backlog.
const MAX_CONNECTIONS: usize = 1024;
/// How much one read may return. The host zeroes a buffer this large for
/// every read, and requests are small: a long head takes a few reads.
const READ_SIZE: u64 = 8 * 1024;
/// A connection with no traffic for this long is closed (node's
/// keep-alive timeout is 5 s).
const IDLE_NS: u64 = 5_000_000_000;
/// How often idle connections are looked for.
const SWEEP_NS: u64 = 1_000_000_000;

/// Listens on port 8080 and serves until the program is stopped.
pub fn run(hostname: &str) -> Result<(), String> {
    let listener = listen().map_err(|e| format!("cannot listen on 0.0.0.0:{PORT}: {e:?}"))?;
    let ready = listener.subscribe();
    let body = http::body(hostname);
    let mut conns: Vec<Conn> = Vec::new();
    let mut sweep = monotonic_clock::subscribe_duration(SWEEP_NS);
    loop {
        // What each pollable stands for, in the order given to `poll`.
        let mut waits: Vec<&Pollable> = Vec::with_capacity(conns.len() + 2);
        waits.push(&sweep);
        let accepting = conns.len() < MAX_CONNECTIONS;
        if accepting {
            waits.push(&ready);
        }
        let first_conn = waits.len();
        for c in &conns {
            waits.push(if c.out.is_empty() {
                &c.readable
            } else {
                &c.writable
            });
        }
        let woken = poll(&waits);
        drop(waits);

        let now = monotonic_clock::now();
        let mut due: Vec<usize> = Vec::with_capacity(woken.len());
        for i in woken.iter().map(|i| *i as usize) {
            if i >= first_conn {
                due.push(i - first_conn);
            } else if i == 0 {
                conns.retain(|c| now.saturating_sub(c.last) < IDLE_NS);
                sweep = monotonic_clock::subscribe_duration(SWEEP_NS);
            } else if accepting {
                accept(&listener, &mut conns, now);
            }
        }
        // A sweep may have removed connections: their indices are stale,
        // and those still ready wake the next poll at once.
        if woken.contains(&0) {
            continue;
        }
        // From the last: removing one moves only an already visited one.
        due.sort_unstable_by(|a, b| b.cmp(a));
        for i in due {
            let Some(c) = conns.get_mut(i) else { continue };
            c.last = now;
            if c.step(&body).is_err() {
                conns.swap_remove(i);
            }
        }
    }
}

fn listen() -> Result<TcpSocket, ErrorCode> {
    let network = instance_network();
    let socket = create_tcp_socket(IpAddressFamily::Ipv4)?;
    let any = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: PORT,
        address: (0, 0, 0, 0),
    });
    socket.start_bind(&network, any)?;
    finish(&socket, TcpSocket::finish_bind)?;
    // A host may keep its own backlog; the default is fine then.
    let _ = socket.set_listen_backlog_size(BACKLOG);
    socket.start_listen()?;
    finish(&socket, TcpSocket::finish_listen)?;
    Ok(socket)
}

/// Waits for a started bind or listen to finish.
fn finish(
    socket: &TcpSocket,
    step: fn(&TcpSocket) -> Result<(), ErrorCode>,
) -> Result<(), ErrorCode> {
    let ready = socket.subscribe();
    loop {
        match step(socket) {
            Err(ErrorCode::WouldBlock) => ready.block(),
            done => return done,
        }
    }
}

/// Takes every connection waiting on the listener.
fn accept(listener: &TcpSocket, conns: &mut Vec<Conn>, now: u64) {
    while conns.len() < MAX_CONNECTIONS {
        match listener.accept() {
            Ok((socket, input, output)) => conns.push(Conn::new(socket, input, output, now)),
            Err(ErrorCode::WouldBlock) => return,
            Err(e) => {
                eprintln!("kubia: accept failed: {e:?}");
                return;
            }
        }
    }
}

/// One client connection. The fields drop in order: the pollables before
/// the streams they watch, the streams before their socket.
struct Conn {
    readable: Pollable,
    writable: Pollable,
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
    peer: String,
    /// Received and not yet answered.
    buf: Vec<u8>,
    /// Body bytes of the last request still to be discarded.
    skip: u64,
    /// Answers not yet written.
    out: Vec<u8>,
    /// The last answer is also the last: close once it is written.
    closing: bool,
    /// When the connection last had traffic.
    last: u64,
}

/// The connection is over (closed by the peer, failed, or done).
struct Closed;

impl Conn {
    fn new(socket: TcpSocket, input: InputStream, output: OutputStream, now: u64) -> Self {
        let peer = match socket.remote_address() {
            Ok(IpSocketAddress::Ipv4(a)) => {
                let (x, y, z, w) = a.address;
                std::net::Ipv4Addr::new(x, y, z, w).to_string()
            }
            Ok(IpSocketAddress::Ipv6(a)) => {
                let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
                std::net::Ipv6Addr::new(s0, s1, s2, s3, s4, s5, s6, s7).to_string()
            }
            Err(_) => "unknown".to_string(),
        };
        Self {
            readable: input.subscribe(),
            writable: output.subscribe(),
            input,
            output,
            _socket: socket,
            peer,
            buf: Vec::new(),
            skip: 0,
            out: Vec::new(),
            closing: false,
            last: now,
        }
    }

    /// Makes progress after a wake-up: writes what is pending, or reads
    /// and answers what arrived.
    fn step(&mut self, body: &str) -> Result<(), Closed> {
        if self.out.is_empty() {
            match self.input.read(READ_SIZE) {
                Ok(data) => self.buf.extend_from_slice(&data),
                Err(StreamError::Closed | StreamError::LastOperationFailed(_)) => {
                    return Err(Closed);
                }
            }
            self.answer(body);
        }
        self.write()?;
        if self.closing && self.out.is_empty() {
            return Err(Closed);
        }
        Ok(())
    }

    /// Answers every complete request in `buf`, pipelined ones included.
    fn answer(&mut self, body: &str) {
        while !self.closing {
            let skipped = self.skip.min(self.buf.len() as u64);
            if skipped > 0 {
                self.buf.drain(..skipped as usize);
                self.skip -= skipped;
            }
            if self.skip > 0 {
                return;
            }
            let (used, skip) = match http::parse(&self.buf) {
                Parsed::Incomplete => return,
                Parsed::Bad => {
                    http::respond(&mut self.out, None, body);
                    self.closing = true;
                    return;
                }
                Parsed::Request(r) => {
                    let _ = writeln!(io::stdout(), "Received request from {}", self.peer);
                    http::respond(&mut self.out, Some(&r), body);
                    self.closing = !r.keep_alive;
                    (r.head_len, r.body_len)
                }
            };
            self.buf.drain(..used);
            self.skip = skip;
        }
    }

    /// Writes as much of `out` as the stream takes now.
    fn write(&mut self) -> Result<(), Closed> {
        while !self.out.is_empty() {
            let permit = self.output.check_write().map_err(|_| Closed)?;
            if permit == 0 {
                return Ok(());
            }
            let n = self
                .out
                .len()
                .min(usize::try_from(permit).unwrap_or(usize::MAX));
            self.output.write(&self.out[..n]).map_err(|_| Closed)?;
            self.out.drain(..n);
        }
        self.output.flush().map_err(|_| Closed)
    }
}
