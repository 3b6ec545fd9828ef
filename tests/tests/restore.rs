//! Atomic restore: `yizhan restore` killed with SIGKILL at random moments leaves the old
//! node untouched, nothing any command starts (and `serve` says how to finish), or the
//! whole restored node with a new epoch; running the restore again always finishes it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use yizhan_tests::{Node, Rng, binary, init_node, materialized_rows, run_ok, temp_dir};

/// Kills; a fifth of them into a new, empty directory, the rest over a node (`--replace`).
const ROUNDS: u64 = 60;

/// What a kill left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Outcome {
    /// The node that was there before, byte for byte (or no node, for a new directory).
    Untouched,
    /// Nothing starts; `serve` says how to finish or retry.
    NothingStarts,
    /// The restore finished before the kill (or its last step had run).
    Restored,
}

/// The files that make a node, with their bytes.
fn node_files(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    [
        "yizhan.toml",
        "node.key",
        "yizhan.db",
        "yizhan.db-wal",
        "restore-in-progress",
    ]
    .iter()
    .map(|name| (name.to_string(), std::fs::read(dir.join(name)).ok()))
    .collect()
}

fn epoch_of(dir: &Path) -> u32 {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join("yizhan.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the database opens");
    let epoch: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
            r.get(0)
        })
        .expect("the database has an epoch");
    epoch.parse().expect("a number")
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Starts `restore` and kills it after `delay` (unless it finished first); returns whether
/// it finished.
fn restore_killed_after(archive: &str, dir: &Path, replace: bool, delay: Duration) -> bool {
    let mut args = vec!["restore", archive, "--data-dir", arg(dir)];
    if replace {
        args.push("--replace");
    }
    let mut child = Command::new(binary())
        .args(&args)
        .env("YIZHAN_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the yizhan binary starts");
    std::thread::sleep(delay);
    let finished = child.try_wait().expect("the child can be waited for");
    if finished.is_none() {
        let _ = child.kill();
    }
    let status = child.wait().expect("the child ends");
    status.success()
}

/// After a restore, complete: the backup's rows, a new epoch above `above`, and it serves.
fn assert_restored(dir: &Path, rows_at_backup: &[String], above: u32) -> u32 {
    assert!(!dir.join("restore-in-progress").exists());
    assert!(!dir.join("restore-staging").exists());
    let epoch = epoch_of(dir);
    assert!(epoch > above, "epoch {epoch} is not above {above}");
    assert!(
        materialized_rows(&dir.join("yizhan.db")) == rows_at_backup,
        "the restored rows differ from the backup's"
    );
    let node =
        Node::try_serve(dir).unwrap_or_else(|e| panic!("the restored node does not start: {e}"));
    node.kill9();
    epoch
}

