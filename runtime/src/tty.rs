//! A terminal's cooked mode for `kubectl exec -t` and `attach -t`, and for
//! the containerd shim's `ctr run -t`. Those clients put the user's
//! terminal in raw mode and expect the far side to be a pty:
//! to echo what is typed, turn Enter's CR into a newline, edit the line
//! (erase, kill, word erase), end input on ^D and interrupt on ^C, and
//! turn the program's newlines into CR LF. Guests have no pty, so this is
//! the pty's line discipline, kept small.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The longest line kept; more is dropped, as a full tty buffer drops it.
const MAX_LINE: usize = 64 * 1024;

/// What one chunk of typing does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// Complete lines (or a ^D-ended part line) for the program.
    pub input: Vec<u8>,
    /// What the terminal shows.
    pub echo: Vec<u8>,
    /// ^D on an empty line: the program's input ends.
    pub eof: bool,
    /// ^C or ^\: the line is dropped and the program interrupted.
    pub interrupt: bool,
}

/// The line being typed.
#[derive(Debug, Default)]
pub struct Discipline {
    line: Vec<u8>,
}

const RUBOUT: &[u8] = b"\x08 \x08";

impl Discipline {
    /// Erases the last character typed; returns how many columns it took.
    fn erase(&mut self) -> usize {
        let Some(&last) = self.line.last() else {
            return 0;
        };
        // A UTF-8 character: continuation bytes, then the lead byte.
        while let Some(&b) = self.line.last() {
            self.line.pop();
            if b & 0xc0 != 0x80 {
                break;
            }
        }
        // Control characters were echoed as two columns (^X).
        if last < 0x20 && last != b'\t' { 2 } else { 1 }
    }

    fn rub(echo: &mut Vec<u8>, columns: usize) {
        for _ in 0..columns {
            echo.extend_from_slice(RUBOUT);
        }
    }

    pub fn feed(&mut self, data: &[u8]) -> Fed {
        let mut f = Fed::default();
        for &b in data {
            if f.eof {
                break;
            }
            match b {
                b'\r' | b'\n' => {
                    self.line.push(b'\n');
                    f.echo.extend_from_slice(b"\r\n");
                    f.input.append(&mut self.line);
                }
                // DEL and BS: erase a character.
                0x7f | 0x08 => {
                    let cols = self.erase();
                    Self::rub(&mut f.echo, cols);
                }
                // ^U: erase the line.
                0x15 => loop {
                    let cols = self.erase();
                    if cols == 0 {
                        break;
                    }
                    Self::rub(&mut f.echo, cols);
                },
                // ^W: erase a word and the blanks after it.
                0x17 => {
                    while self.line.last().is_some_and(|c| *c == b' ' || *c == b'\t') {
                        let cols = self.erase();
                        Self::rub(&mut f.echo, cols);
                    }
                    while self.line.last().is_some_and(|c| *c != b' ' && *c != b'\t') {
                        let cols = self.erase();
                        Self::rub(&mut f.echo, cols);
                    }
                }
                // ^D: end of input on an empty line, else send the line.
                0x04 => {
                    if self.line.is_empty() {
                        f.eof = true;
                    } else {
                        f.input.append(&mut self.line);
                    }
                }
                0x03 | 0x1c => {
                    f.echo
                        .extend_from_slice(if b == 0x03 { b"^C\r\n" } else { b"^\\\r\n" });
                    self.line.clear();
                    f.interrupt = true;
                }
                c => {
                    if self.line.len() >= MAX_LINE {
                        continue;
                    }
                    self.line.push(c);
                    if c < 0x20 && c != b'\t' {
                        f.echo.extend_from_slice(&[b'^', c + 0x40]);
                    } else {
                        f.echo.push(c);
                    }
                }
            }
        }
        f
    }
}

