//! Unified business serial numbers (统一业务流水号, SZDB/Z 176 §8.5).
//!
//! §8.5.1 asks for a serial number generated from the item code when a case is handled;
//! §8.5.2 and §9.3.1 put it on every receipt. Real platforms use implementation code +
//! acceptance date + a daily sequence in a field of 50 characters (DOMAIN §3), which
//! collides as soon as two offline stations accept the same item on the same day. Ours
//! inserts a node segment and the node's epoch, so every node issues numbers alone and no
//! number is ever issued twice, in 50 characters:
//!
//! ```text
//! 1144039999000005XU5002099101000 20260305 04A100 1 0007
//! └ implementation code (31) ───┘ └ date ┘ └node┘ │ └ sequence (4)
//!                                   (8)     (6)   └ epoch (1)
//! ```
//!
//! * **date**: the acceptance date, `YYYYMMDD`, China Standard Time.
//! * **node segment** ([`Segment`]): six characters of `0-9 A-Z` without `I` and `O`,
//!   unique in the city by construction, because each part is given out by the one hall
//!   that enrolls the node, in a part of the segment no other hall gives out:
//!   * characters 1-2: the district, from its division code (`440304` → `04`; `00` for
//!     the city hall itself);
//!   * characters 3-4: the node's number among the nodes its district hall enrolled
//!     (`00` for the district hall itself);
//!   * characters 5-6: its number among the nodes its sub-district hall enrolled (`00`
//!     for the sub-district hall itself).
//!
//!   The enrolling hall keeps the segment in the node's record in its registry, so every
//!   node above can check it. A node that accepts applications before it is enrolled
//!   (a demo, a station set up ahead of its hall) uses a provisional segment, `Z` plus
//!   three characters from its key, which no hall gives out.
//! * **epoch**: the node's epoch (`1`-`9`, `A`-`Z` without `I` and `O`: 33 epochs). A node
//!   restored from a backup starts a new epoch, so numbers it issued after that backup and
//!   lost with the disk are never issued again; a node past its 33rd epoch must be enrolled
//!   anew for a new segment.
//! * **sequence**: per node, epoch, implementation code and day, from `0001` to `9999`.
//!
//! The store keeps the counter in the same transaction as the acceptance that uses it, so
//! a restart never reissues a number. Numbers issued before this format (52 characters:
//! an eight-digit segment from the division code and a base-36 epoch) still read.

use std::fmt;

use super::calendar::Date;
use super::codes::{DivisionCode, DivisionLevel, ImplCode};

/// The characters of segments and epochs: digits and capitals without `I` and `O`, which
/// read as `1` and `0` on paper.
pub const ALPHABET: &[u8; 34] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// A node's six-character part of the serial numbers it issues.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Segment(String);

/// Why a segment could not be given out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error(
        "a {0} hall does not enroll nodes that issue serial numbers below it; enroll them with their district or sub-district hall"
    )]
    NotAnEnrollingHall(&'static str),
    #[error(
        "this hall has given out all {0} node numbers; a node must be enrolled by another hall"
    )]
    Exhausted(u32),
    #[error("not a node segment: {0:?} (six characters of 0-9, A-Z without I and O)")]
    Malformed(String),
}

impl Segment {
    /// How many nodes one hall can number: two characters, never `00`, never starting
    /// with `Z` (provisional segments).
    pub const MAX_ORDINAL: u32 = 33 * 34 - 1;

