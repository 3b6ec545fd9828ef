//! Departments (进驻部门) and their approval seals (审批专用章, SZDB/Z 176 §9.6.1: a
//! department may have a seal for approval that has the same force as its official one).
//!
//! A hall defines the departments that work through it, each as a document of the hall's
//! catalog scope, so it reaches every node below. A department's seal is an Ed25519 key
//! pair made at its hall; the hall certifies the public key with its own node key
//! ([`SealCertificate`]): the department's id and name, the key, its number and the day
//! it is valid from, signed by the hall. A notice sealed by the department carries the
//! certificate, so anyone who knows the hall's key (every node of the tree, from the
//! registry) checks the whole chain from the printed notice alone, without the feed:
//! notice → seal key → certificate → hall key.
//!
//! A key is never withdrawn from a department: rotating adds a new number, and notices
//! sealed with an older key still verify.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::domain::codes::DivisionCode;
use crate::domain::text;
use crate::ids::{DocId, NodeId, hex, unhex};

/// A department working through a hall, as its document holds it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Department {
    /// A short code, unique at its hall (`MZJ`, `rsj-1`): letters, digits and `-`.
    pub code: String,
    /// Its name, as transfers and Department accounts name it (the account's counter).
    pub name: String,
    /// The hall node where it works: the only node its decisions come from (§5.7.2).
    pub hall: NodeId,
    /// The hall's division (the document's scope).
    pub division: DivisionCode,
    /// The role of the person who last published it (`engine::StaffRole::as_str`): every
    /// receiver checks it against the one rule for who manages departments.
    pub role: String,
    /// Its seal keys, numbered 1, 2, … in order, each certified by the hall.
    pub seals: Vec<SealCertificate>,
}

/// The hall's certificate of one seal key of a department.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealCertificate {
    /// The department's document id.
    pub department: String,
    /// The department's name, as the seal reads.
    pub name: String,
    /// The certifying hall.
    pub hall: NodeId,
    #[serde(with = "hex_bytes")]
    pub public_key: [u8; 32],
    pub key_no: u32,
    /// When the key was certified (Unix milliseconds).
    pub valid_from_ms: u64,
    /// The hall's node-key signature over all of the above.
    #[serde(with = "hex_bytes")]
    pub signature: [u8; 64],
}

/// Why a department is not one a hall may publish. [`DepartmentError::code`] names it for
/// people's screens (worded in `web/i18n`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DepartmentError {
    #[error("a department code is 1 to 32 letters, digits or '-'")]
    Code,
    #[error("a department's name is 1 to 60 characters on one line")]
    Name,
    #[error("a department's seals must be numbered 1, 2, … and each certified by its hall")]
    Seals,
    #[error("a department keeps its code, name, hall and earlier seals when it is republished")]
    Changed,
    #[error("only a hall's admin manages its departments")]
    AdminsOnly,
    #[error("only a hall has departments")]
    HallsOnly,
    #[error("there is already a department {code} at this hall")]
    Exists { code: String },
    #[error("there is no department {code} here")]
    Unknown { code: String },
}

impl DepartmentError {
    /// Every code, so a test can check each has its words.
    pub const CODES: [&'static str; 8] = [
        "department_code",
        "department_name",
        "department_seals",
        "department_changed",
        "departments_admins_only",
        "departments_halls_only",
        "department_exists",
        "department_unknown",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            DepartmentError::Code => "department_code",
            DepartmentError::Name => "department_name",
            DepartmentError::Seals => "department_seals",
            DepartmentError::Changed => "department_changed",
            DepartmentError::AdminsOnly => "departments_admins_only",
            DepartmentError::HallsOnly => "departments_halls_only",
            DepartmentError::Exists { .. } => "department_exists",
            DepartmentError::Unknown { .. } => "department_unknown",
        }
    }

    /// The parameters its words take.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            DepartmentError::Exists { code } | DepartmentError::Unknown { code } => {
                vec![("code", code.clone())]
            }
            _ => Vec::new(),
        }
    }
}

