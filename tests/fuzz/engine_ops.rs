//! The engine's fuzz harness: bytes become a sequence of operations on a timer heap
//! and an fd table, each checked against a plain model of what it must do. Shared by
//! the cargo-fuzz target (`fuzz/fuzz_targets/engine_ops.rs`) and the corpus replay of
//! `cargo test` (`tests/engine_fuzz_replay.rs`).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

use mioloop::{FdError, FdTable, IoEvents, TimerHeap, TimerKey, Trigger};

/// The input, read a byte or two at a time; an exhausted input ends the run.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }
}

/// What the timer heap must hold: scheduled timers by (deadline, insertion order),
/// and the due ones popped but not taken.
#[derive(Default)]
struct TimerModel {
    scheduled: BTreeMap<(u64, u64), (TimerKey, u32)>,
    order_of: HashMap<TimerKey, (u64, u64)>,
    due: HashMap<TimerKey, u32>,
    issued: Vec<TimerKey>,
    inserted: u64,
    now: u64,
}

impl TimerModel {
    fn key(&self, pick: u8) -> Option<TimerKey> {
        (!self.issued.is_empty()).then(|| self.issued[usize::from(pick) % self.issued.len()])
    }

    fn cancel(&mut self, key: TimerKey) -> Option<u32> {
        if let Some(order) = self.order_of.remove(&key) {
            return self.scheduled.remove(&order).map(|(_, value)| value);
        }
        self.due.remove(&key)
    }

    fn pop_due(&mut self) -> Option<TimerKey> {
        let (&order, _) = self.scheduled.first_key_value()?;
        if order.0 > self.now {
            return None;
        }
        let (key, value) = self.scheduled.remove(&order)?;
        self.order_of.remove(&key);
        self.due.insert(key, value);
        Some(key)
    }
}

/// Runs the operations `data` spells, panicking at the first difference from the
/// model.
pub fn run(data: &[u8]) {
    let mut input = Input(data);
    let mut timers = TimerHeap::new();
    let mut model = TimerModel::default();
    let poll = mio::Poll::new().expect("a poll");
    let registry = poll.registry();
    let pairs: Vec<(UnixStream, UnixStream)> = (0..4)
        .map(|_| UnixStream::pair().expect("a socket pair"))
        .collect();
    let pool: Vec<RawFd> = pairs.iter().map(|(a, _)| a.as_raw_fd()).collect();
    let mut fds: FdTable<u32> = FdTable::new();
    let mut watched: BTreeMap<RawFd, IoEvents> = BTreeMap::new();
    while let Some(op) = input.byte() {
        match op % 9 {
            0 => {
                let Some(delay) = input.u16() else { break };
                let deadline = model.now + u64::from(delay);
                let value = model.inserted as u32;
                let key = timers.insert(deadline, value);
                let order = (deadline, model.inserted);
                model.inserted += 1;
                model.scheduled.insert(order, (key, value));
                model.order_of.insert(key, order);
                model.issued.push(key);
            }
            1 => {
                let Some(key) = input.byte().and_then(|pick| model.key(pick)) else {
                    continue;
                };
                assert_eq!(timers.cancel(key), model.cancel(key), "cancel {key:?}");
            }
            2 => {
                let Some(step) = input.u16() else { break };
                model.now += u64::from(step);
            }
            3 => assert_eq!(
                timers.pop_due(model.now),
                model.pop_due(),
                "pop_due at {}",
                model.now
            ),
            4 => {
                let Some(key) = input.byte().and_then(|pick| model.key(pick)) else {
                    continue;
                };
                assert_eq!(timers.take(key), model.due.remove(&key), "take {key:?}");
            }
            5 => {
                let expected = model.scheduled.first_key_value().map(|(order, _)| order.0);
                assert_eq!(timers.next_deadline(), expected, "next_deadline");
            }
            6 => {
                let (Some(pick), Some(bits)) = (input.byte(), input.byte()) else {
                    break;
                };
                let fd = pool[usize::from(pick) % pool.len()];
                let events = IoEvents::from_bits_truncate(u32::from(bits));
                let trigger = if bits & 0x80 != 0 {
                    Trigger::Edge
                } else {
                    Trigger::Level
                };
                let added = fds.add(registry, fd, events, trigger, u32::from(bits));
                match watched.entry(fd) {
                    Entry::Occupied(_) => assert!(
                        matches!(added, Err(FdError::AlreadyRegistered(f)) if f == fd),
                        "add twice"
                    ),
                    Entry::Vacant(slot) => {
                        assert!(matches!(added, Ok(None)), "add {fd}: {added:?}");
                        slot.insert(events);
                    }
                }
            }
            7 => {
                let (Some(pick), Some(bits)) = (input.byte(), input.byte()) else {
                    break;
                };
                let fd = pool[usize::from(pick) % pool.len()];
                let events = IoEvents::from_bits_truncate(u32::from(bits));
                let updated = fds.update(registry, fd, events);
                if let Some(watching) = watched.get_mut(&fd) {
                    assert!(updated.is_ok(), "update {fd}: {updated:?}");
                    *watching = events;
                    assert_eq!(fds.get(fd).map(|e| e.interest), Some(events));
                } else {
                    assert!(matches!(updated, Err(FdError::NotRegistered(f)) if f == fd));
                }
            }
            _ => {
                let Some(pick) = input.byte() else { break };
                let fd = pool[usize::from(pick) % pool.len()];
                assert_eq!(
                    fds.remove(registry, fd).is_some(),
                    watched.remove(&fd).is_some(),
                    "remove {fd}"
                );
            }
        }
        assert_eq!(
            timers.len(),
            model.scheduled.len() + model.due.len(),
            "timers held"
        );
        assert_eq!(fds.len(), watched.len(), "fds held");
    }
    assert_eq!(
        timers.drain().len(),
        model.scheduled.len() + model.due.len()
    );
    assert_eq!(fds.drain(registry).len(), watched.len());
}
