//! Reserved poll tokens.
//!
//! File descriptors use tokens made by [`FdTable`](crate::FdTable): the fd in the low
//! 32 bits and a registration generation above it. The generation never has its top
//! bit set, so the reserved tokens below can never collide with an fd's token — not
//! even fd 0 or a reused fd number.

use mio::Token;

/// The token of the inbox's [`mio::Waker`].
pub const TOKEN_WAKER: Token = Token(usize::MAX);

/// The token of the signal wake-up socket that Python's `signal.set_wakeup_fd` writes to.
pub const TOKEN_SIGNAL: Token = Token(usize::MAX - 1);
