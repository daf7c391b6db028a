//! Docker's multiplexed stream: each frame is an 8-byte header (stream
//! number, three zero bytes, big-endian payload length) and the payload.
//! Used by `logs`, `attach` and `exec` when the container has no TTY.

use bytes::{Buf, BytesMut};

/// Which stream a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// Docker's "system error" stream, used for errors that end a stream.
    System = 3,
}

impl StreamKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Stdin),
            1 => Some(Self::Stdout),
            2 => Some(Self::Stderr),
            3 => Some(Self::System),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Stdin => "stdin",
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
            Self::System => "system",
        }
    }
}

/// One frame, header included.
pub fn frame(kind: StreamKind, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload[..len as usize]);
    out
}

/// A chunk as a client reads it: raw on a TTY connection, framed otherwise.
pub fn encode(raw: bool, kind: StreamKind, payload: &[u8]) -> Vec<u8> {
    if raw {
        payload.to_vec()
    } else {
        frame(kind, payload)
    }
}

/// A malformed frame header.
#[derive(Debug, thiserror::Error)]
#[error("malformed stream frame: unknown stream number {0}")]
pub struct FrameError(pub u8);

/// Splits a byte stream back into frames, however it was chunked.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: BytesMut,
}

impl Demuxer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<(StreamKind, Vec<u8>)>, FrameError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let kind = StreamKind::from_byte(self.buf[0]).ok_or(FrameError(self.buf[0]))?;
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        self.buf.advance(8);
        let payload = self.buf.split_to(len).to_vec();
        Ok(Some((kind, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_chunks() {
        let mut wire = frame(StreamKind::Stdout, b"hello\n");
        wire.extend(frame(StreamKind::Stderr, b"oops"));
        wire.extend(frame(StreamKind::Stdout, b""));
        let mut d = Demuxer::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(3) {
            d.push(chunk);
            while let Some(f) = d.next_frame().expect("frame") {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![
                (StreamKind::Stdout, b"hello\n".to_vec()),
                (StreamKind::Stderr, b"oops".to_vec()),
                (StreamKind::Stdout, Vec::new()),
            ]
        );
        let mut bad = Demuxer::new();
        bad.push(&[9, 0, 0, 0, 0, 0, 0, 0]);
        assert!(bad.next_frame().is_err());
    }
}