/// Whether `code` can be a department's code.
pub fn code_ok(code: &str) -> bool {
    (1..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The document id of the department `code` of the hall of `division`:
/// `d-<division>-<code in lower case>`, so a hall has one department per code.
pub fn doc_id(division: &DivisionCode, code: &str) -> Option<DocId> {
    code_ok(code)
        .then(|| DocId::parse(&format!("d-{division}-{}", code.to_ascii_lowercase())))
        .flatten()
}

impl Department {
    /// Its document id.
    pub fn doc_id(&self) -> Option<DocId> {
        doc_id(&self.division, &self.code)
    }

    /// The newest seal: the one it seals with now.
    pub fn current_seal(&self) -> Option<&SealCertificate> {
        self.seals.last()
    }

    /// The seal numbered `key_no`.
    pub fn seal(&self, key_no: u32) -> Option<&SealCertificate> {
        self.seals.iter().find(|s| s.key_no == key_no)
    }

    /// Checks the department as its hall publishes it: its code and name, and every seal
    /// numbered in order, for this department, and certified by the key `hall_key` of
    /// its hall. Every receiver asks this of what a hall publishes.
    pub fn check(&self, hall_key: &[u8; 32]) -> Result<(), DepartmentError> {
        let id = self.doc_id().ok_or(DepartmentError::Code)?;
        check_name(&self.name)?;
        if self.seals.is_empty() || self.hall != NodeId::from_public_key(hall_key) {
            return Err(DepartmentError::Seals);
        }
        for (index, seal) in self.seals.iter().enumerate() {
            if seal.key_no as usize != index + 1
                || seal.department != id.as_str()
                || seal.name != self.name
                || seal.hall != self.hall
                || !seal.holds_under(hall_key)
            {
                return Err(DepartmentError::Seals);
            }
        }
        Ok(())
    }

    /// Whether `self` may replace `before`: same code, name, hall and division, and the
    /// seals before kept as they were (a rotation only adds one).
    pub fn continues(&self, before: &Department) -> Result<(), DepartmentError> {
        let kept = self.code.eq_ignore_ascii_case(&before.code)
            && self.name == before.name
            && self.hall == before.hall
            && self.division == before.division
            && self.seals.len() >= before.seals.len()
            && self.seals[..before.seals.len()] == before.seals[..];
        kept.then_some(()).ok_or(DepartmentError::Changed)
    }
}

/// Checks a department's name: one line of 1 to 60 characters.
pub fn check_name(name: &str) -> Result<(), DepartmentError> {
    let count = name.trim().chars().count();
    if count == 0 || count > 60 || name.trim() != name || text::line("name", name).is_err() {
        return Err(DepartmentError::Name);
    }
    Ok(())
}

impl SealCertificate {
    /// What the hall signs.
    pub fn message(&self) -> Vec<u8> {
        certificate_message(
            &self.department,
            &self.name,
            &self.hall,
            &self.public_key,
            self.key_no,
            self.valid_from_ms,
        )
    }

    /// Whether the certificate is `hall_key`'s signature and names that key's node.
    pub fn holds_under(&self, hall_key: &[u8; 32]) -> bool {
        NodeId::from_public_key(hall_key) == self.hall
            && verify(hall_key, &self.message(), &self.signature)
    }
}

/// The bytes a hall signs to certify a seal key.
pub fn certificate_message(
    department: &str,
    name: &str,
    hall: &NodeId,
    public_key: &[u8; 32],
    key_no: u32,
    valid_from_ms: u64,
) -> Vec<u8> {
    let mut message = b"yizhan-department-seal-v1\0".to_vec();
    message.extend_from_slice(department.as_bytes());
    message.push(0);
    message.extend_from_slice(name.as_bytes());
    message.push(0);
    message.extend_from_slice(&hall.0);
    message.extend_from_slice(public_key);
    message.extend_from_slice(&key_no.to_be_bytes());
    message.extend_from_slice(&valid_from_ms.to_be_bytes());
    message
}

/// The department that decides a case (§5.7.2), as the case froze it at intake from its
/// item and the department's document: who may record the decision, checked by the
/// engine and by every receiver alike ([`crate::auth::may_decide`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decider {
    pub code: String,
    /// Its name: the counter of the Department accounts that decide for it.
    pub name: String,
    /// The hall node where it works.
    pub hall: NodeId,
}

impl Department {
    /// What a case of an item this department decides freezes of it.
    pub fn decider(&self) -> Decider {
        Decider {
            code: self.code.clone(),
            name: self.name.clone(),
            hall: self.hall,
        }
    }
}

/// What a notice sealed by a department says of its seal: the certificate of the key
/// that sealed it, carried in the notice so it is checked with no feed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoticeSeal {
    /// The department's code.
    pub department: String,
    pub certificate: SealCertificate,
}

