//! Where the fd table keeps its entries: a vector indexed by fd for the low
//! numbers every process uses, a hash map above them, so that registering fd
//! 1,000,000 costs one entry, not a million empty slots.

use std::collections::HashMap;

/// fds below this live in the vector (at most this many slots, a few hundred KiB).
const DENSE_LIMIT: usize = 4096;

/// Values by fd number (see the tests below for its use).
#[derive(Debug)]
pub(crate) struct FdSlots<T> {
    dense: Vec<Option<T>>,
    sparse: HashMap<usize, T>,
    len: usize,
}

impl<T> Default for FdSlots<T> {
    fn default() -> Self {
        FdSlots {
            dense: Vec::new(),
            sparse: HashMap::new(),
            len: 0,
        }
    }
}

impl<T> FdSlots<T> {
    /// How many fds have a value.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, fd: usize) -> Option<&T> {
        if fd < DENSE_LIMIT {
            self.dense.get(fd)?.as_ref()
        } else {
            self.sparse.get(&fd)
        }
    }

    pub(crate) fn get_mut(&mut self, fd: usize) -> Option<&mut T> {
        if fd < DENSE_LIMIT {
            self.dense.get_mut(fd)?.as_mut()
        } else {
            self.sparse.get_mut(&fd)
        }
    }

    /// Sets the value of `fd`, returning the one it replaced.
    pub(crate) fn insert(&mut self, fd: usize, value: T) -> Option<T> {
        let old = if fd < DENSE_LIMIT {
            if fd >= self.dense.len() {
                self.dense.resize_with(fd + 1, || None);
            }
            self.dense[fd].replace(value)
        } else {
            self.sparse.insert(fd, value)
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn remove(&mut self, fd: usize) -> Option<T> {
        let old = if fd < DENSE_LIMIT {
            self.dense.get_mut(fd)?.take()
        } else {
            self.sparse.remove(&fd)
        };
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Every fd and its value (the dense ones in order, then the others).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter_map(|(fd, v)| Some((fd, v.as_ref()?)));
        dense.chain(self.sparse.iter().map(|(&fd, v)| (fd, v)))
    }

    /// Takes every value out, releasing the memory.
    pub(crate) fn take_all(&mut self) -> Vec<(usize, T)> {
        let mut out = Vec::with_capacity(self.len);
        out.extend(
            std::mem::take(&mut self.dense)
                .into_iter()
                .enumerate()
                .filter_map(|(fd, v)| Some((fd, v?))),
        );
        out.extend(std::mem::take(&mut self.sparse));
        self.len = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_high_fd_costs_one_entry() {
        let mut slots = FdSlots::default();
        assert_eq!(slots.insert(3, "low"), None);
        assert_eq!(slots.insert(1_000_000, "high"), None);
        assert_eq!(slots.dense.len(), 4);
        assert_eq!(slots.get(1_000_000), Some(&"high"));
        assert_eq!(slots.insert(1_000_000, "again"), Some("high"));
        assert_eq!(slots.len(), 2);
        let mut all: Vec<_> = slots.iter().map(|(fd, v)| (fd, *v)).collect();
        all.sort_unstable();
        assert_eq!(all, [(3, "low"), (1_000_000, "again")]);
        assert_eq!(slots.remove(1_000_000), Some("again"));
        assert_eq!(slots.remove(1_000_000), None);
        assert_eq!(slots.remove(99), None);
        assert_eq!(slots.len(), 1);
        assert_eq!(slots.take_all(), [(3, "low")]);
        assert_eq!(slots.len(), 0);
        assert!(slots.dense.capacity() == 0 && slots.sparse.is_empty());
    }

    #[test]
    fn the_boundary_is_seamless() {
        let mut slots = FdSlots::default();
        for fd in DENSE_LIMIT - 2..DENSE_LIMIT + 2 {
            slots.insert(fd, fd);
        }
        for fd in DENSE_LIMIT - 2..DENSE_LIMIT + 2 {
            assert_eq!(slots.get(fd), Some(&fd));
            *slots.get_mut(fd).unwrap() += 1;
            assert_eq!(slots.remove(fd), Some(fd + 1));
        }
        assert_eq!(slots.len(), 0);
    }
}
