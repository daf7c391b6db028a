//! The server side of a SPDY/3.1 connection, over an upgraded HTTP
//! connection or tunnelled through WebSocket: streams the client opens are
//! answered at once and handed on with their headers and a channel of
//! what arrives on them; frames go out through a [`Sender`].
//!
//! The connection ends when every `Sender` is dropped and then the client
//! closes its side (or does not within [`LINGER`]): closing first could
//! make the client's library drop frames it has read but not yet handed
//! on, such as an exec's last output and its status.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::spdy::{self, Decoder, Encoder, Frame, Headers, SpdyError};

/// How long a finished connection waits for the client to close it.
const LINGER: Duration = Duration::from_secs(30);
/// The most one data frame carries.
const MAX_CHUNK: usize = 32 * 1024;
/// What is queued for one stream before the reader waits for it.
const STREAM_QUEUE: usize = 32;

/// What arrives on a stream the client opened.
#[derive(Debug)]
pub enum Event {
    Data(Bytes),
    /// The client will send no more (it may still read).
    Fin,
    /// The client abandoned the stream.
    Reset,
}

/// A stream the client opened; it has been answered.
#[derive(Debug)]
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    /// Ends (`None`) when the connection does.
    pub events: mpsc::Receiver<Event>,
}

impl Stream {
    /// A header's first value; names are matched without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends frames to the client; `false` once the connection is gone.
#[derive(Debug, Clone)]
pub struct Sender {
    tx: mpsc::Sender<Frame>,
}

impl Sender {
    pub async fn data(&self, stream: u32, data: &[u8]) -> bool {
        for chunk in data.chunks(MAX_CHUNK) {
            let frame = Frame::Data {
                stream,
                fin: false,
                data: Bytes::copy_from_slice(chunk),
            };
            if self.tx.send(frame).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Half-closes a stream: we send no more on it.
    pub async fn fin(&self, stream: u32) -> bool {
        let frame = Frame::Data {
            stream,
            fin: true,
            data: Bytes::new(),
        };
        self.tx.send(frame).await.is_ok()
    }

    pub async fn reset(&self, stream: u32, status: u32) -> bool {
        self.tx
            .send(Frame::RstStream { stream, status })
            .await
            .is_ok()
    }
}

/// Serves SPDY on `io` in a task of its own.
pub fn start<IO>(io: IO) -> (Sender, mpsc::Receiver<Stream>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (frames_tx, frames_rx) = mpsc::channel(64);
    let (streams_tx, streams_rx) = mpsc::channel(16);
    let weak = frames_tx.downgrade();
    tokio::spawn(drive(io, frames_rx, weak, streams_tx));
    (Sender { tx: frames_tx }, streams_rx)
}

async fn drive<IO>(
    io: IO,
    frames: mpsc::Receiver<Frame>,
    weak: mpsc::WeakSender<Frame>,
    streams: mpsc::Sender<Stream>,
) where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(io);
    let finished = CancellationToken::new();
    let reader = async {
        tokio::select! {
            r = read_loop(rd, weak, streams) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "SPDY connection: reading ended");
                }
            }
            () = async {
                finished.cancelled().await;
                tokio::time::sleep(LINGER).await;
            } => {}
        }
    };
    let writer = async {
        let wr = write_loop(wr, frames).await;
        finished.cancel();
        wr
    };
    let (_, wr) = tokio::join!(reader, writer);
    if let Some(mut wr) = wr {
        let _ = tokio::time::timeout(Duration::from_secs(5), wr.shutdown()).await;
    }
}

/// Writes frames until every sender is gone; gives the writer back unless
/// writing failed.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut frames: mpsc::Receiver<Frame>,
) -> Option<W> {
    let mut enc = Encoder::default();
    let mut out = Vec::with_capacity(64 * 1024);
    while let Some(frame) = frames.recv().await {
        out.clear();
        let mut next = Some(frame);
        // Batch what is already queued into one write.
        while let Some(f) = next {
            if let Err(e) = enc.encode(&f, &mut out) {
                tracing::debug!(error = %e, "SPDY connection: cannot encode a frame");
                return None;
            }
            next = if out.len() < 64 * 1024 {
                frames.try_recv().ok()
            } else {
                None
            };
        }
        if wr.write_all(&out).await.is_err() || wr.flush().await.is_err() {
            return None;
        }
    }
    Some(wr)
}

