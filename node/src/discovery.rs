//! LAN discovery with mDNS (DNS-SD): every node advertises `_yizhan._tcp` with its id,
//! role, division, protocol version and port, and browses for the others.
//!
//! What mDNS says is a hint for a technician (which hall answers on this LAN, at which
//! address), never an identity: a node is trusted only through the key pinned at
//! enrollment. Where multicast does not work, the node runs normally and says so once,
//! in the log and in what [`Discovery::status`] reports.
//!
//! It is also a hint for the sync driver ([`Discovery::events`]): a node that starts
//! announces itself with a new `boot` value, so a station hears its hall come back (and
//! tries it at once instead of at its next retry); a new address of this machine means the
//! network came up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};

/// The DNS-SD service type of Yizhan nodes.
pub const SERVICE: &str = "_yizhan._tcp.local.";

/// What discovery notices that may matter to a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LanEvent {
    /// A node (its id, hex) was seen for the first time, or announced a new start.
    Seen(String),
    /// This machine got a new address: the network came up.
    NetworkUp,
}

/// What a node advertises about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub node_id: String,
    pub role: String,
    pub division: String,
    pub protocol: u32,
    pub port: u16,
    /// When this process started (ms): changes with every start, so peers notice one.
    pub boot: u64,
}

/// A node seen on the LAN.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Seen {
    pub node_id: String,
    pub role: String,
    pub division: String,
    pub protocol: u32,
    pub port: u16,
    pub addresses: Vec<String>,
    pub last_seen_ms: u64,
    /// When the node last started, as it announced.
    pub boot: u64,
}

/// Where discovery runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The mDNS port: 5353, or another for tests.
    pub port: u16,
    /// Only the IPv4 loopback interface (tests).
    pub loopback_only: bool,
}

/// A running advertiser and browser; stops when dropped.
pub struct Discovery {
    daemon: ServiceDaemon,
    seen: Arc<Mutex<BTreeMap<String, Seen>>>,
    failed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    events: tokio::sync::broadcast::Sender<LanEvent>,
}

impl Discovery {
    /// Advertises `own` and browses continuously (the receiver is always drained).
    pub fn start(own: &Advert, options: &Options) -> Result<Discovery, mdns_sd::Error> {
        Discovery::run(Some(own), options)
    }

    /// Browses without advertising (for `yizhan peers`).
    pub fn browse_only(options: &Options) -> Result<Discovery, mdns_sd::Error> {
        Discovery::run(None, options)
    }

