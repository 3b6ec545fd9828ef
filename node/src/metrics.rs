//! What the running node observes about itself: the counters behind `/metrics` in the
//! Prometheus text format (version 0.0.4), for technicians. (The state of the sync links
//! is kept in `links`; it reaches `/metrics` as gauges.)
//!
//! Counters live in memory and start at zero with the process, as Prometheus expects;
//! gauges (pending changes, quarantine, database size, backup age) are read when scraped.
//! Routes are labelled by their template (`/cases/{id}`), never by the path, so the
//! number of series stays small and no identifier or personal data reaches a label.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default, Clone)]
struct RouteStats {
    /// Requests per status code.
    by_status: BTreeMap<u16, u64>,
    /// Requests at or under each bucket's bound (cumulative when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// The node's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
    /// Bytes and changes this node received and sent over sync, both directions.
    pub sync_bytes_in: AtomicU64,
    pub sync_bytes_out: AtomicU64,
    pub sync_changes_in: AtomicU64,
    pub sync_changes_out: AtomicU64,
}

/// What is read at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    pub pending_changes: u64,
    pub quarantined: u64,
    /// What peers refused, and what they wait on, of what this node sent them.
    pub refused_by_peers: u64,
    pub waiting_at_peers: u64,
    /// Documents whose changes applied here but whose rows could not be derived.
    pub underived: u64,
    pub database_bytes: u64,
    /// Checkpoints of the write-ahead log that failed since start (it grows meanwhile).
    pub checkpoint_failures: u64,
    /// Seconds since the newest scheduled backup; `None` when backups are off or none exists.
    pub backup_age_seconds: Option<u64>,
    /// The link to the parent, when this node has one.
    pub parent: Option<ParentGauges>,
    /// Children holding a long-poll here now, and children that called since start.
    pub children_live: u64,
    pub children_seen: u64,
    /// The PostgreSQL sink, when one is configured.
    pub sink: Option<SinkState>,
}

/// The link to the parent, as numbers.
#[derive(Debug, Default)]
pub struct ParentGauges {
    /// The last session succeeded.
    pub up: bool,
    /// A long-poll to the parent is open.
    pub live: bool,
    /// While failing, the wait before the next attempt.
    pub retry_delay_seconds: Option<f64>,
    /// When the parent last answered, in seconds since the Unix epoch.
    pub last_connected_seconds: Option<u64>,
}

/// The state of the PostgreSQL sink, kept by its driver (`sink`) and shown by
/// `/api/v1/sync/status`, `/metrics` and the admin status page.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SinkState {
    /// A `[sink] postgres` URL is configured.
    pub enabled: bool,
    /// The last batch (or the last check of an idle feed) reached PostgreSQL.
    pub up: bool,
    /// The position in the node's change log whose rows PostgreSQL holds.
    pub position: u64,
    /// The newest position in the change log, as the sink last read it.
    pub head: u64,
    pub last_success_ms: Option<u64>,
    pub last_error: Option<String>,
    /// Rows written since the node started.
    pub rows_written: u64,
    /// Seconds the sink waited for the feed reader with nothing to write, and seconds it
    /// waited for PostgreSQL to take its batches, since the node started: where a
    /// catching-up sink's time goes (`yizhan bench sink`).
    #[serde(skip)]
    pub feed_wait_secs: f64,
    #[serde(skip)]
    pub write_secs: f64,
}

impl SinkState {
    /// Changes in the node's log whose rows are not yet in PostgreSQL.
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.position)
    }
}