/// Queues a frame from the reader (a reply or a pong), unless the
/// connection is closing.
async fn queue(weak: &mpsc::WeakSender<Frame>, frame: Frame) {
    if let Some(tx) = weak.upgrade() {
        let _ = tx.send(frame).await;
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    weak: mpsc::WeakSender<Frame>,
    streams: mpsc::Sender<Stream>,
) -> Result<(), SpdyError> {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut open: HashMap<u32, mpsc::Sender<Event>> = HashMap::new();
    let mut streams = Some(streams);
    let mut last = 0u32;
    loop {
        while let Some((frame, used)) = dec.decode(&buf)? {
            let _ = buf.split_to(used);
            match frame {
                Frame::SynStream {
                    stream,
                    fin,
                    headers,
                    ..
                } => {
                    open.retain(|_, tx| !tx.is_closed());
                    if stream % 2 == 0 || stream <= last {
                        queue(
                            &weak,
                            Frame::RstStream {
                                stream,
                                status: spdy::PROTOCOL_ERROR,
                            },
                        )
                        .await;
                        continue;
                    }
                    last = stream;
                    let Some(to_logic) = streams.as_ref() else {
                        queue(
                            &weak,
                            Frame::RstStream {
                                stream,
                                status: spdy::REFUSED_STREAM,
                            },
                        )
                        .await;
                        continue;
                    };
                    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                    if fin {
                        let _ = tx.try_send(Event::Fin);
                    }
                    queue(
                        &weak,
                        Frame::SynReply {
                            stream,
                            fin: false,
                            headers: Vec::new(),
                        },
                    )
                    .await;
                    let handed = to_logic
                        .send(Stream {
                            id: stream,
                            headers,
                            events: rx,
                        })
                        .await;
                    if handed.is_ok() {
                        open.insert(stream, tx);
                    } else {
                        streams = None;
                        queue(
                            &weak,
                            Frame::RstStream {
                                stream,
                                status: spdy::REFUSED_STREAM,
                            },
                        )
                        .await;
                    }
                }
                Frame::Data { stream, fin, data } => {
                    let Some(tx) = open.get(&stream) else {
                        continue;
                    };
                    let mut alive = true;
                    if !data.is_empty() {
                        alive = tx.send(Event::Data(data)).await.is_ok();
                    }
                    if alive && fin {
                        alive = tx.send(Event::Fin).await.is_ok();
                    }
                    if !alive {
                        open.remove(&stream);
                    }
                }
                Frame::RstStream { stream, .. } => {
                    if let Some(tx) = open.remove(&stream) {
                        let _ = tx.try_send(Event::Reset);
                    }
                }
                // Client pings have odd ids; even ones would answer ours.
                Frame::Ping { id } if id % 2 == 1 => queue(&weak, Frame::Ping { id }).await,
                Frame::GoAway { .. } => streams = None,
                _ => {}
            }
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(SpdyError::from(e)),
        }
    }
}

/// A byte stream carried in a WebSocket's binary messages, as kubectl
/// tunnels SPDY through WebSocket: message boundaries mean nothing.
pub fn over_websocket<S>(ws: WebSocketStream<S>) -> impl AsyncRead + AsyncWrite + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (near, far) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let (mut ws_tx, mut ws_rx) = ws.split();
        let (mut far_rd, mut far_wr) = tokio::io::split(far);
        let inbound = async {
            while let Some(msg) = ws_rx.next().await {
                match msg {
                    Ok(Message::Binary(data)) => {
                        if far_wr.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    // Text has no place in a tunnel; control frames are
                    // answered by the library.
                    Ok(Message::Text(_)) => break,
                    Ok(_) => {}
                }
            }
            let _ = far_wr.shutdown().await;
        };
        let outbound = async {
            let mut buf = vec![0u8; MAX_CHUNK];
            loop {
                match far_rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let msg = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                        if ws_tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = ws_tx.send(super::remotecmd::normal_close()).await;
        };
        tokio::join!(inbound, outbound);
    });
    near
}
