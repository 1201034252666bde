//! The engine's fd handling, driven through the pure-Rust `NativeLoop`.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use mioloop::{FdError, IoEvents, NativeLoop};

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// Runs iterations until `done` or ~2 s pass.
#[track_caller]
fn run_until(ev: &mut NativeLoop, done: impl Fn() -> bool) {
    let stop_at = ev.time() + 2_000_000_000;
    let guard = ev.call_later(Duration::from_secs(2), |_| {});
    while !done() {
        assert!(ev.time() < stop_at, "condition not reached in 2 s");
        ev.run_once().unwrap();
    }
    ev.cancel(guard);
}

#[test]
fn handler_is_called_until_the_fd_is_drained() {
    let mut ev = NativeLoop::new().unwrap();
    let (a, mut b) = pair();
    b.write_all(&[7u8; 100]).unwrap();
    let reads = Rc::new(Cell::new(0));
    let reader = Rc::new(RefCell::new(a));
    let (r, s) = (reads.clone(), reader.clone());
    ev.add_handler(
        reader.borrow().as_raw_fd(),
        IoEvents::READ,
        move |_, _, events| {
            assert_eq!(events, IoEvents::READ);
            let mut byte = [0u8; 1];
            s.borrow_mut().read_exact(&mut byte).unwrap();
            r.set(r.get() + 1);
        },
    )
    .unwrap();
    run_until(&mut ev, || reads.get() == 100);
    // Drained: more iterations call it no more.
    ev.call_later(Duration::from_millis(20), |ev| ev.stop());
    ev.run().unwrap();
    assert_eq!(reads.get(), 100);
}

#[test]
fn read_interest_never_reports_write() {
    let mut ev = NativeLoop::new().unwrap();
    let (a, mut b) = pair();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let reader = RefCell::new(a.try_clone().unwrap());
    ev.add_handler(a.as_raw_fd(), IoEvents::READ, move |_, _, events| {
        s.borrow_mut().push(events);
        let _ = reader.borrow_mut().read(&mut [0u8; 16]);
    })
    .unwrap();
    b.write_all(b"x").unwrap();
    run_until(&mut ev, || !seen.borrow().is_empty());
    assert_eq!(*seen.borrow(), [IoEvents::READ]);
}

#[test]
fn registering_twice_fails_and_keeps_the_first_handler() {
    let mut ev = NativeLoop::new().unwrap();
    let (a, mut b) = pair();
    let which = Rc::new(Cell::new(0));
    let w1 = which.clone();
    ev.add_handler(a.as_raw_fd(), IoEvents::READ, move |ev, fd, _| {
        w1.set(1);
        ev.remove_handler(fd);
    })
    .unwrap();
    let w2 = which.clone();
    let err = ev
        .add_handler(a.as_raw_fd(), IoEvents::READ, move |_, _, _| w2.set(2))
        .unwrap_err();
    assert!(matches!(err, FdError::AlreadyRegistered(_)), "{err:?}");
    b.write_all(b"x").unwrap();
    run_until(&mut ev, || which.get() != 0);
    assert_eq!(which.get(), 1);
}

#[test]
fn invalid_fds_are_refused() {
    let mut ev = NativeLoop::new().unwrap();
    assert!(matches!(
        ev.add_handler(-1, IoEvents::READ, |_, _, _| {}),
        Err(FdError::Negative(-1))
    ));
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let err = ev
        .add_handler(file.as_raw_fd(), IoEvents::READ, |_, _, _| {})
        .unwrap_err();
    assert!(
        matches!(err, FdError::Os(ref e) if e.raw_os_error() == Some(libc::EPERM)),
        "{err:?}"
    );
    // A number far above the ones in use (fds are allocated lowest first), checked
    // to be closed: the kernel's EBADF comes back as the error.
    let closed = (4000..5000)
        // SAFETY: F_GETFD only queries the descriptor table.
        .find(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1)
        .expect("a closed fd number");
    let err = ev
        .add_handler(closed, IoEvents::READ, |_, _, _| {})
        .unwrap_err();
    assert!(
        matches!(err, FdError::Os(ref e) if e.raw_os_error() == Some(libc::EBADF)),
        "{err:?}"
    );
    assert!(!ev.remove_handler(closed));
    assert!(!ev.remove_handler(12345));
}

#[test]
fn closed_fd_with_reused_number_does_not_reach_the_old_handler() {
    let mut ev = NativeLoop::new().unwrap();
    let (a, mut a_peer) = pair();
    let old_calls = Rc::new(Cell::new(0));
    let o = old_calls.clone();
    let fd = a.into_raw_fd();
    ev.add_handler(fd, IoEvents::READ, move |_, _, _| o.set(o.get() + 1))
        .unwrap();
    // Without remove_handler, the number now names another socket: dup2 closes the
    // old one and reuses the number in one step, so no other thread can take it.
    let (c, mut d) = pair();
    // SAFETY: `fd` is ours (taken from `a`) and `c` is open; dup2 replaces `fd`.
    assert_eq!(unsafe { libc::dup2(c.as_raw_fd(), fd) }, fd);
    // SAFETY: `fd` now names a socket nothing else owns.
    let reused = RefCell::new(unsafe { UnixStream::from_raw_fd(fd) });
    let new_calls = Rc::new(Cell::new(0));
    let n = new_calls.clone();
    ev.add_handler(fd, IoEvents::READ, move |_, _, _| {
        let _ = reused.borrow_mut().read(&mut [0u8; 8]);
        n.set(n.get() + 1);
    })
    .unwrap();
    a_peer.write_all(b"old").unwrap_or(()); // the old socket is gone: nobody reads it
    d.write_all(b"new").unwrap();
    run_until(&mut ev, || new_calls.get() > 0);
    assert_eq!(old_calls.get(), 0);
    drop(c);
}

