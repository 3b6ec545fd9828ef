//! The serving node's control socket: a Unix socket in its data dir through which
//! `yizhan status` reads the live state of the links and `yizhan sync now` asks for a
//! session and hears how it ended.
//!
//! Only the data dir's owner reaches it (the dir is mode 0700), the same person who may
//! open the database beside the node, so it needs no other authentication. The protocol
//! is one line each way: a command (`status` or `sync-now`), then one line of JSON.
//! `import-catalog` is followed by the catalog's items as JSON up to the end of the stream:
//! the running node publishes it through its own writer (`Store::import_catalog`), since
//! a second writer beside it would hold a stale copy of the documents it caches.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::links::{ChildLink, Links, ParentLink, SessionEnd};

/// How long `sync-now` waits for the session it asked for.
pub const SYNC_NOW_TIMEOUT: Duration = Duration::from_secs(120);

/// What `status` answers: the links as the serving node sees them now.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LiveStatus {
    pub parent: ParentLinkView,
    /// Children that called since the node started, by node id (hex).
    pub children: Vec<(String, ChildLinkView)>,
}

/// [`ParentLink`] as sent over the socket.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ParentLinkView {
    pub up: bool,
    pub live: bool,
    pub last_connected_ms: Option<u64>,
    pub failure: Option<String>,
    pub retry_delay_ms: Option<u64>,
    pub next_attempt_ms: Option<u64>,
    pub last_error: Option<String>,
}

/// [`ChildLink`] as sent over the socket.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ChildLinkView {
    pub live: bool,
    pub last_connected_ms: u64,
}

/// What `sync-now` answers.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SyncOutcome {
    pub ok: bool,
    pub message: String,
}

/// What `import-catalog` answers.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ImportOutcome {
    pub ok: bool,
    pub message: String,
}

/// The largest catalog (its items as JSON) `import-catalog` reads over the socket.
pub const MAX_CATALOG_BYTES: u64 = 32 << 20;

/// A bound control socket, ready to serve.
#[derive(Debug)]
pub struct Control {
    listener: UnixListener,
    path: PathBuf,
    /// The store `import-catalog` publishes into; without it the command is refused.
    store: Option<crate::store::Store>,
}

impl Control {
    /// Binds the socket at `path`. A file left there by a node that was killed goes first:
    /// the caller holds the data dir's lock, so no other node uses it.
    pub fn bind(path: &Path) -> std::io::Result<Control> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        Ok(Control {
            listener,
            path: path.to_path_buf(),
            store: None,
        })
    }

    /// Lets `import-catalog` publish into `store` (the serving node's).
    pub fn with_catalog(mut self, store: crate::store::Store) -> Control {
        self.store = Some(store);
        self
    }

    /// Answers requests until the task is dropped.
    pub async fn serve(self, links: Arc<Links>) {
        tracing::debug!(control.path = %self.path.display(), "control socket ready");
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let links = links.clone();
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &links, store.as_ref()).await {
                    tracing::debug!(error = %e, "a control request failed");
                }
            });
        }
    }
}

async fn answer(
    stream: UnixStream,
    links: &Links,
    store: Option<&crate::store::Store>,
) -> anyhow::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(reader);
    tokio::time::timeout(
        Duration::from_secs(5),
        (&mut reader).take(256).read_line(&mut line),
    )
    .await??;
    let reply = match line.trim() {
        "import-catalog" => {
            let mut text = String::new();
            tokio::time::timeout(
                Duration::from_secs(60),
                (&mut reader)
                    .take(MAX_CATALOG_BYTES)
                    .read_to_string(&mut text),
            )
            .await??;
            serde_json::to_string(&import_catalog(store, &text).await)?
        }
        "status" => serde_json::to_string(&live_status(links))?,
        "sync-now" => {
            let mut sessions = links.sessions();
            let before = sessions.borrow_and_update().number;
            links.request_sync();
            let ended = tokio::time::timeout(
                SYNC_NOW_TIMEOUT,
                sessions.wait_for(|end| end.number > before),
            )
            .await;
            let outcome = match ended {
                Ok(Ok(end)) => {
                    let SessionEnd { ok, message, .. } = end.clone();
                    SyncOutcome { ok, message }
                }
                _ => SyncOutcome {
                    ok: false,
                    message: format!(
                        "no session ended within {} s; see `yizhan status`",
                        SYNC_NOW_TIMEOUT.as_secs()
                    ),
                },
            };
            serde_json::to_string(&outcome)?
        }
        other => serde_json::to_string(&serde_json::json!({
            "error": format!("unknown command {other:?}; use status, sync-now or import-catalog")
        }))?,
    };
    writer.write_all(reply.as_bytes()).await?;
    writer.write_all(b"\n").await?;
    writer.shutdown().await?;
    Ok(())
}

