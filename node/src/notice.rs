//! Sealed notices (§7.5): the acceptance receipt (受理回执), the one-time notice of
//! missing materials (一次性告知书), the refusal notice (不予受理通知书), and the notices
//! that tell the applicant the limits moved: the extension notice (延期通知书, 行政许可法
//! §42) and the special-procedure notice (特别程序告知书, §45).
//!
//! A notice's content is fixed when it is issued and serialized canonically (JSON with
//! the fields in the order of [`NoticeContent`]). Its seal is the issuing node's Ed25519
//! signature over the notice number and the SHA-256 digest of that content. The printed
//! QR code carries node, number, digest and signature ([`qr_text`]), so `/verify` can
//! check a notice with no network: the key must be known and not revoked, the signature
//! must hold, and, where the node holds the notice, the content must still hash to the
//! digest. Notices are never edited; a correction is a new notice naming the old one and
//! saying why.
//!
//! The printed QR code is a link a phone camera opens: the node's public address and
//! `/verify?c=NUMBER.SEAL` ([`short_code`], the seal in base64url), which the node answers
//! with the sealed content. The full code ([`qr_text`]) is printed below it, for `/verify`
//! to check offline where the notice is not held.

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
    /// 延期通知书: the limits were extended, with the new dates and the reason.
    Extension,
    /// 特别程序告知书: a special procedure stopped the clock, with its reason.
    Suspension,
    /// 准予/不予行政许可决定书 (行政许可法 §38): the decision of the department that decides
    /// the item (SZDB/Z 176 §5.7.2), sealed with its approval seal (§9.6).
    Decision,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Receipt => "receipt",
            NoticeKind::OneTime => "one_time",
            NoticeKind::Refusal => "refusal",
            NoticeKind::Extension => "extension",
            NoticeKind::Suspension => "suspension",
            NoticeKind::Decision => "decision",
        }
    }

    pub const ALL: [NoticeKind; 6] = [
        NoticeKind::Receipt,
        NoticeKind::OneTime,
        NoticeKind::Refusal,
        NoticeKind::Extension,
        NoticeKind::Suspension,
        NoticeKind::Decision,
    ];

    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == s)
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

/// What an extension notice says beyond the new dates (行政许可法 §42).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtensionLine {
    pub days: u32,
    pub reason: String,
    /// Who approved it (the lead's name as the node knows it).
    pub approved_by: String,
}

/// What a special-procedure notice says (§45: 听证、检验、鉴定… not counted in the limit).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SuspensionLine {
    pub procedure: String,
    pub reason: String,
    /// The day the clock stopped (YYYY-MM-DD).
    pub since: String,
    /// The longest the procedure may stop it, in days, when the item says.
    pub max_days: Option<u32>,
}

/// What a decision notice says (行政许可法 §38: a denial gives its reasons, basis and the
/// applicant's remedies).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecisionLine {
    pub approved: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub basis: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remedies: String,
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
    /// The applicant's query code (查询码), to look the case up on `/status`. The fields
    /// below are absent from notices issued before they existed, so those keep the bytes
    /// they were sealed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<ExtensionLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<SuspensionLine>,
    /// Why a correction was issued (更正理由), on a notice that supersedes another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction_reason: Option<String>,
    /// What the decision was, on a decision notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionLine>,
    /// The department whose approval seal (审批专用章, SZDB/Z 176 §9.6) seals the notice,
    /// with the certificate of that seal's key by its hall: the notice's signature is by
    /// that key, and anyone who knows the hall's key checks the chain from the notice
    /// alone. Absent when the issuing node's own key seals it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<yizhan_sync::domain::department::NoticeSeal>,
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

/// The short code of a seal for the QR link: the number and the signature in base64url,
/// e.g. `TZ07070707E1-000001.` and 86 characters.
pub fn short_code(number: &str, signature: &[u8; 64]) -> String {
    format!("{number}.{}", base64url(signature))
}

/// A short code taken apart: the number and the signature, if it could be one.
pub fn parse_short(text: &str) -> Option<(String, [u8; 64])> {
    let (number, seal) = text.trim().rsplit_once('.')?;
    let number_ok = !number.is_empty()
        && number.len() <= 64
        && number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let signature: [u8; 64] = unbase64url(seal)?.try_into().ok()?;
    number_ok.then(|| (number.to_string(), signature))
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (RFC 4648 §5): what a URL carries unescaped.
fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(BASE64URL[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn unbase64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let value = BASE64URL.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
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

/// How a notice's seal checks out here against the key of the node that issued it (as
/// the tree's registry knows it): by that key, or, for a department's seal, by the
/// department's key certified by that node (SZDB/Z 176 §9.6).
pub fn seal_check(
    content_seal: Option<&yizhan_sync::domain::department::NoticeSeal>,
    seal: &QrSeal,
    issuer_key: &[u8; 32],
) -> yizhan_sync::domain::department::SealCheck {
    use yizhan_sync::domain::department::{SealCheck, check_seal};
    match content_seal {
        None if signature_holds(seal, issuer_key) => SealCheck::Genuine,
        None => SealCheck::BadSignature,
        Some(department) => check_seal(
            department,
            issuer_key,
            &sealed_message(&seal.number, &seal.digest),
            &seal.signature,
        ),
    }
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
            query_code: None,
            extension: None,
            suspension: None,
            correction_reason: None,
            decision: None,
            seal: None,
        }
    }

    #[test]
    fn the_short_code_carries_number_and_seal() {
        let signature: [u8; 64] = std::array::from_fn(|i| (i * 37 % 256) as u8);
        let code = short_code("TZ07070707E1-000001", &signature);
        assert_eq!(code.len(), "TZ07070707E1-000001.".len() + 86);
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{code}"
        );
        assert_eq!(
            parse_short(&code),
            Some(("TZ07070707E1-000001".to_string(), signature))
        );
        for bad in ["", "x", "TZ-1.abc", "TZ/1.AAAA", &code.replace('.', "")] {
            assert_eq!(parse_short(bad), None, "{bad}");
        }
        assert_eq!(base64url(b"hello"), "aGVsbG8");
        assert_eq!(unbase64url("aGVsbG8").unwrap(), b"hello");
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
