//! What a connection has not sent yet: the bytes of a stream
//! ([`WriteQueue`](crate::WriteQueue)), or whole datagrams with where each goes.

use std::collections::VecDeque;

use crate::WriteQueue;

/// A connection's queue of unsent data, as the water marks see it.
pub trait Outbox: Default {
    /// What counts towards the water marks (`get_write_buffer_size()`).
    fn size(&self) -> usize;

    /// Whether nothing waits.
    fn is_empty(&self) -> bool {
        self.size() == 0
    }
}

impl Outbox for WriteQueue {
    fn size(&self) -> usize {
        self.len()
    }
}

/// Bytes a queued datagram counts for besides its payload (asyncio's figure for
/// the header).
pub const DATAGRAM_OVERHEAD: usize = 8;

/// A datagram waiting for the socket, with where it goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram<A> {
    /// The payload.
    pub data: Box<[u8]>,
    /// Its destination (the host's notion of an address).
    pub to: A,
}

/// Datagrams waiting for the socket, each kept whole, in order.
///
/// # Examples
/// ```
/// use mioloop::connection::{DatagramQueue, Outbox};
/// let mut queue = DatagramQueue::default();
/// queue.push(b"hello", "a");
/// assert_eq!(queue.size(), 5 + 8);
/// let first = queue.pop().unwrap();
/// queue.push_front(first); // the socket did not take it
/// assert_eq!(queue.pop().unwrap().to, "a");
/// assert!(queue.is_empty());
/// ```
#[derive(Debug)]
pub struct DatagramQueue<A> {
    queue: VecDeque<Datagram<A>>,
    size: usize,
}

impl<A> Default for DatagramQueue<A> {
    fn default() -> Self {
        DatagramQueue {
            queue: VecDeque::new(),
            size: 0,
        }
    }
}

impl<A> DatagramQueue<A> {
    /// Queues a copy of `data` for `to`.
    pub fn push(&mut self, data: &[u8], to: A) {
        self.size += data.len() + DATAGRAM_OVERHEAD;
        self.queue.push_back(Datagram {
            data: data.into(),
            to,
        });
    }

    /// Takes the next datagram.
    pub fn pop(&mut self) -> Option<Datagram<A>> {
        let datagram = self.queue.pop_front()?;
        self.size -= datagram.data.len() + DATAGRAM_OVERHEAD;
        Some(datagram)
    }

    /// Puts back at the front a datagram the socket did not take.
    pub fn push_front(&mut self, datagram: Datagram<A>) {
        self.size += datagram.data.len() + DATAGRAM_OVERHEAD;
        self.queue.push_front(datagram);
    }

    /// Visits each destination (for a garbage collector's traversal).
    pub fn for_each_target(&self, f: impl FnMut(&A)) {
        self.queue.iter().map(|d| &d.to).for_each(f);
    }
}

impl<A> Outbox for DatagramQueue<A> {
    fn size(&self) -> usize {
        self.size
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_stay_whole_and_in_order_with_their_overhead_counted() {
        let mut queue = DatagramQueue::default();
        queue.push(b"one", 1);
        queue.push(b"", 2);
        queue.push(b"three", 3);
        assert_eq!(queue.size(), 3 + 5 + 3 * DATAGRAM_OVERHEAD);
        let mut targets = Vec::new();
        queue.for_each_target(|t| targets.push(*t));
        assert_eq!(targets, [1, 2, 3]);
        let first = queue.pop().unwrap();
        assert_eq!((&*first.data, first.to), (&b"one"[..], 1));
        let empty = queue.pop().unwrap();
        assert!(empty.data.is_empty());
        assert!(!queue.is_empty(), "an empty datagram was one");
        queue.push_front(empty);
        assert_eq!(queue.size(), 5 + 2 * DATAGRAM_OVERHEAD);
    }

    #[test]
    fn an_empty_queue_with_an_empty_datagram_is_not_empty() {
        let mut queue = DatagramQueue::default();
        queue.push(b"", ());
        assert_eq!(queue.size(), DATAGRAM_OVERHEAD);
        assert!(!queue.is_empty());
        queue.pop();
        assert!(queue.is_empty());
    }
}
