//! The I/O event mask that handlers receive.

use std::ops::{BitAnd, BitOr, BitOrAssign};

/// A set of I/O events, with Tornado's bit values (`IOLoop.READ`, `WRITE`, `ERROR`).
///
/// # Examples
/// ```
/// use mioloop::IoEvents;
/// let rw = IoEvents::READ | IoEvents::WRITE;
/// assert!(rw.contains(IoEvents::WRITE));
/// assert_eq!(rw.bits(), 0x005);
/// assert!((rw & IoEvents::ERROR).is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoEvents(u32);

impl IoEvents {
    /// No events.
    pub const NONE: IoEvents = IoEvents(0);
    /// The fd is readable (or the peer hung up).
    pub const READ: IoEvents = IoEvents(0x001);
    /// The fd is writable.
    pub const WRITE: IoEvents = IoEvents(0x004);
    /// An error condition on the fd, with Tornado's value (`EPOLLERR | EPOLLHUP`);
    /// always reported, whatever the interest.
    pub const ERROR: IoEvents = IoEvents(0x018);
    /// The peer closed its writing side (`EPOLLRDHUP`): a read will reach the end of
    /// the stream. Reported with READ to edge-triggered owners only, which must not
    /// stop reading at a short read then; never part of a mask from outside.
    pub const READ_CLOSED: IoEvents = IoEvents(0x2000);

    /// The mask from its bits; unknown bits are dropped.
    pub fn from_bits_truncate(bits: u32) -> IoEvents {
        IoEvents(bits & (Self::READ.0 | Self::WRITE.0 | Self::ERROR.0))
    }

    /// The mask's bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every event of `other` is in `self`.
    pub fn contains(self, other: IoEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` have an event in common.
    pub fn intersects(self, other: IoEvents) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether the mask is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The mio interest for this mask; `None` when it asks for neither READ nor WRITE.
    pub fn interest(self) -> Option<mio::Interest> {
        match (self.contains(Self::READ), self.contains(Self::WRITE)) {
            (true, true) => Some(mio::Interest::READABLE | mio::Interest::WRITABLE),
            (true, false) => Some(mio::Interest::READABLE),
            (false, true) => Some(mio::Interest::WRITABLE),
            (false, false) => None,
        }
    }

    /// What a mio event reports, before masking with the registered interest.
    pub fn from_event(event: &mio::event::Event) -> IoEvents {
        let mut e = IoEvents::NONE;
        if event.is_readable() || event.is_read_closed() {
            e |= IoEvents::READ;
        }
        if event.is_read_closed() {
            e |= IoEvents::READ_CLOSED;
        }
        if event.is_writable() || event.is_write_closed() {
            e |= IoEvents::WRITE;
        }
        if event.is_error() {
            e |= IoEvents::ERROR;
        }
        e
    }
}

impl BitOr for IoEvents {
    type Output = IoEvents;
    fn bitor(self, rhs: IoEvents) -> IoEvents {
        IoEvents(self.0 | rhs.0)
    }
}

impl BitOrAssign for IoEvents {
    fn bitor_assign(&mut self, rhs: IoEvents) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for IoEvents {
    type Output = IoEvents;
    fn bitand(self, rhs: IoEvents) -> IoEvents {
        IoEvents(self.0 & rhs.0)
    }
}
