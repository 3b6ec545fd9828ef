//! Tables as downloads: CSV for anything that reads text, .xlsx for Excel and WPS.
//!
//! CSV is UTF-8 with a byte-order mark, because Excel on Chinese Windows otherwise reads
//! it as GBK and garbles every name; fields are quoted as RFC 4180 says, lines end in
//! CRLF. A text field that a spreadsheet would take for a formula (it starts with `=`,
//! `+`, `-`, `@`, a tab or a carriage return) gets a leading `'` (CSV injection, OWASP).
//! The .xlsx writes text cells as strings, which are never evaluated, so it needs no guard.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

/// One cell of an exported table.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Count(u64),
    /// A share between 0 and 1; `None` when there was nothing to divide by.
    Share(Option<f64>),
}

/// A table with a header row, ready to be written in either format.
#[derive(Clone, Debug)]
pub struct Table {
    /// The worksheet's name in the .xlsx (at most 31 characters, none of `[]:*?/\`).
    pub sheet: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// The text a share shows in CSV (and on the page): one decimal, a percent sign.
pub fn percent(share: Option<f64>) -> String {
    share.map_or(String::new(), |s| format!("{:.1}%", s * 100.0))
}

impl Table {
    pub fn to_csv(&self) -> Vec<u8> {
        let mut out = String::from("\u{feff}");
        let line = |out: &mut String, fields: &mut dyn Iterator<Item = String>| {
            let fields: Vec<String> = fields.collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        };
        line(&mut out, &mut self.headers.iter().map(|h| csv_text(h)));
        for row in &self.rows {
            line(
                &mut out,
                &mut row.iter().map(|cell| match cell {
                    Cell::Text(text) => csv_text(text),
                    Cell::Count(n) => n.to_string(),
                    Cell::Share(share) => percent(*share),
                }),
            );
        }
        out.into_bytes()
    }

    /// The table as an .xlsx workbook of one sheet: a bold, frozen header row with a
    /// filter, counts as numbers and shares as numbers formatted as percentages.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, XlsxError> {
        let mut workbook = Workbook::new();
        // Rows go to a temporary file as they are written instead of staying in memory
        // (a month of a busy hall is tens of thousands of rows on a small PC).
        let sheet = workbook.add_worksheet_with_constant_memory()?;
        sheet.set_name(&self.sheet)?;
        let bold = Format::new().set_bold();
        let share = Format::new().set_num_format("0.0%");
        for (col, header) in self.headers.iter().enumerate() {
            let col = col as u16;
            sheet.write_string_with_format(0, col, header, &bold)?;
            // Wide enough for the header or a date; CJK characters count double.
            let width = header
                .chars()
                .map(|c| if c.is_ascii() { 1 } else { 2 })
                .sum::<usize>();
            sheet.set_column_width(col, width.max(12) as f64 + 2.0)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (col, cell) in row.iter().enumerate() {
                let col = col as u16;
                match cell {
                    Cell::Text(text) if text.is_empty() => {}
                    Cell::Text(text) => {
                        sheet.write_string(r, col, text)?;
                    }
                    Cell::Count(n) => {
                        sheet.write_number(r, col, *n as f64)?;
                    }
                    Cell::Share(Some(s)) => {
                        sheet.write_number_with_format(r, col, *s, &share)?;
                    }
                    Cell::Share(None) => {}
                }
            }
        }
        sheet.set_freeze_panes(1, 0)?;
        if !self.headers.is_empty() {
            sheet.autofilter(0, 0, self.rows.len() as u32, self.headers.len() as u16 - 1)?;
        }
        workbook.save_to_buffer()
    }
}