#[test]
fn a_restore_killed_at_any_moment_leaves_the_old_node_nothing_or_the_new_one() {
    let started = Instant::now();
    let root = temp_dir();
    let dir = root.path().join("node");
    init_node(&dir, "station", "440304001001", "园岭社区党群服务中心");
    for n in 0..3 {
        run_ok(&[
            "user",
            "add",
            &format!("worker{n}"),
            "--data-dir",
            arg(&dir),
        ]);
    }
    let backups = root.path().join("backups");
    let out = run_ok(&["backup", arg(&backups), "--data-dir", arg(&dir)]);
    let archive = out
        .lines()
        .find_map(|l| l.strip_prefix("backup written: "))
        .expect("the archive is named")
        .to_string();
    let rows_at_backup = materialized_rows(&dir.join("yizhan.db"));
    let backup_epoch = epoch_of(&dir);

    // How long a whole restore takes here: kills land anywhere within it.
    let mut longest = Duration::ZERO;
    for _ in 0..3 {
        let t = Instant::now();
        run_ok(&["restore", &archive, "--data-dir", arg(&dir), "--replace"]);
        longest = longest.max(t.elapsed());
    }
    let mut epoch = assert_restored(&dir, &rows_at_backup, backup_epoch);
    let window_us = (longest.as_micros() as u64) * 6 / 5;

    let mut rng = Rng::new(0x5_2026_1105);
    let mut seen: std::collections::BTreeMap<Outcome, u32> = Default::default();
    // Kills that landed while files moved into place (the marker was there).
    let mut switching = 0;
    for round in 0..ROUNDS {
        let fresh = round % 5 == 4;
        let target: PathBuf = if fresh {
            root.path().join(format!("fresh-{round}"))
        } else {
            dir.clone()
        };
        let before = node_files(&target);
        let delay = Duration::from_micros(rng.between(0, window_us));
        let finished = restore_killed_after(&archive, &target, !fresh, delay);
        let after = node_files(&target);
        switching += u32::from(target.join("restore-in-progress").exists());
        let outcome = if target.join("restore-in-progress").exists()
            || (target.join("restore-staging").exists() && !target.join("yizhan.toml").exists())
        {
            Outcome::NothingStarts
        } else if after == before {
            Outcome::Untouched
        } else {
            Outcome::Restored
        };
        assert!(
            !finished || outcome == Outcome::Restored,
            "round {round}: the restore finished but left {outcome:?}"
        );
        *seen.entry(outcome).or_default() += 1;
        match outcome {
            Outcome::Restored if fresh => {
                assert_restored(&target, &rows_at_backup, backup_epoch);
            }
            Outcome::Restored => epoch = assert_restored(&target, &rows_at_backup, epoch),
            Outcome::Untouched => {
                if fresh {
                    // No node was there, and none is: `serve` says how to make one.
                    let refused = Node::try_serve(&target).map(Node::kill9);
                    let why = refused.expect_err("an empty directory does not serve");
                    assert!(
                        why.contains("yizhan init") || why.contains("yizhan restore"),
                        "round {round}: {why}"
                    );
                } else {
                    // The old node is as it was and starts, with the epoch it had.
                    assert_eq!(epoch_of(&target), epoch, "round {round}");
                    Node::try_serve(&target)
                        .unwrap_or_else(|e| {
                            panic!("round {round}: the untouched node does not start: {e}")
                        })
                        .kill9();
                }
            }
            Outcome::NothingStarts => {
                let why = match Node::try_serve(&target) {
                    Ok(node) => {
                        node.kill9();
                        panic!("round {round}: a half-restored node started");
                    }
                    Err(why) => why,
                };
                assert!(
                    why.contains(&format!(
                        "yizhan restore {archive} --data-dir {}",
                        arg(&target)
                    )),
                    "round {round}: serve does not say how to finish: {why}"
                );
                // No other command opens it either, nor backs it up.
                let backup = yizhan_tests::run(&[
                    "backup",
                    arg(&root.path().join("half")),
                    "--data-dir",
                    arg(&target),
                ]);
                assert!(
                    !backup.status.success(),
                    "round {round}: a half-restored node was backed up"
                );
                let status = yizhan_tests::run(&["status", "--data-dir", arg(&target)]);
                assert!(
                    !status.status.success(),
                    "round {round}: status opened a half-restored node"
                );
            }
        }
        // Running the restore again finishes it, whatever the kill left (a whole restore
        // into a new directory made a node there, which only --replace replaces).
        if fresh && outcome == Outcome::Restored {
            continue;
        }
        let mut again = vec!["restore", archive.as_str(), "--data-dir", arg(&target)];
        if !fresh {
            again.push("--replace");
        }
        run_ok(&again);
        let now = assert_restored(
            &target,
            &rows_at_backup,
            if fresh { backup_epoch } else { epoch },
        );
        if !fresh {
            epoch = now;
        }
    }
    eprintln!(
        "{ROUNDS} killed restores in {:.1} s (a whole one takes {} ms): {seen:?}, {switching} during the switch",
        started.elapsed().as_secs_f64(),
        longest.as_millis()
    );
    assert!(
        seen.len() >= 2,
        "the kills all landed alike ({seen:?}); the timing window is off"
    );
}