/// The terminal's output: each newline as CR LF.
pub fn onlcr(data: &[u8]) -> Bytes {
    if !data.contains(&b'\n') {
        return Bytes::copy_from_slice(data);
    }
    let mut out = Vec::with_capacity(data.len() + 16);
    for &b in data {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    Bytes::from(out)
}

/// A writer that turns each newline into CR LF on its way to `W`, as a
/// terminal's output does. A write returns only once all of its
/// translated bytes are in `W`, so nothing is held back when the writer
/// is dropped.
pub struct Onlcr<W> {
    inner: W,
    /// What of the write in progress's translation is not written yet;
    /// `taken` is the length of the caller's buffer it came from.
    pending: Bytes,
    taken: usize,
}

impl<W> Onlcr<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Bytes::new(),
            taken: 0,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Onlcr<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = &mut *self;
        if me.pending.is_empty() {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            me.pending = onlcr(buf);
            me.taken = buf.len();
        }
        while !me.pending.is_empty() {
            match Pin::new(&mut me.inner).poll_write(cx, &me.pending) {
                Poll::Ready(Ok(0)) => {
                    me.pending.clear();
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => me.pending.advance(n),
                Poll::Ready(Err(e)) => {
                    me.pending.clear();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(me.taken))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Cooks typed input: returns what the program reads. Echo goes to
/// `echo`; ^C cancels `interrupt`; ^D or the client closing its stdin
/// ends the program's input.
pub fn cook(
    mut raw: mpsc::UnboundedReceiver<Bytes>,
    echo: impl Fn(Bytes) + Send + 'static,
    interrupt: CancellationToken,
) -> mpsc::UnboundedReceiver<Bytes> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut line = Discipline::default();
        while let Some(chunk) = raw.recv().await {
            let fed = line.feed(&chunk);
            if !fed.echo.is_empty() {
                echo(Bytes::from(fed.echo));
            }
            if !fed.input.is_empty() && tx.send(Bytes::from(fed.input)).is_err() {
                break;
            }
            if fed.interrupt {
                interrupt.cancel();
            }
            if fed.eof {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_writer_turns_newlines_into_cr_lf() {
        use tokio::io::AsyncWriteExt as _;
        let mut w = Onlcr::new(Vec::new());
        w.write_all(b"one\ntwo").await.expect("write");
        w.write_all(b"\n\nthree").await.expect("write");
        assert_eq!(w.inner, b"one\r\ntwo\r\n\r\nthree");
        // A write returns the caller's length, not the translation's.
        assert_eq!(w.write(b"a\nb").await.expect("write"), 3);
    }

    #[test]
    fn enter_sends_the_line_and_echoes_it() {
        let mut d = Discipline::default();
        let f = d.feed(b"echo hi");
        assert_eq!(f.echo, b"echo hi");
        assert!(f.input.is_empty());
        let f = d.feed(b"\r");
        assert_eq!(f.input, b"echo hi\n");
        assert_eq!(f.echo, b"\r\n");
    }

    #[test]
    fn editing() {
        let mut d = Discipline::default();
        let f = d.feed(b"lsx\x7f -l\r");
        assert_eq!(f.input, b"ls -l\n");
        assert_eq!(f.echo, b"lsx\x08 \x08 -l\r\n");
        let f = d.feed(b"one two  \x17\x17three\r");
        assert_eq!(f.input, b"three\n");
        let f = d.feed("héllo\x15ok\r".as_bytes());
        assert_eq!(f.input, b"ok\n");
        // Erasing the two-byte é takes one column.
        let f = d.feed("é\x7f\r".as_bytes());
        assert_eq!(f.input, b"\n");
        assert_eq!(f.echo, "é\x08 \x08\r\n".as_bytes());
        // Nothing to erase: nothing echoed.
        assert_eq!(d.feed(b"\x7f").echo, b"");
    }

    #[test]
    fn control_keys() {
        let mut d = Discipline::default();
        let f = d.feed(b"abc\x03");
        assert!(f.interrupt && f.input.is_empty());
        assert_eq!(f.echo, b"abc^C\r\n");
        let f = d.feed(b"part\x04");
        assert_eq!(f.input, b"part");
        assert!(!f.eof);
        let f = d.feed(b"\x04ignored");
        assert!(f.eof && f.input.is_empty());
        let f = Discipline::default().feed(b"\x1b[A");
        assert_eq!(f.echo, b"^[[A");
    }

    #[test]
    fn newlines_become_cr_lf() {
        assert_eq!(&onlcr(b"a\nb\n")[..], b"a\r\nb\r\n");
        assert_eq!(&onlcr(b"plain")[..], b"plain");
    }
}
