//! How many `Watch` streams may be open: at most [`MAX_WATCHES`] in all and
//! [`MAX_WATCHES_PER_CALLER`] per caller, so no one caller (or a crowd)
//! ties up the registry's memory and tasks. A slot is held by its stream's
//! task and given back when the task ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{RegistryError, Result};

/// `Watch` streams open at once, in all.
pub const MAX_WATCHES: usize = 10_000;
/// `Watch` streams one caller (issuer and subject) may hold open at once.
pub const MAX_WATCHES_PER_CALLER: usize = 1_000;

/// The open streams, counted per caller.
#[derive(Debug, Default, Clone)]
pub struct WatchSlots(Arc<Mutex<HashMap<String, usize>>>);

/// One open stream's slot.
#[derive(Debug)]
pub struct Slot {
    slots: WatchSlots,
    caller: String,
}

impl WatchSlots {
    /// A slot for `caller`, or RESOURCE_EXHAUSTED naming the limit reached.
    pub fn take(&self, caller: &str) -> Result<Slot> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = open.values().sum();
        if total >= MAX_WATCHES {
            return Err(RegistryError::Quota(format!(
                "the registry serves {MAX_WATCHES} Watch streams already; try again later, or read the feed \
                 (ListEvents, GET /v1/events) instead"
            )));
        }
        let mine = open.entry(caller.to_owned()).or_default();
        if *mine >= MAX_WATCHES_PER_CALLER {
            return Err(RegistryError::Quota(format!(
                "you hold {MAX_WATCHES_PER_CALLER} Watch streams open already; close some, or watch several \
                 products in one stream (filter by domain or type instead)"
            )));
        }
        *mine += 1;
        Ok(Slot { slots: self.clone(), caller: caller.to_owned() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_holds_at_most_its_share_and_slots_come_back() {
        let slots = WatchSlots::default();
        let held: Vec<Slot> = (0..MAX_WATCHES_PER_CALLER).map(|_| slots.take("ana").unwrap()).collect();
        let refused = slots.take("ana").unwrap_err().to_string();
        assert!(refused.contains("you hold 1000 Watch streams open already"), "{refused}");
        slots.take("bob").unwrap();
        drop(held);
        assert!(slots.0.lock().unwrap().is_empty());
        slots.take("ana").unwrap();
    }
}
