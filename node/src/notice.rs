//! Sealed notices (§7.5): the acceptance receipt (受理回执), the one-time notice of
//! missing materials (一次性告知书) and the refusal notice (不予受理通知书).
//!
//! A notice's content is fixed when it is issued and serialized canonically (JSON with
//! the fields in the order of [`NoticeContent`]). Its seal is the issuing node's Ed25519
//! signature over the notice number and the SHA-256 digest of that content. The printed
//! QR code carries node, number, digest and signature ([`qr_text`]), so `/verify` can
//! check a notice with no network: the key must be known and not revoked, the signature
//! must hold, and, where the node holds the notice, the content must still hash to the
//! digest. Notices are never edited; a correction is a new notice naming the old one.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};
use yizhan_sync::ids::{hex, unhex};

/// Which notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// 受理回执.
    Receipt,
    /// 一次性告知书 (补正材料).
    OneTime,
    /// 不予受理通知书.
    Refusal,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Receipt => "receipt",
            NoticeKind::OneTime => "one_time",
            NoticeKind::Refusal => "refusal",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeKind> {
        [
            NoticeKind::Receipt,
            NoticeKind::OneTime,
            NoticeKind::Refusal,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A material as the notice lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaterialLine {
    pub name: String,
    pub originals: u32,
    pub copies: u32,
}

/// A missing material and why it is needed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MissingLine {
    pub name: String,
    pub reason: String,
}

/// What a refusal says (行政许可法 §32, §38).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefusalLine {
    pub reason: String,
    pub basis: String,
    pub remedies: String,
    pub competent_authority: Option<String>,
}

/// Everything a notice says, sealed as one.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoticeContent {
    pub format: u32,
    pub number: String,
    pub kind: NoticeKind,
    /// The issuing node (its id, 32 hex digits) and office name.
    pub node: String,
    pub office: String,
    pub case_id: String,
    pub serial_no: Option<String>,
    pub item_name: String,
    pub impl_code: String,
    pub item_version: u32,
    pub case_type: String,
    pub applicant: String,
    pub applicant_id_masked: String,
    pub received: Vec<MaterialLine>,
    pub missing: Vec<MissingLine>,
    pub committed_due: Option<String>,
    pub legal_due: Option<String>,
    /// For an instant item completed at the counter: the result.
    pub result: Option<String>,
    pub refusal: Option<RefusalLine>,
    pub counter: String,
    pub staff: String,
    pub consultation: Vec<String>,
    pub complaint: Vec<String>,
    pub issued_at: String,
    /// The number of the notice this one corrects.
    pub supersedes: Option<String>,
    /// 代为受理 (§5.5.2): the department this office accepted the application for.
    /// Absent from notices of items accepted in the office's own right, so their sealed
    /// bytes are as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_for: Option<String>,
}

impl NoticeContent {
    /// The canonical bytes the digest covers.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("notice content always serializes")
    }

    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(b"yizhan-notice-v1\0");
        hasher.update(self.canonical());
        hasher.finalize().into()
    }
}

/// What the seal signs: the number and the digest, so neither can be swapped.
pub fn sealed_message(number: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut message = b"yizhan-seal-v1\0".to_vec();
    message.extend_from_slice(number.as_bytes());
    message.push(0);
    message.extend_from_slice(digest);
    message
}

/// The text of the QR code printed on a notice.
pub fn qr_text(node: &str, number: &str, digest: &[u8; 32], signature: &[u8; 64]) -> String {
    format!("YZN1/{node}/{number}/{}/{}", hex(digest), hex(signature))
}

/// A QR text taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrSeal {
    pub node: String,
    pub number: String,
    pub digest: [u8; 32],
    pub signature: [u8; 64],
}

/// Why a QR text is not a notice seal at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this is not the code of a Yizhan notice (expected YZN1/node/number/digest/signature)")]
pub struct NotASeal;