impl Metrics {
    /// Counts one request.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: route templates are few; anything else lands on "other".
        let key = if routes.len() < 200 || routes.contains_key(&(method.into(), route.into())) {
            (method.to_string(), route.to_string())
        } else {
            (method.to_string(), "other".to_string())
        };
        let stats = routes.entry(key).or_default();
        *stats.by_status.entry(status).or_default() += 1;
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            stats.buckets[i] += 1;
        }
        stats.count += 1;
        stats.sum_seconds += seconds;
    }

    /// The text Prometheus scrapes.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.push_str(
            "# HELP yizhan_http_requests_total HTTP requests by route template and status.\n",
        );
        out.push_str("# TYPE yizhan_http_requests_total counter\n");
        for ((method, route), stats) in &routes {
            for (status, n) in &stats.by_status {
                let _ = writeln!(
                    out,
                    "yizhan_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP yizhan_http_request_duration_seconds Time to answer, by route template.\n",
        );
        out.push_str("# TYPE yizhan_http_request_duration_seconds histogram\n");
        for ((method, route), stats) in &routes {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(stats.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "yizhan_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "yizhan_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "yizhan_http_request_duration_seconds_sum{{{labels}}} {}",
                stats.sum_seconds
            );
            let _ = writeln!(
                out,
                "yizhan_http_request_duration_seconds_count{{{labels}}} {}",
                stats.count
            );
        }
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            &mut out,
            "yizhan_sync_received_bytes_total",
            "Sync bytes received (pushes from children, pulls from the parent).",
            self.sync_bytes_in.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "yizhan_sync_sent_bytes_total",
            "Sync bytes sent (answers to children's pulls, pushes to the parent).",
            self.sync_bytes_out.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "yizhan_sync_received_changes_total",
            "Changes received and applied.",
            self.sync_changes_in.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "yizhan_sync_sent_changes_total",
            "Changes sent.",
            self.sync_changes_out.load(Ordering::Relaxed),
        );
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "yizhan_sync_pending_changes",
            "Changes here that peers lack, as of what they last told this node.",
            gauges.pending_changes,
        );
        gauge(
            &mut out,
            "yizhan_sync_quarantined_changes",
            "Changes refused for good (forged, unauthorized, unreadable).",
            gauges.quarantined,
        );
        gauge(
            &mut out,
            "yizhan_sync_refused_by_peers",
            "Changes this node sent that a peer refused, with the reason in /api/v1/sync/status.",
            gauges.refused_by_peers,
        );
        gauge(
            &mut out,
            "yizhan_sync_waiting_at_peers",
            "Changes this node sent that a peer cannot apply yet (it waits on a key or a change).",
            gauges.waiting_at_peers,
        );
        gauge(
            &mut out,
            "yizhan_underived_documents",
            "Documents whose changes applied but whose rows could not be derived (see `yizhan status`).",
            gauges.underived,
        );
        gauge(
            &mut out,
            "yizhan_database_bytes",
            "Size of the database files, write-ahead log included.",
            gauges.database_bytes,
        );
        counter(
            &mut out,
            "yizhan_wal_checkpoint_failures_total",
            "Checkpoints of the write-ahead log that failed since start; the log grows until one succeeds (the node's log says why).",
            gauges.checkpoint_failures,
        );
        if let Some(parent) = &gauges.parent {
            gauge(
                &mut out,
                "yizhan_sync_parent_link_up",
                "1 when the last session with the parent succeeded.",
                u64::from(parent.up),
            );
            gauge(
                &mut out,
                "yizhan_sync_parent_link_live",
                "1 while a long-poll to the parent is open (what it gets arrives at once).",
                u64::from(parent.live),
            );
            let _ = writeln!(
                out,
                "# HELP yizhan_sync_parent_retry_delay_seconds While the link fails, the wait before the next attempt (0 when it does not).\n# TYPE yizhan_sync_parent_retry_delay_seconds gauge\nyizhan_sync_parent_retry_delay_seconds {}",
                parent.retry_delay_seconds.unwrap_or(0.0)
            );
            if let Some(at) = parent.last_connected_seconds {
                gauge(
                    &mut out,
                    "yizhan_sync_parent_last_connected_timestamp_seconds",
                    "When the parent last answered, in seconds since the Unix epoch.",
                    at,
                );
            }
        }
        if let Some(sink) = &gauges.sink {
            gauge(
                &mut out,
                "yizhan_sink_up",
                "1 when the PostgreSQL sink's last batch or check reached PostgreSQL.",
                u64::from(sink.up),
            );
            gauge(
                &mut out,
                "yizhan_sink_lag_changes",
                "Changes in this node's log whose rows are not yet in PostgreSQL.",
                sink.lag(),
            );
            counter(
                &mut out,
                "yizhan_sink_rows_written_total",
                "Rows the sink wrote to PostgreSQL since the node started.",
                sink.rows_written,
            );
            if let Some(ms) = sink.last_success_ms {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                gauge(
                    &mut out,
                    "yizhan_sink_last_success_age_seconds",
                    "Seconds since the sink last reached PostgreSQL.",
                    now.saturating_sub(ms) / 1000,
                );
            }
        }
        gauge(
            &mut out,
            "yizhan_sync_children_live",
            "Children holding a long-poll to this node now.",
            gauges.children_live,
        );
        gauge(
            &mut out,
            "yizhan_sync_children_seen",
            "Children that called this node since it started.",
            gauges.children_seen,
        );
        if let Some(age) = gauges.backup_age_seconds {
            gauge(
                &mut out,
                "yizhan_backup_age_seconds",
                "Seconds since the newest scheduled backup was written.",
                age,
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_render_as_counters_and_histograms() {
        let metrics = Metrics::default();
        metrics.request("GET", "/cases/{id}", 200, 0.003);
        metrics.request("GET", "/cases/{id}", 200, 0.2);
        metrics.request("GET", "/cases/{id}", 404, 0.0005);
        metrics.sync_bytes_in.fetch_add(42, Ordering::Relaxed);
        let text = metrics.render(&Gauges {
            pending_changes: 3,
            quarantined: 1,
            refused_by_peers: 3,
            waiting_at_peers: 0,
            underived: 0,
            database_bytes: 4096,
            checkpoint_failures: 2,
            backup_age_seconds: Some(60),
            parent: Some(ParentGauges {
                up: true,
                live: false,
                retry_delay_seconds: Some(4.5),
                last_connected_seconds: Some(1_772_000_000),
            }),
            children_live: 2,
            children_seen: 3,
            sink: Some(SinkState {
                enabled: true,
                up: true,
                position: 90,
                head: 100,
                rows_written: 7,
                ..Default::default()
            }),
        });
        for line in [
            "yizhan_http_requests_total{method=\"GET\",route=\"/cases/{id}\",status=\"200\"} 2",
            "yizhan_http_requests_total{method=\"GET\",route=\"/cases/{id}\",status=\"404\"} 1",
            "yizhan_http_request_duration_seconds_bucket{method=\"GET\",route=\"/cases/{id}\",le=\"0.001\"} 1",
            "yizhan_http_request_duration_seconds_bucket{method=\"GET\",route=\"/cases/{id}\",le=\"0.005\"} 2",
            "yizhan_http_request_duration_seconds_bucket{method=\"GET\",route=\"/cases/{id}\",le=\"+Inf\"} 3",
            "yizhan_http_request_duration_seconds_count{method=\"GET\",route=\"/cases/{id}\"} 3",
            "yizhan_sync_received_bytes_total 42",
            "yizhan_sync_pending_changes 3",
            "yizhan_sync_quarantined_changes 1",
            "yizhan_sync_refused_by_peers 3",
            "yizhan_database_bytes 4096",
            "yizhan_wal_checkpoint_failures_total 2",
            "yizhan_backup_age_seconds 60",
            "yizhan_sync_parent_link_up 1",
            "yizhan_sink_up 1",
            "yizhan_sink_lag_changes 10",
            "yizhan_sink_rows_written_total 7",
            "yizhan_sync_parent_link_live 0",
            "yizhan_sync_parent_retry_delay_seconds 4.5",
            "yizhan_sync_parent_last_connected_timestamp_seconds 1772000000",
            "yizhan_sync_children_live 2",
            "yizhan_sync_children_seen 3",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
