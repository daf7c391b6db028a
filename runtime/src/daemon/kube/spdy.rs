//! A SPDY/3.1 framer: the frames kubectl's streaming connections use
//! (`exec`, `attach` and `port-forward` before WebSocket, and port-forward
//! tunnelled through WebSocket since kubectl 1.31).
//!
//! Frames are parsed from and written to byte buffers; the connection
//! (`spdyconn.rs`) does the I/O, and `spdyheaders.rs` the compressed
//! header blocks. Flow control is not used by kubectl's SPDY library: WINDOW_UPDATE and
//! SETTINGS are read and ignored, and none are sent.

use bytes::Bytes;

use super::spdyheaders::{HeaderReader, HeaderWriter};

/// SPDY's version, in every control frame.
const VERSION: u16 = 3;
/// The FIN flag of data frames and SYN_STREAM, SYN_REPLY and HEADERS.
const FLAG_FIN: u8 = 0x01;
/// SYN_STREAM's UNIDIRECTIONAL flag.
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// A control frame's and a data frame's header.
const FRAME_HEADER: usize = 8;

/// RST_STREAM's PROTOCOL_ERROR status.
pub const PROTOCOL_ERROR: u32 = 1;
/// RST_STREAM's REFUSED_STREAM status.
pub const REFUSED_STREAM: u32 = 3;

/// A stream's headers, names in lower case, one entry per value.
pub type Headers = Vec<(String, String)>;

/// One SPDY frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Bytes,
    },
    SynStream {
        stream: u32,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_stream: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    /// SETTINGS, WINDOW_UPDATE, CREDENTIAL and unknown types: read past.
    Ignored {
        kind: u16,
    },
}

/// A connection-level error: the peer broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SPDY: {0}")]
pub struct SpdyError(String);

impl From<std::io::Error> for SpdyError {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

pub fn bad(msg: impl Into<String>) -> SpdyError {
    SpdyError(msg.into())
}

pub fn be32(b: &[u8], at: usize) -> Result<u32, SpdyError> {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| bad("frame too short"))
}

/// Reads the peer's frames; one per connection, as its header blocks are
/// one zlib stream.
#[derive(Debug, Default)]
pub struct Decoder {
    headers: HeaderReader,
}

/// Writes our frames; one per connection.
#[derive(Debug, Default)]
pub struct Encoder {
    headers: HeaderWriter,
}

impl Decoder {
    /// Parses the first frame in `buf`: `None` until it is all there,
    /// else the frame and how many bytes it took.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<(Frame, usize)>, SpdyError> {
        let Some(head) = buf.get(..FRAME_HEADER) else {
            return Ok(None);
        };
        let flags = head[4];
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        let Some(payload) = buf.get(FRAME_HEADER..FRAME_HEADER + len) else {
            return Ok(None);
        };
        let used = FRAME_HEADER + len;
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            let stream = be32(head, 0)? & 0x7fff_ffff;
            let data = Bytes::copy_from_slice(payload);
            return Ok(Some((Frame::Data { stream, fin, data }, used)));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(bad(format!("unsupported SPDY version {version}")));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let stream = || be32(payload, 0).map(|s| s & 0x7fff_ffff);
        let frame = match kind {
            1 => {
                let block = payload.get(10..).ok_or_else(|| bad("short SYN_STREAM"))?;
                let headers = self.headers.read(block)?;
                Frame::SynStream {
                    stream: stream()?,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers,
                }
            }
            2 | 8 => {
                let block = payload.get(4..).ok_or_else(|| bad("short header frame"))?;
                let headers = self.headers.read(block)?;
                if kind == 2 {
                    Frame::SynReply {
                        stream: stream()?,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream: stream()?,
                        fin,
                        headers,
                    }
                }
            }
            3 => Frame::RstStream {
                stream: stream()?,
                status: be32(payload, 4)?,
            },
            6 => Frame::Ping {
                id: be32(payload, 0)?,
            },
            7 => Frame::GoAway {
                last_stream: stream()?,
                status: be32(payload, 4).unwrap_or(0),
            },
            other => Frame::Ignored { kind: other },
        };
        Ok(Some((frame, used)))
    }
}

