//! The state of this node's sync links, kept by those who drive them and read by those who
//! show them: the link to the parent (kept by the sync driver in `link`), the links of the
//! children (kept by the `/sync/v1` server as they call and wait), and a technician's
//! "sync now" (the admin page's button, `yizhan sync now`).
//!
//! Terms: a link is *up* when its last session succeeded, and *live* while the child holds
//! a long-poll open to the parent, so that what reaches the parent reaches the child at
//! once. A failing link waits a *retry delay* before the next attempt.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, watch};
use yizhan_sync::ids::NodeId;

/// Why the last attempt to reach the parent failed: each waits differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Failure {
    /// No connection (refused, timed out, no route): probed again within seconds.
    Unreachable,
    /// The parent answered and refused (not enrolled, revoked, an error): a person may
    /// need to act, so it is asked again less often.
    Refused,
    /// The parent is serving as many sessions as it takes and said when to come back.
    Busy,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Unreachable => "unreachable",
            Failure::Refused => "refused",
            Failure::Busy => "busy",
        }
    }
}

/// The link to the parent.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ParentLink {
    /// The last session succeeded.
    pub up: bool,
    /// A long-poll is open to the parent now: what it gets reaches this node at once.
    pub live: bool,
    /// When the parent last answered anything.
    pub last_connected_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    pub last_error: Option<String>,
    /// What kind of failure `last_error` is (`LinkError::code`), so pages word it in
    /// their reader's language.
    #[serde(skip)]
    pub error_code: Option<&'static str>,
    pub failure: Option<Failure>,
    /// While failing: the wait before the next attempt, and when that is.
    pub retry_delay_ms: Option<u64>,
    pub next_attempt_ms: Option<u64>,
    pub last_report: Option<SessionReportView>,
    /// The parent's clock minus this node's at the last hello, in milliseconds.
    pub clock_offset_ms: Option<i64>,
    /// The time between sessions when nothing else calls for one: a parent silent for
    /// two of them is lost.
    #[serde(skip)]
    pub interval_ms: u64,
}

/// What the last successful session moved.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SessionReportView {
    pub pulled: u32,
    pub pushed: u32,
    pub bytes_down: u64,
    pub bytes_up: u64,
}

/// A child's link, as this node sees it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ChildLink {
    /// The child holds a long-poll here now.
    pub live: bool,
    /// When the child last called.
    pub last_connected_ms: u64,
}

/// How a session ended, for whoever asked for it (`yizhan sync now`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionEnd {
    /// Counts sessions since start; 0 before the first.
    pub number: u64,
    pub ok: bool,
    /// What moved, or why it failed.
    pub message: String,
}

/// The links of one node; shared by the driver, the server, the pages and the control
/// socket.
#[derive(Debug)]
pub struct Links {
    parent: Mutex<ParentLink>,
    children: Mutex<BTreeMap<NodeId, ChildEntry>>,
    sync_now: Notify,
    sessions: watch::Sender<SessionEnd>,
    next_wait: AtomicU64,
    /// Set when the node shuts down: children's long-polls end at once.
    closing: watch::Sender<bool>,
}

#[derive(Debug)]
struct ChildEntry {
    link: ChildLink,
    /// The long-poll held now: its number, and how to end it when a newer one comes.
    waiting: Option<(u64, std::sync::Arc<Notify>)>,
}

impl Default for Links {
    fn default() -> Self {
        Links {
            parent: Mutex::default(),
            children: Mutex::default(),
            sync_now: Notify::new(),
            sessions: watch::Sender::new(SessionEnd::default()),
            next_wait: AtomicU64::new(1),
            closing: watch::Sender::new(false),
        }
    }
}

