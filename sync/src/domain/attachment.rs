//! Attachments (附件) a hall publishes with its catalog: the blank forms (空表) and filled-in
//! samples (样表) a guide offers beside a material (DOMAIN §4 Conditions & materials).
//!
//! An attachment is a file written once: its id is its hall's division and the SHA-256 of
//! its bytes, so the same file published twice is one document, and every receiver can
//! check the bytes against the id. Only a few types are taken, each checked by its magic
//! bytes as well as by the declared type, since a guide is public and a download must be
//! what it says it is.

use sha2::{Digest, Sha256};

use super::codes::DivisionCode;
use crate::ids::DocId;

/// The largest file an attachment holds: 2 MiB, enough for a scanned form, small enough
/// to travel down the tree in one batch.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

/// What an attachment holds besides its bytes, as the document's `meta` records it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// The file name people download it as.
    pub name: String,
    pub content_type: ContentType,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
}

/// The types a guide may offer: documents and scans people open without risk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ContentType {
    #[serde(rename = "application/pdf")]
    Pdf,
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "application/msword")]
    Doc,
    #[serde(rename = "application/vnd.openxmlformats-officedocument.wordprocessingml.document")]
    Docx,
    #[serde(rename = "application/vnd.ms-excel")]
    Xls,
    #[serde(rename = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")]
    Xlsx,
}

impl ContentType {
    pub const ALL: [ContentType; 7] = [
        ContentType::Pdf,
        ContentType::Png,
        ContentType::Jpeg,
        ContentType::Doc,
        ContentType::Docx,
        ContentType::Xls,
        ContentType::Xlsx,
    ];

    /// The MIME type, as sent in `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            ContentType::Pdf => "application/pdf",
            ContentType::Png => "image/png",
            ContentType::Jpeg => "image/jpeg",
            ContentType::Doc => "application/msword",
            ContentType::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            ContentType::Xls => "application/vnd.ms-excel",
            ContentType::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        }
    }

    /// The type a MIME type names (parameters such as `; charset` ignored).
    pub fn parse(mime: &str) -> Option<ContentType> {
        let mime = mime.split(';').next()?.trim().to_ascii_lowercase();
        ContentType::ALL.into_iter().find(|t| t.mime() == mime)
    }

    /// Whether `bytes` start as a file of this type does: PDF, PNG and JPEG by their
    /// signatures, .doc/.xls as OLE compound files, .docx/.xlsx as ZIP packages holding
    /// a `word/` or `xl/` part.
    pub fn matches(self, bytes: &[u8]) -> bool {
        const OLE: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
        let zip_with = |part: &[u8]| {
            bytes.starts_with(b"PK\x03\x04") && bytes.windows(part.len()).any(|w| w == part)
        };
        match self {
            ContentType::Pdf => bytes.starts_with(b"%PDF-"),
            ContentType::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            ContentType::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
            ContentType::Doc | ContentType::Xls => bytes.starts_with(OLE),
            ContentType::Docx => zip_with(b"word/"),
            ContentType::Xlsx => zip_with(b"xl/"),
        }
    }
}

/// Why a file cannot be published as an attachment; a code the UI words, with parameters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    #[error("the file is empty")]
    Empty,
    #[error("the file has {size} bytes; an attachment holds at most {MAX_BYTES}")]
    TooLarge { size: u64 },
    #[error("{content_type} files are not taken; send a PDF, PNG, JPEG, Word or Excel file")]
    UnknownType { content_type: String },
    #[error("the file's contents are not a {} file", .declared.mime())]
    NotWhatItSays { declared: ContentType },
    #[error("the file name must be 1-100 characters without control characters or slashes")]
    BadName,
}

impl AttachmentError {
    /// The stable code of the error (`error.attachment.CODE` in `web/i18n`).
    pub fn code(&self) -> &'static str {
        match self {
            AttachmentError::Empty => "attachment_empty",
            AttachmentError::TooLarge { .. } => "attachment_too_large",
            AttachmentError::UnknownType { .. } => "attachment_type",
            AttachmentError::NotWhatItSays { .. } => "attachment_contents",
            AttachmentError::BadName => "attachment_name",
        }
    }

    /// The parameters the words of [`AttachmentError::code`] take.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            AttachmentError::TooLarge { size } => {
                vec![("size", size.to_string()), ("max", MAX_BYTES.to_string())]
            }
            AttachmentError::UnknownType { content_type } => {
                vec![("content_type", content_type.clone())]
            }
            AttachmentError::NotWhatItSays { declared } => {
                vec![("content_type", declared.mime().to_string())]
            }
            AttachmentError::Empty | AttachmentError::BadName => Vec::new(),
        }
    }
}

