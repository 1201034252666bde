//! A binary heap of timers ordered by (deadline, sequence), with O(1) cancellation.
//!
//! Values live in slots addressed by a [`TimerKey`]; the heap holds only keys.
//! Cancelling takes the value out of its slot at once (so a Python callback and its
//! arguments are released immediately) and leaves its heap entry to be skipped
//! lazily. Once more than half of the heap is cancelled entries it is compacted, so
//! any number of add/cancel pairs keep memory bounded. After a burst, the free
//! slots at the end are given back once they are half of them, so a loop that once
//! held many timers does not keep their memory.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::clock::Nanos;

/// Below this size the heap is never compacted: skipping a few dead entries is cheaper.
const COMPACT_MIN_LEN: usize = 64;

/// Slots kept however few timers remain; above it, a free tail is given back.
const SHRINK_MIN_SLOTS: usize = 1024;

/// Identifies one scheduled timer. Stale keys (of timers that fired or were
/// cancelled) never match a later timer that reuses the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    slot: u32,
    generation: u32,
}

/// Where a slot's timer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In the heap, waiting for its deadline.
    Scheduled,
    /// Cancelled; its heap entry has not been skipped yet.
    Cancelled,
    /// Popped as due; the value waits for [`TimerHeap::take`].
    Due,
    /// Unused, on the free list.
    Free,
}

/// A timer's slot: the phase beside the value rather than an enum around it, so
/// that it takes no tag of its own (48 bytes for a Python callback, not 56).
#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    phase: Phase,
    /// The value while `Scheduled` or `Due`, and only then.
    value: Option<T>,
}

/// A heap entry: 16 bytes, as there is one per timer. The slot needs no
/// generation here: a slot is not reused while its entry is in the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    deadline: Nanos,
    /// The insertion number in the high half (FIFO among equal deadlines), the
    /// slot in the low half.
    order: u64,
}

impl Entry {
    fn new(deadline: Nanos, seq: u64, slot: u32) -> Self {
        Entry {
            deadline,
            order: (seq << 32) | u64::from(slot),
        }
    }

    fn slot(&self) -> u32 {
        // The low half, by construction.
        self.order as u32
    }
}

/// Timers ordered by deadline, FIFO among equal deadlines.
///
/// # Examples
/// ```
/// use mioloop::TimerHeap;
/// let mut timers = TimerHeap::new();
/// let late = timers.insert(20, "late");
/// let early = timers.insert(10, "early");
/// assert_eq!(timers.cancel(late), Some("late"));
/// assert_eq!(timers.next_deadline(), Some(10));
/// let due = timers.pop_due(15).unwrap();
/// assert_eq!(due, early);
/// assert_eq!(timers.take(due), Some("early"));
/// assert!(timers.is_empty());
/// ```
#[derive(Debug)]
pub struct TimerHeap<T> {
    heap: BinaryHeap<Reverse<Entry>>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    next_seq: u64,
    /// Heap entries whose slot is `Cancelled`.
    dead_entries: usize,
    /// Slots that are `Scheduled` or `Due`.
    live: usize,
    /// The generation a newly made slot starts at: above every generation of the
    /// slots given back, so their stale keys never match it.
    generation_floor: u32,
    /// Releases since the free tail was last looked at.
    releases: usize,
}

impl<T> Default for TimerHeap<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerHeap<T> {
    /// An empty heap.
    pub fn new() -> Self {
        TimerHeap {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            dead_entries: 0,
            live: 0,
            generation_floor: 0,
            releases: 0,
        }
    }