impl Links {
    /// The link to the parent as it is now.
    pub fn parent(&self) -> ParentLink {
        self.parent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes the link to the parent (the sync driver).
    pub fn update_parent(&self, change: impl FnOnce(&mut ParentLink)) {
        change(&mut self.parent.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Asks the driver for a session now, cutting any wait short.
    pub fn request_sync(&self) {
        self.sync_now.notify_one();
    }

    /// Resolves when someone asked for a session now (the driver).
    pub async fn sync_requested(&self) {
        self.sync_now.notified().await;
    }

    /// Tells those waiting for it that a session ended (the driver).
    pub fn session_ended(&self, ok: bool, message: String) {
        self.sessions.send_modify(|end| {
            end.number += 1;
            end.ok = ok;
            end.message = message;
        });
    }

    /// Follows the ends of sessions.
    pub fn sessions(&self) -> watch::Receiver<SessionEnd> {
        self.sessions.subscribe()
    }

    /// The node is shutting down: long-polls held here end.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Becomes true when the node shuts down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// A child called (any `/sync/v1` request).
    pub fn child_seen(&self, node: NodeId, now_ms: u64) {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        children
            .entry(node)
            .or_insert_with(|| ChildEntry {
                link: ChildLink::default(),
                waiting: None,
            })
            .link
            .last_connected_ms = now_ms;
    }

    /// A child holds a long-poll: it is live until the returned guard drops. An older
    /// long-poll of the same child is told to end (`ChildWait::superseded`), so a child
    /// whose connection was lost without a word holds one at most.
    pub fn child_waiting(&self, node: NodeId, now_ms: u64) -> ChildWait<'_> {
        let number = self.next_wait.fetch_add(1, Ordering::Relaxed);
        let ended = std::sync::Arc::new(Notify::new());
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        let entry = children.entry(node).or_insert_with(|| ChildEntry {
            link: ChildLink::default(),
            waiting: None,
        });
        if let Some((_, older)) = entry.waiting.replace((number, ended.clone())) {
            older.notify_one();
        }
        entry.link.live = true;
        entry.link.last_connected_ms = now_ms;
        ChildWait {
            links: self,
            node,
            number,
            ended,
        }
    }

    /// The children that called since this node started, by node id.
    pub fn children(&self) -> BTreeMap<NodeId, ChildLink> {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(node, entry)| (*node, entry.link.clone()))
            .collect()
    }
}

/// A child's long-poll; the child is no longer live once it drops (unless a newer one
/// took its place).
#[derive(Debug)]
pub struct ChildWait<'a> {
    links: &'a Links,
    node: NodeId,
    number: u64,
    ended: std::sync::Arc<Notify>,
}

impl ChildWait<'_> {
    /// Resolves when a newer long-poll of the same child took this one's place.
    pub async fn superseded(&self) {
        self.ended.notified().await;
    }
}

impl Drop for ChildWait<'_> {
    fn drop(&mut self) {
        let mut children = self
            .links
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = children.get_mut(&self.node)
            && entry
                .waiting
                .as_ref()
                .is_some_and(|(n, _)| *n == self.number)
        {
            entry.waiting = None;
            entry.link.live = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_is_live_while_its_newest_long_poll_is_held() {
        let links = Links::default();
        let child = NodeId([4; 16]);
        links.child_seen(child, 10);
        assert!(!links.children()[&child].live);
        let first = links.child_waiting(child, 20);
        assert!(links.children()[&child].live);
        let second = links.child_waiting(child, 30);
        // The first is told to end, and ending it leaves the child live.
        tokio::time::timeout(std::time::Duration::from_secs(1), first.superseded())
            .await
            .expect("the older long-poll is ended");
        drop(first);
        assert!(links.children()[&child].live);
        assert_eq!(links.children()[&child].last_connected_ms, 30);
        drop(second);
        assert!(!links.children()[&child].live);
    }

    #[tokio::test]
    async fn session_ends_are_counted_for_those_who_wait_for_one() {
        let links = Links::default();
        let mut sessions = links.sessions();
        links.request_sync();
        tokio::time::timeout(std::time::Duration::from_secs(1), links.sync_requested())
            .await
            .expect("a request is kept until the driver looks");
        links.session_ended(true, "pulled 3".into());
        sessions.changed().await.unwrap();
        assert_eq!(
            *sessions.borrow(),
            SessionEnd {
                number: 1,
                ok: true,
                message: "pulled 3".into()
            }
        );
    }
}