/// A CSV field: guarded against formulas, quoted when it holds a comma, quote or line
/// break.
fn csv_text(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Splits RFC 4180 CSV (after the BOM) into records of fields.
    pub(crate) fn parse_csv(bytes: &[u8]) -> Vec<Vec<String>> {
        let text = std::str::from_utf8(bytes).unwrap();
        let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') => quoted = true,
                (false, ',') => record.push(std::mem::take(&mut field)),
                (false, '\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                (false, c) => field.push(c),
            }
        }
        assert!(field.is_empty() && record.is_empty(), "ends with CRLF");
        records
    }

    /// The cells of the first sheet of an .xlsx.
    pub(crate) fn read_xlsx(bytes: &[u8]) -> Vec<Vec<calamine::Data>> {
        use calamine::{Reader, Xlsx};
        let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let name = workbook.sheet_names()[0].clone();
        let range = workbook.worksheet_range(&name).unwrap();
        range.rows().map(<[calamine::Data]>::to_vec).collect()
    }

    /// Asserts that the .xlsx cells say what the CSV fields say, row for row: text
    /// equal (less the CSV's formula guard), numbers as the CSV writes them (a count, or
    /// a share as a percentage; the cell's number format is not read back).
    pub(crate) fn assert_same(xlsx: &[Vec<calamine::Data>], csv: &[Vec<String>]) {
        use calamine::Data;
        assert_eq!(xlsx.len(), csv.len(), "as many rows");
        for (r, (x, c)) in xlsx.iter().zip(csv).enumerate() {
            assert_eq!(x.len(), c.len(), "row {r} has as many cells");
            for (cell, field) in x.iter().zip(c) {
                let field = unguarded(field);
                let same = match cell {
                    Data::Empty => field.is_empty(),
                    Data::String(s) => s == field,
                    Data::Float(f) => format!("{f}") == field || percent(Some(*f)) == field,
                    Data::Int(i) => i.to_string() == field,
                    _ => false,
                };
                assert!(same, "row {r}: {cell:?} in the .xlsx, {field:?} in the CSV");
            }
        }
    }

    /// A CSV field without the formula guard, as the .xlsx holds it.
    pub(crate) fn unguarded(field: &str) -> &str {
        match field.strip_prefix('\'') {
            Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
            _ => field,
        }
    }

    fn sample() -> Table {
        Table {
            sheet: "办件".into(),
            headers: vec!["名称".into(), "数量".into(), "比例".into()],
            rows: vec![
                vec![
                    Cell::Text("=HYPERLINK(\"http://x\")".into()),
                    Cell::Count(3),
                    Cell::Share(Some(0.5)),
                ],
                vec![
                    Cell::Text("张三, \"小张\"\n二行".into()),
                    Cell::Count(0),
                    Cell::Share(None),
                ],
                vec![
                    Cell::Text("-1+1".into()),
                    Cell::Count(12),
                    Cell::Share(Some(1.0)),
                ],
                vec![
                    Cell::Text("@SUM(A1)".into()),
                    Cell::Count(7),
                    Cell::Share(Some(0.0)),
                ],
                vec![
                    Cell::Text("+86".into()),
                    Cell::Count(1),
                    Cell::Share(Some(2.0 / 3.0)),
                ],
            ],
        }
    }

    #[test]
    fn csv_has_a_bom_quotes_fields_and_guards_formulas() {
        let csv = sample().to_csv();
        assert!(csv.starts_with("\u{feff}名称,数量,比例\r\n".as_bytes()));
        let text = String::from_utf8(csv.clone()).unwrap();
        assert!(
            text.contains("\"'=HYPERLINK(\"\"http://x\"\")\",3,50.0%\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\"张三, \"\"小张\"\"\n二行\",0,\r\n"),
            "{text}"
        );
        assert!(text.contains("'-1+1,12,100.0%\r\n"));
        assert!(text.contains("'@SUM(A1),7,0.0%\r\n"));
        assert!(text.contains("'+86,1,66.7%\r\n"));
        let records = parse_csv(&csv);
        assert_eq!(records.len(), 6);
        assert_eq!(records[2][0], "张三, \"小张\"\n二行");
    }

    #[test]
    fn xlsx_reads_back_as_the_csv_row_for_row() {
        let table = sample();
        let csv = parse_csv(&table.to_csv());
        let xlsx = read_xlsx(&table.to_xlsx().unwrap());
        assert_same(&xlsx, &csv);
        // The formula arrives as text, not as a formula.
        assert_eq!(
            xlsx[1][0],
            calamine::Data::String("=HYPERLINK(\"http://x\")".into())
        );
    }
}