impl Encoder {
    /// Appends one frame to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        let control = |out: &mut Vec<u8>, kind: u16, flags: u8, payload: &[u8]| {
            if payload.len() >= 1 << 24 {
                return Err(bad("control frame too large"));
            }
            out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
            out.extend_from_slice(&kind.to_be_bytes());
            out.push(flags);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(payload);
            Ok(())
        };
        let fin_flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
        match frame {
            Frame::Data { stream, fin, data } => {
                if data.len() >= 1 << 24 {
                    return Err(bad("data frame too large"));
                }
                out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                out.push(fin_flag(*fin));
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
            }
            Frame::SynStream {
                stream,
                fin,
                unidirectional,
                headers,
            } => {
                let mut p = stream.to_be_bytes().to_vec();
                p.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
                p.extend(self.headers.write(headers)?);
                let flags = fin_flag(*fin)
                    | if *unidirectional {
                        FLAG_UNIDIRECTIONAL
                    } else {
                        0
                    };
                control(out, 1, flags, &p)?;
            }
            Frame::SynReply {
                stream,
                fin,
                headers,
            }
            | Frame::Headers {
                stream,
                fin,
                headers,
            } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    2
                } else {
                    8
                };
                let mut p = stream.to_be_bytes().to_vec();
                p.extend(self.headers.write(headers)?);
                control(out, kind, fin_flag(*fin), &p)?;
            }
            Frame::RstStream { stream, status } => {
                let mut p = stream.to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                control(out, 3, 0, &p)?;
            }
            Frame::Ping { id } => control(out, 6, 0, &id.to_be_bytes())?,
            Frame::GoAway {
                last_stream,
                status,
            } => {
                let mut p = last_stream.to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                control(out, 7, 0, &p)?;
            }
            Frame::Ignored { .. } => return Err(bad("cannot write an ignored frame")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }
    #[test]
    fn frames_round_trip() {
        let mut a = Encoder::default();
        let mut b = Decoder::default();
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                fin: false,
                unidirectional: false,
                headers: h(&[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynReply {
                stream: 1,
                fin: false,
                headers: vec![],
            },
            Frame::Data {
                stream: 3,
                fin: true,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Headers {
                stream: 3,
                fin: true,
                headers: h(&[("a", "1"), ("a", "2")]),
            },
            Frame::RstStream {
                stream: 5,
                status: 5,
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_stream: 9,
                status: 0,
            },
            Frame::SynStream {
                stream: 11,
                fin: true,
                unidirectional: true,
                headers: h(&[("streamtype", "data")]),
            },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            a.encode(f, &mut wire).expect("encode");
        }
        let mut got = Vec::new();
        let mut at = 0;
        // Byte by byte: a frame is only decoded once it is complete.
        let mut end = 0;
        while at < wire.len() {
            end = (end + 1).min(wire.len());
            match b.decode(&wire[at..end]).expect("decode") {
                Some((f, used)) => {
                    got.push(f);
                    at += used;
                    end = at;
                }
                None => assert!(end < wire.len(), "incomplete at the end"),
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut c = Decoder::default();
        // Wrong version.
        assert!(c.decode(&[0x80, 0x02, 0, 1, 0, 0, 0, 0]).is_err());
        // A SYN_STREAM too short for its fields.
        assert!(c.decode(&[0x80, 0x03, 0, 1, 0, 0, 0, 2, 0, 0]).is_err());
        // A header block that is not zlib.
        let mut f = vec![0x80, 0x03, 0, 2, 0, 0, 0, 8, 0, 0, 0, 1];
        f.extend_from_slice(&[1, 2, 3, 4]);
        assert!(Decoder::default().decode(&f).is_err());
        // An unknown dictionary.
        let mut f = vec![0x80, 0x03, 0, 2, 0, 0, 0, 10, 0, 0, 0, 1];
        f.extend_from_slice(&[0x78, 0xbb, 1, 2, 3, 4]);
        assert!(Decoder::default().decode(&f).is_err());
        // Unknown control frames are skipped whole.
        let (f, used) = c
            .decode(&[0x80, 0x03, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1, 0xaa])
            .expect("decode")
            .expect("whole");
        assert_eq!(f, Frame::Ignored { kind: 9 });
        assert_eq!(used, 16);
        // Random bytes never panic.
        let mut seed = 0x1234_5678_u32;
        for _ in 0..2000 {
            let mut buf = vec![0x80, 0x03];
            for _ in 0..40 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                buf.push((seed >> 16) as u8);
            }
            let _ = Decoder::default().decode(&buf);
        }
    }
}
