//! The one rule for text people type into records: names, notes, reasons.
//!
//! Records are printed on notices, shown on pages, exported to spreadsheets and written
//! to logs, so characters that change how *other* text is shown are refused at the door:
//! control characters (NUL, ESC, DEL, the C1 range, …), the bidirectional embeddings,
//! overrides and isolates (U+202A–U+202E, U+2066–U+2069: an RLO makes `exe.txt` read as
//! `txt.exe`), and the Unicode line and paragraph separators. A one-line field (a name, a
//! counter, a delivery method) takes none of them; a multi-line field (a reason, a note)
//! also takes tabs and line breaks (`\n`, or `\r\n` as browsers send them).
//!
//! Every caller that takes text from a person asks [`check`] (intake, case actions,
//! items, staff accounts), so the rule lives here once; it answers with the field and the
//! character, and callers word it in the reader's language.

use std::fmt;

/// Whether a field holds one line or several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Names, codes, places: no line breaks, no tabs.
    Line,
    /// Reasons, notes, results: tabs and line breaks allowed.
    Lines,
}

/// A character the field may not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The field, as the API names it (`applicant.name`, `reason`).
    pub field: &'static str,
    /// The first character refused.
    pub found: char,
}

impl Refused {
    /// A stable name for the error; the UI and the API word it with `field` and
    /// [`Refused::code_point`] as parameters.
    pub const CODE: &'static str = "control_character";

    /// The refused character as people look it up: `U+202E`.
    pub fn code_point(&self) -> String {
        format!("U+{:04X}", u32::from(self.found))
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} contains the control or layout character {}; type the text again without it",
            self.field,
            self.code_point()
        )
    }
}

impl std::error::Error for Refused {}

/// Checks `text` for the field `field` of shape `shape`.
pub fn check(field: &'static str, text: &str, shape: Shape) -> Result<(), Refused> {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let allowed = match c {
            '\t' | '\n' => shape == Shape::Lines,
            '\r' => shape == Shape::Lines && chars.peek() == Some(&'\n'),
            c => !is_refused(c),
        };
        if !allowed {
            return Err(Refused { field, found: c });
        }
    }
    Ok(())
}

/// Checks a one-line field.
pub fn line(field: &'static str, text: &str) -> Result<(), Refused> {
    check(field, text, Shape::Line)
}

/// Checks a multi-line field.
pub fn lines(field: &'static str, text: &str) -> Result<(), Refused> {
    check(field, text, Shape::Lines)
}

/// Characters no field takes, whatever its shape.
fn is_refused(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Bidirectional embeddings and overrides, and isolates.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators: line breaks no one types.
            | '\u{2028}' | '\u{2029}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_by_character_and_shape() {
        use Shape::{Line, Lines};
        // (text, shape, the character refused or None)
        let table: &[(&str, Shape, Option<char>)] = &[
            ("张三", Line, None),
            ("Zhang San-Li", Line, None),
            ("阿依古丽·买买提", Line, None),
            ("", Line, None),
            ("李\u{0}四", Line, Some('\u{0}')),
            ("\u{1b}[31m红", Line, Some('\u{1b}')),
            ("abc\u{7f}", Line, Some('\u{7f}')),
            ("C1\u{85}", Lines, Some('\u{85}')),
            ("gpj.\u{202E}exe", Line, Some('\u{202E}')),
            ("gpj.\u{202E}exe", Lines, Some('\u{202E}')),
            ("\u{202A}x", Line, Some('\u{202A}')),
            ("x\u{2066}y\u{2069}", Lines, Some('\u{2066}')),
            ("a\u{2028}b", Lines, Some('\u{2028}')),
            ("一行\n两行", Line, Some('\n')),
            ("一行\r\n两行", Line, Some('\r')),
            ("a\tb", Line, Some('\t')),
            ("一行\n两行", Lines, None),
            ("一行\r\n两行\r\n", Lines, None),
            ("列\t列", Lines, None),
            ("lone\rcr", Lines, Some('\r')),
            ("ends\r", Lines, Some('\r')),
            // Marks and joiners people's scripts use are not overrides.
            ("👨\u{200D}👩", Line, None),
        ];
        for (text, shape, refused) in table {
            let got = check("f", text, *shape).err().map(|r| r.found);
            assert_eq!(got, *refused, "{text:?} as {shape:?}");
        }
        let refused = line("applicant.name", "x\u{202E}").unwrap_err();
        assert_eq!(refused.code_point(), "U+202E");
        assert_eq!(refused.field, "applicant.name");
        assert!(refused.to_string().contains("U+202E"));
    }
}
