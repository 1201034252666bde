//! A write buffer's water marks: when the protocol is told to pause writing
//! (the buffer grew past the high mark) and to resume (it drained to the low one).

use std::fmt;

/// asyncio's default high-water mark of a write buffer.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// Water marks that cannot be: `high < low`, or a negative one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadLimits {
    /// The high mark asked for.
    pub high: Option<isize>,
    /// The low mark asked for.
    pub low: Option<isize>,
}

impl fmt::Display for BadLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<isize>| v.map_or("None".into(), |v| v.to_string());
        write!(
            f,
            "high ({}) must be >= low ({}) must be >= 0",
            show(self.high),
            show(self.low)
        )
    }
}

impl std::error::Error for BadLimits {}

/// The marks, and whether the protocol was told to pause.
///
/// # Examples
/// ```
/// use mioloop::connection::Flow;
/// let mut flow = Flow::default();
/// assert_eq!(flow.limits(), (16 * 1024, 64 * 1024));
/// assert!(!flow.due(true, 1000)); // under the high mark
/// assert!(flow.due(true, 100_000)); // past it: pause, once
/// assert!(!flow.due(true, 200_000));
/// assert!(flow.due(false, 0)); // drained: resume
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    high: usize,
    low: usize,
    paused: bool,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            high: DEFAULT_HIGH_WATER,
            low: DEFAULT_HIGH_WATER / 4,
            paused: false,
        }
    }
}

impl Flow {
    /// Whether the protocol is now due a pause (`pause`: `buffered` passed the high
    /// mark) or a resume (it drained to the low mark); if so, it counts as told.
    pub fn due(&mut self, pause: bool, buffered: usize) -> bool {
        let due = if pause {
            !self.paused && buffered > self.high
        } else {
            self.paused && buffered <= self.low
        };
        if due {
            self.paused = pause;
        }
        due
    }

    /// `get_write_buffer_limits()`: `(low, high)`.
    pub fn limits(&self) -> (usize, usize) {
        (self.low, self.high)
    }

    /// `set_write_buffer_limits(high, low)`, with asyncio's defaults: 64 KiB, and a
    /// quarter of the high mark (or four times the low one).
    pub fn set_limits(&mut self, high: Option<isize>, low: Option<isize>) -> Result<(), BadLimits> {
        let refused = BadLimits { high, low };
        let size = |v: Option<isize>| v.map(usize::try_from).transpose().map_err(|_| refused);
        let (high_size, low_size) = match (size(high)?, size(low)?) {
            (None, None) => (DEFAULT_HIGH_WATER, DEFAULT_HIGH_WATER / 4),
            (Some(h), None) => (h, h / 4),
            (None, Some(l)) => (l.saturating_mul(4), l),
            (Some(h), Some(l)) => (h, l),
        };
        if high_size < low_size {
            return Err(refused);
        }
        (self.high, self.low) = (high_size, low_size);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_asyncios_defaults_and_refuse_what_cannot_be() {
        let mut flow = Flow::default();
        flow.set_limits(Some(1000), None).unwrap();
        assert_eq!(flow.limits(), (250, 1000));
        flow.set_limits(None, Some(10)).unwrap();
        assert_eq!(flow.limits(), (10, 40));
        let err = flow.set_limits(Some(1), Some(2)).unwrap_err();
        assert_eq!(err.to_string(), "high (1) must be >= low (2) must be >= 0");
        assert!(flow.set_limits(Some(-1), None).is_err());
        assert_eq!(flow.limits(), (10, 40), "a refused change changes nothing");
    }

    #[test]
    fn the_protocol_is_paused_once_and_resumed_once() {
        let mut flow = Flow::default();
        flow.set_limits(Some(100), Some(10)).unwrap();
        assert!(!flow.due(false, 0), "never paused: no resume");
        assert!(flow.due(true, 101));
        assert!(!flow.due(true, 500));
        assert!(!flow.due(false, 11));
        assert!(flow.due(false, 10));
        assert!(!flow.due(false, 0));
    }
}
