//! Writes to a file of a container's writable layer, kept to its
//! `--storage-opt size=` (`vfs::Quota`): a stream that wraps wasmtime-wasi's
//! own and lets a write through only once the bytes it adds to the file fit.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::vfs::Quota;

pub(super) struct QuotaStream {
    inner: DynOutputStream,
    file: Arc<std::fs::File>,
    /// Where the next write goes; `None`: at the end (an append stream).
    offset: Option<u64>,
    quota: Arc<Quota>,
}

impl QuotaStream {
    pub(super) fn new(
        inner: DynOutputStream,
        file: Arc<std::fs::File>,
        offset: Option<u64>,
        quota: Arc<Quota>,
    ) -> Self {
        Self {
            inner,
            file,
            offset,
            quota,
        }
    }

    /// Counts what writing `len` bytes adds to the file, or refuses.
    fn admit(&mut self, len: usize) -> StreamResult<()> {
        let len = len as u64;
        if !admit(&self.quota, &self.file, self.offset, len) {
            return Err(StreamError::LastOperationFailed(
                crate::vfs::no_space().into(),
            ));
        }
        if let Some(o) = &mut self.offset {
            *o = o.saturating_add(len);
        }
        Ok(())
    }
}

/// Counts the bytes that writing `len` at `offset` (`None`: at the end)
/// adds to `file`; false, and nothing counted, past the limit.
pub(super) fn admit(quota: &Quota, file: &std::fs::File, offset: Option<u64>, len: u64) -> bool {
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let end = offset.unwrap_or(size).saturating_add(len);
    quota.reserve(end.saturating_sub(size))
}

#[async_trait::async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.admit(bytes.len())?;
        self.inner.write(bytes)
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        // A write still in flight changes the file's size: wait for it.
        self.inner.ready().await;
        self.admit(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[async_trait::async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}
