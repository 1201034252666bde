//! Timers and cross-thread wake-ups of the engine, through the pure-Rust `NativeLoop`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use mioloop::{monotonic_now, NativeLoop, DRAIN_LIMIT};

#[test]
fn timers_fire_in_deadline_then_insertion_order() {
    let mut ev = NativeLoop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let base = ev.time() + 5_000_000;
    for (i, offset) in [(0, 2), (1, 1), (2, 1), (3, 0), (4, 2)] {
        let o = order.clone();
        ev.call_at(base + offset, move |_| o.borrow_mut().push(i));
    }
    ev.call_at(base + 10, |ev| ev.stop());
    ev.run().unwrap();
    assert_eq!(*order.borrow(), [3, 1, 2, 0, 4]);
}

#[test]
fn timer_never_fires_early() {
    let mut ev = NativeLoop::new().unwrap();
    let start = Instant::now();
    let fired = Rc::new(RefCell::new(None));
    let f = fired.clone();
    ev.call_later(Duration::from_millis(70), move |ev| {
        *f.borrow_mut() = Some(start.elapsed());
        ev.stop();
    });
    ev.run().unwrap();
    let elapsed = fired.borrow().unwrap();
    assert!(
        elapsed >= Duration::from_millis(70),
        "fired after {elapsed:?}"
    );
}

#[test]
fn timer_cancelled_by_a_timer_of_the_same_batch_does_not_run() {
    let mut ev = NativeLoop::new().unwrap();
    let ran = Rc::new(RefCell::new(Vec::new()));
    let when = ev.time() + 1_000_000;
    let victim = Rc::new(RefCell::new(None));
    let (r, v) = (ran.clone(), victim.clone());
    ev.call_at(when, move |ev| {
        r.borrow_mut().push("first");
        assert!(ev.cancel(v.borrow().unwrap()));
    });
    let r = ran.clone();
    *victim.borrow_mut() = Some(ev.call_at(when, move |_| r.borrow_mut().push("victim")));
    ev.call_at(when + 1, |ev| ev.stop());
    std::thread::sleep(Duration::from_millis(3));
    ev.run().unwrap();
    assert_eq!(*ran.borrow(), ["first"]);
}

#[test]
fn overdue_timer_fires_without_io() {
    let mut ev = NativeLoop::new().unwrap();
    ev.call_at(0, |ev| ev.stop());
    let start = Instant::now();
    ev.run().unwrap();
    assert!(start.elapsed() < Duration::from_millis(50));
}

#[test]
fn other_thread_wakes_an_idle_loop_every_time() {
    let mut ev = NativeLoop::new().unwrap();
    let remote = ev.handle();
    let (ack_tx, ack_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<u64>();
    let thread = std::thread::spawn(move || {
        for _ in 0..10_000 {
            let sent = monotonic_now();
            let d = done_tx.clone();
            remote.call_soon_threadsafe(move |ev| {
                d.send(monotonic_now() - sent).unwrap();
                ev.stop();
            });
            // The loop acknowledges each wake-up before the next one is sent.
            if ack_rx.recv_timeout(Duration::from_secs(5)).is_err() {
                return;
            }
        }
    });
    for i in 0..10_000 {
        // A lost wake-up ends this run through the guard, and fails the test
        // instead of hanging it.
        let guard = ev.call_later(Duration::from_secs(5), |ev| ev.stop());
        ev.run().unwrap();
        ev.cancel(guard);
        let latency = done_rx
            .try_recv()
            .unwrap_or_else(|_| panic!("wake-up {i} was lost: the loop slept 5 s"));
        assert!(latency < 100_000_000, "wake-up {i} took {latency} ns");
        ack_tx.send(()).unwrap();
    }
    thread.join().unwrap();
}

#[test]
fn callbacks_added_by_callbacks_wait_for_the_next_iteration() {
    let mut ev = NativeLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    ev.call_soon(move |ev| {
        l.borrow_mut().push("a");
        let l2 = l.clone();
        ev.call_soon(move |_| l2.borrow_mut().push("c"));
    });
    let l = log.clone();
    ev.call_soon(move |_| l.borrow_mut().push("b"));
    ev.run_once().unwrap();
    assert_eq!(*log.borrow(), ["a", "b"]);
    ev.run_once().unwrap();
    assert_eq!(*log.borrow(), ["a", "b", "c"]);
}

#[test]
fn a_cross_thread_backlog_is_taken_in_bounded_batches_in_order_and_timers_keep_their_turn() {
    let mut ev = NativeLoop::new().unwrap();
    let remote = ev.handle();
    let order = Arc::new(Mutex::new(Vec::new()));
    let total = 3 * DRAIN_LIMIT + 5;
    for i in 0..total {
        let order = order.clone();
        assert!(remote.call_soon_threadsafe(move |_| order.lock().unwrap().push(i)));
    }
    let fired_after = Rc::new(Cell::new(None));
    let (seen, fired) = (order.clone(), fired_after.clone());
    ev.call_later(Duration::ZERO, move |_| {
        fired.set(Some(seen.lock().unwrap().len()))
    });
    ev.run_once().unwrap();
    // The timer ran after at most two batches (a drain before and after the poll),
    // not behind the whole backlog.
    let ran_before_timer = fired_after
        .get()
        .expect("the due timer ran in the first iteration");
    assert!(
        (1..=2 * DRAIN_LIMIT).contains(&ran_before_timer),
        "{ran_before_timer} callbacks ran before the due timer"
    );
    // A batch left behind without a wake-up would block the poll: the guard then
    // ends it, and the count of iterations fails the test instead of hanging it.
    ev.call_later(Duration::from_secs(5), |_| {});
    let mut iterations = 1;
    while order.lock().unwrap().len() < total {
        assert!(iterations < 4, "the backlog was not taken in 4 iterations");
        ev.run_once().unwrap();
        iterations += 1;
    }
    assert_eq!(*order.lock().unwrap(), (0..total).collect::<Vec<_>>());
}