    pub fn parse(s: &str) -> Result<Segment, SegmentError> {
        let ok = s.len() == 6 && s.bytes().all(|b| ALPHABET.contains(&b));
        ok.then(|| Segment(s.to_string()))
            .ok_or_else(|| SegmentError::Malformed(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segment of a hall at the top of a deployment: a district's from its code, the
    /// city's `000000`. Any other node without an enrolling hall gets a provisional one.
    pub fn root(division: &DivisionCode, node_key_hash: &[u8]) -> Segment {
        match division.level() {
            DivisionLevel::City => Segment("000000".into()),
            DivisionLevel::District => Segment(format!("{}0000", district_digits(division))),
            _ => Segment::provisional(division, node_key_hash),
        }
    }

    /// `Z` and three characters from the node's key, after its district's digits: never
    /// given out by a hall, unlikely to meet another node's.
    pub fn provisional(division: &DivisionCode, node_key_hash: &[u8]) -> Segment {
        let n = node_key_hash
            .iter()
            .take(4)
            .fold(0u32, |acc, b| acc << 8 | u32::from(*b));
        let pick = |i: u32| ALPHABET[(n / 34u32.pow(i) % 34) as usize] as char;
        Segment(format!(
            "{}Z{}{}{}",
            district_digits(division),
            pick(0),
            pick(1),
            pick(2)
        ))
    }

    /// Whether this is a provisional segment (no hall gave it out).
    pub fn is_provisional(&self) -> bool {
        self.0.as_bytes()[2] == b'Z'
    }

    /// The segment a hall with this segment, at `level`, gives the `ordinal`-th node it
    /// enrolls (1-based). A city hall gives districts their segments from their codes
    /// (see [`Segment::root`]) and enrolls nothing else.
    pub fn child(&self, level: DivisionLevel, ordinal: u32) -> Result<Segment, SegmentError> {
        let position = match level {
            DivisionLevel::District => 2,
            DivisionLevel::Subdistrict => 4,
            DivisionLevel::City => return Err(SegmentError::NotAnEnrollingHall("city")),
            DivisionLevel::Community => return Err(SegmentError::NotAnEnrollingHall("community")),
        };
        if ordinal == 0 || ordinal > Self::MAX_ORDINAL {
            return Err(SegmentError::Exhausted(Self::MAX_ORDINAL));
        }
        let code = [
            ALPHABET[(ordinal / 34) as usize] as char,
            ALPHABET[(ordinal % 34) as usize] as char,
        ];
        let mut out: Vec<char> = self.0.chars().collect();
        out[position] = code[0];
        out[position + 1] = code[1];
        Ok(Segment(out.into_iter().collect()))
    }

    /// Whether `other` lies in the part of the segment space a hall with this segment, at
    /// `level`, is above: its own prefix, then a part it or a hall below it gave out.
    pub fn is_above(&self, level: DivisionLevel, other: &Segment) -> bool {
        let position = match level {
            DivisionLevel::City => return true,
            DivisionLevel::District => 2,
            DivisionLevel::Subdistrict => 4,
            DivisionLevel::Community => return false,
        };
        let (own, theirs) = (self.0.as_bytes(), other.0.as_bytes());
        own[..position] == theirs[..position]
            && own[position..].iter().all(|b| *b == b'0')
            && theirs[position..position + 2] != *b"00"
            && theirs[position] != b'Z'
    }

    /// Whether `child` is a segment this hall segment, at `level`, could have given out:
    /// the same prefix, its own part filled in, the rest zero.
    pub fn gave(&self, level: DivisionLevel, child: &Segment) -> bool {
        let position = match level {
            DivisionLevel::District => 2,
            DivisionLevel::Subdistrict => 4,
            _ => return false,
        };
        let (own, theirs) = (self.0.as_bytes(), child.0.as_bytes());
        own[..position] == theirs[..position]
            && own[position..].iter().all(|b| *b == b'0')
            && theirs[position..position + 2] != *b"00"
            && theirs[position] != b'Z'
            && theirs[position + 2..].iter().all(|b| *b == b'0')
    }
}

impl TryFrom<String> for Segment {
    type Error = SegmentError;
    fn try_from(s: String) -> Result<Segment, SegmentError> {
        Segment::parse(&s)
    }
}

impl From<Segment> for String {
    fn from(s: Segment) -> String {
        s.0
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Segment({})", self.0)
    }
}

fn district_digits(division: &DivisionCode) -> String {
    division.padded()[4..6].to_string()
}

/// A serial number, valid by construction.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialNo(String);

/// The parts of a serial number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialParts {
    pub impl_code: ImplCode,
    pub date: Date,
    /// Six characters; eight digits in numbers of the older format.
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
    #[error(
        "this node is in its epoch {0}, past the 33 its serial numbers can tell apart; \
         enroll it anew with its hall for a new node segment"
    )]
    EpochsExhausted(u32),
    #[error("not a serial number: {reason}")]
    Malformed { reason: String },
}

