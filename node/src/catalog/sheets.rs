//! The catalog as spreadsheets, in the layout halls keep their implementation lists in:
//! one row per item on the sheet 事项 with the national list's element names as Chinese
//! column headers (DOMAIN §4), and one row per material, step, legal source, situation,
//! special procedure and fee on further sheets, each keyed by the item's 实施编码 in its
//! first column. A material of a situation (情形) names it in 所属情形; a list held in one
//! cell (conditions, channels, a situation's materials not needed) has one entry a line.
//!
//! As .xlsx, the sheets are the workbook's; as CSV, one file a sheet, named after it
//! (`事项.csv`, `申请材料.csv`, …), read from one folder.
//!
//! Reading checks every cell and reports each bad one by sheet, row and column with what
//! is wrong, then every item by [`Item::validate`]; nothing is returned unless the whole
//! file is valid, so nothing is published from a half-good file.

use std::collections::HashMap;

use yizhan_sync::domain::calendar::YellowThreshold;
use yizhan_sync::domain::codes::ImplCode;
use yizhan_sync::domain::item::{
    CaseType, FeeLine, HandlingForm, Item, ItemStatus, LegalBasis, Material, MaterialForm,
    MaterialSource, OnlineDepth, Place, PowerKind, ProcessStep, ServiceObject, Situation,
    SpecialProcedure, Subject, SubjectNature,
};

/// The sheets, in the order they are written, with their columns.
pub const SHEETS: [(&str, &[&str]); 7] = [
    (ITEMS, ITEM_COLUMNS),
    (MATERIALS, MATERIAL_COLUMNS),
    (SITUATIONS, &["实施编码", "情形名称", "无需提交的材料"]),
    (
        PROCESS,
        &["实施编码", "环节名称", "环节时限（工作日）", "责任岗位"],
    ),
    (LEGAL_BASIS, &["实施编码", "法律法规名称", "条款"]),
    (
        PROCEDURES,
        &[
            "实施编码",
            "特别程序名称",
            "最长时限（天）",
            "是否计算在法定办结时限内",
        ],
    ),
    (
        FEES,
        &[
            "实施编码",
            "收费项目",
            "收费标准",
            "收费依据",
            "收费金额（分）",
        ],
    ),
];

/// The sheets' names, in order (a CSV file each).
pub const SHEET_NAMES: [&str; 7] = [
    ITEMS,
    MATERIALS,
    SITUATIONS,
    PROCESS,
    LEGAL_BASIS,
    PROCEDURES,
    FEES,
];

const ITEMS: &str = "事项";
const MATERIALS: &str = "申请材料";
const SITUATIONS: &str = "办理情形";
const PROCESS: &str = "办理流程";
const LEGAL_BASIS: &str = "设定依据";
const PROCEDURES: &str = "特别程序";
const FEES: &str = "收费项目";

const ITEM_COLUMNS: &[&str] = &[
    "实施编码",
    "事项版本号",
    "事项状态",
    "事项名称",
    "事项类型",
    "主题分类",
    "实施主体",
    "实施主体性质",
    "委托部门",
    "决定部门",
    "服务对象",
    "受理条件",
    "办理地点",
    "办理时间",
    "办件类型",
    "法定办结时限（工作日）",
    "延期时限（工作日）",
    "承诺办结时限（工作日）",
    "预警规则",
    "网上办理深度",
    "办理形式",
    "是否支持预约",
    "查询渠道",
    "咨询方式",
    "监督投诉方式",
    "行政救济途径",
    "审批结果",
    "到办事现场次数",
    "生效日期",
    "并联审批部门",
];

/// Columns a sheet written before they existed may lack: read as empty.
const LATER_COLUMNS: &[&str] = &["生效日期", "并联审批部门", "收费金额（分）"];

const MATERIAL_COLUMNS: &[&str] = &[
    "实施编码",
    "所属情形",
    "材料名称",
    "原件份数",
    "复印件份数",
    "材料必要性",
    "适用条件",
    "备注",
    "来源渠道",
    "出具单位",
    "材料形式",
    "纸质规格",
    "受理标准",
    "空表",
    "样表",
];

/// One cell to write: text, or a whole number (a spreadsheet sums and sorts those).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Number(u32),
}

impl Value {
    /// The text the cell holds, as a CSV writes it and a reader reads it back.
    pub fn text(&self) -> String {
        match self {
            Value::Text(text) => text.clone(),
            Value::Number(n) => n.to_string(),
        }
    }
}

/// A sheet ready to write: its name, headers and rows.
#[derive(Clone, Debug)]
pub struct Sheet {
    pub name: &'static str,
    pub headers: &'static [&'static str],
    pub rows: Vec<Vec<Value>>,
}

/// A cell the reader refuses: where it is and what is wrong, in the words of the
/// command line (rows are numbered as the spreadsheet numbers them, the header row 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellProblem {
    pub sheet: String,
    pub row: usize,
    /// The column's header, or empty for a problem of the whole row or sheet.
    pub column: String,
    pub problem: String,
}

