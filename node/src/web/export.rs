//! Tables as downloads: CSV for anything that reads text, .xlsx for Excel and WPS.
//!
//! CSV is UTF-8 with a byte-order mark, because Excel on Chinese Windows otherwise reads
//! it as GBK and garbles every name; fields are quoted as RFC 4180 says, lines end in
//! CRLF. A text field that a spreadsheet would take for a formula (it starts with `=`,
//! `+`, `-`, `@`, a tab or a carriage return) gets a leading `'` (CSV injection, OWASP).
//! The .xlsx writes text cells as strings, which are never evaluated, so it needs no guard.
//! Its dates are dates (a spreadsheet sorts and filters them as such), and each column is
//! as wide as what it holds.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, XlsxError};
use yizhan_sync::domain::calendar::Date;

/// The two forms a table downloads in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Download {
    Csv,
    Xlsx,
}

/// `table` as an attachment named `yizhan-{name}.csv` or `.xlsx`. Writing a large workbook
/// is CPU work, so it runs off the async threads; a failure is logged and the page says so
/// in its language.
pub async fn download(ctx: &super::Ctx, table: Table, form: Download, name: &str) -> Response {
    let written = tokio::task::spawn_blocking(move || match form {
        Download::Csv => Ok(table.to_csv()),
        Download::Xlsx => table.to_xlsx().map_err(|e| e.to_string()),
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|written| written);
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, download = name, "a download failed to write");
            return super::message(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                "error.internal",
                ctx.t.get("error.internal_text").into_owned(),
            );
        }
    };
    let (content_type, extension) = match form {
        Download::Csv => ("text/csv; charset=utf-8", "csv"),
        Download::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
    };
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"yizhan-{name}.{extension}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// One cell of an exported table.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Count(u64),
    /// A share between 0 and 1; `None` when there was nothing to divide by.
    Share(Option<f64>),
    /// A day: `YYYY-MM-DD` in CSV, a date cell in the .xlsx; `None` for none.
    Date(Option<Date>),
    /// A number with one decimal (an average); `None` when there was nothing to average.
    Decimal(Option<f64>),
}

impl Cell {
    /// The text the cell shows (as the CSV writes it).
    fn shown(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Share(share) => percent(*share),
            Cell::Date(day) => day.map(|d| d.to_string()).unwrap_or_default(),
            Cell::Decimal(n) => decimal(*n),
        }
    }
}

/// How wide a text shows in a spreadsheet, in characters of a Latin font: CJK and other
/// wide characters count double.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| if (c as u32) < 0x1100 { 1 } else { 2 })
        .sum()
}

/// A table with a header row, ready to be written in either format.
#[derive(Clone, Debug)]
pub struct Table {
    /// The worksheet's name in the .xlsx (at most 31 characters, none of `[]:*?/\`).
    pub sheet: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// The text an average shows in CSV (and on the page): one decimal.
pub fn decimal(n: Option<f64>) -> String {
    n.map_or(String::new(), |n| format!("{n:.1}"))
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
                    other => other.shown(),
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
        let day = Format::new().set_num_format("yyyy-mm-dd");
        let tenths = Format::new().set_num_format("0.0");
        for (col, header) in self.headers.iter().enumerate() {
            // As wide as the widest of the header and the column's cells (a constant-memory
            // sheet takes widths before its rows); CJK characters count double.
            let widest = self
                .rows
                .iter()
                .filter_map(|row| row.get(col))
                .map(|cell| display_width(&cell.shown()))
                .chain(std::iter::once(display_width(header)))
                .max()
                .unwrap_or(0);
            let col = col as u16;
            sheet.set_column_width(col, (widest.clamp(6, 60) + 2) as f64)?;
            sheet.write_string_with_format(0, col, header, &bold)?;
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
                    Cell::Decimal(Some(n)) => {
                        sheet.write_number_with_format(r, col, *n, &tenths)?;
                    }
                    Cell::Share(None) | Cell::Date(None) | Cell::Decimal(None) => {}
                    Cell::Date(Some(date)) => {
                        let (y, m, d) = date.ymd();
                        let date = ExcelDateTime::from_ymd(y as u16, m as u8, d as u8)?;
                        sheet.write_date_with_format(r, col, &date, &day)?;
                    }
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
                    // Excel counts days from 1899-12-30.
                    Data::DateTime(d) => {
                        let epoch = Date::from_ymd(1899, 12, 30).unwrap();
                        epoch.add_days(d.as_f64() as i32).to_string() == field
                    }
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

    /// Dates are date cells in the .xlsx, `YYYY-MM-DD` in the CSV; columns are as wide as
    /// their widest cell.
    #[test]
    fn dates_are_dates_and_columns_fit() {
        let table = Table {
            sheet: "在办".into(),
            headers: vec!["到期日".into(), "事项名称".into()],
            rows: vec![
                vec![
                    Cell::Date(Some(Date::from_ymd(2026, 12, 7).unwrap())),
                    Cell::Text("城乡居民基本医疗保险参保登记".into()),
                ],
                vec![Cell::Date(None), Cell::Text("x".into())],
            ],
        };
        let csv = parse_csv(&table.to_csv());
        assert_eq!(csv[1][0], "2026-12-07");
        let xlsx = read_xlsx(&table.to_xlsx().unwrap());
        assert!(
            matches!(xlsx[1][0], calamine::Data::DateTime(_)),
            "{:?}",
            xlsx[1][0]
        );
        assert_same(&xlsx, &csv);
        assert_eq!(display_width("城乡居民基本医疗保险参保登记"), 28);
        assert_eq!(display_width("2026-12-07"), 10);
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
