//! Unified business serial numbers (统一业务流水号, SZDB/Z 176 §8.5).
//!
//! §8.5.1 asks for a serial number generated from the item code when a case is handled;
//! §8.5.2 and §9.3.1 put it on every receipt. Real platforms use implementation code +
//! acceptance date + a daily sequence (DOMAIN §3), which collides as soon as two offline
//! stations accept the same item on the same day. Ours adds a node segment and the node's
//! epoch, so every node can issue numbers alone and no number is ever issued twice:
//!
//! ```text
//! 1144039999000005XU5002099101000 20260305 99001001 1 0007
//! └ implementation code (31) ───┘ └ date ┘ └ node ┘ │ └ sequence (4)
//!                                   (8)      (8)    └ epoch (1)
//! ```
//!
//! * **date**: the acceptance date, `YYYYMMDD`, China Standard Time.
//! * **node segment**: digits 5-12 of the accepting node's division code padded to 12
//!   digits (district 2 + sub-district 3 + community 3), unique within a city because each
//!   division runs one node of each role: station `440399001001` → `99001001`, sub-district
//!   hall `440399001` → `99001000`, district hall `440399` → `99000000`.
//! * **epoch**: the node's epoch modulo 36 in base 36 (`1`-`9`, `A`-`Z`, `0`). A node
//!   restored from a backup starts a new epoch, so numbers it issued after that backup and
//!   lost with the disk are never issued again.
//! * **sequence**: per node, epoch, implementation code and day, from `0001` to `9999`.
//!
//! 52 characters in all. The store keeps the counter in the same transaction as the
//! acceptance that uses it, so a restart never reissues a number.

use std::fmt;

use super::calendar::Date;
use super::codes::{DivisionCode, ImplCode};

/// A serial number, valid by construction.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialNo(String);

/// The parts of a serial number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialParts {
    pub impl_code: ImplCode,
    pub date: Date,
    pub node_segment: String,
    pub epoch_digit: char,
    pub sequence: u32,
}

/// Why a serial number could not be issued or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    #[error(
        "all {max} serial numbers of {date} for item {impl_code} are used on this node; \
         accept the application tomorrow or on another node",
        max = SerialNo::MAX_SEQUENCE
    )]
    Exhausted { impl_code: String, date: Date },
    #[error("not a serial number: {reason}")]
    Malformed { reason: String },
}

impl SerialNo {
    pub const LEN: usize = 52;
    pub const MAX_SEQUENCE: u32 = 9999;

    /// The serial number with sequence `sequence` (1-based) for an acceptance on `date`.
    pub fn issue(
        impl_code: &ImplCode,
        date: Date,
        node_division: &DivisionCode,
        epoch: u32,
        sequence: u32,
    ) -> Result<SerialNo, SerialError> {
        if sequence == 0 || sequence > Self::MAX_SEQUENCE {
            return Err(SerialError::Exhausted {
                impl_code: impl_code.to_string(),
                date,
            });
        }
        Ok(SerialNo(format!(
            "{impl_code}{}{}{}{sequence:04}",
            date.compact(),
            node_segment(node_division),
            epoch_digit(epoch),
        )))
    }

    pub fn parse(s: &str) -> Result<SerialNo, SerialError> {
        let malformed = |reason: String| SerialError::Malformed { reason };
        if s.len() != Self::LEN || !s.is_ascii() {
            return Err(malformed(format!(
                "expected {} characters, got {}",
                Self::LEN,
                s.chars().count()
            )));
        }
        ImplCode::parse(&s[..31]).map_err(|e| malformed(e.to_string()))?;
        Date::parse_compact(&s[31..39]).ok_or_else(|| {
            malformed(format!("characters 32-39 are not a date: {:?}", &s[31..39]))
        })?;
        if !s[39..47].bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(
                "characters 40-47 (node segment) must be digits".into(),
            ));
        }
        let epoch = s.as_bytes()[47];
        if !(epoch.is_ascii_digit() || epoch.is_ascii_uppercase()) {
            return Err(malformed("character 48 (epoch) must be 0-9 or A-Z".into()));
        }
        let seq = &s[48..];
        if !seq.bytes().all(|b| b.is_ascii_digit()) || seq == "0000" {
            return Err(malformed(
                "the last 4 characters must be a sequence 0001-9999".into(),
            ));
        }
        Ok(SerialNo(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parts(&self) -> SerialParts {
        let s = &self.0;
        SerialParts {
            impl_code: ImplCode::parse(&s[..31]).expect("validated"),
            date: Date::parse_compact(&s[31..39]).expect("validated"),
            node_segment: s[39..47].to_string(),
            epoch_digit: s.as_bytes()[47] as char,
            sequence: s[48..].parse().expect("validated"),
        }
    }
}

/// Digits 5-12 of the division code padded to 12 digits.
pub fn node_segment(division: &DivisionCode) -> String {
    division.padded()[4..12].to_string()
}

/// The epoch as one base-36 character.
pub fn epoch_digit(epoch: u32) -> char {
    char::from_digit(epoch % 36, 36)
        .expect("below 36")
        .to_ascii_uppercase()
}

impl fmt::Display for SerialNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SerialNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerialNo({})", self.0)
    }
}

