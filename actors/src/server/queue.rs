//! [`FairQueue`]: calls waiting for a slot at one server, served round robin by user so one
//! user flooding a server cannot starve another. Pure; owned by the ServerActor.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// One waiting call.
pub struct Waiter<T> {
    /// The call's upstream id (for cancellation while queued).
    pub id: u64,
    /// Who made it.
    pub user: Arc<str>,
    /// What to hand it when its turn comes.
    pub slot: T,
}

/// Waiting calls, one FIFO per user, users served in turn.
pub struct FairQueue<T> {
    by_user: HashMap<Arc<str>, VecDeque<Waiter<T>>>,
    turn: VecDeque<Arc<str>>,
    len: usize,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        Self {
            by_user: HashMap::new(),
            turn: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> FairQueue<T> {
    /// Calls waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a call behind the same user's earlier calls.
    pub fn push(&mut self, w: Waiter<T>) {
        let q = self.by_user.entry(w.user.clone()).or_default();
        if q.is_empty() {
            self.turn.push_back(w.user.clone());
        }
        q.push_back(w);
        self.len += 1;
    }

    /// The next call: the oldest of the user whose turn it is.
    pub fn pop(&mut self) -> Option<Waiter<T>> {
        let user = self.turn.pop_front()?;
        let q = self.by_user.get_mut(&user)?;
        let w = q.pop_front();
        if q.is_empty() {
            self.by_user.remove(&user);
        } else {
            self.turn.push_back(user);
        }
        if w.is_some() {
            self.len -= 1;
        }
        w
    }

    /// Removes a queued call (it was cancelled). Returns whether it was queued.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(user) = self
            .by_user
            .iter()
            .find(|(_, q)| q.iter().any(|w| w.id == id))
            .map(|(u, _)| u.clone())
        else {
            return false;
        };
        if let Some(q) = self.by_user.get_mut(&user) {
            q.retain(|w| w.id != id);
            if q.is_empty() {
                self.by_user.remove(&user);
                self.turn.retain(|u| *u != user);
            }
        }
        self.len -= 1;
        true
    }

    /// Empties the queue.
    pub fn drain(&mut self) -> Vec<Waiter<T>> {
        self.turn.clear();
        self.len = 0;
        self.by_user.drain().flat_map(|(_, q)| q).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn w(id: u64, user: &str) -> Waiter<()> {
        Waiter {
            id,
            user: Arc::from(user),
            slot: (),
        }
    }

    #[test]
    fn users_take_turns() {
        let mut q = FairQueue::default();
        for i in 0..100 {
            q.push(w(i, "flooder"));
        }
        q.push(w(1000, "quiet"));
        q.push(w(1001, "quiet"));
        let order: Vec<u64> = (0..5).map(|_| q.pop().unwrap().id).collect();
        assert_eq!(order, vec![0, 1000, 1, 1001, 2]);
        assert_eq!(q.len(), 97);
    }

    #[test]
    fn cancelled_calls_leave_the_queue() {
        let mut q = FairQueue::default();
        q.push(w(1, "a"));
        q.push(w(2, "b"));
        assert!(q.remove(1) && !q.remove(1));
        assert_eq!(q.pop().unwrap().id, 2);
        assert!(q.pop().is_none() && q.is_empty());
    }
}
