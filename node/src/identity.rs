//! Who this node is: its Ed25519 key pair, the [`Identity`] the store signs with, and
//! [`ThisNode`], what its pages and hello tell others. The node id is derived from the
//! public key, so identity always comes from the key, never from an address or an mDNS
//! name.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use ed25519_dalek::SigningKey;
use yizhan_sync::auth::{NodeRecord, NodeRole};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::feed::{self, Hello};
use yizhan_sync::ids::{NodeId, hex, unhex};

use crate::accounts::fill_random;

/// The node's key and record. The key signs every change the node writes.
#[derive(Clone)]
pub struct Identity {
    pub key: ed25519_dalek::SigningKey,
    pub record: NodeRecord,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identity({} {} {})",
            self.record.node,
            self.record.role.as_str(),
            self.record.division
        )
    }
}

impl Identity {
    pub fn node_id(&self) -> NodeId {
        self.record.node
    }

    pub fn division(&self) -> &DivisionCode {
        &self.record.division
    }
}

/// What this node is, as its pages, its API and its hello tell others. Made once at start
/// from the key and the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThisNode {
    /// The node id (hex), derived from the public key.
    pub node_id: String,
    /// `station`, `subdistrict`, `district` or `city`.
    pub role: String,
    pub division: String,
    pub name: String,
    /// This build's version.
    pub version: String,
}

impl ThisNode {
    /// This node's hello to a peer at `now_ms` (versions, identity, clock).
    pub fn hello(&self, now_ms: u64) -> Result<Hello, String> {
        let division = DivisionCode::parse(&self.division).map_err(|e| e.to_string())?;
        let role = NodeRole::parse(&self.role).ok_or("role")?;
        Ok(Hello {
            protocol: feed::PROTOCOL_VERSION,
            min_protocol: feed::MIN_PROTOCOL_VERSION,
            node: NodeId::parse_hex(&self.node_id).ok_or("node id")?,
            role,
            division,
            name: self.name.clone(),
            now_ms,
            capabilities: vec!["bundle".into()],
            refused: Vec::new(),
        })
    }
}

/// The node's signing key.
pub struct NodeKey {
    signing: SigningKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private half never reaches a log.
        write!(f, "NodeKey({})", self.node_id())
    }
}

/// Reading or writing the key file failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read node key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write node key {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("node key {path} is not 64 hex digits; restore it from a backup")]
    Malformed { path: String },
}

impl NodeKey {
    pub fn generate() -> NodeKey {
        let mut seed = [0u8; 32];
        fill_random(&mut seed);
        NodeKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// A key from a fixed seed (tests and benchmarks).
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        NodeKey {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The store's identity for a node with this key.
    pub fn identity(&self, role: NodeRole, division: DivisionCode, name: &str) -> Identity {
        let public_key = self.signing.verifying_key().to_bytes();
        let node = self.node_id();
        Identity {
            key: self.signing.clone(),
            record: NodeRecord {
                node,
                public_key,
                role,
                division,
                name: name.to_string(),
                enrolled_by: node,
                enrolled_ms: 0,
                revoked: None,
                segment: None,
            },
        }
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs a message (node-to-node request authentication).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.signing.sign(message).to_bytes()
    }

    /// The private key as unencrypted PKCS#8 v1 (RFC 8410 §7), for the TLS server that
    /// presents the node key as its certificate key. Never written to disk.
    pub fn pkcs8_der(&self) -> Vec<u8> {
        const PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut der = PREFIX.to_vec();
        der.extend_from_slice(self.signing.as_bytes());
        der
    }

    /// A second handle on the same key (the serve loop and the web UI each hold one).
    pub fn duplicate(&self) -> NodeKey {
        NodeKey {
            signing: SigningKey::from_bytes(self.signing.as_bytes()),
        }
    }

    pub fn node_id(&self) -> NodeId {
        NodeId::from_public_key(&self.signing.verifying_key().to_bytes())
    }

    pub fn public_hex(&self) -> String {
        hex(&self.signing.verifying_key().to_bytes())
    }

    /// Writes the private key, readable by the owner only (mode 0600), refusing to
    /// overwrite an existing key.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let fail = |source| KeyError::Write {
            path: path.display().to_string(),
            source,
        };
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(fail)?;
        file.write_all(format!("{}\n", hex(self.signing.as_bytes())).as_bytes())
            .map_err(fail)?;
        file.sync_all().map_err(fail)
    }

    pub fn load(path: &Path) -> Result<NodeKey, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let bytes = unhex(text.trim()).ok_or_else(|| KeyError::Malformed {
            path: path.display().to_string(),
        })?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed {
            path: path.display().to_string(),
        })?;
        Ok(NodeKey {
            signing: SigningKey::from_bytes(&seed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = NodeKey::generate();
        key.save(&path).unwrap();
        assert_eq!(NodeKey::load(&path).unwrap().node_id(), key.node_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(
            key.save(&path).is_err(),
            "an existing key is never overwritten"
        );
        fs::write(dir.path().join("bad.key"), "zz").unwrap();
        assert!(matches!(
            NodeKey::load(&dir.path().join("bad.key")),
            Err(KeyError::Malformed { .. })
        ));
        assert!(!format!("{key:?}").contains(&hex(key.signing.as_bytes())));
    }
}