    /// Timers that are scheduled or due but not yet taken.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no timer is scheduled or due.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Entries in the heap, cancelled ones included (what memory is spent on).
    pub fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Schedules `value` for `deadline`.
    pub fn insert(&mut self, deadline: Nanos, value: T) -> TimerKey {
        let key = match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.phase = Phase::Scheduled;
                s.value = Some(value);
                TimerKey {
                    slot,
                    generation: s.generation,
                }
            }
            None => {
                // 2^32 live timers would need hundreds of GiB first; saturate the
                // index rather than panic (the key then fails every lookup).
                let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                let generation = self.generation_floor;
                self.slots.push(Slot {
                    generation,
                    phase: Phase::Scheduled,
                    value: Some(value),
                });
                TimerKey { slot, generation }
            }
        };
        if self.next_seq > u64::from(u32::MAX) {
            self.renumber();
        }
        self.heap
            .push(Reverse(Entry::new(deadline, self.next_seq, key.slot)));
        self.next_seq += 1;
        self.live += 1;
        key
    }

    /// Insertion numbers have 32 bits: once they run out (every 2^32 timers), the
    /// entries are numbered again from 0 in their order, which keeps it.
    fn renumber(&mut self) {
        let mut entries: Vec<Entry> = std::mem::take(&mut self.heap)
            .into_iter()
            .map(|Reverse(e)| e)
            .collect();
        entries.sort_unstable();
        for (seq, e) in (0u64..).zip(entries.iter_mut()) {
            *e = Entry::new(e.deadline, seq, e.slot());
        }
        self.next_seq = entries.len() as u64;
        self.heap = entries.into_iter().map(Reverse).collect();
    }

    fn slot_mut(&mut self, key: TimerKey) -> Option<&mut Slot<T>> {
        self.slots
            .get_mut(key.slot as usize)
            .filter(|s| s.generation == key.generation)
    }

    fn release(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        s.phase = Phase::Free;
        s.value = None;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot);
        // A look every quarter of the slots' worth of releases, or when no timer is
        // left: O(1) amortized.
        self.releases += 1;
        if self.slots.len() > SHRINK_MIN_SLOTS
            && (self.releases >= self.slots.len() / 4 || self.live == 0)
        {
            self.releases = 0;
            self.shrink_free_tail();
        }
    }

    /// Gives back the free slots at the end once they are at least half of the
    /// slots, and the spare capacity of the heap and the free list. Only free slots
    /// go (no heap entry or key of a live timer refers to them); a slot made again
    /// later starts above their generations.
    fn shrink_free_tail(&mut self) {
        let keep = self
            .slots
            .iter()
            .rposition(|s| s.phase != Phase::Free)
            .map_or(0, |last| last + 1);
        if keep * 2 > self.slots.len() {
            return;
        }
        for s in &self.slots[keep..] {
            self.generation_floor = self.generation_floor.max(s.generation);
        }
        self.slots.truncate(keep);
        self.slots.shrink_to(keep.max(SHRINK_MIN_SLOTS));
        self.free.retain(|&slot| (slot as usize) < keep);
        self.free.shrink_to(self.free.len().max(SHRINK_MIN_SLOTS));
        if self.heap.capacity() > 4 * self.heap.len().max(COMPACT_MIN_LEN) {
            self.heap.shrink_to(2 * self.heap.len());
        }
    }

    /// The value of a timer that has not run nor been cancelled.
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        self.slots
            .get(key.slot as usize)
            .filter(|s| s.generation == key.generation)
            .and_then(|s| match s.phase {
                Phase::Scheduled | Phase::Due => s.value.as_ref(),
                Phase::Cancelled | Phase::Free => None,
            })
    }

    /// Cancels a timer that has not run, returning its value. `None` if the key is
    /// stale (the timer already ran or was cancelled).
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let slot = self.slot_mut(key)?;
        match slot.phase {
            // Out of the heap already: cancelling is taking it.
            Phase::Due => self.take(key),
            Phase::Scheduled => {
                slot.phase = Phase::Cancelled;
                let value = slot.value.take();
                self.live -= 1;
                self.dead_entries += 1;
                self.maybe_compact();
                value
            }
            Phase::Cancelled | Phase::Free => None,
        }
    }

    /// Takes the value of a due timer (one returned by [`pop_due`](Self::pop_due)).
    /// `None` if it was cancelled since.
    pub fn take(&mut self, key: TimerKey) -> Option<T> {
        let slot = self.slot_mut(key)?;
        if slot.phase != Phase::Due {
            return None;
        }
        let value = slot.value.take();
        self.live -= 1;
        self.release(key.slot);
        value
    }

    /// Drops cancelled entries from the top of the heap.
    fn skip_dead(&mut self) {
        while let Some(Reverse(top)) = self.heap.peek() {
            let slot = top.slot();
            if self.slots[slot as usize].phase != Phase::Cancelled {
                return;
            }
            self.heap.pop();
            self.dead_entries -= 1;
            self.release(slot);
        }
    }

    /// The earliest deadline of a scheduled timer.
    pub fn next_deadline(&mut self) -> Option<Nanos> {
        self.skip_dead();
        self.heap.peek().map(|Reverse(e)| e.deadline)
    }

    /// Pops the earliest timer if its deadline is at or before `now`. Its value stays
    /// in the heap's keeping until [`take`](Self::take) or [`cancel`](Self::cancel).
    pub fn pop_due(&mut self, now: Nanos) -> Option<TimerKey> {
        self.skip_dead();
        let Reverse(top) = *self.heap.peek()?;
        if top.deadline > now {
            return None;
        }
        self.heap.pop();
        let slot = &mut self.slots[top.slot() as usize];
        // After skip_dead, the top entry's slot is scheduled: it becomes due.
        slot.phase = Phase::Due;
        Some(TimerKey {
            slot: top.slot(),
            generation: slot.generation,
        })
    }

    fn maybe_compact(&mut self) {
        if self.heap.len() < COMPACT_MIN_LEN || self.dead_entries * 2 <= self.heap.len() {
            return;
        }
        let slots = &self.slots;
        let mut dead = Vec::with_capacity(self.dead_entries);
        self.heap.retain(|Reverse(e)| {
            let alive = slots[e.slot() as usize].phase != Phase::Cancelled;
            if !alive {
                dead.push(e.slot());
            }
            alive
        });
        for slot in dead {
            self.release(slot);
        }
        self.dead_entries = 0;
        if self.heap.capacity() > 4 * self.heap.len().max(COMPACT_MIN_LEN) {
            self.heap.shrink_to(2 * self.heap.len());
        }
    }

    /// Removes every timer, returning their values.
    pub fn drain(&mut self) -> Vec<T> {
        let values = self.slots.drain(..).filter_map(|s| s.value).collect();
        self.heap.clear();
        self.free.clear();
        self.dead_entries = 0;
        self.live = 0;
        values
    }

    /// Visits every value still held (for a garbage collector's traversal).
    pub fn for_each_value(&self, mut f: impl FnMut(&T)) {
        for s in &self.slots {
            if let Some(v) = &s.value {
                f(v);
            }
        }
    }
}

#[cfg(test)]
#[path = "timer_heap_tests.rs"]
mod tests;
