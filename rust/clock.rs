//! The monotonic clock, shared with Python's `time.monotonic()`.
//!
//! Deadlines are whole nanoseconds of the clock behind `time.monotonic()`
//! (`CLOCK_MONOTONIC` on Linux; see [`crate::platform::MONOTONIC_CLOCK`]), so
//! `IOLoop.time()` and `loop.time()` agree with it.
//! Conversions from seconds never panic: NaN is an error, anything past the
//! representable range saturates to [`NEVER`].

use std::fmt;
use std::time::Duration;

/// Nanoseconds of the monotonic clock.
pub type Nanos = u64;

/// A deadline that is never reached: `inf` and delays too large to represent.
pub const NEVER: Nanos = Nanos::MAX;

/// A time value that cannot be a deadline (NaN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTime;

impl fmt::Display for InvalidTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("time must be a number, not NaN")
    }
}

impl std::error::Error for InvalidTime {}

/// The current monotonic time.
///
/// # Examples
/// ```
/// let a = mioloop::monotonic_now();
/// let b = mioloop::monotonic_now();
/// assert!(b >= a);
/// ```
pub fn monotonic_now() -> Nanos {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and the clock is always
    // available, so clock_gettime only writes into `ts`.
    let rc = unsafe { libc::clock_gettime(crate::platform::MONOTONIC_CLOCK, &mut ts) };
    debug_assert_eq!(rc, 0);
    // tv_sec and tv_nsec are non-negative for CLOCK_MONOTONIC.
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Seconds (as Python's `time.monotonic()` reports them) of a monotonic time;
/// [`NEVER`] is infinity.
///
/// # Examples
/// ```
/// use mioloop::{nanos_to_secs, NEVER};
/// assert_eq!(nanos_to_secs(1_500_000_000), 1.5);
/// assert_eq!(nanos_to_secs(NEVER), f64::INFINITY);
/// ```
pub fn nanos_to_secs(nanos: Nanos) -> f64 {
    if nanos == NEVER {
        return f64::INFINITY;
    }
    nanos as f64 / 1e9
}

fn secs_to_nanos(secs: f64) -> Result<Nanos, InvalidTime> {
    if secs.is_nan() {
        return Err(InvalidTime);
    }
    if secs <= 0.0 {
        return Ok(0);
    }
    // Round up, so that a deadline never falls before the requested time.
    Ok(match Duration::try_from_secs_f64(secs) {
        Ok(d) => {
            let whole = u64::try_from(d.as_nanos()).unwrap_or(NEVER);
            if (whole as f64) < secs * 1e9 {
                whole.saturating_add(1)
            } else {
                whole
            }
        }
        Err(_) => NEVER,
    })
}

/// The deadline for an absolute monotonic time in seconds (`IOLoop.add_timeout`,
/// `loop.call_at`). Past times are due at once; `inf` is [`NEVER`].
///
/// # Examples
/// ```
/// use mioloop::{deadline_at, NEVER};
/// assert_eq!(deadline_at(1.5), Ok(1_500_000_000));
/// assert_eq!(deadline_at(-3.0), Ok(0));
/// assert_eq!(deadline_at(f64::INFINITY), Ok(NEVER));
/// assert!(deadline_at(f64::NAN).is_err());
/// ```
pub fn deadline_at(secs: f64) -> Result<Nanos, InvalidTime> {
    secs_to_nanos(secs)
}

/// The deadline `delay` seconds after `now` (`call_later`). Negative delays are due
/// at once; huge delays saturate to [`NEVER`].
///
/// # Examples
/// ```
/// use mioloop::{deadline_after, NEVER};
/// assert_eq!(deadline_after(10, 0.000_001), Ok(1_010));
/// assert_eq!(deadline_after(10, -1.0), Ok(10));
/// assert_eq!(deadline_after(10, 2f64.powi(80)), Ok(NEVER));
/// ```
pub fn deadline_after(now: Nanos, delay: f64) -> Result<Nanos, InvalidTime> {
    Ok(now.saturating_add(secs_to_nanos(delay)?))
}