#[test]
fn an_fd_watched_for_nothing_then_closed_and_reused_is_a_new_registration() {
    for interest in [IoEvents::NONE, IoEvents::ERROR] {
        let mut ev = NativeLoop::new().unwrap();
        let (a, _a_peer) = pair();
        let old_calls = Rc::new(Cell::new(0));
        let o = old_calls.clone();
        let fd = a.into_raw_fd();
        ev.add_handler(fd, interest, move |_, _, _| o.set(o.get() + 1))
            .unwrap();
        // Out of the poll, the kernel keeps nothing: the same file is still refused.
        assert!(matches!(
            ev.add_handler(fd, IoEvents::READ, |_, _, _| {}),
            Err(FdError::AlreadyRegistered(_))
        ));
        let (c, mut d) = pair();
        // SAFETY: `fd` is ours (taken from `a`) and `c` is open; dup2 replaces `fd`.
        assert_eq!(unsafe { libc::dup2(c.as_raw_fd(), fd) }, fd);
        // SAFETY: `fd` now names a socket nothing else owns.
        let reused = RefCell::new(unsafe { UnixStream::from_raw_fd(fd) });
        // Another file at the number: not the registration's fd any more.
        assert!(matches!(
            ev.update_handler(fd, IoEvents::READ),
            Err(FdError::NotRegistered(_))
        ));
        let new_calls = Rc::new(Cell::new(0));
        let n = new_calls.clone();
        ev.add_handler(fd, IoEvents::READ, move |_, _, _| {
            let _ = reused.borrow_mut().read(&mut [0u8; 8]);
            n.set(n.get() + 1);
        })
        .unwrap();
        d.write_all(b"new").unwrap();
        run_until(&mut ev, || new_calls.get() > 0);
        assert_eq!(old_calls.get(), 0);
        drop(c);
    }
}

#[test]
fn removing_a_ready_fd_from_an_earlier_handler_skips_it() {
    let mut ev = NativeLoop::new().unwrap();
    let (a, mut a_peer) = pair();
    let (b, mut b_peer) = pair();
    let calls = Rc::new(RefCell::new(Vec::new()));
    let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
    for (fd, other) in [(fa, fb), (fb, fa)] {
        let c = calls.clone();
        ev.add_handler(fd, IoEvents::READ, move |ev, fd, _| {
            c.borrow_mut().push(fd);
            ev.remove_handler(other);
            ev.remove_handler(fd);
        })
        .unwrap();
    }
    a_peer.write_all(b"x").unwrap();
    b_peer.write_all(b"x").unwrap();
    std::thread::sleep(Duration::from_millis(10));
    run_until(&mut ev, || !calls.borrow().is_empty());
    ev.call_later(Duration::from_millis(20), |ev| ev.stop());
    ev.run().unwrap();
    assert_eq!(calls.borrow().len(), 1, "{:?}", calls.borrow());
    drop((a, b));
}

#[test]
fn undrained_fd_is_called_again_while_callbacks_keep_the_loop_busy() {
    let mut ev = NativeLoop::new().unwrap();
    let (a, mut b) = pair();
    b.write_all(&[1u8; 30]).unwrap();
    let reads = Rc::new(Cell::new(0));
    let r = reads.clone();
    let reader = RefCell::new(a.try_clone().unwrap());
    ev.add_handler(a.as_raw_fd(), IoEvents::READ, move |_, _, _| {
        reader.borrow_mut().read_exact(&mut [0u8; 1]).unwrap();
        r.set(r.get() + 1);
    })
    .unwrap();
    // A callback that always schedules itself: no poll ever blocks.
    fn spin(ev: &mut NativeLoop, reads: Rc<Cell<u32>>) {
        if reads.get() < 30 {
            ev.call_soon(move |ev| spin(ev, reads));
        }
    }
    let r = reads.clone();
    ev.call_soon(move |ev| spin(ev, r));
    run_until(&mut ev, || reads.get() == 30);
}

#[test]
fn a_watched_fd_made_ready_is_served_on_the_next_iteration_however_busy_the_loop() {
    // asyncio polls every iteration: a peer written to, then two
    // `await asyncio.sleep(0)`, has its data. Pacing the poll in time would let it
    // wait behind however many fast iterations fit in the interval.
    let mut ev = NativeLoop::new().unwrap();
    let (a, b) = pair();
    let served = Rc::new(Cell::new(false));
    let s = served.clone();
    let reader = RefCell::new(a.try_clone().unwrap());
    ev.add_handler(a.as_raw_fd(), IoEvents::READ, move |_, _, _| {
        let _ = reader.borrow_mut().read(&mut [0u8; 8]);
        s.set(true);
    })
    .unwrap();
    fn spin(ev: &mut NativeLoop) {
        ev.call_soon(spin);
    }
    ev.call_soon(spin);
    for _ in 0..1000 {
        ev.run_once().unwrap();
    }
    let writer = RefCell::new(b);
    ev.call_soon(move |_| {
        writer.borrow_mut().write_all(b"x").unwrap();
    });
    ev.run_once().unwrap(); // the write
    assert!(!served.get());
    ev.run_once().unwrap(); // polled: the handler runs after the callbacks queued
    assert!(
        served.get(),
        "a readable fd waited beyond the next iteration"
    );
}