/// A refused archive (a damaged copy) leaves the node it was to replace as it was, and a
/// retry with a sound archive restores.
#[test]
fn a_refused_restore_leaves_the_node_as_it_was() {
    let root = temp_dir();
    let dir = root.path().join("node");
    init_node(&dir, "station", "440304001001", "园岭社区党群服务中心");
    let out = run_ok(&[
        "backup",
        arg(&root.path().join("b")),
        "--data-dir",
        arg(&dir),
    ]);
    let archive = out
        .lines()
        .find_map(|l| l.strip_prefix("backup written: "))
        .expect("the archive is named")
        .to_string();
    let rows = materialized_rows(&dir.join("yizhan.db"));
    let before = node_files(&dir);
    let damaged = root.path().join("damaged.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::copy(
        format!("{archive}.sha256"),
        root.path().join("damaged.tar.gz.sha256"),
    )
    .unwrap();
    let refused = yizhan_tests::run(&[
        "restore",
        arg(&damaged),
        "--data-dir",
        arg(&dir),
        "--replace",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("checksum"));
    assert_eq!(node_files(&dir), before);
    assert!(!dir.join("restore-staging").exists());
    // Without --replace a node is never overwritten.
    let kept = yizhan_tests::run(&["restore", &archive, "--data-dir", arg(&dir)]);
    assert!(!kept.status.success());
    assert!(String::from_utf8_lossy(&kept.stderr).contains("--replace"));
    assert_eq!(node_files(&dir), before);
    let out = run_ok(&["restore", &archive, "--data-dir", arg(&dir), "--replace"]);
    assert!(out.contains("epoch 2 (was 1)"), "{out}");
    assert!(out.contains("replaced node's files are kept in"), "{out}");
    assert_restored(&dir, &rows, 1);
}

/// A damaged database: `serve` refuses it and names the command that restores the newest
/// backup over it; that command, run as printed, gives a node that serves.
#[test]
fn serve_refuses_a_damaged_database_and_names_the_restore_that_mends_it() {
    let root = temp_dir();
    let dir = root.path().join("node");
    init_node(&dir, "station", "440304001001", "园岭社区党群服务中心");
    for n in 0..3 {
        run_ok(&[
            "user",
            "add",
            &format!("worker{n}"),
            "--data-dir",
            arg(&dir),
        ]);
    }
    let backups = dir.join("backups");
    let out = run_ok(&["backup", arg(&backups), "--data-dir", arg(&dir)]);
    let archive = out
        .lines()
        .find_map(|l| l.strip_prefix("backup written: "))
        .expect("the archive is named")
        .to_string();
    let rows = materialized_rows(&dir.join("yizhan.db"));

    // Pages in the middle of the file overwritten, as a failing disk does.
    let db = dir.join("yizhan.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    let pages = bytes.len() / page;
    assert!(pages >= 6, "{pages} pages");
    for byte in &mut bytes[page * (pages / 3)..page * (2 * pages / 3)] {
        *byte = 0xA5;
    }
    std::fs::write(&db, &bytes).unwrap();

    let why = match Node::try_serve(&dir) {
        Ok(node) => {
            node.kill9();
            panic!("a damaged database served");
        }
        Err(why) => why,
    };
    assert!(why.contains("is damaged"), "{why}");
    let command = format!(
        "yizhan restore {archive} --data-dir {} --replace",
        arg(&dir)
    );
    assert!(
        why.contains(&command),
        "serve does not name {command:?}: {why}"
    );
    let words: Vec<&str> = command.split_whitespace().skip(1).collect();
    let out = run_ok(&words);
    assert!(out.contains("replaced node's files are kept in"), "{out}");
    assert_restored(&dir, &rows, 1);
}
