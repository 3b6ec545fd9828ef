//! The private keys of the approval seals (审批专用章, SZDB/Z 176 §9.6) of the departments
//! that work through this hall, kept like the node key: in the data dir, in one file
//! readable by the owner alone (`seals.key`, mode 0600), in every backup beside the node
//! key (`backup`), never in the database, a document, a log or an answer. The public
//! halves and the hall's certificates travel in the departments' documents.
//!
//! Each line is `<department document id> <key number> <64 hex digits>`. Adding a key
//! writes the whole file anew beside it and renames it into place after an fsync, so a
//! crash leaves the old file or the new one, never half of one; a key is written before
//! the document that certifies it commits, so a certified key is never lost.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use yizhan_sync::ids::{hex, unhex};

/// The file's name in the data dir.
pub const FILE: &str = "seals.key";

/// Why the seal keys cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SealKeyError {
    #[error("cannot read seal keys {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write seal keys {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("seal keys {path} line {line} is damaged; restore the file from a backup")]
    Malformed { path: String, line: usize },
}

/// The seal keys of a data dir.
#[derive(Clone, Debug)]
pub struct SealKeys {
    path: PathBuf,
}

impl SealKeys {
    /// The seal keys file in the data dir `dir`.
    pub fn in_dir(dir: &Path) -> SealKeys {
        SealKeys {
            path: dir.join(FILE),
        }
    }

    /// A fresh key pair for a seal.
    pub fn generate() -> SigningKey {
        let mut seed = [0u8; 32];
        crate::accounts::fill_random(&mut seed);
        SigningKey::from_bytes(&seed)
    }

    /// The key numbered `key_no` of the department `department` (its document id).
    pub fn get(&self, department: &str, key_no: u32) -> Result<Option<SigningKey>, SealKeyError> {
        Ok(self
            .read()?
            .into_iter()
            .find(|(d, n, _)| d == department && *n == key_no)
            .map(|(_, _, key)| key))
    }

    /// Adds a key, durably, before anything certifies it. A key already held under the
    /// same department and number is left as it was.
    pub fn add(&self, department: &str, key_no: u32, key: &SigningKey) -> Result<(), SealKeyError> {
        let mut keys = self.read()?;
        if keys.iter().any(|(d, n, _)| d == department && *n == key_no) {
            return Ok(());
        }
        keys.push((department.to_string(), key_no, key.clone()));
        let fail = |source| SealKeyError::Write {
            path: self.path.display().to_string(),
            source,
        };
        let forming = self.path.with_extension("key.new");
        let _ = fs::remove_file(&forming);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&forming).map_err(fail)?;
        let mut text = String::new();
        for (d, n, k) in &keys {
            text.push_str(&format!("{d} {n} {}\n", hex(k.as_bytes())));
        }
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        fs::rename(&forming, &self.path).map_err(fail)?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
        }
        Ok(())
    }

    fn read(&self) -> Result<Vec<(String, u32, SigningKey)>, SealKeyError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(SealKeyError::Read {
                    path: self.path.display().to_string(),
                    source,
                });
            }
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, line)| {
                let malformed = || SealKeyError::Malformed {
                    path: self.path.display().to_string(),
                    line: i + 1,
                };
                let mut parts = line.split_whitespace();
                let (Some(d), Some(n), Some(k), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(malformed());
                };
                let seed: [u8; 32] = unhex(k)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(malformed)?;
                let n: u32 = n.parse().map_err(|_| malformed())?;
                Ok((d.to_string(), n, SigningKey::from_bytes(&seed)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SealKeys::in_dir(dir.path());
        assert!(keys.get("d-440304001-mzj", 1).unwrap().is_none());
        let one = SigningKey::from_bytes(&[1; 32]);
        let two = SigningKey::from_bytes(&[2; 32]);
        keys.add("d-440304001-mzj", 1, &one).unwrap();
        keys.add("d-440304001-mzj", 2, &two).unwrap();
        // Adding the same number again keeps the first key.
        keys.add("d-440304001-mzj", 1, &two).unwrap();
        let got = keys.get("d-440304001-mzj", 1).unwrap().unwrap();
        assert_eq!(got.to_bytes(), one.to_bytes());
        let got = keys.get("d-440304001-mzj", 2).unwrap().unwrap();
        assert_eq!(got.to_bytes(), two.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(dir.path().join(FILE), "d-x 1 nothex\n").unwrap();
        assert!(matches!(
            keys.get("d-x", 1),
            Err(SealKeyError::Malformed { line: 1, .. })
        ));
    }
}
