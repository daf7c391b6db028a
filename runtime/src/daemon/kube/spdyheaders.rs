//! SPDY/3 header blocks: name/value pairs (lengths as big-endian u32s,
//! repeated values joined by NUL) in one zlib stream per direction that
//! lasts as long as the connection, each block ending with a sync flush.
//!
//! kubectl's side presets SPDY's dictionary. Its stream is read with the
//! dictionary put in the window by first inflating a stored deflate block
//! that holds it, which needs nothing beyond flate2's default backend
//! (presetting a dictionary needs the zlib one). Ours declares no
//! dictionary, which every zlib reader accepts.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::spdy::{Headers, SpdyError, bad, be32};

/// The most a header block may inflate to.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// SPDY/3's header compression dictionary (its draft, section 2.6.10.1):
/// length-prefixed header names and values, then common value fragments.
pub fn dictionary() -> &'static [u8] {
    static DICT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICT.get_or_init(|| {
        // Header names and values, `|`-separated.
        const WORDS: &[&str] = &[
            "options|head|post|put|delete|trace|accept|accept-charset|accept-encoding|",
            "accept-language|accept-ranges|age|allow|authorization|cache-control|",
            "connection|content-base|content-encoding|content-language|content-length|",
            "content-location|content-md5|content-range|content-type|date|etag|expect|",
            "expires|from|host|if-match|if-modified-since|if-none-match|if-range|",
            "if-unmodified-since|last-modified|location|max-forwards|pragma|",
            "proxy-authenticate|proxy-authorization|range|referer|retry-after|server|",
            "te|trailer|transfer-encoding|upgrade|user-agent|vary|via|warning|",
            "www-authenticate|method|get|status|200 OK|version|HTTP/1.1|url|public|",
            "set-cookie|keep-alive|origin",
        ];
        const TAIL: &[&str] = &[
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
            "203 Non-Authoritative Information204 No Content301 Moved Permanently",
            "400 Bad Request401 Unauthorized403 Forbidden404 Not Found",
            "500 Internal Server Error501 Not Implemented503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,",
            "application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        ];
        let mut d = Vec::with_capacity(1423);
        for w in WORDS.concat().split('|') {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        for t in TAIL {
            d.extend_from_slice(t.as_bytes());
        }
        d
    })
}

/// zlib's Adler-32 checksum, which names a preset dictionary.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Inflates the peer's header blocks.
struct Inflater {
    z: Decompress,
    started: bool,
}

impl Inflater {
    fn new() -> Self {
        Self {
            z: Decompress::new(false),
            started: false,
        }
    }

    /// Feeds raw deflate data and returns all the output it makes.
    fn run(&mut self, mut input: &[u8], limit: usize) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(8192);
            }
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
                .map_err(|e| bad(format!("header block: {e}")))?;
            let used = usize::try_from(self.z.total_in() - in0).unwrap_or(usize::MAX);
            let made = self.z.total_out() - out0;
            input = input.get(used..).unwrap_or_default();
            if out.len() > limit {
                return Err(bad("header block too large"));
            }
            if status == Status::StreamEnd && !input.is_empty() {
                return Err(bad("header compression stream ended"));
            }
            if input.is_empty() && (out.len() < out.capacity() || made == 0) {
                return Ok(out);
            }
            if used == 0 && made == 0 {
                return Err(bad("header block does not decompress"));
            }
        }
    }

    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut input = block;
        if !self.started {
            let (&cmf, &flg) = match input {
                [c, f, ..] => (c, f),
                _ => return Err(bad("header block too short")),
            };
            if cmf & 0x0f != 8 || (u16::from(cmf) << 8 | u16::from(flg)) % 31 != 0 {
                return Err(bad("header block is not a zlib stream"));
            }
            input = &input[2..];
            self.started = true;
            if flg & 0x20 != 0 {
                let id = be32(input, 0)?;
                let dict = dictionary();
                if id != adler32(dict) {
                    return Err(bad(format!("unknown header dictionary {id:#010x}")));
                }
                input = &input[4..];
                // A stored block holding the dictionary puts it in the
                // window, as a preset dictionary would.
                let len = dict.len() as u16;
                let mut stored = vec![0u8];
                stored.extend_from_slice(&len.to_le_bytes());
                stored.extend_from_slice(&(!len).to_le_bytes());
                stored.extend_from_slice(dict);
                self.run(&stored, dict.len() + 16)?;
            }
        }
        self.run(input, MAX_HEADER_BLOCK)
    }
}

/// Deflates our header blocks.
struct Deflater {
    z: Compress,
    started: bool,
}

impl Deflater {
    fn new() -> Self {
        Self {
            z: Compress::new(Compression::fast(), false),
            started: false,
        }
    }

    fn deflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() + 64);
        if !self.started {
            // zlib's header: deflate, 32 KiB window, no preset dictionary.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(1024);
            }
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            self.z
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| bad(format!("compressing headers: {e}")))?;
            let used = usize::try_from(self.z.total_in() - in0).unwrap_or(usize::MAX);
            let made = self.z.total_out() - out0;
            input = input.get(used..).unwrap_or_default();
            if input.is_empty() && (out.len() < out.capacity() || made == 0) {
                return Ok(out);
            }
            if used == 0 && made == 0 {
                return Err(bad("header compression made no progress"));
            }
        }
    }
}

