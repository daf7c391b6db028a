//! `pods/portforward` over SPDY (upgraded, or tunnelled through WebSocket
//! as kubectl 1.31+ does): for each local connection the client opens an
//! error stream and a data stream carrying the same `requestID` and
//! `port` headers; the data stream is joined to the pod's port, and what
//! goes wrong is written on the error stream, which kubectl prints.
//!
//! The pod's port is the real loopback socket behind it in the pod's
//! namespace, so nothing ever dials a virtual address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::spdy;
use super::spdyconn::{Event, Sender, Stream};

/// Finds the real address behind a pod's port, or says why there is none.
pub type Resolve = Arc<dyn Fn(u16) -> Result<SocketAddr, String> + Send + Sync>;

/// The pair key: the `requestID` header, or for clients without it the
/// error stream's id (the data stream's is two more).
fn request_key(s: &Stream, data: bool) -> String {
    match s.header("requestid") {
        Some(id) => format!("r{id}"),
        None => format!("s{}", if data { s.id.wrapping_sub(2) } else { s.id }),
    }
}

/// Serves the connection's port-forward requests until it ends.
pub async fn serve(
    sender: Sender,
    mut incoming: mpsc::Receiver<Stream>,
    pod: String,
    resolve: Resolve,
) {
    // Half pairs, by request: (error stream, data stream).
    let mut pending: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let kind = stream
            .header("streamtype")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let data = match kind.as_str() {
            "error" => false,
            "data" => true,
            _ => {
                sender.reset(stream.id, spdy::PROTOCOL_ERROR).await;
                continue;
            }
        };
        let key = request_key(&stream, data);
        let entry = pending.entry(key.clone()).or_default();
        let slot = if data { &mut entry.1 } else { &mut entry.0 };
        if slot.is_some() {
            sender.reset(stream.id, spdy::PROTOCOL_ERROR).await;
            continue;
        }
        *slot = Some(stream);
        let paired = entry.0.is_some() && entry.1.is_some();
        if paired && let Some((Some(error), Some(data))) = pending.remove(&key) {
            tokio::spawn(forward(
                sender.clone(),
                error,
                data,
                pod.clone(),
                resolve.clone(),
            ));
        }
    }
}

/// Joins one data stream to the pod's port.
async fn forward(sender: Sender, error: Stream, data: Stream, pod: String, resolve: Resolve) {
    // The client closes its side of the error stream at once and only
    // reads it; drain it so its queue never fills.
    let Stream {
        id: error_id,
        events: mut error_events,
        ..
    } = error;
    tokio::spawn(async move { while error_events.recv().await.is_some() {} });
    let data_id = data.id;
    let port = data.header("port").unwrap_or_default().to_string();
    let fail = |why: String| {
        let sender = sender.clone();
        async move {
            sender.data(error_id, why.as_bytes()).await;
            sender.fin(error_id).await;
            sender.fin(data_id).await;
        }
    };
    let Some(port_num) = port.parse::<u16>().ok().filter(|p| *p != 0) else {
        fail(format!("invalid port {port:?}")).await;
        return;
    };
    let target = match resolve(port_num) {
        Ok(addr) => addr,
        Err(why) => {
            fail(format!(
                "error forwarding port {port_num} to pod {pod}: {why}"
            ))
            .await;
            return;
        }
    };
    let socket = match TcpStream::connect(target).await {
        Ok(s) => s,
        Err(e) => {
            fail(format!(
                "error forwarding port {port_num} to pod {pod}: {e}"
            ))
            .await;
            return;
        }
    };
    let _ = socket.set_nodelay(true);
    let (mut rd, mut wr) = socket.into_split();
    let mut events = data.events;
    // Client to pod, until the client abandons the stream (or the
    // connection ends); after the client's FIN, the pod sees its end.
    let up = async {
        let mut open = true;
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Data(d) => {
                    if open && wr.write_all(&d).await.is_err() {
                        open = false;
                    }
                }
                Event::Fin => {
                    let _ = wr.shutdown().await;
                    open = false;
                }
                Event::Reset => return,
            }
        }
    };
    // Pod to client, until the pod's side closes.
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !sender.data(data_id, &buf[..n]).await {
                        return;
                    }
                }
            }
        }
        sender.fin(data_id).await;
    };
    tokio::pin!(up);
    tokio::select! {
        // The client is done with the stream (reset or gone): stop.
        () = &mut up => {}
        // The pod closed: the client sees the end; nothing more to say.
        () = down => {}
    }
    sender.fin(error_id).await;
}
