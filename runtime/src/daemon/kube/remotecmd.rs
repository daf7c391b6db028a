//! The remote command protocol of `exec` and `attach`, as the kubelet
//! speaks it, over either transport: WebSocket channels (`v5.channel.k8s.io`
//! and its predecessors: one byte of channel, then data; 0 stdin, 1 stdout,
//! 2 stderr, 3 error, 4 resize, and in v5 `[255, channel]` closes a
//! channel) or SPDY streams named by their `streamType` header.
//!
//! A [`Job`] (the exec or the attach) sees only an [`Io`]: the client's
//! stdin, a channel for output, and whether the client is gone. Its
//! [`Outcome`] goes out on the error channel: from v4 on a `metav1.Status`
//! whose `NonZeroExitCode` cause carries the exit code, before v4 a text.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::spdy;
use super::spdyconn::{Event, Sender, Stream};

/// How long the client has to open the streams it asked for (SPDY).
const STREAMS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a finished session waits for the client's close.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The WebSocket subprotocols served, best first.
pub const WS_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];
/// The SPDY stream protocols served (kubectl before 1.30).
pub const SPDY_PROTOCOLS: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
];

/// A protocol version, and on WebSocket whether frames are base64 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    pub version: u8,
    pub base64: bool,
}

impl Protocol {
    pub fn parse(name: &str) -> Option<Self> {
        let (version, base64) = match name {
            "v5.channel.k8s.io" => (5, false),
            "v4.channel.k8s.io" => (4, false),
            "v3.channel.k8s.io" => (3, false),
            "v2.channel.k8s.io" => (2, false),
            "channel.k8s.io" => (1, false),
            "base64.channel.k8s.io" => (1, true),
            _ => return None,
        };
        Some(Self { version, base64 })
    }
}

/// The streams the request asked for (`stdin`, `stdout`, `stderr`, `tty`).
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Wanted {
    /// With a terminal, stderr is merged into stdout, as a pty merges it.
    fn stderr_stream(&self) -> bool {
        self.stderr && !self.tty
    }
}

/// Where a chunk of output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chan {
    Stdout,
    Stderr,
}

/// A session's streams, as a job sees them.
#[derive(Debug)]
pub struct Io {
    /// The client's stdin, when asked for; it ends when the client closes it.
    pub stdin: Option<mpsc::UnboundedReceiver<Bytes>>,
    pub out: mpsc::UnboundedSender<(Chan, Bytes)>,
    /// Cancelled when the client is gone.
    pub gone: CancellationToken,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Exit { code: i32, message: String },
    Error(String),
}

/// An exec or an attach, started once the streams are there.
pub type Job = Box<dyn FnOnce(Io) -> BoxFuture<'static, Outcome> + Send>;

/// The error channel's last message, if any.
fn error_payload(version: u8, outcome: &Outcome) -> Option<Vec<u8>> {
    if version < 4 {
        return match outcome {
            Outcome::Success => None,
            Outcome::Exit { message, .. } | Outcome::Error(message) => {
                Some(message.clone().into_bytes())
            }
        };
    }
    let status = match outcome {
        Outcome::Success => json!({"status": "Success"}),
        Outcome::Exit { code, message } => {
            // The client reads the code as a byte.
            let code = if (1..=255).contains(code) { *code } else { 255 };
            json!({
                "status": "Failure",
                "message": message,
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            })
        }
        Outcome::Error(message) => json!({
            "status": "Failure",
            "message": message,
            "reason": "InternalError",
            "code": 500,
        }),
    };
    let mut status = status;
    if let Value::Object(m) = &mut status {
        m.insert("kind".into(), "Status".into());
        m.insert("apiVersion".into(), "v1".into());
        m.insert("metadata".into(), json!({}));
    }
    serde_json::to_vec(&status).ok()
}

/// The close frame that tells kubectl the session ended normally.
pub fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Where a session's output goes.
trait Emit {
    fn emit(&mut self, chan: Chan, data: Bytes) -> impl std::future::Future<Output = ()> + Send;
}

/// Runs the job, forwarding its output as it comes; returns its outcome
/// once it and all output sent before its end are done.
async fn run_job(
    job: Job,
    io: Io,
    mut out_rx: mpsc::UnboundedReceiver<(Chan, Bytes)>,
    emit: &mut impl Emit,
) -> Outcome {
    let fut = job(io);
    tokio::pin!(fut);
    let outcome = loop {
        tokio::select! {
            biased;
            Some((chan, data)) = out_rx.recv() => emit.emit(chan, data).await,
            outcome = &mut fut => break outcome,
        }
    };
    out_rx.close();
    while let Some((chan, data)) = out_rx.recv().await {
        emit.emit(chan, data).await;
    }
    outcome
}

