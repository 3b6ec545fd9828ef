//! The catalog file a hall publishes with `yizhan import-catalog`: TOML with one
//! `[[items]]` table per item, in the layout of `node/data/demo-catalog.toml`. Reading it
//! is a pure function, fuzzed with arbitrary and damaged files: a bad file gets a clear
//! error naming its line or its items' problems, never a panic.

use yizhan_sync::domain::item::Item;

pub mod sheets;

/// Why a catalog file cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogFileError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("{} problems; nothing was published:\n  {}", .0.len(), .0.join("\n  "))]
    Problems(Vec<String>),
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    items: Vec<Item>,
}

/// Reads a catalog file and checks every item (codes and their check digits, limits,
/// materials) and that no item appears twice.
pub fn parse(text: &str) -> Result<Vec<Item>, CatalogFileError> {
    let catalog: CatalogFile = toml::from_str(text).map_err(|e| CatalogFileError::Syntax {
        line: e.span().map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        }),
        message: e.message().to_string(),
    })?;
    let mut problems = Vec::new();
    for (n, item) in catalog.items.iter().enumerate() {
        if let Err(e) = item.validate() {
            problems.push(format!(
                "item {} ({}): {}",
                n + 1,
                item.name,
                e.problems
                    .iter()
                    .map(|p| p.english())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    let mut codes: Vec<_> = catalog.items.iter().map(|i| i.impl_code.clone()).collect();
    codes.sort();
    if let Some(twice) = codes.windows(2).find(|w| w[0] == w[1]) {
        problems.push(format!("{} appears twice", twice[0]));
    }
    if problems.is_empty() {
        Ok(catalog.items)
    } else {
        Err(CatalogFileError::Problems(problems))
    }
}

/// Where a guide's attachment (blank form or sample) is downloaded: under the item that
/// offers it, so the pages and the API name it alike.
pub fn attachment_path(impl_code: &str, id: &str) -> String {
    format!("/catalog/{impl_code}/attachments/{id}")
}

/// `Content-Disposition` for a download named `file` (RFC 6266: the name UTF-8 encoded,
/// so a Chinese name survives every browser).
pub fn download_disposition(file: &str) -> String {
    let encoded: String = file
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const DEMO: &str = include_str!("../data/demo-catalog.toml");

    #[test]
    fn the_demo_catalog_reads_and_bad_files_say_why() {
        assert_eq!(parse(DEMO).unwrap().len(), 25);
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-catalogs");
        let mut seen = 0;
        for entry in std::fs::read_dir(&corpus).unwrap() {
            let path = entry.unwrap().path();
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            let error = parse(&text).expect_err(&path.display().to_string());
            assert!(!error.to_string().is_empty());
            seen += 1;
        }
        assert!(seen >= 3, "the corpus has {seen} files");
    }

    /// Every step of every demo item has its working days and its post (issue 15), and
    /// `Item::validate` already holds the days within the committed limit.
    #[test]
    fn every_demo_step_has_its_days_and_post() {
        for item in parse(DEMO).unwrap() {
            for step in &item.process {
                assert!(
                    step.days.is_some() && step.post.as_deref().is_some_and(|p| !p.is_empty()),
                    "{}: {}",
                    item.name,
                    step.name
                );
            }
            assert!(!item.handling_forms.is_empty(), "{}", item.name);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary text never panics.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = parse(&text);
        }

        /// The demo catalog with a stretch cut out or a character replaced: a catalog or
        /// an error, never a panic.
        #[test]
        fn damaged_catalogs_never_panic(at in 0usize..DEMO.len(), len in 0usize..200, with in any::<char>()) {
            let mut start = at.min(DEMO.len());
            while !DEMO.is_char_boundary(start) { start -= 1; }
            let mut end = (start + len).min(DEMO.len());
            while !DEMO.is_char_boundary(end) { end -= 1; }
            let cut = format!("{}{}", &DEMO[..start], &DEMO[end..]);
            let _ = parse(&cut);
            let replaced = format!("{}{with}{}", &DEMO[..start], &DEMO[end..]);
            let _ = parse(&replaced);
        }
    }
}