fn encode_headers(headers: &Headers) -> Vec<u8> {
    // Repeated names are one entry with NUL-separated values.
    let mut merged: Vec<(String, Vec<&str>)> = Vec::new();
    for (n, v) in headers {
        let n = n.to_ascii_lowercase();
        match merged.iter_mut().find(|(m, _)| *m == n) {
            Some((_, vs)) => vs.push(v),
            None => merged.push((n, vec![v])),
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(merged.len() as u32).to_be_bytes());
    for (n, vs) in merged {
        let v = vs.join("\0");
        out.extend_from_slice(&(n.len() as u32).to_be_bytes());
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

fn decode_headers(block: &[u8]) -> Result<Headers, SpdyError> {
    let count = be32(block, 0)? as usize;
    let mut at = 4;
    let take = |at: &mut usize| -> Result<String, SpdyError> {
        let len = be32(block, *at)? as usize;
        let start = *at + 4;
        let bytes = start
            .checked_add(len)
            .and_then(|end| block.get(start..end))
            .ok_or_else(|| bad("header block truncated"))?;
        *at = start + len;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    };
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = take(&mut at)?;
        let value = take(&mut at)?;
        if name.is_empty() {
            return Err(bad("empty header name"));
        }
        let name = name.to_ascii_lowercase();
        for v in value.split('\0') {
            headers.push((name.clone(), v.to_string()));
        }
    }
    Ok(headers)
}

/// Reads the peer's header blocks.
pub struct HeaderReader(Inflater);

/// Writes our header blocks.
pub struct HeaderWriter(Deflater);

impl Default for HeaderReader {
    fn default() -> Self {
        Self(Inflater::new())
    }
}

impl Default for HeaderWriter {
    fn default() -> Self {
        Self(Deflater::new())
    }
}

impl std::fmt::Debug for HeaderReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderReader").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for HeaderWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderWriter").finish_non_exhaustive()
    }
}

impl HeaderReader {
    pub fn read(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        decode_headers(&self.0.inflate(block)?)
    }
}

impl HeaderWriter {
    pub fn write(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        self.0.deflate(&encode_headers(headers))
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

    /// One header block as kubectl's SPDY library writes it: the first
    /// starts with a zlib header naming the dictionary (FDICT and its
    /// Adler-32), every one ends with a sync flush.
    fn peer_block(z: &mut Compress, first: bool, block: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if first {
            out.extend_from_slice(&[0x78, 0xbb]);
            out.extend_from_slice(&adler32(dictionary()).to_be_bytes());
        }
        let mut buf = Vec::with_capacity(block.len() + 1024);
        z.compress_vec(block, &mut buf, FlushCompress::Sync)
            .expect("compress");
        out.extend(buf);
        out
    }

    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert_eq!(adler32(d), 0xe3c6_a7c2);
        assert!(d.starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
        assert!(d.ends_with(b"utf-,*,enq=0."));
    }

    #[test]
    fn adler32_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn reads_headers_compressed_with_the_preset_dictionary() {
        // The peer's deflate state as kubectl's would be: primed with the
        // dictionary. flate2 cannot preset one without zlib, so prime it
        // by compressing the dictionary and discarding that output.
        let mut z = Compress::new(Compression::best(), false);
        let mut sink = Vec::with_capacity(4096);
        z.compress_vec(dictionary(), &mut sink, FlushCompress::Sync)
            .expect("prime");
        let mut reader = HeaderReader::default();
        let blocks = [
            h(&[("streamtype", "stdout")]),
            h(&[("streamtype", "stderr"), ("port", "80"), ("port", "81")]),
        ];
        for (i, headers) in blocks.iter().enumerate() {
            let compressed = peer_block(&mut z, i == 0, &encode_headers(headers));
            assert_eq!(&reader.read(&compressed).expect("read"), headers);
        }
    }

    #[test]
    fn our_blocks_read_back() {
        let mut w = HeaderWriter::default();
        let mut r = HeaderReader::default();
        for headers in [h(&[]), h(&[("a", "1"), ("b", "")]), h(&[("Upper", "x")])] {
            let block = w.write(&headers).expect("write");
            let lower: Headers = headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect();
            assert_eq!(r.read(&block).expect("read"), lower);
        }
    }

    #[test]
    fn bad_blocks_are_errors() {
        // Not zlib; an unknown dictionary; lengths past the end.
        assert!(HeaderReader::default().read(&[1, 2, 3, 4]).is_err());
        assert!(
            HeaderReader::default()
                .read(&[0x78, 0xbb, 1, 2, 3, 4])
                .is_err()
        );
        assert!(HeaderReader::default().read(&[0x78]).is_err());
        assert!(decode_headers(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_headers(&[0, 0, 0, 2, 0, 0, 0, 1, b'a', 0, 0, 0, 0]).is_err());
        assert!(decode_headers(&[0, 0]).is_err());
    }
}
