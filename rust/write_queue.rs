//! A transport's write buffer: bytes the socket did not take yet, copied out of
//! Python's objects, sent in order with vectored writes.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

/// Small writes are appended to the last chunk while it stays under this size,
/// so a stream of tiny writes does not become a chunk each.
const COALESCE_BELOW: usize = 16 * 1024;

/// At most this many chunks go into one vectored write.
const MAX_IOVECS: usize = 64;

/// Queued bytes, in order.
///
/// # Examples
/// ```
/// use mioloop::WriteQueue;
/// let mut queue = WriteQueue::new();
/// queue.push(b"hello ");
/// queue.push(b"world");
/// let mut sent = Vec::new();
/// // A socket that takes 4 bytes, then would block.
/// let done = queue.flush(|bufs| {
///     if !sent.is_empty() {
///         return Err(std::io::ErrorKind::WouldBlock.into());
///     }
///     let first: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).take(4).collect();
///     sent.extend_from_slice(&first);
///     Ok(first.len())
/// });
/// assert!(!done.unwrap());
/// assert_eq!(sent, b"hell");
/// assert_eq!(queue.len(), 7);
/// ```
#[derive(Debug, Default)]
pub struct WriteQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already sent.
    sent_of_front: usize,
    len: usize,
}

impl WriteQueue {
    /// An empty queue (it allocates nothing until bytes are pushed).
    pub fn new() -> Self {
        WriteQueue::default()
    }

    /// How many bytes are queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes are queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a copy of `data`.
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        // The front chunk is being sent from an offset: do not grow it.
        let growable = self.chunks.len() > 1 || self.sent_of_front == 0;
        if let Some(last) = self.chunks.back_mut().filter(|_| growable) {
            if last.len() + data.len() <= COALESCE_BELOW {
                last.extend_from_slice(data);
                return;
            }
        }
        self.chunks.push_back(data.to_vec());
    }

    /// Drops everything queued (an aborted connection), releasing the memory.
    pub fn clear(&mut self) {
        *self = WriteQueue::default();
    }

    /// Sends with `write` (a vectored send) until the queue is empty — `Ok(true)` —
    /// or `write` would block — `Ok(false)`. Any other error is returned; what was
    /// sent before it is gone from the queue.
    pub fn flush(
        &mut self,
        mut write: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<bool> {
        while !self.is_empty() {
            let sent = {
                let mut bufs: Vec<IoSlice<'_>> =
                    Vec::with_capacity(self.chunks.len().min(MAX_IOVECS));
                for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                    let start = if i == 0 { self.sent_of_front } else { 0 };
                    bufs.push(IoSlice::new(&chunk[start..]));
                }
                match write(&bufs) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e),
                }
            };
            if sent == 0 {
                return Ok(false);
            }
            self.consume(sent);
        }
        Ok(true)
    }

    fn consume(&mut self, mut sent: usize) {
        self.len -= sent;
        while sent > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.len() - self.sent_of_front;
            if sent < left {
                self.sent_of_front += sent;
                return;
            }
            sent -= left;
            self.sent_of_front = 0;
            self.chunks.pop_front();
        }
        if self.chunks.is_empty() {
            // An idle connection keeps no buffer.
            self.chunks = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taking(
        limit: usize,
        out: &mut Vec<u8>,
    ) -> impl FnMut(&[IoSlice<'_>]) -> io::Result<usize> + '_ {
        let mut budget = limit;
        move |bufs| {
            if budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(budget - n);
                out.extend_from_slice(&b[..take]);
                n += take;
                if n == budget {
                    break;
                }
            }
            budget -= n;
            Ok(n)
        }
    }

    #[test]
    fn bytes_leave_in_order_across_partial_sends() {
        let mut queue = WriteQueue::new();
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        for piece in data.chunks(777) {
            queue.push(piece);
        }
        let mut out = Vec::new();
        let mut rounds = 0;
        while !queue.is_empty() {
            assert!(!queue.flush(taking(3_001, &mut out)).unwrap() || queue.is_empty());
            rounds += 1;
        }
        assert_eq!(out, data);
        assert!(rounds > 30);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_write_error_is_returned_and_what_was_sent_is_gone() {
        let mut queue = WriteQueue::new();
        queue.push(b"abcdef");
        let mut calls = 0;
        let err = queue
            .flush(|_| {
                calls += 1;
                if calls == 1 {
                    Ok(2)
                } else {
                    Err(io::ErrorKind::BrokenPipe.into())
                }
            })
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(queue.len(), 4);
    }

    #[test]
    fn clear_drops_everything() {
        let mut queue = WriteQueue::new();
        queue.push(&[1; 100_000]);
        queue.clear();
        assert!(queue.is_empty());
        assert!(queue.flush(|_| panic!("nothing to send")).unwrap());
    }
}