pub fn parse_qr(text: &str) -> Result<QrSeal, NotASeal> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    let [tag, node, number, digest, signature] = parts[..] else {
        return Err(NotASeal);
    };
    if tag != "YZN1"
        || node.len() != 32
        || number.is_empty()
        || number.len() > 64
        || !node.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(NotASeal);
    }
    let digest: [u8; 32] = unhex(digest)
        .and_then(|d| d.try_into().ok())
        .ok_or(NotASeal)?;
    let signature: [u8; 64] = unhex(signature)
        .and_then(|s| s.try_into().ok())
        .ok_or(NotASeal)?;
    Ok(QrSeal {
        node: node.to_ascii_lowercase(),
        number: number.to_string(),
        digest,
        signature,
    })
}

/// Whether `seal` carries a valid signature by `public_key`.
pub fn signature_holds(seal: &QrSeal, public_key: &[u8; 32]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    key.verify(
        &sealed_message(&seal.number, &seal.digest),
        &Signature::from_bytes(&seal.signature),
    )
    .is_ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::identity::NodeKey;

    pub fn sample(number: &str) -> NoticeContent {
        NoticeContent {
            format: 1,
            number: number.into(),
            kind: NoticeKind::Receipt,
            node: "07".repeat(16),
            office: "园岭社区".into(),
            case_id: "c-1".into(),
            serial_no: Some("1144039999000005XU5001099602000-20260302-0001-00001".into()),
            item_name: "居住证申领".into(),
            impl_code: "1144039999000005XU5001099602000".into(),
            item_version: 1,
            case_type: "承诺件".into(),
            applicant: "张三".into(),
            applicant_id_masked: "110105********002X".into(),
            received: vec![MaterialLine {
                name: "身份证".into(),
                originals: 1,
                copies: 1,
            }],
            missing: vec![],
            committed_due: Some("2026-03-16".into()),
            legal_due: Some("2026-03-30".into()),
            result: None,
            refusal: None,
            counter: "1号窗口".into(),
            staff: "li".into(),
            consultation: vec!["0755-12345".into()],
            complaint: vec!["12345".into()],
            issued_at: "2026-03-02T10:00:00+08:00".into(),
            supersedes: None,
            accepted_for: None,
        }
    }

    /// A notice of an item accepted in the office's own right keeps the bytes it was
    /// sealed with before `accepted_for` existed; a delegated one names the department.
    #[test]
    fn delegated_acceptance_is_sealed_only_when_there_is_one() {
        let own = sample("A1");
        let text = String::from_utf8(own.canonical()).unwrap();
        assert!(!text.contains("accepted_for"));
        let back: NoticeContent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, own);
        let delegated = NoticeContent {
            accepted_for: Some("示范区民政局".into()),
            ..sample("A1")
        };
        assert_ne!(delegated.digest(), own.digest());
        assert!(
            String::from_utf8(delegated.canonical())
                .unwrap()
                .contains("示范区民政局")
        );
    }

    #[test]
    fn a_seal_verifies_and_any_change_breaks_it() {
        let key = NodeKey::from_seed([4; 32]);
        let content = sample("N-000001");
        let digest = content.digest();
        let signature = key.sign(&sealed_message(&content.number, &digest));
        let text = qr_text(
            &key.node_id().to_hex(),
            &content.number,
            &digest,
            &signature,
        );
        let seal = parse_qr(&text).unwrap();
        assert!(signature_holds(&seal, &key.public_key()));
        // Another key, another number, another digest: each fails.
        assert!(!signature_holds(
            &seal,
            &NodeKey::from_seed([5; 32]).public_key()
        ));
        let renumbered = parse_qr(&text.replace("N-000001", "N-000002")).unwrap();
        assert!(!signature_holds(&renumbered, &key.public_key()));
        let mut altered = content.clone();
        altered.applicant = "李四".into();
        assert_ne!(altered.digest(), digest);
        for bad in [
            "",
            "YZN1/abc",
            "YZN2/x/y/z/w",
            &text.replace("YZN1", "YZN2"),
        ] {
            assert_eq!(parse_qr(bad), Err(NotASeal), "{bad}");
        }
    }

    #[test]
    fn canonical_bytes_are_stable() {
        // The same content always hashes the same (field order is the struct's).
        assert_eq!(sample("N-1").digest(), sample("N-1").digest());
        let text = String::from_utf8(sample("N-1").canonical()).unwrap();
        assert!(
            text.starts_with(r#"{"format":1,"number":"N-1","kind":"receipt","#),
            "{text}"
        );
    }
}