/// A WebSocket session's sending half.
struct WsOut<S> {
    tx: futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    proto: Protocol,
    wanted: Wanted,
    gone: CancellationToken,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> WsOut<S> {
    fn message(&self, chan: u8, data: &[u8]) -> Message {
        if self.proto.base64 {
            let mut text = String::from(char::from(b'0' + chan));
            text.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
            Message::text(text)
        } else {
            let mut b = Vec::with_capacity(data.len() + 1);
            b.push(chan);
            b.extend_from_slice(data);
            Message::Binary(Bytes::from(b))
        }
    }

    async fn send(&mut self, msg: Message) {
        if self.tx.send(msg).await.is_err() {
            self.gone.cancel();
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Emit for WsOut<S> {
    async fn emit(&mut self, chan: Chan, data: Bytes) {
        let w = self.wanted;
        let channel = match chan {
            Chan::Stdout if w.stdout => 1,
            Chan::Stderr if w.stderr_stream() => 2,
            Chan::Stderr if w.tty && w.stdout => 1,
            _ => return,
        };
        let msg = self.message(channel, &data);
        self.send(msg).await;
    }
}

/// Reads what the client sends on a WebSocket session until it closes.
async fn ws_reader<S>(
    mut rx: futures_util::stream::SplitStream<WebSocketStream<S>>,
    proto: Protocol,
    mut stdin_tx: Option<mpsc::UnboundedSender<Bytes>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(msg) = rx.next().await {
        let (chan, payload) = match msg {
            Ok(Message::Binary(b)) if !proto.base64 => match b.split_first() {
                Some((c, rest)) => (*c, rest.to_vec()),
                None => continue,
            },
            Ok(Message::Text(t)) if proto.base64 => {
                let t = t.as_str();
                let Some(c) = t.bytes().next().and_then(|c| c.checked_sub(b'0')) else {
                    continue;
                };
                let data = t.get(1..).unwrap_or_default();
                match base64::engine::general_purpose::STANDARD.decode(data) {
                    Ok(d) => (c, d),
                    Err(_) => continue,
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        match chan {
            0 => {
                if let Some(tx) = &stdin_tx
                    && !payload.is_empty()
                {
                    let _ = tx.send(Bytes::from(payload));
                }
            }
            // v5: the client closed a channel; only stdin matters.
            255 if proto.version >= 5 && payload.first() == Some(&0) => stdin_tx = None,
            // 4 is a terminal resize, which has no effect here.
            _ => {}
        }
    }
}

/// Serves a session over WebSocket channels.
pub async fn serve_ws<S>(ws: WebSocketStream<S>, proto: Protocol, wanted: Wanted, job: Job)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = ws.split();
    let gone = CancellationToken::new();
    let (stdin_tx, stdin_rx) = mpsc::unbounded_channel::<Bytes>();
    let reader = {
        let gone = gone.clone();
        let stdin_tx = wanted.stdin.then_some(stdin_tx);
        tokio::spawn(async move {
            ws_reader(rx, proto, stdin_tx).await;
            gone.cancel();
        })
    };
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let io = Io {
        stdin: wanted.stdin.then_some(stdin_rx),
        out: out_tx,
        gone: gone.clone(),
    };
    let mut out = WsOut {
        tx,
        proto,
        wanted,
        gone,
    };
    let outcome = run_job(job, io, out_rx, &mut out).await;
    if let Some(p) = error_payload(proto.version, &outcome) {
        let msg = out.message(3, &p);
        out.send(msg).await;
    }
    out.send(normal_close()).await;
    // The reader sees the client's answering close, then ends.
    let _ = tokio::time::timeout(CLOSE_WAIT, reader).await;
}

/// A SPDY session's sending half.
struct SpdyOut {
    sender: Sender,
    stdout: Option<u32>,
    stderr: Option<u32>,
    tty: bool,
}

impl Emit for SpdyOut {
    async fn emit(&mut self, chan: Chan, data: Bytes) {
        let id = match chan {
            Chan::Stdout => self.stdout,
            Chan::Stderr if self.tty => self.stdout,
            Chan::Stderr => self.stderr,
        };
        if let Some(id) = id {
            self.sender.data(id, &data).await;
        }
    }
}

/// The streams of one SPDY session.
#[derive(Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

impl Streams {
    fn complete(&self, wanted: Wanted, resize: bool) -> bool {
        self.error.is_some()
            && (!wanted.stdin || self.stdin.is_some())
            && (!wanted.stdout || self.stdout.is_some())
            && (!wanted.stderr_stream() || self.stderr.is_some())
            && (!resize || self.resize.is_some())
    }

    /// Waits for the streams the request named, as the kubelet does.
    async fn gather(
        sender: &Sender,
        incoming: &mut mpsc::Receiver<Stream>,
        wanted: Wanted,
        resize: bool,
    ) -> Option<Self> {
        let mut s = Self::default();
        let deadline = tokio::time::sleep(STREAMS_TIMEOUT);
        tokio::pin!(deadline);
        while !s.complete(wanted, resize) {
            let stream = tokio::select! {
                st = incoming.recv() => st?,
                () = &mut deadline => {
                    tracing::debug!("SPDY session: the client did not open its streams in time");
                    return None;
                }
            };
            let kind = stream.header("streamtype").unwrap_or_default();
            let slot = match kind.to_ascii_lowercase().as_str() {
                "error" => &mut s.error,
                "stdin" => &mut s.stdin,
                "stdout" => &mut s.stdout,
                "stderr" => &mut s.stderr,
                "resize" => &mut s.resize,
                _ => {
                    sender.reset(stream.id, spdy::PROTOCOL_ERROR).await;
                    continue;
                }
            };
            if slot.is_some() {
                sender.reset(stream.id, spdy::PROTOCOL_ERROR).await;
                continue;
            }
            *slot = Some(stream);
        }
        Some(s)
    }
}

/// Serves a session over SPDY streams.
pub async fn serve_spdy(
    sender: Sender,
    mut incoming: mpsc::Receiver<Stream>,
    version: u8,
    wanted: Wanted,
    job: Job,
) {
    let resize = wanted.tty && version >= 3;
    let Some(s) = Streams::gather(&sender, &mut incoming, wanted, resize).await else {
        return;
    };
    let Some(error) = s.error else {
        return;
    };
    let ids: Vec<u32> = [Some(&error), s.stdout.as_ref(), s.stderr.as_ref()]
        .into_iter()
        .chain([s.stdin.as_ref(), s.resize.as_ref()])
        .flatten()
        .map(|st| st.id)
        .collect();
    let error_id = error.id;
    let gone = CancellationToken::new();
    // The client never writes on the error stream: its end is the
    // connection's (or the client resetting it as it leaves).
    {
        let gone = gone.clone();
        let mut events = error.events;
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if matches!(ev, Event::Reset) {
                    break;
                }
            }
            gone.cancel();
        });
    }
    let stdin = s.stdin.map(|st| {
        let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
        let mut events = st.events;
        tokio::spawn(async move {
            while let Some(Event::Data(d)) = events.recv().await {
                if tx.send(d).is_err() {
                    break;
                }
            }
        });
        rx
    });
    if let Some(st) = s.resize {
        // Resizes have no effect here; read them so they do not pile up.
        let mut events = st.events;
        tokio::spawn(async move { while events.recv().await.is_some() {} });
    }
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let io = Io {
        stdin,
        out: out_tx,
        gone,
    };
    let mut out = SpdyOut {
        sender: sender.clone(),
        stdout: s.stdout.as_ref().map(|st| st.id),
        stderr: s.stderr.as_ref().map(|st| st.id),
        tty: wanted.tty,
    };
    let outcome = run_job(job, io, out_rx, &mut out).await;
    if let Some(p) = error_payload(version, &outcome) {
        sender.data(error_id, &p).await;
    }
    for id in ids {
        sender.fin(id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(p: Option<Vec<u8>>) -> Value {
        serde_json::from_slice(&p.expect("a payload")).expect("JSON")
    }

    #[test]
    fn exit_codes_travel_as_kubectl_reads_them() {
        assert!(error_payload(3, &Outcome::Success).is_none());
        let ok = status(error_payload(5, &Outcome::Success));
        assert_eq!(ok["status"], "Success");
        assert_eq!(ok["kind"], "Status");
        let failed = status(error_payload(
            5,
            &Outcome::Exit {
                code: 3,
                message: "exit 3".into(),
            },
        ));
        assert_eq!(failed["status"], "Failure");
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(failed["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failed["details"]["causes"][0]["message"], "3");
        let big = status(error_payload(
            4,
            &Outcome::Exit {
                code: 1000,
                message: String::new(),
            },
        ));
        assert_eq!(big["details"]["causes"][0]["message"], "255");
        let text = error_payload(2, &Outcome::Error("boom".into()));
        assert_eq!(text.as_deref(), Some(&b"boom"[..]));
    }

    #[test]
    fn protocols() {
        assert_eq!(
            Protocol::parse("v5.channel.k8s.io"),
            Some(Protocol {
                version: 5,
                base64: false
            })
        );
        assert_eq!(
            Protocol::parse("base64.channel.k8s.io").map(|p| p.base64),
            Some(true)
        );
        assert!(Protocol::parse("v6.channel.k8s.io").is_none());
        for p in WS_PROTOCOLS.iter().chain(SPDY_PROTOCOLS) {
            assert!(Protocol::parse(p).is_some(), "{p}");
        }
    }
}