    fn run(own: Option<&Advert>, options: &Options) -> Result<Discovery, mdns_sd::Error> {
        let daemon = ServiceDaemon::new_with_port(options.port)?;
        if options.loopback_only {
            daemon.disable_interface(IfKind::All)?;
            daemon.enable_interface(IfKind::LoopbackV4)?;
        }
        if let Some(own) = own {
            let host = format!("yizhan-{}.local.", own.node_id.get(..12).unwrap_or("node"));
            let protocol = own.protocol.to_string();
            let port = own.port.to_string();
            let boot = own.boot.to_string();
            let properties = [
                ("node", own.node_id.as_str()),
                ("role", own.role.as_str()),
                ("division", own.division.as_str()),
                ("proto", protocol.as_str()),
                ("port", port.as_str()),
                ("boot", boot.as_str()),
            ];
            let mut info =
                ServiceInfo::new(SERVICE, &own.node_id, &host, "", own.port, &properties[..])?
                    .enable_addr_auto();
            if options.loopback_only {
                info.set_interfaces(vec![IfKind::LoopbackV4]);
            }
            daemon.register(info)?;
        }
        let seen: Arc<Mutex<BTreeMap<String, Seen>>> = Arc::default();
        let failed = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let browse = daemon.browse(SERVICE)?;
        let monitor = daemon.monitor()?;
        let events = tokio::sync::broadcast::channel(64).0;
        {
            let (seen, failed, stop, events) =
                (seen.clone(), failed.clone(), stop.clone(), events.clone());
            let own_id = own.map(|o| o.node_id.clone()).unwrap_or_default();
            std::thread::Builder::new()
                .name("yizhan-discovery".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // Drain both channels; a browse receiver that falls behind is cut.
                        while let Ok(event) = monitor.try_recv() {
                            match event {
                                DaemonEvent::Error(e) if !failed.swap(true, Ordering::Relaxed) => {
                                    tracing::warn!(error = %e, "LAN discovery (mDNS) is not working here; the node runs without it");
                                }
                                DaemonEvent::IpAdd(address) => {
                                    tracing::debug!(ip = %address, "a new address: the network is up");
                                    let _ = events.send(LanEvent::NetworkUp);
                                }
                                _ => {}
                            }
                        }
                        match browse.recv_timeout(Duration::from_millis(250)) {
                            Ok(ServiceEvent::ServiceResolved(found)) => {
                                let text = |key: &str| found.get_property_val_str(key).unwrap_or_default().to_string();
                                let node_id = text("node");
                                if node_id.is_empty() || node_id == own_id {
                                    continue;
                                }
                                let mut addresses: Vec<String> =
                                    found.get_addresses().iter().map(|a| a.to_ip_addr().to_string()).collect();
                                addresses.sort();
                                let entry = Seen {
                                    role: text("role"),
                                    division: text("division"),
                                    protocol: text("proto").parse().unwrap_or(0),
                                    port: found.get_port(),
                                    addresses,
                                    last_seen_ms: crate::clock::Clock::now_ms(&crate::clock::SystemClock),
                                    boot: text("boot").parse().unwrap_or(0),
                                    node_id: node_id.clone(),
                                };
                                let fresh = {
                                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                                    // A late answer of an earlier start (a smaller boot) never
                                    // replaces the newer one, nor wakes anyone.
                                    let known = seen.get(&node_id).map(|old| old.boot);
                                    if known.is_some_and(|boot| boot > entry.boot) {
                                        false
                                    } else {
                                        seen.insert(node_id.clone(), entry.clone());
                                        known != Some(entry.boot)
                                    }
                                };
                                if fresh {
                                    let _ = events.send(LanEvent::Seen(node_id));
                                }
                            }
                            Ok(ServiceEvent::ServiceRemoved(_, fullname)) => {
                                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                                seen.retain(|id, _| !fullname.starts_with(id.as_str()));
                            }
                            Ok(_) => {}
                            Err(mdns_sd::RecvTimeoutError::Timeout) => {}
                            Err(mdns_sd::RecvTimeoutError::Disconnected) => break,
                        }
                    }
                })
                .map_err(|e| mdns_sd::Error::Msg(e.to_string()))?;
        }
        Ok(Discovery {
            daemon,
            seen,
            failed,
            stop,
            events,
        })
    }

    /// Follows what discovery notices (nodes seen or restarted, the network coming up).
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<LanEvent> {
        self.events.subscribe()
    }

    /// The nodes seen so far, by node id.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// `None` while discovery works, or why it does not.
    pub fn status(&self) -> Option<&'static str> {
        self.failed
            .load(Ordering::Relaxed)
            .then_some("multicast is not available on this network; discovery is off")
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("seen", &self.seen().len())
            .finish_non_exhaustive()
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wait (briefly) until the daemon has sent its goodbye, so peers forget this start
        // before a next one announces: a goodbye that lands after the next start's
        // announcement would make them forget the running node too.
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes on loopback find each other with their TXT records intact. Never
    /// skipped: where the kernel forbids multicast on loopback, this fails and says so.
    #[test]
    fn two_nodes_on_loopback_discover_each_other() {
        let port = {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let options = Options {
            port,
            loopback_only: true,
        };
        let hall = Advert {
            node_id: "a1".repeat(16),
            role: "subdistrict".into(),
            division: "440304001".into(),
            protocol: 1,
            port: 8081,
            boot: 1,
        };
        let station = Advert {
            node_id: "b2".repeat(16),
            role: "station".into(),
            division: "440304001001".into(),
            protocol: 1,
            port: 8082,
            boot: 1,
        };
        let a = Discovery::start(&hall, &options).expect("mDNS starts on loopback");
        let b = Discovery::start(&station, &options).expect("mDNS starts on loopback");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (seen_by_a, seen_by_b) = (a.seen(), b.seen());
            if seen_by_a.len() == 1 && seen_by_b.len() == 1 {
                let s = &seen_by_a[0];
                assert_eq!(
                    (
                        s.node_id.as_str(),
                        s.role.as_str(),
                        s.division.as_str(),
                        s.protocol,
                        s.port
                    ),
                    (station.node_id.as_str(), "station", "440304001001", 1, 8082)
                );
                let h = &seen_by_b[0];
                assert_eq!(
                    (
                        h.node_id.as_str(),
                        h.role.as_str(),
                        h.division.as_str(),
                        h.port
                    ),
                    (hall.node_id.as_str(), "subdistrict", "440304001", 8081)
                );
                assert!(
                    h.addresses.iter().any(|ip| ip == "127.0.0.1"),
                    "{:?}",
                    h.addresses
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no mDNS answer on loopback within 15 s (a sees {seen_by_a:?}, b sees {seen_by_b:?}); \
                 the kernel or container may block multicast on lo: `ip link set lo multicast on`"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(a.status(), None);

        // The hall stops and starts again: the station hears it announce the new start.
        let mut events = b.events();
        drop(a);
        // Its goodbye reaches the station (which forgets it about a second later, RFC 6762
        // §10.1) before the new start announces itself, as in a real restart.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !b.seen().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the stopped hall's goodbye was not heard within 15 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let again = Advert {
            boot: 2,
            ..hall.clone()
        };
        let _a = Discovery::start(&again, &options).expect("mDNS starts on loopback");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        // An answer the old start sent may still arrive (boot 1): wait until the station
        // has both been told and holds the new start.
        let mut told = false;
        loop {
            let restarted = b
                .seen()
                .iter()
                .any(|s| s.node_id == hall.node_id && s.boot == 2);
            if told && restarted {
                break;
            }
            match events.try_recv() {
                Ok(LanEvent::Seen(node)) if node == hall.node_id => told = true,
                Ok(_)
                | Err(tokio::sync::broadcast::error::TryRecvError::Empty)
                | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the restarted hall was not heard within 15 s (b sees {:?})",
                b.seen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