impl SerialError {
    /// A stable name for the error, which the UI words in the reader's language.
    pub fn code(&self) -> &'static str {
        match self {
            SerialError::Exhausted { .. } => "serial_exhausted",
            SerialError::EpochsExhausted(_) => "epochs_exhausted",
            SerialError::Malformed { .. } => "serial_malformed",
        }
    }
}

impl SerialNo {
    /// The length of the numbers issued now (the platforms' field holds 50).
    pub const LEN: usize = 50;
    /// The length of numbers issued before node segments were given out by halls.
    pub const LEGACY_LEN: usize = 52;
    pub const MAX_SEQUENCE: u32 = 9999;
    /// The last epoch a number can carry.
    pub const MAX_EPOCH: u32 = 33;

    /// The serial number with sequence `sequence` (1-based) for an acceptance on `date`
    /// by the node with `segment` in its `epoch`.
    pub fn issue(
        impl_code: &ImplCode,
        date: Date,
        segment: &Segment,
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
            "{impl_code}{}{segment}{}{sequence:04}",
            date.compact(),
            epoch_digit(epoch)?,
        )))
    }

    pub fn parse(s: &str) -> Result<SerialNo, SerialError> {
        let malformed = |reason: String| SerialError::Malformed { reason };
        if !(s.len() == Self::LEN || s.len() == Self::LEGACY_LEN) || !s.is_ascii() {
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
        let epoch_at = s.len() - 5;
        let segment = &s[39..epoch_at];
        let epoch = s.as_bytes()[epoch_at];
        if s.len() == Self::LEN {
            if Segment::parse(segment).is_err() {
                return Err(malformed(
                    "characters 40-45 (node segment) must be 0-9 or A-Z without I and O".into(),
                ));
            }
            if epoch == b'0' || !ALPHABET.contains(&epoch) {
                return Err(malformed(
                    "character 46 (epoch) must be 1-9 or A-Z without I and O".into(),
                ));
            }
        } else {
            if !segment.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed(
                    "characters 40-47 (node segment) must be digits".into(),
                ));
            }
            if !(epoch.is_ascii_digit() || epoch.is_ascii_uppercase()) {
                return Err(malformed("character 48 (epoch) must be 0-9 or A-Z".into()));
            }
        }
        let seq = &s[epoch_at + 1..];
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
        let epoch_at = s.len() - 5;
        SerialParts {
            impl_code: ImplCode::parse(&s[..31]).expect("validated"),
            date: Date::parse_compact(&s[31..39]).expect("validated"),
            node_segment: s[39..epoch_at].to_string(),
            epoch_digit: s.as_bytes()[epoch_at] as char,
            sequence: s[epoch_at + 1..].parse().expect("validated"),
        }
    }
}

