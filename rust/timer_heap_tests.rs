//! Unit tests of the timer heap (a child module: they see its private state).
use super::*;

#[test]
fn equal_deadlines_pop_in_insertion_order() {
    let mut t = TimerHeap::new();
    let keys: Vec<_> = (0..100).map(|i| t.insert(5, i)).collect();
    let popped: Vec<_> = std::iter::from_fn(|| t.pop_due(5)).collect();
    assert_eq!(popped, keys);
    let values: Vec<_> = popped.into_iter().map(|k| t.take(k).unwrap()).collect();
    assert_eq!(values, (0..100).collect::<Vec<_>>());
}

#[test]
fn cancelled_due_timer_is_not_taken() {
    let mut t = TimerHeap::new();
    let a = t.insert(1, 'a');
    let b = t.insert(1, 'b');
    let (ka, kb) = (t.pop_due(1).unwrap(), t.pop_due(1).unwrap());
    assert_eq!((ka, kb), (a, b));
    assert_eq!(t.cancel(b), Some('b'));
    assert_eq!(t.take(a), Some('a'));
    assert_eq!(t.take(b), None);
    assert!(t.is_empty());
}

#[test]
fn stale_key_does_not_touch_reused_slot() {
    let mut t = TimerHeap::new();
    let old = t.insert(1, 1);
    assert_eq!(t.cancel(old), Some(1));
    t.next_deadline(); // frees the slot
    let new = t.insert(2, 2);
    assert_eq!(t.cancel(old), None);
    assert_eq!(t.take(old), None);
    assert_eq!(t.cancel(new), Some(2));
}

#[test]
fn million_add_cancel_pairs_keep_heap_small() {
    let mut t = TimerHeap::new();
    let keep = t.insert(u64::MAX, 0u32);
    for i in 0..1_000_000u32 {
        let k = t.insert(u64::from(i) + 10, i);
        assert_eq!(t.cancel(k), Some(i));
    }
    assert!(
        t.heap_len() <= 2 * COMPACT_MIN_LEN,
        "heap grew to {}",
        t.heap_len()
    );
    assert!(t.slots.len() <= 2 * COMPACT_MIN_LEN + 1);
    assert_eq!(t.len(), 1);
    assert_eq!(t.cancel(keep), Some(0));
}

#[test]
fn never_deadline_is_not_due() {
    let mut t = TimerHeap::new();
    t.insert(crate::NEVER, ());
    assert_eq!(t.pop_due(u64::MAX - 1), None);
    assert_eq!(t.next_deadline(), Some(crate::NEVER));
}

#[test]
fn a_burst_gives_its_memory_back_and_its_keys_stay_stale() {
    let mut t = TimerHeap::new();
    let long_lived = t.insert(u64::MAX, usize::MAX);
    let burst: Vec<_> = (0..100_000).map(|i| t.insert(i as u64, i)).collect();
    for _ in 0..burst.len() {
        let key = t.pop_due(u64::MAX - 1).unwrap();
        t.take(key).unwrap();
    }
    assert_eq!(t.len(), 1);
    assert!(
        t.slots.capacity() <= SHRINK_MIN_SLOTS,
        "{} slots kept",
        t.slots.capacity()
    );
    assert!(t.free.capacity() <= SHRINK_MIN_SLOTS);
    assert!(t.heap.capacity() <= 4 * COMPACT_MIN_LEN);
    // Slots made again do not answer to the keys of the burst.
    let again: Vec<_> = (0..1000).map(|i| t.insert(1, i)).collect();
    assert!(burst.iter().all(|&old| t.cancel(old).is_none()));
    assert!(again.iter().all(|&new| t.cancel(new).is_some()));
    assert_eq!(t.cancel(long_lived), Some(usize::MAX));
}

#[test]
fn equal_deadlines_keep_their_order_when_insertion_numbers_run_out() {
    let mut t = TimerHeap::new();
    t.next_seq = u64::from(u32::MAX) - 2;
    let first = t.insert(1, -1);
    let mut keys: Vec<_> = (0..6).map(|i| t.insert(5, i)).collect();
    assert!(t.next_seq < 10, "numbered again from 0");
    // The first timer's slot goes to a later one: slot numbers are no guide.
    assert_eq!(t.pop_due(1), Some(first));
    assert_eq!(t.take(first), Some(-1));
    keys.push(t.insert(5, 6));
    let popped: Vec<_> = std::iter::from_fn(|| t.pop_due(5)).collect();
    assert_eq!(popped, keys);
    let values: Vec<_> = popped.into_iter().map(|k| t.take(k).unwrap()).collect();
    assert_eq!(values, (0..7).collect::<Vec<_>>());
}

#[test]
fn a_timer_costs_the_heap_sixteen_bytes() {
    assert_eq!(std::mem::size_of::<Reverse<Entry>>(), 16);
}
