//! [`Registry`]: subscriptions keyed by [`Pattern`], and who receives an event.
//!
//! **Invariant:** finding the recipients of an event takes at most three map look-ups per
//! entity it names (`*`, `<entity>:*`, `<entity>:<id>`), whatever the number of
//! subscriptions; a subscription removed during a dispatch gets nothing more from it.

use std::collections::{BTreeMap, HashMap};

use crate::data_updates::pattern::Pattern;
use crate::protocol::EntityEvent;

/// Names one subscription; ids grow, so their order is the subscription order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(u64);

/// Callbacks (any cloneable handle, such as an `Rc<dyn Fn>`) by pattern.
#[derive(Debug)]
pub struct Registry<C> {
    next_id: u64,
    by_pattern: HashMap<Pattern, BTreeMap<SubscriptionId, C>>,
    patterns: HashMap<SubscriptionId, Pattern>,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Self {
            next_id: 0,
            by_pattern: HashMap::new(),
            patterns: HashMap::new(),
        }
    }
}

impl<C: Clone> Registry<C> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `callback` for `pattern`.
    pub fn subscribe(&mut self, pattern: Pattern, callback: C) -> SubscriptionId {
        self.next_id += 1;
        let id = SubscriptionId(self.next_id);
        self.by_pattern
            .entry(pattern.clone())
            .or_default()
            .insert(id, callback);
        self.patterns.insert(id, pattern);
        id
    }

    /// Removes subscription `id`; false when it was already gone.
    pub fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        let Some(pattern) = self.patterns.remove(&id) else {
            return false;
        };
        if let Some(callbacks) = self.by_pattern.get_mut(&pattern) {
            callbacks.remove(&id);
            if callbacks.is_empty() {
                self.by_pattern.remove(&pattern);
            }
        }
        true
    }

    /// True while subscription `id` exists; a dispatcher checks it before each call, so a
    /// subscription removed by an earlier callback of the same event is skipped.
    pub fn contains(&self, id: SubscriptionId) -> bool {
        self.patterns.contains_key(&id)
    }

    /// How many subscriptions there are.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// True when there is no subscription.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The subscriptions `event` goes to, each once, in subscription order.
    ///
    /// The callbacks are cloned out, so the caller can release its borrow of the registry
    /// before calling them (a callback may subscribe or unsubscribe).
    pub fn recipients(&self, event: &EntityEvent) -> Vec<(SubscriptionId, C)> {
        let mut found: Vec<(SubscriptionId, C)> = Vec::new();
        let mut add = |pattern: &Pattern| {
            if let Some(callbacks) = self.by_pattern.get(pattern) {
                found.extend(
                    callbacks
                        .iter()
                        .map(|(id, callback)| (*id, callback.clone())),
                );
            }
        };
        add(&Pattern::All);
        add(&Pattern::Kind(event.entity));
        for id in event.id.iter().chain(event.ids.iter().flatten()) {
            add(&Pattern::Entity(event.entity, id.clone()));
        }
        found.sort_by_key(|(id, _)| *id);
        found.dedup_by_key(|(id, _)| *id);
        found
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::protocol::{EntityKind, EventType, NewEvent};

    type Callback = Rc<dyn Fn(&EntityEvent)>;

    fn event(kind: EntityKind, id: &str) -> EntityEvent {
        NewEvent::single(
            EventType::Updated,
            kind,
            id.parse().expect("valid"),
            "p".parse().expect("valid"),
            None,
        )
        .into_event("t".to_owned())
    }

    fn pattern(text: &str) -> Pattern {
        text.parse().expect("valid")
    }

    /// Dispatches like the provider does: recipients first, then each call if still subscribed.
    fn dispatch(registry: &RefCell<Registry<Callback>>, event: &EntityEvent) {
        let recipients = registry.borrow().recipients(event);
        for (id, callback) in recipients {
            if registry.borrow().contains(id) {
                callback(event);
            }
        }
    }

    fn recorder(log: &Rc<RefCell<Vec<String>>>, name: &'static str) -> Callback {
        let log = log.clone();
        Rc::new(move |event: &EntityEvent| {
            let id = event
                .id
                .as_ref()
                .map_or("batch", |id| id.as_str())
                .to_owned();
            log.borrow_mut().push(format!("{name} got {id}"));
        })
    }

    #[test]
    fn an_event_reaches_the_wildcard_its_kind_and_its_entity_in_subscription_order() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let registry = RefCell::new(Registry::<Callback>::new());
        for (text, name) in [
            ("document:doc_1", "one"),
            ("*", "all"),
            ("chunk:*", "chunks"),
            ("document:*", "documents"),
            ("document:doc_2", "two"),
        ] {
            registry
                .borrow_mut()
                .subscribe(pattern(text), recorder(&log, name));
        }
        dispatch(&registry, &event(EntityKind::Document, "doc_1"));
        assert_eq!(
            *log.borrow(),
            ["one got doc_1", "all got doc_1", "documents got doc_1"]
        );
    }

    #[test]
    fn a_batch_reaches_the_subscribers_of_each_id_once() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let registry = RefCell::new(Registry::<Callback>::new());
        registry
            .borrow_mut()
            .subscribe(pattern("graph_object:g_1"), recorder(&log, "g1"));
        registry
            .borrow_mut()
            .subscribe(pattern("graph_object:g_3"), recorder(&log, "g3"));
        registry
            .borrow_mut()
            .subscribe(pattern("graph_object:*"), recorder(&log, "kind"));
        let batch = NewEvent::batch(
            EntityKind::GraphObject,
            ["g_1", "g_2", "g_1"]
                .iter()
                .map(|id| id.parse().expect("valid"))
                .collect(),
            "p".parse().expect("valid"),
            None,
        )
        .into_event("t".to_owned());
        dispatch(&registry, &batch);
        assert_eq!(*log.borrow(), ["g1 got batch", "kind got batch"]);
    }

    #[test]
    fn unsubscribing_during_a_dispatch_stops_later_calls() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let registry = Rc::new(RefCell::new(Registry::<Callback>::new()));
        let victim = Rc::new(RefCell::new(None));
        let killer: Callback = {
            let registry = registry.clone();
            let victim = victim.clone();
            let log = log.clone();
            Rc::new(move |_: &EntityEvent| {
                log.borrow_mut().push("killer ran".to_owned());
                if let Some(id) = victim.borrow_mut().take() {
                    assert!(registry.borrow_mut().unsubscribe(id));
                }
            })
        };
        registry.borrow_mut().subscribe(pattern("*"), killer);
        let id = registry
            .borrow_mut()
            .subscribe(pattern("document:*"), recorder(&log, "victim"));
        *victim.borrow_mut() = Some(id);

        dispatch(&registry, &event(EntityKind::Document, "doc_1"));
        dispatch(&registry, &event(EntityKind::Document, "doc_2"));
        assert_eq!(*log.borrow(), ["killer ran", "killer ran"]);
        assert!(!registry.borrow_mut().unsubscribe(id), "already gone");
        assert_eq!(registry.borrow().len(), 1);
    }

    #[test]
    fn many_subscribers_cost_only_their_own_recipients() {
        let mut registry = Registry::<u32>::new();
        for n in 0..10_000 {
            registry.subscribe(pattern(&format!("document:doc_{n}")), n);
        }
        registry.subscribe(pattern("chunk:*"), 99_999);
        let recipients = registry.recipients(&event(EntityKind::Document, "doc_4242"));
        assert_eq!(
            recipients.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            [4242]
        );
        let ids: Vec<SubscriptionId> = registry.patterns.keys().copied().collect();
        for id in ids {
            assert!(registry.unsubscribe(id));
        }
        assert!(registry.is_empty());
        assert!(registry.by_pattern.is_empty(), "empty buckets are removed");
    }
}
