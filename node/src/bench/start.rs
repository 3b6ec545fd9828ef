//! `yizhan bench start`: how long a large hall takes from `yizhan serve` to serving, and
//! its memory when idle (issue "Faster and smaller", point 7: footprint for small PCs).
//!
//! It runs the real binary as a technician does, on a hall kept by `yizhan bench hall
//! --keep` or `yizhan bench sink --keep`: after a clean stop (SIGTERM, what systemd
//! sends), which is how a node starts every morning, and once after a SIGKILL, when the
//! start checks every page within its budget (`node::check_database`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use yizhan_sync::auth::NodeRole;

use super::tree;
use crate::data_dir::DataDir;

#[derive(Debug, Args)]
pub struct StartBenchArgs {
    /// A directory holding one hall's data dir (`city-DIVISION` or `district-DIVISION`), as
    /// `yizhan bench hall --keep` or `yizhan bench sink --keep` leave it. When it has no
    /// config or node key yet, they are written (the node key from seed 1, as the benches
    /// made it; listening on loopback, discovery off) so that `yizhan serve` runs it
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Starts after a clean stop to time
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
}

/// Seconds a started node is left alone before its idle memory is read (its first sync
/// attempt and discovery have run by then).
const IDLE: Duration = Duration::from_secs(3);

pub async fn start(args: StartBenchArgs) -> anyhow::Result<()> {
    let (role, division) = tree::find_hall(&args.from)?;
    let dir = args.from.join(format!("{}-{division}", role.as_str()));
    make_servable(&dir, role, &division)?;
    let db_bytes = std::fs::metadata(dir.join("yizhan.db"))?.len();
    let cases = crate::store::cases_held(&dir.join("yizhan.db"))?;
    let exe = std::env::current_exe()?;
    println!(
        "start bench: the {} hall {division} in {} with {cases} cases, a {:.0} MB database",
        role.as_str(),
        dir.display(),
        db_bytes as f64 / 1e6
    );

    // A first start and clean stop: whatever the hall's last stop was, the runs after it
    // start from a clean one.
    let first = serve_once(&exe, &dir, Stop::Clean)?;
    println!(
        "  first start (after whatever stopped it last): {:.3} s to serving, idle RSS {:.1} MB",
        first.startup, first.idle_rss_mb
    );
    let mut startups = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..args.runs {
        let run = serve_once(&exe, &dir, Stop::Clean)?;
        startups.push(run.startup);
        rss.push(run.idle_rss_mb);
    }
    let (startup_p50, _) = super::percentiles(&mut startups);
    let (rss_p50, _) = super::percentiles(&mut rss);
    println!(
        "  after a clean stop ({} runs): start-up median {startup_p50:.3} s (max {:.3} s); idle RSS median {rss_p50:.1} MB (max {:.1} MB), {} s after start",
        args.runs,
        startups.iter().copied().fold(0.0, f64::max),
        rss.iter().copied().fold(0.0, f64::max),
        IDLE.as_secs()
    );

    // After a crash: killed, then started again (it checks pages and reads the clock from
    // the cases), then stopped cleanly so the hall is left as it was found.
    serve_once(&exe, &dir, Stop::Kill)?;
    let crashed = serve_once(&exe, &dir, Stop::Clean)?;
    println!(
        "  after a SIGKILL: start-up {:.3} s (the page check, within its budget, and the clock read from the cases); idle RSS {:.1} MB",
        crashed.startup, crashed.idle_rss_mb
    );
    Ok(())
}

/// Writes the config and node key `yizhan serve` needs into a kept hall's data dir, when
/// missing.
fn make_servable(dir: &Path, role: NodeRole, division: &str) -> anyhow::Result<()> {
    let data_dir = DataDir::new(dir);
    if !data_dir.key().exists() {
        crate::identity::NodeKey::from_seed([1; 32]).save(&data_dir.key())?;
    }
    if !data_dir.config().exists() {
        let mut config = super::loopback_config(
            role.into(),
            division,
            &format!("{} {division}", role.as_str()),
        )?;
        config.discovery.enabled = false;
        std::fs::write(data_dir.config(), config.render())?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGTERM, as systemd stops the node.
    Clean,
    /// SIGKILL, as a crash or a power cut leaves it.
    Kill,
}

struct Run {
    startup: f64,
    idle_rss_mb: f64,
}

/// Starts `yizhan serve` on `dir`, times it to its "listening on" line, reads its RSS
/// after [`IDLE`], and stops it.
fn serve_once(exe: &Path, dir: &Path, stop: Stop) -> anyhow::Result<Run> {
    let started = Instant::now();
    let (mut child, _base) = super::spawn_serve(exe, dir)?;
    let startup = started.elapsed().as_secs_f64();
    std::thread::sleep(IDLE);
    let idle_rss_mb = super::web::proc_kb(child.id(), "VmRSS:").unwrap_or(0) as f64 / 1024.0;
    match stop {
        Stop::Kill => child.kill()?,
        Stop::Clean => {
            let status = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()?;
            anyhow::ensure!(status.success(), "could not send SIGTERM to the node");
        }
    }
    let status = child.wait()?;
    if stop == Stop::Clean {
        anyhow::ensure!(status.success(), "the node did not stop cleanly: {status}");
    }
    Ok(Run {
        startup,
        idle_rss_mb,
    })
}
