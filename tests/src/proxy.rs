//! A loopback TCP proxy that makes a link slow and unreliable: it delays every chunk,
//! caps the bandwidth, and cuts each connection after a random number of bytes, the way
//! a township's 4G link behaves. Deterministic for a seed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Rng;

/// How bad the link is.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Added to every chunk in each direction.
    pub latency: Duration,
    /// Bytes per second in each direction.
    pub bytes_per_sec: u64,
    /// Each connection is cut after a number of bytes (both directions together) drawn
    /// from this range.
    pub cut_after: (u64, u64),
}

/// What went through the proxy.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub cuts: AtomicU64,
    pub bytes: AtomicU64,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct LossyProxy {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub base: String,
    pub stats: Arc<Stats>,
    /// While false, the proxy forwards faithfully (no delay, no cuts).
    pub faulty: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// No single pump runs longer than this, whatever happens.
const PUMP_LIMIT: Duration = Duration::from_secs(300);

impl LossyProxy {
    /// Proxies a fresh loopback port to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, faults: Faults, seed: u64) -> LossyProxy {
        let target: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream is http://IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let stats = Arc::new(Stats::default());
        let faulty = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let rng = Arc::new(Mutex::new(Rng::new(seed)));
        let accept = {
            let (stats, faulty, stop) = (stats.clone(), faulty.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let cut_at = {
                                let mut rng = rng.lock().unwrap();
                                rng.between(faults.cut_after.0, faults.cut_after.1)
                            };
                            connect(client, target, faults, cut_at, &stats, &faulty, &stop);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        LossyProxy {
            base,
            stats,
            faulty,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn connect(
    client: TcpStream,
    target: SocketAddr,
    faults: Faults,
    cut_at: u64,
    stats: &Arc<Stats>,
    faulty: &Arc<AtomicBool>,
    stop: &Arc<AtomicBool>,
) {
    let _ = client.set_nonblocking(false);
    let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    stats.connections.fetch_add(1, Ordering::Relaxed);
    let moved = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    for (from, to) in [
        (client.try_clone(), upstream.try_clone()),
        (upstream.try_clone(), client.try_clone()),
    ] {
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let (stats, faulty, stop, moved, cut) = (
            stats.clone(),
            faulty.clone(),
            stop.clone(),
            moved.clone(),
            cut.clone(),
        );
        std::thread::spawn(move || {
            pump(
                from, to, faults, cut_at, &stats, &faulty, &stop, &moved, &cut,
            )
        });
    }
}

/// Copies `from` to `to` chunk by chunk, slowing and cutting as `faults` say.
#[allow(clippy::too_many_arguments)]
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    faults: Faults,
    cut_at: u64,
    stats: &Stats,
    faulty: &AtomicBool,
    stop: &AtomicBool,
    moved: &AtomicU64,
    cut: &AtomicBool,
) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = to.set_write_timeout(Some(Duration::from_secs(10)));
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    while started.elapsed() < PUMP_LIMIT && !stop.load(Ordering::Relaxed) {
        if cut.load(Ordering::Relaxed) {
            break;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        let faulty = faulty.load(Ordering::Relaxed);
        if faulty {
            std::thread::sleep(
                faults.latency
                    + Duration::from_micros(n as u64 * 1_000_000 / faults.bytes_per_sec.max(1)),
            );
            let total = moved.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
            if total > cut_at {
                // Forward part of the chunk, then cut both ways mid-message.
                let _ = to.write_all(&buf[..n / 2]);
                if !cut.swap(true, Ordering::Relaxed) {
                    stats.cuts.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