/// How a department's seal on a notice checks out against the hall's key as this node
/// knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealCheck {
    /// Notice signature by the seal key, key certified by the hall, hall key known.
    Genuine,
    /// The notice's signature does not hold under the seal key.
    BadSignature,
    /// The certificate is not the hall's signature: the seal key is not certified.
    NotCertified,
}

/// Checks the chain: the notice's `signature` over `message` by the certificate's key,
/// and the certificate by `hall_key`.
pub fn check_seal(
    seal: &NoticeSeal,
    hall_key: &[u8; 32],
    message: &[u8],
    signature: &[u8; 64],
) -> SealCheck {
    if !seal.certificate.holds_under(hall_key) {
        SealCheck::NotCertified
    } else if !verify(&seal.certificate.public_key, message, signature) {
        SealCheck::BadSignature
    } else {
        SealCheck::Genuine
    }
}

fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    key.verify(message, &Signature::from_bytes(signature))
        .is_ok()
}

mod hex_bytes {
    use super::{hex, unhex};

    pub fn serialize<S: serde::Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        unhex(&text)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom(format!("expected {N} bytes in hex")))
    }
}

/// Test helpers: a hall's certificate made with a known key.
#[cfg(test)]
pub(crate) mod testing {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    /// Certifies `seal_key` as key `key_no` of department `code` named `name`, by the hall
    /// holding `hall_key`.
    pub fn certify(
        hall_key: &SigningKey,
        division: &DivisionCode,
        code: &str,
        name: &str,
        seal_key: &[u8; 32],
        key_no: u32,
    ) -> SealCertificate {
        let hall = NodeId::from_public_key(&hall_key.verifying_key().to_bytes());
        let department = doc_id(division, code).expect("a valid code").to_string();
        let message = certificate_message(&department, name, &hall, seal_key, key_no, 1_000);
        SealCertificate {
            department,
            name: name.to_string(),
            hall,
            public_key: *seal_key,
            key_no,
            valid_from_ms: 1_000,
            signature: hall_key.sign(&message).to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::testing::certify;
    use super::*;

    fn department(hall_key: &SigningKey, seals: &[[u8; 32]]) -> Department {
        let division = DivisionCode::parse("440304001").unwrap();
        Department {
            code: "MZJ".into(),
            name: "民政局".into(),
            hall: NodeId::from_public_key(&hall_key.verifying_key().to_bytes()),
            division: division.clone(),
            role: "admin".into(),
            seals: seals
                .iter()
                .enumerate()
                .map(|(i, k)| certify(hall_key, &division, "MZJ", "民政局", k, i as u32 + 1))
                .collect(),
        }
    }

    fn public(seed: u8) -> [u8; 32] {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    }

    /// Good, forged key, wrong hall, rotated key: each certificate as every node checks it.
    #[test]
    fn certificates_hold_only_under_their_hall() {
        let hall = SigningKey::from_bytes(&[1; 32]);
        let other_hall = SigningKey::from_bytes(&[2; 32]);
        let good = department(&hall, &[public(10)]);
        assert_eq!(good.check(&public(1)), Ok(()));
        // The same department checked against another hall's key.
        assert_eq!(good.check(&public(2)), Err(DepartmentError::Seals));
        // A seal key swapped into a certificate (a forged seal key).
        let mut forged = good.clone();
        forged.seals[0].public_key = public(11);
        assert_eq!(forged.check(&public(1)), Err(DepartmentError::Seals));
        // A certificate signed by another hall, claiming to be this hall's.
        let mut foreign = good.clone();
        foreign.seals[0] = certify(&other_hall, &good.division, "MZJ", "民政局", &public(10), 1);
        assert_eq!(foreign.check(&public(1)), Err(DepartmentError::Seals));
        // Rotated: key 2 added, key 1 kept; both hold.
        let rotated = department(&hall, &[public(10), public(12)]);
        assert_eq!(rotated.check(&public(1)), Ok(()));
        assert_eq!(rotated.continues(&good), Ok(()));
        assert_eq!(good.continues(&rotated), Err(DepartmentError::Changed));
        assert_eq!(rotated.current_seal().unwrap().key_no, 2);
        // Numbering out of order, a renamed department, a bad code.
        let mut renumbered = rotated.clone();
        renumbered.seals.swap(0, 1);
        assert_eq!(renumbered.check(&public(1)), Err(DepartmentError::Seals));
        let mut renamed = good.clone();
        renamed.name = "人社局".into();
        assert_eq!(renamed.check(&public(1)), Err(DepartmentError::Seals));
        assert_eq!(renamed.continues(&good), Err(DepartmentError::Changed));
        let mut bad_code = good.clone();
        bad_code.code = "a/b".into();
        assert_eq!(bad_code.check(&public(1)), Err(DepartmentError::Code));
    }

    /// The chain a notice's seal is checked by: notice → seal key → certificate → hall.
    #[test]
    fn a_notice_seal_checks_the_whole_chain() {
        let hall = SigningKey::from_bytes(&[1; 32]);
        let seal_key = SigningKey::from_bytes(&[10; 32]);
        let good = department(&hall, &[public(10)]);
        let seal = NoticeSeal {
            department: "MZJ".into(),
            certificate: good.seals[0].clone(),
        };
        let message = b"notice";
        let signature = seal_key.sign(message).to_bytes();
        assert_eq!(
            check_seal(&seal, &public(1), message, &signature),
            SealCheck::Genuine
        );
        assert_eq!(
            check_seal(&seal, &public(1), b"another", &signature),
            SealCheck::BadSignature
        );
        // Signed by a key the hall never certified, carrying a certificate made up for it.
        let forger = SigningKey::from_bytes(&[66; 32]);
        let mut forged = seal.clone();
        forged.certificate.public_key = public(66);
        let forged_signature = forger.sign(message).to_bytes();
        assert_eq!(
            check_seal(&forged, &public(1), message, &forged_signature),
            SealCheck::NotCertified
        );
        // A good certificate, but another hall's key is what this node knows.
        assert_eq!(
            check_seal(&seal, &public(2), message, &signature),
            SealCheck::NotCertified
        );
        let json = serde_json::to_string(&seal).unwrap();
        assert_eq!(serde_json::from_str::<NoticeSeal>(&json).unwrap(), seal);
    }

    #[test]
    fn codes_and_names() {
        for (code, ok) in [("MZJ", true), ("rsj-1", true), ("", false), ("a b", false)] {
            assert_eq!(code_ok(code), ok, "{code}");
        }
        assert_eq!(
            doc_id(&DivisionCode::parse("440304001").unwrap(), "MZJ")
                .unwrap()
                .as_str(),
            "d-440304001-mzj"
        );
        for (name, ok) in [
            ("民政局", true),
            ("", false),
            (" x", false),
            ("a\u{202e}b", false),
        ] {
            assert_eq!(check_name(name).is_ok(), ok, "{name}");
        }
    }
}
