//! The daemon's event stream (`GET /events`, `docker events`): what
//! happened to containers, images and networks, in order. Recent events
//! are kept for `since`; subscribers get each new one as it is published.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

/// How many past events `since` can reach back to (Docker keeps 256).
const HISTORY: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `container`, `image`, `network`, `daemon`.
    pub kind: &'static str,
    /// `create`, `start`, `die`, `exec_start: sh`, ...
    pub action: String,
    /// The object's ID (a container's or network's ID, an image's name).
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    pub time: DateTime<Utc>,
}

impl Event {
    pub fn new(kind: &'static str, action: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            kind,
            action: action.into(),
            id: id.into(),
            attributes: BTreeMap::new(),
            time: Utc::now(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.attributes.insert(key.to_string(), value.into());
        self
    }

    pub fn with_all(mut self, attrs: &BTreeMap<String, String>) -> Self {
        for (k, v) in attrs {
            self.attributes.insert(k.clone(), v.clone());
        }
        self
    }

    /// The time in nanoseconds since the epoch.
    pub fn time_nano(&self) -> i64 {
        self.time.timestamp_nanos_opt().unwrap_or(i64::MAX)
    }
}

/// The daemon's events: a bounded history and live subscribers.
#[derive(Debug)]
pub struct Events {
    history: Mutex<VecDeque<Arc<Event>>>,
    live: broadcast::Sender<Arc<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            live: broadcast::channel(HISTORY).0,
        }
    }
}

impl Events {
    /// Records `event` and hands it to every subscriber.
    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(event.clone());
        // Sent under the history lock, so a subscriber that read the
        // history under it sees each event exactly once.
        let _ = self.live.send(event);
    }

    /// The past events since `since` (all kept ones if `None`), and a
    /// receiver of every event published after them.
    pub fn subscribe(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>) {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let past = match since {
            Some(t) => h.iter().filter(|e| e.time >= t).cloned().collect(),
            None => Vec::new(),
        };
        (past, self.live.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn history_then_live_each_once() {
        let ev = Events::default();
        let t0 = Utc::now();
        ev.publish(Event::new("container", "create", "a"));
        ev.publish(Event::new("container", "start", "a").with("name", "web"));
        let (past, mut rx) = ev.subscribe(Some(t0));
        assert_eq!(past.len(), 2);
        assert_eq!(past[1].attributes["name"], "web");
        ev.publish(Event::new("container", "die", "a"));
        assert_eq!(rx.recv().await.expect("live").action, "die");
        let (none, _) = ev.subscribe(None);
        assert!(none.is_empty());
    }

    #[test]
    fn history_is_bounded() {
        let ev = Events::default();
        for i in 0..HISTORY + 10 {
            ev.publish(Event::new("image", "tag", i.to_string()));
        }
        let (past, _) = ev.subscribe(Some(DateTime::<Utc>::MIN_UTC));
        assert_eq!(past.len(), HISTORY);
        assert_eq!(past[0].id, "10");
    }
}