impl serde::Serialize for SerialNo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SerialNo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SerialNo, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SerialNo::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;

    fn impl_code() -> ImplCode {
        ImplCode::parse("1144039999000005XU5002099101000").unwrap()
    }

    fn div(s: &str) -> DivisionCode {
        DivisionCode::parse(s).unwrap()
    }

    #[test]
    fn format_and_parts() {
        let date: Date = "2026-03-05".parse().unwrap();
        let s = SerialNo::issue(&impl_code(), date, &div("440399001001"), 1, 7).unwrap();
        assert_eq!(
            s.as_str(),
            "1144039999000005XU5002099101000202603059900100110007"
        );
        assert_eq!(s.as_str().len(), SerialNo::LEN);
        let parts = s.parts();
        assert_eq!(parts.impl_code, impl_code());
        assert_eq!(parts.date, date);
        assert_eq!(parts.node_segment, "99001001");
        assert_eq!(parts.epoch_digit, '1');
        assert_eq!(parts.sequence, 7);
        assert_eq!(SerialNo::parse(s.as_str()), Ok(s));
    }

    #[test]
    fn node_segments_and_epochs() {
        assert_eq!(node_segment(&div("440399001001")), "99001001");
        assert_eq!(node_segment(&div("440399001")), "99001000");
        assert_eq!(node_segment(&div("440399")), "99000000");
        assert_eq!(node_segment(&div("440300")), "00000000");
        assert_eq!(epoch_digit(1), '1');
        assert_eq!(epoch_digit(10), 'A');
        assert_eq!(epoch_digit(35), 'Z');
        assert_eq!(epoch_digit(36), '0');
    }

    #[test]
    fn bad_serials_are_rejected_with_a_reason() {
        let good = "1144039999000005XU5002099101000202603059900100110007";
        let table = [
            (&good[..51], "52 characters"),
            (
                "1144039999000005XA5002099101000202603059900100110007",
                "check character",
            ),
            (
                "1144039999000005XU5002099101000202602309900100110007",
                "not a date",
            ),
            (
                "1144039999000005XU50020991010002026030599001A0110007",
                "node segment",
            ),
            (
                "1144039999000005XU50020991010002026030599001001a0007",
                "epoch",
            ),
            (
                "1144039999000005XU5002099101000202603059900100110000",
                "sequence",
            ),
            (
                "1144039999000005XU500209910100020260305990010011000x",
                "sequence",
            ),
        ];
        for (s, needle) in table {
            let err = SerialNo::parse(s).unwrap_err();
            assert!(err.to_string().contains(needle), "{s}: {err}");
        }
    }

    #[test]
    fn sequence_bounds() {
        let date: Date = "2026-03-05".parse().unwrap();
        let d = div("440399001001");
        assert!(SerialNo::issue(&impl_code(), date, &d, 1, 9999).is_ok());
        let err = SerialNo::issue(&impl_code(), date, &d, 1, 10_000).unwrap_err();
        assert!(matches!(err, SerialError::Exhausted { .. }));
        assert!(SerialNo::issue(&impl_code(), date, &d, 1, 0).is_err());
    }

    /// What a node does when it issues a number: bump its persisted counter for
    /// (epoch, item, day), then format. `restore` models a restore from an older backup.
    #[derive(Clone)]
    struct SimNode {
        division: DivisionCode,
        epoch: u32,
        counters: HashMap<(u32, Date), u32>,
        backup: Option<HashMap<(u32, Date), u32>>,
    }

    #[derive(Clone, Debug)]
    enum Op {
        Issue { node: usize, day: i32 },
        Backup { node: usize },
        RestoreFromBackup { node: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0..3usize, 0..3i32).prop_map(|(node, day)| Op::Issue { node, day }),
            1 => (0..3usize).prop_map(|node| Op::Backup { node }),
            1 => (0..3usize).prop_map(|node| Op::RestoreFromBackup { node }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Offline nodes accepting the same item on the same days, with restores from old
        /// backups, never produce the same number.
        #[test]
        fn offline_nodes_never_collide(ops in proptest::collection::vec(op(), 1..400)) {
            let base: Date = "2026-03-02".parse().unwrap();
            let mut nodes: Vec<SimNode> = ["440399001001", "440399001002", "440399002001"]
                .iter()
                .map(|d| SimNode { division: div(d), epoch: 1, counters: HashMap::new(), backup: None })
                .collect();
            let mut seen = HashSet::new();
            for op in ops {
                match op {
                    Op::Issue { node, day } => {
                        let n = &mut nodes[node];
                        let date = base.add_days(day);
                        let counter = n.counters.entry((n.epoch, date)).or_insert(0);
                        *counter += 1;
                        let serial = SerialNo::issue(&impl_code(), date, &n.division, n.epoch, *counter).unwrap();
                        prop_assert!(seen.insert(serial.clone()), "{} issued twice", serial);
                    }
                    Op::Backup { node } => nodes[node].backup = Some(nodes[node].counters.clone()),
                    Op::RestoreFromBackup { node } => {
                        let n = &mut nodes[node];
                        if let Some(backup) = n.backup.clone() {
                            n.counters = backup;
                            n.epoch += 1;
                        }
                    }
                }
            }
        }
    }
}
