//! [`ExclusiveGate`]: the server's heavy tools (`exclusive_tools`) run one at a time. A call
//! to one of them first passes this gate (one holder, FIFO behind it), then takes its
//! place in the ordinary fair queue, so other tools keep flowing around it. Pure; owned
//! by the ServerActor.

use std::collections::VecDeque;

use super::queue::Waiter;

/// One holder at a time; the others wait in arrival order.
pub struct ExclusiveGate<T> {
    holder: Option<u64>,
    waiting: VecDeque<Waiter<T>>,
}

impl<T> Default for ExclusiveGate<T> {
    fn default() -> Self {
        Self {
            holder: None,
            waiting: VecDeque::new(),
        }
    }
}

impl<T> ExclusiveGate<T> {
    /// Lets call `id` through if nobody holds the gate.
    pub fn try_enter(&mut self, id: u64) -> bool {
        if self.holder.is_some() {
            return false;
        }
        self.holder = Some(id);
        true
    }

    /// Queues a call behind the holder.
    pub fn wait(&mut self, w: Waiter<T>) {
        self.waiting.push_back(w);
    }

    /// Call `id` is over (done, failed, timed out or cancelled). If it held the gate, the
    /// next waiter still `wanted` holds it now and is returned, to be queued for a slot.
    pub fn leave(&mut self, id: u64, wanted: impl Fn(&T) -> bool) -> Option<Waiter<T>> {
        if self.holder != Some(id) {
            self.remove(id);
            return None;
        }
        self.holder = None;
        while let Some(w) = self.waiting.pop_front() {
            if wanted(&w.slot) {
                self.holder = Some(w.id);
                return Some(w);
            }
        }
        None
    }

    /// Drops a waiting call (cancelled). Returns whether it was waiting here.
    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|w| w.id != id);
        before != self.waiting.len()
    }

    /// Calls waiting at the gate.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Every waiting call (the server stopped); the holder is forgotten.
    pub fn drain(&mut self) -> Vec<Waiter<T>> {
        self.holder = None;
        self.waiting.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    fn w(id: u64) -> Waiter<bool> {
        Waiter {
            id,
            user: Arc::from("u"),
            slot: id != 3, // call 3 was abandoned
        }
    }

    #[test]
    fn one_holder_then_fifo_skipping_abandoned_calls() {
        let mut g = ExclusiveGate::default();
        assert!(g.try_enter(1));
        assert!(!g.try_enter(2));
        g.wait(w(2));
        g.wait(w(3));
        g.wait(w(4));
        assert!(
            g.leave(99, |s| *s).is_none(),
            "a stranger leaving changes nothing"
        );
        assert_eq!(g.leave(1, |s| *s).unwrap().id, 2);
        assert!(!g.try_enter(5), "2 holds it now");
        assert_eq!(g.leave(2, |s| *s).unwrap().id, 4, "3 was abandoned");
        assert!(g.leave(4, |s| *s).is_none());
        assert!(g.try_enter(5));
    }
}