/// Checks every item first, then publishes them in one transaction.
async fn import_catalog(store: Option<&crate::store::Store>, text: &str) -> ImportOutcome {
    let refused = |message: String| ImportOutcome { ok: false, message };
    let Some(store) = store else {
        return refused("this node does not take a catalog over its control socket".into());
    };
    let items: Vec<yizhan_sync::domain::item::Item> = match serde_json::from_str(text) {
        Ok(items) => items,
        Err(e) => return refused(format!("the items do not read: {e}")),
    };
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    match store.import_catalog(items, now).await {
        Ok(counts) => ImportOutcome {
            ok: true,
            message: serde_json::to_string(&counts).unwrap_or_default(),
        },
        Err(e) => refused(e.words().to_string()),
    }
}

fn live_status(links: &Links) -> LiveStatus {
    let ParentLink {
        up,
        live,
        last_connected_ms,
        failure,
        retry_delay_ms,
        next_attempt_ms,
        last_error,
        ..
    } = links.parent();
    LiveStatus {
        parent: ParentLinkView {
            up,
            live,
            last_connected_ms,
            failure: failure.map(|f| f.as_str().to_string()),
            retry_delay_ms,
            next_attempt_ms,
            last_error,
        },
        children: links
            .children()
            .into_iter()
            .map(
                |(
                    node,
                    ChildLink {
                        live,
                        last_connected_ms,
                    },
                )| {
                    (
                        node.to_hex(),
                        ChildLinkView {
                            live,
                            last_connected_ms,
                        },
                    )
                },
            )
            .collect(),
    }
}

/// Sends `command` to the node serving the data dir whose socket is `path`; its answer.
pub async fn ask<T: serde::de::DeserializeOwned>(
    path: &Path,
    command: &str,
    timeout: Duration,
) -> anyhow::Result<T> {
    ask_with(path, command, &[], timeout).await
}

/// Sends `command` followed by `body` (to the end of the stream), and reads the answer.
pub async fn ask_with<T: serde::de::DeserializeOwned>(
    path: &Path,
    command: &str,
    body: &[u8],
    timeout: Duration,
) -> anyhow::Result<T> {
    let exchange = async {
        let mut stream = UnixStream::connect(path).await.with_context(|| {
            format!(
                "cannot reach the running node at {} (is `yizhan serve` running for this --data-dir?)",
                path.display()
            )
        })?;
        stream.write_all(format!("{command}\n").as_bytes()).await?;
        stream.write_all(body).await?;
        // The end of the request (a body runs to it).
        stream.shutdown().await?;
        let mut line = String::new();
        BufReader::new(stream.take(1 << 20))
            .read_line(&mut line)
            .await?;
        serde_json::from_str::<T>(&line).with_context(|| {
            format!("the running node answered {command} with something unexpected: {line:?}")
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| {
            format!(
                "the running node did not answer {command} within {} s",
                timeout.as_secs()
            )
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_and_sync_now_are_answered_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let links = Arc::new(Links::default());
        links.update_parent(|link| {
            link.live = true;
            link.last_connected_ms = Some(42);
        });
        let server = tokio::spawn(Control::bind(&path).unwrap().serve(links.clone()));
        let status: LiveStatus = ask(&path, "status", Duration::from_secs(5)).await.unwrap();
        assert!(status.parent.live);
        assert_eq!(status.parent.last_connected_ms, Some(42));
        // A driver stand-in: runs a "session" when asked.
        let driver = {
            let links = links.clone();
            tokio::spawn(async move {
                links.sync_requested().await;
                links.session_ended(true, "pulled 1 and pushed 0 changes".into());
            })
        };
        let outcome: SyncOutcome = ask(&path, "sync-now", Duration::from_secs(5))
            .await
            .unwrap();
        assert!(outcome.ok, "{outcome:?}");
        assert_eq!(outcome.message, "pulled 1 and pushed 0 changes");
        driver.await.unwrap();
        server.abort();
        let missing = ask::<LiveStatus>(
            &dir.path().join("none.sock"),
            "status",
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(
            format!("{missing:#}").contains("yizhan serve"),
            "{missing:#}"
        );
    }
}