impl Attachment {
    /// Checks a file before it is published: its name, its size, its declared type and
    /// that its bytes are of that type. Every receiver asks the same of what it receives.
    pub fn check(
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<Attachment, AttachmentError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > 100
            || name.contains(['/', '\\', '"'])
            || super::text::line("name", name).is_err()
        {
            return Err(AttachmentError::BadName);
        }
        if bytes.is_empty() {
            return Err(AttachmentError::Empty);
        }
        if bytes.len() > MAX_BYTES {
            return Err(AttachmentError::TooLarge {
                size: bytes.len() as u64,
            });
        }
        let declared =
            ContentType::parse(content_type).ok_or_else(|| AttachmentError::UnknownType {
                content_type: content_type.chars().take(100).collect(),
            })?;
        if !declared.matches(bytes) {
            return Err(AttachmentError::NotWhatItSays { declared });
        }
        Ok(Attachment {
            name: name.to_string(),
            content_type: declared,
            size: bytes.len() as u64,
            sha256: crate::ids::hex(&Sha256::digest(bytes)),
        })
    }

    /// The document id: the publishing hall's division and the file's digest, so a file
    /// is one document per hall however often it is uploaded.
    pub fn doc_id(&self, division: &DivisionCode) -> DocId {
        DocId::parse(&format!("a-{division}-{}", self.sha256)).expect("digits and hex")
    }

    /// Whether `bytes` are the file this record describes and `self` is what
    /// [`Attachment::check`] makes of it: what a receiver asks of a received attachment.
    pub fn holds(&self, bytes: &[u8]) -> bool {
        Attachment::check(&self.name, self.content_type.mime(), bytes).as_ref() == Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n";

    #[test]
    fn files_are_checked_by_name_size_type_and_contents() {
        type Case = (
            &'static str,
            &'static str,
            Vec<u8>,
            Result<ContentType, &'static str>,
        );
        let table: Vec<Case> = vec![
            (
                "空表.pdf",
                "application/pdf",
                PDF.to_vec(),
                Ok(ContentType::Pdf),
            ),
            (
                "a.png",
                "image/png",
                b"\x89PNG\r\n\x1a\n....".to_vec(),
                Ok(ContentType::Png),
            ),
            (
                "a.jpg",
                "image/jpeg; x=1",
                vec![0xFF, 0xD8, 0xFF, 0xE0],
                Ok(ContentType::Jpeg),
            ),
            (
                "a.doc",
                "application/msword",
                vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0],
                Ok(ContentType::Doc),
            ),
            (
                "a.xlsx",
                ContentType::Xlsx.mime(),
                b"PK\x03\x04....xl/workbook.xml".to_vec(),
                Ok(ContentType::Xlsx),
            ),
            (
                "a.docx",
                ContentType::Docx.mime(),
                b"PK\x03\x04....xl/".to_vec(),
                Err("attachment_contents"),
            ),
            (
                "a.html",
                "text/html",
                b"<html>".to_vec(),
                Err("attachment_type"),
            ),
            (
                "a.pdf",
                "application/pdf",
                b"<html>".to_vec(),
                Err("attachment_contents"),
            ),
            (
                "a.pdf",
                "application/pdf",
                Vec::new(),
                Err("attachment_empty"),
            ),
            (
                "a.pdf",
                "application/pdf",
                [PDF, &vec![b' '; MAX_BYTES][..]].concat(),
                Err("attachment_too_large"),
            ),
            ("", "application/pdf", PDF.to_vec(), Err("attachment_name")),
            (
                "../a.pdf",
                "application/pdf",
                PDF.to_vec(),
                Err("attachment_name"),
            ),
            (
                "a\u{202E}fdp.exe",
                "application/pdf",
                PDF.to_vec(),
                Err("attachment_name"),
            ),
        ];
        for (name, mime, bytes, expected) in table {
            let got = Attachment::check(name, mime, &bytes)
                .map(|a| a.content_type)
                .map_err(|e| e.code());
            assert_eq!(got, expected, "{name} {mime}");
        }
    }

    #[test]
    fn the_id_is_the_division_and_digest_and_holds_only_its_bytes() {
        let attachment = Attachment::check("空表.pdf", "application/pdf", PDF).unwrap();
        let division = DivisionCode::parse("440399").unwrap();
        let id = attachment.doc_id(&division);
        assert_eq!(id.as_str(), format!("a-440399-{}", attachment.sha256));
        assert_eq!(
            crate::ids::DocKind::of_id(&id),
            Some(crate::ids::DocKind::Attachment)
        );
        assert!(attachment.holds(PDF));
        assert!(!attachment.holds(b"%PDF-1.4 other"));
        let json = serde_json::to_string(&attachment).unwrap();
        assert!(json.contains("\"application/pdf\""), "{json}");
    }
}
