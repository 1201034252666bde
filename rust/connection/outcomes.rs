//! What a connection is, and what its state machine answers: the kinds of fd, and
//! the outcome of each decision (`Gate`, `Closing`, `Eof`, `Drained`, `Refused`),
//! which the driver acts on.

/// What the connection's fd is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A connected stream socket: reads, writes, half-close.
    Stream,
    /// The read end of a pipe (a FIFO, a pty): EOF closes it.
    ReadPipe,
    /// The write end of a pipe; with `watch_close`, the fd is watched for its
    /// reader going away (it then reports an error or EOF), which closes it.
    WritePipe {
        /// The fd reports its reader's departure.
        watch_close: bool,
    },
    /// A datagram socket: whole datagrams each way, no EOF.
    Datagram,
}

/// Why a write is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A read pipe only reads.
    ReadPipe,
    /// `write_eof()` was called.
    AfterEof,
    /// A sendfile is sending meanwhile.
    Sendfile,
}

/// What a readable (or failing) fd means now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readable {
    /// Read: the protocol takes what comes.
    Read,
    /// Nothing to read for (paused, closing, lost, EOF seen).
    Stop,
    /// A write pipe's fd reports its reader gone.
    ReaderGone,
}

/// What a write may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Nothing to write.
    Nothing,
    /// The connection is lost: the data is dropped (asyncio ignores it), and past a
    /// few such writes it warns.
    Dropped {
        /// This write is past the threshold.
        warn: bool,
    },
    /// Send it, or queue it.
    Open,
}

/// What `close()` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// It was closing already.
    Already,
    /// Nothing to flush: the connection is lost now.
    LostNow,
    /// The queue is flushed first, then the connection is lost.
    Flushing,
}

/// What `write_eof()` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eof {
    /// Nothing (again, or closing).
    Nothing,
    /// A write pipe has no half-close: it closes.
    Close,
    /// Shut the write side now (nothing is queued).
    ShutdownNow,
    /// Shut it once the queue is flushed.
    AfterFlush,
}

/// What follows a queue flushed empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Nothing more.
    Nothing,
    /// It was closing: the connection is lost now.
    Lost,
    /// `write_eof()` waited for it: shut the write side.
    ShutdownWrite,
}