impl std::fmt::Display for CellProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.row, self.column.is_empty()) {
            (0, _) => write!(f, "sheet {}: {}", self.sheet, self.problem),
            (row, true) => write!(f, "sheet {}, row {row}: {}", self.sheet, self.problem),
            (row, false) => write!(
                f,
                "sheet {}, row {row}, column {}: {}",
                self.sheet, self.column, self.problem
            ),
        }
    }
}

// ------------------------------------------------------------------------------ writing

/// The catalog as sheets. A list entry that itself holds a line break cannot be told
/// apart from two entries in one cell, so such an item is refused, named.
pub fn to_sheets(items: &[Item]) -> Result<Vec<Sheet>, Vec<String>> {
    let mut problems = Vec::new();
    let mut rows: Vec<Vec<Vec<Value>>> = vec![Vec::new(); SHEETS.len()];
    let text = |s: &str| Value::Text(s.to_string());
    let opt = |s: &Option<String>| Value::Text(s.clone().unwrap_or_default());
    for item in items {
        let code = item.impl_code.to_string();
        let mut list = |field: &str, entries: &[String]| {
            if entries.iter().any(|e| e.contains('\n') || e.contains('\r')) {
                problems.push(format!(
                    "{code} ({}): an entry of {field} holds a line break, which a cell of one entry a line cannot keep",
                    item.name
                ));
            }
            Value::Text(entries.join("\n"))
        };
        rows[0].push(vec![
            text(&code),
            Value::Number(item.version),
            text(match item.status {
                ItemStatus::Published => "在用",
                ItemStatus::Cancelled => "已取消",
            }),
            text(&item.name),
            text(item.kind.zh()),
            text(&item.category),
            text(&item.subject.name),
            text(nature_zh(item.subject.nature)),
            opt(&item.delegated_by),
            opt(&item.decided_by),
            text(
                &item
                    .service_objects
                    .iter()
                    .map(|o| object_zh(*o))
                    .collect::<Vec<_>>()
                    .join("、"),
            ),
            list("受理条件", &item.conditions),
            text(&item.place.address),
            text(&item.place.hours),
            text(item.case_type.zh()),
            Value::Number(item.legal_limit_days),
            Value::Number(item.legal_extension_days),
            Value::Number(item.committed_limit_days),
            text(&yellow_text(item.yellow)),
            text(depth_zh(item.online_depth)),
            text(
                &item
                    .handling_forms
                    .iter()
                    .map(|f| f.zh())
                    .collect::<Vec<_>>()
                    .join("、"),
            ),
            text(yes_no(item.booking)),
            list("查询渠道", &item.query_channels),
            list("咨询方式", &item.consultation),
            list("监督投诉方式", &item.complaint),
            text(&item.remedies),
            text(&item.result),
            Value::Number(item.visits),
            opt(&item.effective_date.map(|d| d.to_string())),
            // 并联审批 (§7.5): one part a line, `部门代码|审查内容|时限`, the limit optional.
            text(
                &item
                    .parts
                    .iter()
                    .map(|p| match p.limit_days {
                        Some(days) => format!("{}|{}|{days}", p.department, p.name),
                        None => format!("{}|{}", p.department, p.name),
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        ]);
        let material_row = |situation: &str, m: &Material| {
            vec![
                text(&code),
                text(situation),
                text(&m.name),
                Value::Number(m.originals),
                Value::Number(m.copies),
                text(if m.required { "必要" } else { "非必要" }),
                opt(&m.condition),
                opt(&m.note),
                text(m.source.map_or("", MaterialSource::zh)),
                opt(&m.issuer),
                text(m.form.map_or("", MaterialForm::zh)),
                opt(&m.paper_spec),
                opt(&m.standard),
                opt(&m.blank_form),
                opt(&m.sample),
            ]
        };
        rows[1].extend(item.materials.iter().map(|m| material_row("", m)));
        for situation in &item.situations {
            rows[1].extend(
                situation
                    .adds
                    .iter()
                    .map(|m| material_row(&situation.name, m)),
            );
            let not_needed = list("无需提交的材料", &situation.not_needed);
            rows[2].push(vec![text(&code), text(&situation.name), not_needed]);
        }
        rows[3].extend(item.process.iter().map(|s| {
            vec![
                text(&code),
                text(&s.name),
                s.days.map_or(Value::Text(String::new()), Value::Number),
                opt(&s.post),
            ]
        }));
        rows[4].extend(
            item.legal_basis
                .iter()
                .map(|b| vec![text(&code), text(&b.title), text(&b.article)]),
        );
        rows[5].extend(item.special_procedures.iter().map(|p| {
            vec![
                text(&code),
                text(&p.name),
                p.max_days.map_or(Value::Text(String::new()), Value::Number),
                text(yes_no(p.counted)),
            ]
        }));
        rows[6].extend(item.fees.iter().map(|f| {
            vec![
                text(&code),
                text(&f.name),
                text(&f.standard),
                text(&f.basis),
                f.amount_fen
                    .and_then(|a| u32::try_from(a).ok())
                    .map_or(Value::Text(String::new()), Value::Number),
            ]
        }));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(SHEETS
        .iter()
        .zip(rows)
        .map(|((name, headers), rows)| Sheet {
            name,
            headers,
            rows,
        })
        .collect())
}

/// The catalog as an .xlsx workbook, one worksheet a sheet; text is written as text
/// (never evaluated as a formula), counts as numbers.
pub fn to_xlsx(items: &[Item]) -> Result<Vec<u8>, Vec<String>> {
    use rust_xlsxwriter::{Format, Workbook};
    let sheets = to_sheets(items)?;
    let write = || -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
        let mut workbook = Workbook::new();
        let bold = Format::new().set_bold();
        let wrapped = Format::new().set_text_wrap();
        for sheet in &sheets {
            let worksheet = workbook.add_worksheet();
            worksheet.set_name(sheet.name)?;
            for (col, header) in sheet.headers.iter().enumerate() {
                worksheet.write_string_with_format(0, col as u16, *header, &bold)?;
                worksheet.set_column_width(col as u16, 16)?;
            }
            worksheet.set_freeze_panes(1, 1)?;
            for (r, row) in sheet.rows.iter().enumerate() {
                for (col, value) in row.iter().enumerate() {
                    let (r, col) = (r as u32 + 1, col as u16);
                    match value {
                        Value::Text(text) if text.is_empty() => {}
                        Value::Text(text) if text.contains('\n') => {
                            worksheet.write_string_with_format(r, col, text, &wrapped)?;
                        }
                        Value::Text(text) => {
                            worksheet.write_string(r, col, text)?;
                        }
                        Value::Number(n) => {
                            worksheet.write_number(r, col, f64::from(*n))?;
                        }
                    }
                }
            }
        }
        workbook.save_to_buffer()
    };
    write().map_err(|e| vec![format!("the workbook could not be written: {e}")])
}

/// One sheet as CSV: UTF-8 with a byte-order mark (Excel on Chinese Windows reads it as
/// GBK otherwise), fields quoted as RFC 4180 says, lines ending in CRLF. Text is written
/// as it is, so it reads back exactly; open it as text in a spreadsheet that would take a
/// cell starting with `=` for a formula.
pub fn to_csv(sheet: &Sheet) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let mut line = |fields: Vec<String>| {
        let quoted: Vec<String> = fields
            .into_iter()
            .map(|f| {
                if f.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", f.replace('"', "\"\""))
                } else {
                    f
                }
            })
            .collect();
        out.push_str(&quoted.join(","));
        out.push_str("\r\n");
    };
    line(sheet.headers.iter().map(|h| h.to_string()).collect());
    for row in &sheet.rows {
        line(row.iter().map(Value::text).collect());
    }
    out.into_bytes()
}

// ------------------------------------------------------------------------------ reading

/// Reads a catalog from an .xlsx workbook.
pub fn read_xlsx(bytes: &[u8]) -> Result<Vec<Item>, Vec<CellProblem>> {
    use calamine::{Data, Reader, Xlsx};
    let whole = |problem: String| {
        vec![CellProblem {
            sheet: String::new(),
            row: 0,
            column: String::new(),
            problem,
        }]
    };
    let mut workbook: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| whole(format!("not an .xlsx workbook: {e}")))?;
    let mut sheets = Vec::new();
    for name in workbook.sheet_names() {
        let range = workbook
            .worksheet_range(&name)
            .map_err(|e| whole(format!("sheet {name} cannot be read: {e}")))?;
        let rows = range
            .rows()
            .map(|row| {
                row.iter()
                    .map(|cell| match cell {
                        Data::String(s) => s.clone(),
                        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
                            format!("{}", *f as i64)
                        }
                        Data::Float(f) => f.to_string(),
                        Data::Int(i) => i.to_string(),
                        Data::Bool(b) => yes_no(*b).to_string(),
                        Data::Empty => String::new(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        sheets.push((name, rows));
    }
    from_sheets(sheets)
}

/// Reads a catalog from CSV files, one a sheet, named after the sheets (`事项.csv`, …),
/// in `dir`; the sheets an item needs not (no fees, say) may be absent.
pub fn read_csv_dir(dir: &std::path::Path) -> Result<Vec<Item>, Vec<CellProblem>> {
    let mut sheets = Vec::new();
    for (name, _) in SHEETS {
        let path = dir.join(format!("{name}.csv"));
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    vec![CellProblem {
                        sheet: name.to_string(),
                        row: 0,
                        column: String::new(),
                        problem: format!("{} is not UTF-8 text", path.display()),
                    }]
                })?;
                sheets.push((name.to_string(), parse_csv(&text)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != ITEMS => {}
            Err(e) => {
                return Err(vec![CellProblem {
                    sheet: name.to_string(),
                    row: 0,
                    column: String::new(),
                    problem: format!("{} cannot be read: {e}", path.display()),
                }]);
            }
        }
    }
    from_sheets(sheets)
}

/// RFC 4180 records: quoted fields may hold commas, quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// One sheet's rows, with its headers' positions.
struct Rows {
    name: String,
    columns: HashMap<String, usize>,
    rows: Vec<(usize, Vec<String>)>,
}

/// Reads one row's cells, collecting what is wrong with them.
struct RowReader<'a> {
    sheet: &'a Rows,
    row: usize,
    cells: &'a [String],
    problems: &'a mut Vec<CellProblem>,
}

impl RowReader<'_> {
    fn bad(&mut self, column: &str, problem: String) {
        self.problems.push(CellProblem {
            sheet: self.sheet.name.clone(),
            row: self.row,
            column: column.to_string(),
            problem,
        });
    }

    /// The cell's text, trimmed of surrounding spaces (and line breaks).
    fn text(&self, column: &str) -> String {
        self.sheet
            .columns
            .get(column)
            .and_then(|&i| self.cells.get(i))
            .map_or(String::new(), |s| s.trim().to_string())
    }

    fn optional(&self, column: &str) -> Option<String> {
        Some(self.text(column)).filter(|s| !s.is_empty())
    }

    fn required(&mut self, column: &str) -> String {
        let text = self.text(column);
        if text.is_empty() {
            self.bad(column, "must not be empty".into());
        }
        text
    }

    fn number(&mut self, column: &str) -> u32 {
        self.optional_number(column).unwrap_or_else(|| {
            if self.text(column).is_empty() {
                self.bad(column, "give a whole number".into());
            }
            0
        })
    }

    fn optional_number(&mut self, column: &str) -> Option<u32> {
        let text = self.text(column);
        if text.is_empty() {
            return None;
        }
        match text.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.bad(
                    column,
                    format!("{text:?} is not a whole number of 0 or more"),
                );
                None
            }
        }
    }

    /// One of the words `choices` offers (each with its value).
    fn choice<T: Copy>(&mut self, column: &str, choices: &[(&str, T)]) -> Option<T> {
        let text = self.text(column);
        let found = choices.iter().find(|(word, _)| *word == text).map(|c| c.1);
        if found.is_none() {
            let words: Vec<&str> = choices.iter().map(|c| c.0).collect();
            self.bad(
                column,
                format!("{text:?} is not one of {}", words.join(" / ")),
            );
        }
        found
    }

    fn optional_choice<T: Copy>(&mut self, column: &str, choices: &[(&str, T)]) -> Option<T> {
        if self.text(column).is_empty() {
            None
        } else {
            self.choice(column, choices)
        }
    }

    /// Entries joined by `、` (or `,`/`，`), each one of `choices`.
    fn choices<T: Copy>(&mut self, column: &str, choices: &[(&str, T)]) -> Vec<T> {
        let text = self.text(column);
        let mut out = Vec::new();
        for word in text
            .split(['、', ',', '，'])
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            match choices.iter().find(|(w, _)| *w == word) {
                Some((_, value)) => out.push(*value),
                None => {
                    let words: Vec<&str> = choices.iter().map(|c| c.0).collect();
                    self.bad(
                        column,
                        format!("{word:?} is not one of {}", words.join(" / ")),
                    );
                }
            }
        }
        out
    }

    /// One entry a line.
    fn lines(&self, column: &str) -> Vec<String> {
        self.text(column)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// The parts of a combined item (并联审批, §7.5), one a line: `部门代码|审查内容|时限`.
fn read_parts(r: &mut RowReader<'_>) -> Vec<yizhan_sync::domain::combined::ItemPart> {
    const COLUMN: &str = "并联审批部门";
    let mut parts = Vec::new();
    for line in r.lines(COLUMN) {
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        let limit_days = match fields.get(2) {
            None => None,
            Some(days) => match days.parse::<u32>() {
                Ok(days) => Some(days),
                Err(_) => {
                    r.bad(
                        COLUMN,
                        format!("{line:?}: {days:?} is not a number of days"),
                    );
                    continue;
                }
            },
        };
        match fields[..] {
            [department, name] | [department, name, _] => {
                parts.push(yizhan_sync::domain::combined::ItemPart {
                    department: department.to_string(),
                    name: name.to_string(),
                    limit_days,
                })
            }
            _ => r.bad(
                COLUMN,
                format!("{line:?} is not 部门代码|审查内容 or 部门代码|审查内容|时限"),
            ),
        }
    }
    parts
}

/// Builds the catalog from sheets given as rows of text (the first row the headers).
pub fn from_sheets(given: Vec<(String, Vec<Vec<String>>)>) -> Result<Vec<Item>, Vec<CellProblem>> {
    let mut problems = Vec::new();
    let mut sheets: HashMap<&str, Rows> = HashMap::new();
    for (name, rows) in given {
        let Some((known, headers)) = SHEETS.iter().find(|(n, _)| *n == name) else {
            problems.push(CellProblem {
                sheet: name.clone(),
                row: 0,
                column: String::new(),
                problem: format!(
                    "is not a sheet of the catalog (its sheets are {})",
                    SHEETS.map(|s| s.0).join(", ")
                ),
            });
            continue;
        };
        let mut rows = rows.into_iter().enumerate();
        let header_row = rows.next().map(|(_, r)| r).unwrap_or_default();
        let mut columns = HashMap::new();
        for (i, header) in header_row.iter().enumerate() {
            let header = header.trim();
            if header.is_empty() {
                continue;
            }
            if !headers.contains(&header) {
                problems.push(CellProblem {
                    sheet: name.clone(),
                    row: 1,
                    column: header.to_string(),
                    problem: format!(
                        "is not a column of this sheet (its columns are {})",
                        headers.join(", ")
                    ),
                });
            } else if columns.insert(header.to_string(), i).is_some() {
                problems.push(CellProblem {
                    sheet: name.clone(),
                    row: 1,
                    column: header.to_string(),
                    problem: "appears twice".into(),
                });
            }
        }
        for header in headers
            .iter()
            .filter(|h| !columns.contains_key(**h) && !LATER_COLUMNS.contains(*h))
        {
            problems.push(CellProblem {
                sheet: name.clone(),
                row: 1,
                column: header.to_string(),
                problem: "the column is missing".into(),
            });
        }
        let rows = rows
            .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
            .map(|(i, cells)| (i + 1, cells))
            .collect();
        sheets.insert(
            known,
            Rows {
                name,
                columns,
                rows,
            },
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let Some(item_rows) = sheets.get(ITEMS) else {
        return Err(vec![CellProblem {
            sheet: ITEMS.into(),
            row: 0,
            column: String::new(),
            problem: "the sheet of items is missing".into(),
        }]);
    };
    // Items first, by code, with the row that made each.
    let mut items: Vec<(usize, Item)> = Vec::new();
    for (row, cells) in &item_rows.rows {
        let mut r = RowReader {
            sheet: item_rows,
            row: *row,
            cells,
            problems: &mut problems,
        };
        if let Some(item) = read_item(&mut r) {
            if items.iter().any(|(_, i)| i.impl_code == item.impl_code) {
                r.bad("实施编码", format!("{} appears twice", item.impl_code));
            } else {
                items.push((*row, item));
            }
        }
    }
    // Then the rows of the other sheets, each joined to its item: situations before the
    // materials that name them.
    for name in [
        SITUATIONS,
        MATERIALS,
        PROCESS,
        LEGAL_BASIS,
        PROCEDURES,
        FEES,
    ] {
        let Some(sheet) = sheets.get(name) else {
            continue;
        };
        for (row, cells) in &sheet.rows {
            let mut r = RowReader {
                sheet,
                row: *row,
                cells,
                problems: &mut problems,
            };
            let code = r.required("实施编码");
            let Some((_, item)) = items.iter_mut().find(|(_, i)| i.impl_code.as_str() == code)
            else {
                if !code.is_empty() {
                    r.bad(
                        "实施编码",
                        format!("{code} is not an item of the sheet {ITEMS}"),
                    );
                }
                continue;
            };
            read_child(name, &mut r, item);
        }
    }
    for (row, item) in &items {
        if let Err(invalid) = item.validate() {
            for problem in invalid.problems {
                problems.push(CellProblem {
                    sheet: ITEMS.into(),
                    row: *row,
                    column: String::new(),
                    problem: format!("{} ({}): {problem}", item.impl_code, item.name),
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(items.into_iter().map(|(_, item)| item).collect())
    } else {
        Err(problems)
    }
}

fn read_item(r: &mut RowReader<'_>) -> Option<Item> {
    let code_text = r.required("实施编码");
    let impl_code = match ImplCode::parse(&code_text) {
        Ok(code) => Some(code),
        Err(e) if !code_text.is_empty() => {
            r.bad("实施编码", format!("{code_text:?}: {e}"));
            None
        }
        Err(_) => None,
    };
    let version = r.number("事项版本号");
    // 生效日期: absent in sheets written before it, and for versions in force from
    // their publication.
    let effective_date = r.optional("生效日期").and_then(|date| {
        date.parse::<yizhan_sync::domain::calendar::Date>()
            .map_err(|e| r.bad("生效日期", format!("{date:?}: {e}")))
            .ok()
    });
    let status = r.choice(
        "事项状态",
        &[
            ("在用", ItemStatus::Published),
            ("已取消", ItemStatus::Cancelled),
        ],
    );
    let kinds: Vec<(&str, PowerKind)> = PowerKind::ALL.iter().map(|k| (k.zh(), *k)).collect();
    let kind = r.choice("事项类型", &kinds);
    let nature = r.choice(
        "实施主体性质",
        &[
            (
                nature_zh(SubjectNature::StatutoryBody),
                SubjectNature::StatutoryBody,
            ),
            (
                nature_zh(SubjectNature::AuthorisedOrganisation),
                SubjectNature::AuthorisedOrganisation,
            ),
            (
                nature_zh(SubjectNature::EntrustedOrganisation),
                SubjectNature::EntrustedOrganisation,
            ),
        ],
    );
    let service_objects = r.choices(
        "服务对象",
        &[
            (
                object_zh(ServiceObject::NaturalPerson),
                ServiceObject::NaturalPerson,
            ),
            (
                object_zh(ServiceObject::LegalPerson),
                ServiceObject::LegalPerson,
            ),
        ],
    );
    let case_type = r.choice(
        "办件类型",
        &[
            (CaseType::Instant.zh(), CaseType::Instant),
            (CaseType::Committed.zh(), CaseType::Committed),
        ],
    );
    let yellow_text = r.text("预警规则");
    let yellow = parse_yellow(&yellow_text);
    if yellow.is_none() {
        r.bad(
            "预警规则",
            format!("{yellow_text:?} is neither 截止前N个工作日 nor 用时达N%"),
        );
    }
    let depths: Vec<(&str, OnlineDepth)> = DEPTHS.iter().map(|d| (depth_zh(*d), *d)).collect();
    let online_depth = r.choice("网上办理深度", &depths);
    let forms: Vec<(&str, HandlingForm)> = HandlingForm::ALL.iter().map(|f| (f.zh(), *f)).collect();
    let handling_forms = r.choices("办理形式", &forms);
    let booking = r.choice("是否支持预约", &[("是", true), ("否", false)]);
    // Every cell is read (and each bad one reported) before a missing one ends the row.
    let name = r.required("事项名称");
    let category = r.required("主题分类");
    let subject_name = r.required("实施主体");
    let address = r.required("办理地点");
    let hours = r.required("办理时间");
    let legal_limit_days = r.number("法定办结时限（工作日）");
    let legal_extension_days = r.number("延期时限（工作日）");
    let committed_limit_days = r.number("承诺办结时限（工作日）");
    let remedies = r.required("行政救济途径");
    let result = r.required("审批结果");
    let visits = r.number("到办事现场次数");
    let parts = read_parts(r);
    Some(Item {
        parts,
        impl_code: impl_code?,
        version,
        effective_date,
        status: status?,
        name,
        kind: kind?,
        category,
        subject: Subject {
            name: subject_name,
            nature: nature?,
        },
        delegated_by: r.optional("委托部门"),
        decided_by: r.optional("决定部门"),
        service_objects,
        legal_basis: Vec::new(),
        conditions: r.lines("受理条件"),
        place: Place { address, hours },
        process: Vec::new(),
        case_type: case_type?,
        legal_limit_days,
        legal_extension_days,
        committed_limit_days,
        yellow: yellow?,
        materials: Vec::new(),
        special_procedures: Vec::new(),
        online_depth: online_depth?,
        fees: Vec::new(),
        query_channels: r.lines("查询渠道"),
        consultation: r.lines("咨询方式"),
        complaint: r.lines("监督投诉方式"),
        remedies,
        result,
        visits,
        handling_forms,
        booking: booking?,
        situations: Vec::new(),
    })
}

/// A row of a sheet other than 事项, added to its item.
fn read_child(sheet: &str, r: &mut RowReader<'_>, item: &mut Item) {
    match sheet {
        MATERIALS => {
            let sources = [
                (MaterialSource::Applicant.zh(), MaterialSource::Applicant),
                (MaterialSource::Government.zh(), MaterialSource::Government),
            ];
            let forms = [
                (MaterialForm::Paper.zh(), MaterialForm::Paper),
                (MaterialForm::Electronic.zh(), MaterialForm::Electronic),
                (MaterialForm::Both.zh(), MaterialForm::Both),
            ];
            let Some(required) = r.choice("材料必要性", &[("必要", true), ("非必要", false)])
            else {
                return;
            };
            let material = Material {
                name: r.required("材料名称"),
                originals: r.number("原件份数"),
                copies: r.number("复印件份数"),
                required,
                condition: r.optional("适用条件"),
                note: r.optional("备注"),
                source: r.optional_choice("来源渠道", &sources),
                issuer: r.optional("出具单位"),
                form: r.optional_choice("材料形式", &forms),
                paper_spec: r.optional("纸质规格"),
                standard: r.optional("受理标准"),
                blank_form: r.optional("空表"),
                sample: r.optional("样表"),
            };
            match r.optional("所属情形") {
                None => item.materials.push(material),
                Some(name) => match item.situations.iter_mut().find(|s| s.name == name) {
                    Some(situation) => situation.adds.push(material),
                    None => r.bad(
                        "所属情形",
                        format!(
                            "{name:?} is not a situation of {} on the sheet {SITUATIONS}",
                            item.impl_code
                        ),
                    ),
                },
            }
        }
        SITUATIONS => item.situations.push(Situation {
            name: r.required("情形名称"),
            adds: Vec::new(),
            not_needed: r.lines("无需提交的材料"),
        }),
        PROCESS => item.process.push(ProcessStep {
            name: r.required("环节名称"),
            days: r.optional_number("环节时限（工作日）"),
            post: r.optional("责任岗位"),
        }),
        LEGAL_BASIS => item.legal_basis.push(LegalBasis {
            title: r.required("法律法规名称"),
            article: r.text("条款"),
        }),
        PROCEDURES => {
            let max_days = r.optional_number("最长时限（天）");
            if let Some(counted) =
                r.choice("是否计算在法定办结时限内", &[("是", true), ("否", false)])
            {
                item.special_procedures.push(SpecialProcedure {
                    name: r.required("特别程序名称"),
                    max_days,
                    counted,
                });
            }
        }
        FEES => item.fees.push(FeeLine {
            name: r.required("收费项目"),
            standard: r.required("收费标准"),
            basis: r.required("收费依据"),
            // A fixed amount in fen, when the standard is one (§9.5.2); absent in sheets
            // written before it.
            amount_fen: r.optional_number("收费金额（分）").map(u64::from),
        }),
        _ => {}
    }
}

// -------------------------------------------------------------------------- the words

fn yes_no(b: bool) -> &'static str {
    if b { "是" } else { "否" }
}

fn nature_zh(nature: SubjectNature) -> &'static str {
    match nature {
        SubjectNature::StatutoryBody => "法定机关",
        SubjectNature::AuthorisedOrganisation => "授权组织",
        SubjectNature::EntrustedOrganisation => "受委托组织",
    }
}

fn object_zh(object: ServiceObject) -> &'static str {
    match object {
        ServiceObject::NaturalPerson => "自然人",
        ServiceObject::LegalPerson => "法人",
    }
}

const DEPTHS: [OnlineDepth; 8] = [
    OnlineDepth::None,
    OnlineDepth::Consultation,
    OnlineDepth::Submission,
    OnlineDepth::PreReview,
    OnlineDepth::Acceptance,
    OnlineDepth::Handling,
    OnlineDepth::ResultOnline,
    OnlineDepth::ElectronicCertificate,
];

/// 网上办理深度 as the national list words it (DOMAIN §4).
fn depth_zh(depth: OnlineDepth) -> &'static str {
    match depth {
        OnlineDepth::None => "不提供网上办理",
        OnlineDepth::Consultation => "互联网咨询",
        OnlineDepth::Submission => "互联网收件",
        OnlineDepth::PreReview => "互联网预审",
        OnlineDepth::Acceptance => "互联网受理",
        OnlineDepth::Handling => "互联网办理",
        OnlineDepth::ResultOnline => "互联网办理结果信息反馈",
        OnlineDepth::ElectronicCertificate => "电子证照反馈",
    }
}

fn yellow_text(yellow: YellowThreshold) -> String {
    match yellow {
        YellowThreshold::WorkingDaysBefore(n) => format!("截止前{n}个工作日"),
        YellowThreshold::PercentUsed(p) => format!("用时达{p}%"),
    }
}

fn parse_yellow(text: &str) -> Option<YellowThreshold> {
    if let Some(n) = text
        .strip_prefix("截止前")
        .and_then(|t| t.strip_suffix("个工作日"))
    {
        return n
            .trim()
            .parse()
            .ok()
            .map(YellowThreshold::WorkingDaysBefore);
    }
    text.strip_prefix("用时达")
        .and_then(|t| t.strip_suffix('%'))
        .and_then(|p| p.trim().parse().ok())
        .map(YellowThreshold::PercentUsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../data/demo-catalog.toml");

    fn demo() -> Vec<Item> {
        crate::catalog::parse(DEMO).unwrap()
    }

    /// The acceptance of issue 15: the whole demo catalog through an .xlsx and back is the
    /// same items, every field; and through CSV files alike.
    #[test]
    fn the_demo_catalog_round_trips_through_xlsx_and_csv() {
        let mut items = demo();
        // One version with its effective date (生效日期), which the last column carries.
        items[0].effective_date = Some("2027-01-01".parse().unwrap());
        let xlsx = to_xlsx(&items).unwrap();
        assert_eq!(read_xlsx(&xlsx).unwrap(), items);
        let dir = tempfile::tempdir().unwrap();
        for sheet in to_sheets(&items).unwrap() {
            std::fs::write(
                dir.path().join(format!("{}.csv", sheet.name)),
                to_csv(&sheet),
            )
            .unwrap();
        }
        assert_eq!(read_csv_dir(dir.path()).unwrap(), items);
    }

    /// A sheet written before the effective date's column still reads.
    #[test]
    fn a_sheet_without_the_later_columns_reads() {
        let mut sheets: Vec<(String, Vec<Vec<String>>)> = to_sheets(&demo())
            .unwrap()
            .into_iter()
            .map(|s| {
                let mut rows = vec![s.headers.iter().map(|h| h.to_string()).collect()];
                rows.extend(s.rows.iter().map(|r| r.iter().map(Value::text).collect()));
                (s.name.to_string(), rows)
            })
            .collect();
        let at = sheets[0].1[0].iter().position(|h| h == "生效日期").unwrap();
        for row in &mut sheets[0].1 {
            row.remove(at);
        }
        assert_eq!(from_sheets(sheets).unwrap(), demo());
    }

    /// Sheets as text rows, edited, to read back.
    fn edited(edit: impl FnOnce(&mut Vec<(String, Vec<Vec<String>>)>)) -> Vec<String> {
        let mut sheets: Vec<(String, Vec<Vec<String>>)> = to_sheets(&demo())
            .unwrap()
            .into_iter()
            .map(|s| {
                let mut rows = vec![s.headers.iter().map(|h| h.to_string()).collect()];
                rows.extend(s.rows.iter().map(|r| r.iter().map(Value::text).collect()));
                (s.name.to_string(), rows)
            })
            .collect();
        edit(&mut sheets);
        from_sheets(sheets)
            .expect_err("the edit is refused")
            .iter()
            .map(CellProblem::to_string)
            .collect()
    }

    fn cell(
        sheets: &mut [(String, Vec<Vec<String>>)],
        sheet: &str,
        row: usize,
        column: &str,
    ) -> String {
        let (_, rows) = sheets.iter_mut().find(|(n, _)| n == sheet).unwrap();
        let col = rows[0].iter().position(|h| h == column).unwrap();
        std::mem::take(&mut rows[row - 1][col])
    }

    fn set(
        sheets: &mut [(String, Vec<Vec<String>>)],
        sheet: &str,
        row: usize,
        column: &str,
        value: &str,
    ) {
        let (_, rows) = sheets.iter_mut().find(|(n, _)| n == sheet).unwrap();
        let col = rows[0].iter().position(|h| h == column).unwrap();
        rows[row - 1][col] = value.to_string();
    }

    /// Every bad cell is named by sheet, row and column with what is wrong; a bad item
    /// by its row; and nothing is read.
    #[test]
    fn every_bad_cell_is_reported_where_it_is() {
        type Edit = fn(&mut Vec<(String, Vec<Vec<String>>)>);
        let table: &[(&str, Edit, &[&str])] = &[
            (
                "a number that is not one",
                |s| set(s, "申请材料", 3, "原件份数", "两份"),
                &["sheet 申请材料, row 3, column 原件份数: \"两份\" is not a whole number"],
            ),
            (
                "two bad cells at once",
                |s| {
                    set(s, "事项", 2, "办件类型", "急件");
                    set(s, "办理流程", 4, "环节时限（工作日）", "-1");
                },
                &[
                    "sheet 事项, row 2, column 办件类型: \"急件\" is not one of 即办件 / 承诺件",
                    "sheet 办理流程, row 4, column 环节时限（工作日）: \"-1\" is not a whole number",
                ],
            ),
            (
                "a bad check digit",
                |s| {
                    let code = cell(s, "事项", 2, "实施编码");
                    let mut wrong = code.clone();
                    wrong.replace_range(0..2, "12");
                    set(s, "事项", 2, "实施编码", &wrong);
                },
                &["sheet 事项, row 2, column 实施编码:"],
            ),
            (
                "a material of an item the sheet lacks",
                |s| {
                    set(
                        s,
                        "申请材料",
                        2,
                        "实施编码",
                        "1144039999000005XU5002099199000",
                    )
                },
                &[
                    "sheet 申请材料, row 2, column 实施编码: 1144039999000005XU5002099199000 is not an item of the sheet 事项",
                ],
            ),
            (
                "a material of a situation not listed",
                |s| {
                    let (_, rows) = s.iter_mut().find(|(n, _)| n == "申请材料").unwrap();
                    let at = rows
                        .iter()
                        .position(|r| r[1] == "以连续就读为由申领")
                        .unwrap()
                        + 1;
                    set(s, "申请材料", at, "所属情形", "以务工为由申领");
                },
                &["column 所属情形: \"以务工为由申领\" is not a situation of"],
            ),
            (
                "a missing column",
                |s| s[0].1[0][3] = "名称".into(),
                &[
                    "sheet 事项, row 1, column 名称: is not a column of this sheet",
                    "sheet 事项, row 1, column 事项名称: the column is missing",
                ],
            ),
            (
                "an item that breaks a catalog rule",
                |s| set(s, "事项", 4, "承诺办结时限（工作日）", "99"),
                &["sheet 事项, row 4: ", "may not exceed the legal limit"],
            ),
            (
                "steps longer than the committed limit",
                |s| set(s, "办理流程", 3, "环节时限（工作日）", "30"),
                &["more than the committed limit"],
            ),
            (
                "an unknown sheet",
                |s| s.push(("附表".into(), vec![vec!["x".into()]])),
                &["sheet 附表: is not a sheet of the catalog"],
            ),
        ];
        for (why, edit, needles) in table {
            let problems = edited(*edit);
            for needle in *needles {
                assert!(
                    problems.iter().any(|p| p.contains(needle)),
                    "{why}: no {needle:?} in {problems:#?}"
                );
            }
        }
    }

    #[test]
    fn damaged_files_are_refused_not_panicked_on() {
        assert!(read_xlsx(b"PK\x03\x04 not really").is_err());
        assert!(read_xlsx(b"").is_err());
        let dir = tempfile::tempdir().unwrap();
        let problems = read_csv_dir(dir.path()).unwrap_err();
        assert!(problems[0].to_string().contains("事项.csv"), "{problems:?}");
        std::fs::write(
            dir.path().join("事项.csv"),
            "\u{feff}实施编码\r\n\"unterminated",
        )
        .unwrap();
        assert!(read_csv_dir(dir.path()).is_err());
    }
}
