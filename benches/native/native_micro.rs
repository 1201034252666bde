//! The micro workloads of `benches/workloads.py`, on mioloop's engine driven by Rust
//! closures: the ceiling of the Python rows. Prints the same JSON.
//!
//! ```text
//! native-micro WORKLOAD --n N
//! ```

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mioloop::{IoEvents, NativeLoop};

fn chain(n: u64) -> f64 {
    fn link(ev: &mut NativeLoop, left: u64) {
        if left == 0 {
            ev.stop();
        } else {
            ev.call_soon(move |ev| link(ev, left - 1));
        }
    }
    let mut ev = NativeLoop::new().expect("loop");
    ev.call_soon(move |ev| link(ev, n - 1));
    let start = Instant::now();
    ev.run().expect("run");
    n as f64 / start.elapsed().as_secs_f64()
}

fn burst(n: u64) -> f64 {
    let mut ev = NativeLoop::new().expect("loop");
    let left = Rc::new(Cell::new(n));
    ev.call_soon(move |ev| {
        for _ in 0..n {
            let left = left.clone();
            ev.call_soon(move |ev| {
                left.set(left.get() - 1);
                if left.get() == 0 {
                    ev.stop();
                }
            });
        }
    });
    let start = Instant::now();
    ev.run().expect("run");
    n as f64 / start.elapsed().as_secs_f64()
}

fn timers(n: u64, cancel_half: bool) -> f64 {
    let mut ev = NativeLoop::new().expect("loop");
    let expected = if cancel_half { n / 2 } else { n };
    let fired = Rc::new(Cell::new(0u64));
    // A fixed linear congruential sequence: the same delays on every run.
    let mut seed: u64 = 42;
    let delays: Vec<Duration> = (0..n)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            Duration::from_nanos((seed >> 33) % 50_000_000)
        })
        .collect();
    ev.call_soon(move |ev| {
        let keys: Vec<_> = delays
            .iter()
            .map(|&d| {
                let fired = fired.clone();
                ev.call_later(d, move |ev| {
                    fired.set(fired.get() + 1);
                    if fired.get() == expected {
                        ev.stop();
                    }
                })
            })
            .collect();
        if cancel_half {
            for key in keys.iter().skip(1).step_by(2) {
                ev.cancel(*key);
            }
        }
    });
    let start = Instant::now();
    ev.run().expect("run");
    n as f64 / start.elapsed().as_secs_f64()
}

fn wakeups(n: u64) -> f64 {
    let mut ev = NativeLoop::new().expect("loop");
    let remote = ev.handle();
    let producer = std::thread::spawn(move || {
        for i in 1..=n {
            remote.call_soon_threadsafe(move |ev| {
                if i == n {
                    ev.stop();
                }
            });
        }
    });
    let start = Instant::now();
    ev.run().expect("run");
    let rate = n as f64 / start.elapsed().as_secs_f64();
    producer.join().expect("producer");
    rate
}

fn fd_pingpong(n: u64) -> f64 {
    let mut ev = NativeLoop::new().expect("loop");
    let (a, b) = UnixStream::pair().expect("pair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
    let trips = Rc::new(Cell::new(0u64));
    let a = Rc::new(a);
    let t = trips.clone();
    let a2 = a.clone();
    ev.add_handler(fa, IoEvents::READ, move |ev, _, _| {
        let mut byte = [0u8; 1];
        let _ = (&*a2).read(&mut byte);
        t.set(t.get() + 1);
        if t.get() == n {
            ev.stop();
        } else {
            let _ = (&*a2).write(b"p");
        }
    })
    .expect("add a");
    ev.add_handler(fb, IoEvents::READ, move |_, _, _| {
        let mut byte = [0u8; 1];
        let _ = (&b).read(&mut byte);
        let _ = (&b).write(b"q");
    })
    .expect("add b");
    (&*a).write_all(b"p").expect("first ping");
    let start = Instant::now();
    ev.run().expect("run");
    n as f64 / start.elapsed().as_secs_f64()
}

fn max_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().to_owned())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_default();
    let n: u64 = match (args.next().as_deref(), args.next()) {
        (Some("--n"), Some(v)) => v.parse().unwrap_or(0),
        _ => 0,
    };
    let (rate, unit) = match (workload.as_str(), n) {
        (_, 0) => {
            eprintln!("usage: native-micro WORKLOAD --n N (N > 0)");
            std::process::exit(2);
        }
        ("callbacks_chain", n) => (chain(n), "callbacks/s"),
        ("callbacks_burst", n) => (burst(n), "callbacks/s"),
        ("timers", n) => (timers(n, false), "timers/s"),
        ("timers_cancelled", n) => (timers(n, true), "timers/s"),
        ("wakeups", n) => (wakeups(n), "callbacks/s"),
        ("fd_pingpong", n) => (fd_pingpong(n), "round trips/s"),
        (other, _) => {
            eprintln!("native-micro: unknown workload {other:?}");
            std::process::exit(2);
        }
    };
    println!(
        "{{\"workload\": \"{workload}\", \"loop\": \"rust-native\", \"n\": {n}, \"rate\": {rate:.1}, \
         \"unit\": \"{unit}\", \"maxrss_kib\": {}}}",
        max_rss_kib()
    );
}