/// The epoch as one character (`1`-`9`, `A`-`Z` without `I` and `O`).
pub fn epoch_digit(epoch: u32) -> Result<char, SerialError> {
    if epoch == 0 || epoch > SerialNo::MAX_EPOCH {
        return Err(SerialError::EpochsExhausted(epoch));
    }
    Ok(ALPHABET[epoch as usize] as char)
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

    fn seg(s: &str) -> Segment {
        Segment::parse(s).unwrap()
    }

    #[test]
    fn format_and_parts() {
        let date: Date = "2026-03-05".parse().unwrap();
        let s = SerialNo::issue(&impl_code(), date, &seg("04A100"), 1, 7).unwrap();
        assert_eq!(
            s.as_str(),
            "1144039999000005XU5002099101000202603050 4A10010007".replace(' ', "")
        );
        assert_eq!(s.as_str().len(), SerialNo::LEN);
        let parts = s.parts();
        assert_eq!(parts.impl_code, impl_code());
        assert_eq!(parts.date, date);
        assert_eq!(parts.node_segment, "04A100");
        assert_eq!(parts.epoch_digit, '1');
        assert_eq!(parts.sequence, 7);
        assert_eq!(SerialNo::parse(s.as_str()), Ok(s));
        // Numbers of the older format still read.
        let legacy =
            SerialNo::parse("1144039999000005XU5002099101000202603059900100110007").unwrap();
        assert_eq!(legacy.parts().node_segment, "99001001");
        assert_eq!(legacy.parts().sequence, 7);
    }

    #[test]
    fn segments_are_given_out_down_the_tree() {
        let key = [7u8; 32];
        let district = Segment::root(&div("440304"), &key);
        assert_eq!(district.as_str(), "040000");
        assert_eq!(Segment::root(&div("440300"), &key).as_str(), "000000");
        let sub = district.child(DivisionLevel::District, 1).unwrap();
        assert_eq!(sub.as_str(), "040100");
        let station = sub.child(DivisionLevel::Subdistrict, 35).unwrap();
        assert_eq!(station.as_str(), "040111");
        // A district enrolling a station directly numbers it like a sub-district.
        assert_eq!(
            district.child(DivisionLevel::District, 2).unwrap().as_str(),
            "040200"
        );
        assert!(district.gave(DivisionLevel::District, &sub));
        assert!(sub.gave(DivisionLevel::Subdistrict, &station));
        assert!(!district.gave(DivisionLevel::District, &station));
        assert!(!sub.gave(DivisionLevel::Subdistrict, &seg("050111")));
        assert!(!sub.gave(DivisionLevel::Subdistrict, &sub));
        assert!(matches!(
            Segment::root(&div("440300"), &key).child(DivisionLevel::City, 1),
            Err(SegmentError::NotAnEnrollingHall(_))
        ));
        assert!(
            sub.child(DivisionLevel::Subdistrict, Segment::MAX_ORDINAL)
                .is_ok()
        );
        assert!(
            sub.child(DivisionLevel::Subdistrict, Segment::MAX_ORDINAL + 1)
                .is_err()
        );
        // Provisional segments never meet given-out ones.
        let provisional = Segment::root(&div("440304001001"), &key);
        assert!(provisional.is_provisional() && !station.is_provisional());
        for ordinal in 1..=Segment::MAX_ORDINAL {
            let given = district.child(DivisionLevel::District, ordinal).unwrap();
            assert!(!given.is_provisional(), "{given}");
        }
        assert!(Segment::parse("04I100").is_err() && Segment::parse("0410").is_err());
    }

    #[test]
    fn epochs() {
        assert_eq!(epoch_digit(1), Ok('1'));
        assert_eq!(epoch_digit(10), Ok('A'));
        assert_eq!(epoch_digit(18), Ok('J'), "I is skipped");
        assert_eq!(epoch_digit(33), Ok('Z'));
        assert_eq!(epoch_digit(34), Err(SerialError::EpochsExhausted(34)));
        assert!(epoch_digit(0).is_err());
    }

    #[test]
    fn bad_serials_are_rejected_with_a_reason() {
        let good = "1144039999000005XU500209910100020260305 04A10010007".replace(' ', "");
        assert!(SerialNo::parse(&good).is_ok());
        let table = [
            (good[..49].to_string(), "50 characters"),
            (good.replace("XU5", "XA5"), "check character"),
            (good.replace("20260305", "20260230"), "not a date"),
            (good.replace("04A100", "04I100"), "node segment"),
            (good.replace("04A1001", "04A1000"), "epoch"),
            (good.replace("10007", "10000"), "sequence"),
            (good.replace("10007", "1000x"), "sequence"),
        ];
        for (s, needle) in table {
            let err = SerialNo::parse(&s).unwrap_err();
            assert!(err.to_string().contains(needle), "{s}: {err}");
        }
    }

    #[test]
    fn sequence_bounds() {
        let date: Date = "2026-03-05".parse().unwrap();
        let s = seg("040101");
        assert!(SerialNo::issue(&impl_code(), date, &s, 1, 9999).is_ok());
        let err = SerialNo::issue(&impl_code(), date, &s, 1, 10_000).unwrap_err();
        assert!(matches!(err, SerialError::Exhausted { .. }));
        assert!(SerialNo::issue(&impl_code(), date, &s, 1, 0).is_err());
    }

    /// What a node does when it issues a number: bump its persisted counter for
    /// (epoch, item, day), then format. `restore` models a restore from an older backup.
    #[derive(Clone)]
    struct SimNode {
        segment: Segment,
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
            8 => (0..4usize, 0..3i32).prop_map(|(node, day)| Op::Issue { node, day }),
            1 => (0..4usize).prop_map(|node| Op::Backup { node }),
            1 => (0..4usize).prop_map(|node| Op::RestoreFromBackup { node }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The serial parser, fuzzed: any text is a serial number or an error, never a
        /// panic; whatever parses has parts that read back.
        #[test]
        fn parsing_arbitrary_text_never_panics(text in "[0-9A-Z]{0,60}|\\PC{0,60}") {
            if let Ok(serial) = SerialNo::parse(&text) {
                let parts = serial.parts();
                prop_assert!(parts.sequence >= 1);
                prop_assert_eq!(serial.as_str(), text.as_str());
            }
            let _ = Segment::parse(&text);
        }

        /// Every number issued parses back to the same parts.
        #[test]
        fn issued_numbers_read_back(day in 0i32..3000, ordinal in 1u32..Segment::MAX_ORDINAL, epoch in 1u32..=SerialNo::MAX_EPOCH, seq in 1u32..=SerialNo::MAX_SEQUENCE) {
            let date = Date::from_days(19_000 + day);
            let segment = Segment::root(&div("440304"), &[0; 32]).child(DivisionLevel::District, ordinal).unwrap();
            let serial = SerialNo::issue(&impl_code(), date, &segment, epoch, seq).unwrap();
            let back = SerialNo::parse(serial.as_str()).unwrap();
            let parts = back.parts();
            prop_assert_eq!((parts.date, parts.node_segment.as_str(), parts.sequence), (date, segment.as_str(), seq));
            prop_assert_eq!(parts.epoch_digit, epoch_digit(epoch).unwrap());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Offline nodes accepting the same item on the same days, two of them in one
        /// community and all enrolled down one tree, with restores from old backups, never
        /// produce the same number.
        #[test]
        fn offline_nodes_never_collide(ops in proptest::collection::vec(op(), 1..400)) {
            let base: Date = "2026-03-02".parse().unwrap();
            let district = Segment::root(&div("440304"), &[0; 32]);
            let sub = district.child(DivisionLevel::District, 1).unwrap();
            let segments = [
                sub.child(DivisionLevel::Subdistrict, 1).unwrap(),
                sub.child(DivisionLevel::Subdistrict, 2).unwrap(), // the same community, a second PC
                district.child(DivisionLevel::District, 2).unwrap(),
                sub.clone(),
            ];
            let mut nodes: Vec<SimNode> = segments
                .iter()
                .map(|s| SimNode { segment: s.clone(), epoch: 1, counters: HashMap::new(), backup: None })
                .collect();
            let mut seen = HashSet::new();
            for op in ops {
                match op {
                    Op::Issue { node, day } => {
                        let n = &mut nodes[node];
                        let date = base.add_days(day);
                        let counter = n.counters.entry((n.epoch, date)).or_insert(0);
                        *counter += 1;
                        let serial = SerialNo::issue(&impl_code(), date, &n.segment, n.epoch, *counter).unwrap();
                        prop_assert!(serial.as_str().len() <= 50);
                        prop_assert!(seen.insert(serial.clone()), "{} issued twice", serial);
                    }
                    Op::Backup { node } => nodes[node].backup = Some(nodes[node].counters.clone()),
                    Op::RestoreFromBackup { node } => {
                        let n = &mut nodes[node];
                        if let Some(backup) = n.backup.clone() && n.epoch < SerialNo::MAX_EPOCH {
                            n.counters = backup;
                            n.epoch += 1;
                        }
                    }
                }
            }
        }
    }
}
