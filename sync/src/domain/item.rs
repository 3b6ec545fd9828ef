//! Service items (政务服务事项) of the catalog.
//!
//! Every element SZDB/Z 176 §9.1.2 requires — name, nature (kind of power), legal basis,
//! conditions, place, process, fees, query channel, consultation and complaint — is a
//! mandatory field, inside the national implementation-list schema (DOMAIN §4): codes,
//! service object, handling level, case type, legal and committed limits, materials,
//! special procedures, online depth, fee lines, warning threshold and version.

use super::calendar::YellowThreshold;
use super::codes::{BasicCode, HandlingLevel, ImplCode};

/// One catalog item at one version.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// 实施编码; it embeds the implementing body's credit code, level and basic code.
    pub impl_code: ImplCode,
    /// 事项版本号: increases with every published change.
    pub version: u32,
    #[serde(default)]
    pub status: ItemStatus,
    /// 生效日期: the day from which this version is in force. A new item is not taken for
    /// intake before it (`Intake::new`); a change is in force from its approval, which
    /// writes that day here (`domain::draft::effective_on_approval`). Absent on versions
    /// published directly: in force from publication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<super::calendar::Date>,
    /// 事项名称.
    pub name: String,
    /// 事项类型 / 性质 from the national list (§9.1.2 性质).
    pub kind: PowerKind,
    /// 主题分类, e.g. 社会救助; the catalog is browsed by it.
    pub category: String,
    /// 实施主体.
    pub subject: Subject,
    /// 委托部门: the department that delegated accepting this item to the offices that
    /// publish it (SZDB/Z 176 §5.5.2 代为受理). Receipts then say whom they accept for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_by: Option<String>,
    /// 决定部门: the code of the department (at a hall, `domain::department`) that decides
    /// cases of this item (SZDB/Z 176 §5.7.2): only its members, at its hall, record the
    /// decision; with `delegated_by`, the station accepts and the department decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// 并联审批 (SZDB/Z 176 §7.5; 行政许可法 §26): the parts of a combined item, each decided
    /// by its own department at the same time; empty for an ordinary item. One acceptance
    /// makes a parent case and a sub-case per part (`domain::combined`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<super::combined::ItemPart>,
    /// 服务对象.
    pub service_objects: Vec<ServiceObject>,
    /// 设定依据 (§9.1.2 设立依据), most authoritative first.
    pub legal_basis: Vec<LegalBasis>,
    /// 受理条件 (§9.1.2 办理条件).
    pub conditions: Vec<String>,
    /// 办理地点与时间 (§9.1.2 办理场所).
    pub place: Place,
    /// 办理流程 (§9.1.2 办理过程).
    pub process: Vec<ProcessStep>,
    /// 办件类型.
    pub case_type: CaseType,
    /// 法定办结时限, working days.
    pub legal_limit_days: u32,
    /// Working days by which the law allows the legal limit to be extended (延期,
    /// 行政许可法 §42); 0 when it may not be.
    #[serde(default)]
    pub legal_extension_days: u32,
    /// 承诺办结时限, working days; never above the legal limit; 0 for 即办件.
    pub committed_limit_days: u32,
    /// When supervision turns a case of this item yellow.
    #[serde(default)]
    pub yellow: YellowThreshold,
    /// 申请材料.
    pub materials: Vec<Material>,
    /// 特别程序 such as 公示 or 鉴定.
    #[serde(default)]
    pub special_procedures: Vec<SpecialProcedure>,
    /// 网上办理深度.
    pub online_depth: OnlineDepth,
    /// 收费项目; empty means 不收费 (§9.5.1).
    #[serde(default)]
    pub fees: Vec<FeeLine>,
    /// 查询渠道.
    pub query_channels: Vec<String>,
    /// 咨询方式.
    pub consultation: Vec<String>,
    /// 监督投诉方式.
    pub complaint: Vec<String>,
    /// 行政救济途径 (复议/诉讼), quoted on refusals.
    pub remedies: String,
    /// 审批结果 (name of the certificate, decision or record).
    pub result: String,
    /// 到办事现场次数.
    pub visits: u32,
    /// 办理形式 (DOMAIN §4 Handling): how an application may be made; several may apply.
    /// Empty in items published before the element existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handling_forms: Vec<HandlingForm>,
    /// 是否支持预约: whether the station books appointments for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub booking: bool,
    /// 情形 (业务情形): named case variants that change the material list, one or more of
    /// which the counter chooses at intake (DOMAIN §4 Conditions & materials).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub situations: Vec<Situation>,
}

/// 办理形式: a way of applying for an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandlingForm {
    /// 窗口办理.
    Window,
    /// 网上办理.
    Online,
    /// 自助办理.
    SelfService,
    /// 邮寄办理.
    Post,
}

impl HandlingForm {
    pub const ALL: [HandlingForm; 4] = [
        HandlingForm::Window,
        HandlingForm::Online,
        HandlingForm::SelfService,
        HandlingForm::Post,
    ];

    /// The stable code: the key of its words in `web/i18n` and its value in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            HandlingForm::Window => "window",
            HandlingForm::Online => "online",
            HandlingForm::SelfService => "self_service",
            HandlingForm::Post => "post",
        }
    }

    /// The name the national list uses, as catalog spreadsheets write it.
    pub fn zh(self) -> &'static str {
        match self {
            HandlingForm::Window => "窗口办理",
            HandlingForm::Online => "网上办理",
            HandlingForm::SelfService => "自助办理",
            HandlingForm::Post => "邮寄办理",
        }
    }
}

/// 业务情形: a variant of an item that asks for more materials, or fewer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Situation {
    /// The name the counter chooses by, e.g. 委托他人代办; unique within the item.
    pub name: String,
    /// Materials this situation asks for on top of the item's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adds: Vec<Material>,
    /// Names of the item's own materials this situation does not need.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_needed: Vec<String>,
}

/// 来源渠道 of a material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialSource {
    /// 申请人自备.
    Applicant,
    /// 政府部门核发: the material names its issuer.
    Government,
}

impl MaterialSource {
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialSource::Applicant => "applicant",
            MaterialSource::Government => "government",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            MaterialSource::Applicant => "申请人自备",
            MaterialSource::Government => "政府部门核发",
        }
    }
}

/// 材料形式.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialForm {
    /// 纸质.
    Paper,
    /// 电子.
    Electronic,
    /// 纸质和电子.
    Both,
}

impl MaterialForm {
    pub fn as_str(self) -> &'static str {
        match self {
            MaterialForm::Paper => "paper",
            MaterialForm::Electronic => "electronic",
            MaterialForm::Both => "both",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            MaterialForm::Paper => "纸质",
            MaterialForm::Electronic => "电子",
            MaterialForm::Both => "纸质和电子",
        }
    }
}

/// Lifecycle of a published item (§8.4.1: new, changed, cancelled).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    #[default]
    Published,
    /// No new applications; cases already accepted continue.
    Cancelled,
}

/// The national list of kinds of power (事项类型), with the codes platforms use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerKind {
    Licensing,
    Penalty,
    Enforcement,
    Levy,
    Payment,
    Inspection,
    Confirmation,
    Reward,
    Adjudication,
    OtherPower,
    PublicService,
}

impl PowerKind {
    pub const ALL: [PowerKind; 11] = [
        PowerKind::Licensing,
        PowerKind::Penalty,
        PowerKind::Enforcement,
        PowerKind::Levy,
        PowerKind::Payment,
        PowerKind::Inspection,
        PowerKind::Confirmation,
        PowerKind::Reward,
        PowerKind::Adjudication,
        PowerKind::OtherPower,
        PowerKind::PublicService,
    ];

    /// The two-digit code of the national list.
    pub fn code(self) -> &'static str {
        match self {
            PowerKind::Licensing => "01",
            PowerKind::Penalty => "02",
            PowerKind::Enforcement => "03",
            PowerKind::Levy => "04",
            PowerKind::Payment => "05",
            PowerKind::Inspection => "06",
            PowerKind::Confirmation => "07",
            PowerKind::Reward => "08",
            PowerKind::Adjudication => "09",
            PowerKind::OtherPower => "10",
            PowerKind::PublicService => "20",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            PowerKind::Licensing => "行政许可",
            PowerKind::Penalty => "行政处罚",
            PowerKind::Enforcement => "行政强制",
            PowerKind::Levy => "行政征收",
            PowerKind::Payment => "行政给付",
            PowerKind::Inspection => "行政检查",
            PowerKind::Confirmation => "行政确认",
            PowerKind::Reward => "行政奖励",
            PowerKind::Adjudication => "行政裁决",
            PowerKind::OtherPower => "其他行政权力",
            PowerKind::PublicService => "公共服务",
        }
    }

    /// Whether people apply for it (依申请), so it is handled at a counter. Penalties,
    /// enforcement, levies and inspections are started by the authority and stay out of
    /// counter work (DOMAIN §2).
    pub fn on_application(self) -> bool {
        !matches!(
            self,
            PowerKind::Penalty | PowerKind::Enforcement | PowerKind::Levy | PowerKind::Inspection
        )
    }
}

/// 实施主体 and its nature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    pub name: String,
    pub nature: SubjectNature,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectNature {
    /// 法定机关.
    StatutoryBody,
    /// 授权组织.
    AuthorisedOrganisation,
    /// 受委托组织.
    EntrustedOrganisation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceObject {
    /// 自然人.
    NaturalPerson,
    /// 法人或其他组织.
    LegalPerson,
}

impl ServiceObject {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceObject::NaturalPerson => "natural_person",
            ServiceObject::LegalPerson => "legal_person",
        }
    }
}

impl std::fmt::Display for ServiceObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServiceObject::NaturalPerson => "natural person (自然人)",
            ServiceObject::LegalPerson => "legal person (法人)",
        })
    }
}

/// One legal source: a law, regulation or rule, and the article.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalBasis {
    pub title: String,
    #[serde(default)]
    pub article: String,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    pub address: String,
    pub hours: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessStep {
    pub name: String,
    /// Time limit of this step in working days, when it has one of its own (环节时限).
    #[serde(default)]
    pub days: Option<u32>,
    /// 责任岗位: the post that carries the step out (DOMAIN §4 Process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<String>,
}

/// 办件类型.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseType {
    /// 即办件: decided at the counter on the spot.
    Instant,
    /// 承诺件: decided within a committed number of working days.
    Committed,
}

impl CaseType {
    pub fn zh(self) -> &'static str {
        match self {
            CaseType::Instant => "即办件",
            CaseType::Committed => "承诺件",
        }
    }
}

/// One required or conditional material (申请材料).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Material {
    pub name: String,
    /// 原件份数 to show (usually returned after checking).
    pub originals: u32,
    /// 复印件份数 to hand in.
    pub copies: u32,
    /// Whether every applicant must bring it; when false, `condition` says who must.
    pub required: bool,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// 来源渠道.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MaterialSource>,
    /// The issuing body (出具单位) when the source is a government body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// 材料形式: paper, electronic or both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<MaterialForm>,
    /// 纸质规格, e.g. A4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_spec: Option<String>,
    /// 受理标准 (接件标准): what the counter checks the material against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard: Option<String>,
    /// 空表: the attachment (`a-…`) holding the blank form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blank_form: Option<String>,
    /// 样表: the attachment (`a-…`) holding a filled-in sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<String>,
}

/// A special procedure (特别程序) and whether its time counts toward the limit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialProcedure {
    pub name: String,
    #[serde(default)]
    pub max_days: Option<u32>,
    /// 是否计算在法定办结时限内.
    pub counted: bool,
}

/// 网上办理深度: the furthest step that can be done online.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OnlineDepth {
    /// Not handled online at all.
    None,
    /// 互联网咨询.
    Consultation,
    /// 收件.
    Submission,
    /// 预审.
    PreReview,
    /// 受理.
    Acceptance,
    /// 办理.
    Handling,
    /// 结果反馈.
    ResultOnline,
    /// 电子证照反馈.
    ElectronicCertificate,
}

/// A fee the law allows (§9.5.2): what, how much, and on what legal basis.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeLine {
    pub name: String,
    /// The published standard, e.g. "20元/证".
    pub standard: String,
    /// 收费依据.
    pub basis: String,
    /// The fixed amount of one charge in fen (分), when the standard is one: what a case's
    /// payment and exemption of this line may add up to (`domain::fee`). Absent for a
    /// standard a person reads (e.g. by area or a first issue free): any amount above zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<u64>,
}

/// One thing wrong with an item: where (the field's path, `materials[1].name`), what (a
/// stable code, worded under `err.CODE` in `web/i18n`, so an editor reads it in the page's
/// language), and the figures the words need. [`ItemProblem::english`] is for logs and
/// the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemProblem {
    pub field: String,
    pub code: &'static str,
    pub params: Vec<(&'static str, String)>,
}

/// Every problem code with its English words (`{name}` stands for a parameter); the
/// translation files word the same codes (a test in the node checks each is there).
pub const ITEM_PROBLEMS: &[(&str, &str)] = &[
    ("item_version_min", "version: must be 1 or more"),
    ("item_empty", "{field}: must not be empty"),
    ("item_too_long", "{field}: at most {max} characters"),
    ("item_length", "{field}: {min} to {max} characters"),
    ("item_service_objects", "service_objects: name at least one"),
    (
        "item_department_code",
        "decided_by: a department code, 1 to 32 letters, digits or '-'",
    ),
    (
        "item_legal_basis",
        "legal_basis: at least one law or regulation, each with a title (§9.1.2 设立依据)",
    ),
    (
        "item_conditions",
        "conditions: at least one, none empty (§9.1.2 办理条件)",
    ),
    (
        "item_place",
        "place: address and hours must be given (§9.1.2 办理场所)",
    ),
    (
        "item_process",
        "process: at least one named step (§9.1.2 办理过程)",
    ),
    (
        "item_list_empty",
        "{field}: at least one, none empty (§9.1.2)",
    ),
    (
        "item_committed_over_legal",
        "committed_limit_days: the committed limit may not exceed the legal limit (§7.5 承诺办结制度)",
    ),
    (
        "item_instant_limit",
        "committed_limit_days: must be 0 for an instant item (即办件)",
    ),
    (
        "item_committed_limit",
        "committed_limit_days: a committed item (承诺件) needs at least 1 working day",
    ),
    ("item_limit_max", "{field}: at most {max} working days"),
    ("item_yellow_percent", "yellow: a percentage must be 0-100"),
    ("item_materials", "materials: list at least one material"),
    ("item_twice", "{field}: {name} is listed twice"),
    (
        "item_steps_over_limit",
        "process: the steps take {total} working days together, more than the committed limit of {limit} (§7.5 承诺办结制度)",
    ),
    (
        "item_situation_empty",
        "{field} ({name}): a situation must add materials or leave some out",
    ),
    (
        "item_situation_adds_listed",
        "{field}: {name} is already in the list",
    ),
    (
        "item_situation_not_needed",
        "{field}: {name} is not one of the item's materials",
    ),
    (
        "item_fee_incomplete",
        "{field}: name and standard must be given",
    ),
    (
        "item_fee_basis",
        "{field} ({name}): a fee needs the law or regulation that allows it (§9.5)",
    ),
    (
        "item_material_copies",
        "{field} ({name}): ask for at least one original or copy",
    ),
    (
        "item_material_condition",
        "{field} ({name}): a conditional material must say when it is needed",
    ),
    (
        "item_material_issuer",
        "{field} ({name}): a material a government body issues must name the issuer",
    ),
    (
        "item_material_no_issuer",
        "{field} ({name}): only a material a government body issues names an issuer",
    ),
    (
        "item_material_paper",
        "{field} ({name}): an electronic material has no paper size",
    ),
    (
        "item_attachment",
        "{field}: must be the id of an attachment (a-…)",
    ),
    (
        "item_fee_amount",
        "{field} ({name}): an amount in fen must be above zero and at most {max}",
    ),
    (
        "item_parts_too_few",
        "parts: a combined item needs at least two parts",
    ),
    (
        "item_parts_department",
        "{field}: {code} is not a department code",
    ),
    (
        "item_parts_department_twice",
        "{field}: department {code} decides another part already",
    ),
    (
        "item_parts_limit",
        "{field}: its limit of {days} days is not 1 to the whole's {whole}",
    ),
    (
        "item_parts_decided_by_one",
        "decided_by: a combined item is decided by its parts' departments, not by one",
    ),
    (
        "item_parts_instant",
        "case_type: a combined item is a committed item (承诺件)",
    ),
    (
        super::text::Refused::CODE,
        "{field} contains the control or layout character {char}; type the text again without it",
    ),
];

impl ItemProblem {
    fn new(field: impl Into<String>, code: &'static str) -> ItemProblem {
        debug_assert!(ITEM_PROBLEMS.iter().any(|(c, _)| *c == code), "{code}");
        ItemProblem {
            field: field.into(),
            code,
            params: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl ToString) -> ItemProblem {
        self.params.push((name, value.to_string()));
        self
    }

    /// In English, for logs and the command line.
    pub fn english(&self) -> String {
        let template = ITEM_PROBLEMS
            .iter()
            .find(|(code, _)| *code == self.code)
            .map_or(self.code, |(_, words)| words);
        self.params.iter().fold(
            template.replace("{field}", &self.field),
            |text, (name, value)| text.replace(&format!("{{{name}}}"), value),
        )
    }
}

impl std::fmt::Display for ItemProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.english())
    }
}

/// Why an item is not acceptable; one entry per problem, each naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid item: {}", .problems.iter().map(ItemProblem::english).collect::<Vec<_>>().join("; "))]
pub struct ItemInvalid {
    pub problems: Vec<ItemProblem>,
}

impl Item {
    /// The document id of the item: fixed by its implementation code, which is unique
    /// nationally and never changes across versions.
    pub fn doc_id_for(impl_code: &ImplCode) -> crate::ids::DocId {
        crate::ids::DocId::parse(&format!("i-{}", impl_code.as_str().to_ascii_lowercase()))
            .expect("implementation codes are ASCII alphanumerics")
    }

    pub fn basic_code(&self) -> BasicCode {
        self.impl_code.basic()
    }

    pub fn level(&self) -> HandlingLevel {
        self.impl_code.level()
    }

    /// Checks every rule a published item must satisfy.
    pub fn validate(&self) -> Result<(), ItemInvalid> {
        type P = ItemProblem;
        let mut problems = Vec::new();
        let mut need = |ok: bool, problem: ItemProblem| {
            if !ok {
                problems.push(problem);
            }
        };
        let filled = |s: &str| !s.trim().is_empty();
        let all_filled = |v: &[String]| !v.is_empty() && v.iter().all(|s| filled(s));

        need(self.version >= 1, P::new("version", "item_version_min"));
        for (field, text) in [
            ("name", &self.name),
            ("category", &self.category),
            ("subject.name", &self.subject.name),
            ("remedies", &self.remedies),
            ("result", &self.result),
        ] {
            need(filled(text), P::new(field, "item_empty"));
        }
        need(
            self.name.chars().count() <= 200,
            P::new("name", "item_too_long").with("max", 200),
        );
        need(
            !self.service_objects.is_empty(),
            P::new("service_objects", "item_service_objects"),
        );
        need(
            self.decided_by
                .as_deref()
                .is_none_or(super::department::code_ok),
            P::new("decided_by", "item_department_code"),
        );
        need(
            !self.legal_basis.is_empty() && self.legal_basis.iter().all(|b| filled(&b.title)),
            P::new("legal_basis", "item_legal_basis"),
        );
        need(
            all_filled(&self.conditions),
            P::new("conditions", "item_conditions"),
        );
        need(
            filled(&self.place.address) && filled(&self.place.hours),
            P::new("place", "item_place"),
        );
        need(
            !self.process.is_empty() && self.process.iter().all(|s| filled(&s.name)),
            P::new("process", "item_process"),
        );
        for (field, list) in [
            ("query_channels", &self.query_channels),
            ("consultation", &self.consultation),
            ("complaint", &self.complaint),
        ] {
            need(all_filled(list), P::new(field, "item_list_empty"));
        }
        need(
            self.committed_limit_days <= self.legal_limit_days,
            P::new("committed_limit_days", "item_committed_over_legal"),
        );
        match self.case_type {
            CaseType::Instant => need(
                self.committed_limit_days == 0,
                P::new("committed_limit_days", "item_instant_limit"),
            ),
            CaseType::Committed => need(
                self.committed_limit_days >= 1,
                P::new("committed_limit_days", "item_committed_limit"),
            ),
        }
        for (field, days) in [
            ("legal_limit_days", self.legal_limit_days),
            ("legal_extension_days", self.legal_extension_days),
        ] {
            need(
                days <= 365,
                P::new(field, "item_limit_max").with("max", 365),
            );
        }
        if let YellowThreshold::PercentUsed(p) = self.yellow {
            need(p <= 100, P::new("yellow", "item_yellow_percent"));
        }
        need(
            !self.materials.is_empty(),
            P::new("materials", "item_materials"),
        );
        for (i, m) in self.materials.iter().enumerate() {
            let at = format!("materials[{i}]");
            material_problems(&at, m, &mut problems);
            if self.materials[..i].iter().any(|other| other.name == m.name) {
                problems.push(P::new(at, "item_twice").with("name", &m.name));
            }
        }
        for (i, form) in self.handling_forms.iter().enumerate() {
            if self.handling_forms[..i].contains(form) {
                problems.push(P::new("handling_forms", "item_twice").with("name", form.as_str()));
            }
        }
        self.step_problems(&mut problems);
        self.situation_problems(&mut problems);
        // 并联审批 (§7.5): the parts' own rule, as a code with its English words.
        if let Err(invalid) = super::combined::check_parts(self) {
            problems.push(parts_problem(&invalid));
        }
        for (i, p) in self.special_procedures.iter().enumerate() {
            if !filled(&p.name) {
                problems.push(P::new(
                    format!("special_procedures[{i}].name"),
                    "item_empty",
                ));
            }
        }
        for (i, fee) in self.fees.iter().enumerate() {
            let at = format!("fees[{i}]");
            if fee
                .amount_fen
                .is_some_and(|a| a == 0 || a > crate::domain::fee::MAX_FEN)
            {
                problems.push(
                    P::new(&at, "item_fee_amount")
                        .with("name", &fee.name)
                        .with("max", crate::domain::fee::MAX_FEN),
                );
            }
            if self.fees[..i].iter().any(|other| other.name == fee.name) {
                problems.push(P::new(&at, "item_twice").with("name", &fee.name));
            }
            if !filled(&fee.name) || !filled(&fee.standard) {
                problems.push(P::new(&at, "item_fee_incomplete"));
            }
            if !filled(&fee.basis) {
                problems.push(P::new(at, "item_fee_basis").with("name", &fee.name));
            }
        }
        if let Err(refused) = self.text_problems() {
            problems.push(
                P::new(refused.field, super::text::Refused::CODE)
                    .with("char", refused.code_point()),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ItemInvalid { problems })
        }
    }

    /// The steps' posts and durations: a step's 环节时限 is part of the committed limit,
    /// so the steps of an item together take at most that limit (SZDB/Z 176 §7.5: the
    /// actual time may not exceed the committed one; DOMAIN §6), and a 即办件's steps
    /// take no day at all.
    fn step_problems(&self, problems: &mut Vec<ItemProblem>) {
        for (i, step) in self.process.iter().enumerate() {
            if step.name.chars().count() > 100 {
                problems.push(
                    ItemProblem::new(format!("process[{i}].name"), "item_too_long")
                        .with("max", 100),
                );
            }
            if step
                .post
                .as_ref()
                .is_some_and(|post| post.trim().is_empty() || post.chars().count() > 50)
            {
                problems.push(
                    ItemProblem::new(format!("process[{i}].post"), "item_length")
                        .with("min", 1)
                        .with("max", 50),
                );
            }
        }
        let total: u64 = self
            .process
            .iter()
            .filter_map(|s| s.days)
            .map(u64::from)
            .sum();
        if total > u64::from(self.committed_limit_days) {
            problems.push(
                ItemProblem::new("process", "item_steps_over_limit")
                    .with("total", total)
                    .with("limit", self.committed_limit_days),
            );
        }
    }

    /// Situations: each named once, each changing the list, adding only new materials
    /// and leaving out only the item's own.
    fn situation_problems(&self, problems: &mut Vec<ItemProblem>) {
        type P = ItemProblem;
        for (i, situation) in self.situations.iter().enumerate() {
            let at = format!("situations[{i}]");
            if situation.name.trim().is_empty() || situation.name.chars().count() > 100 {
                problems.push(
                    P::new(format!("{at}.name"), "item_length")
                        .with("min", 1)
                        .with("max", 100),
                );
            }
            if self.situations[..i]
                .iter()
                .any(|s| s.name == situation.name)
            {
                problems.push(P::new(&at, "item_twice").with("name", &situation.name));
            }
            if situation.adds.is_empty() && situation.not_needed.is_empty() {
                problems.push(P::new(&at, "item_situation_empty").with("name", &situation.name));
            }
            for (j, m) in situation.adds.iter().enumerate() {
                material_problems(&format!("{at}.adds[{j}]"), m, problems);
                if self.materials.iter().any(|own| own.name == m.name)
                    || situation.adds[..j].iter().any(|other| other.name == m.name)
                {
                    problems.push(
                        P::new(format!("{at}.adds[{j}]"), "item_situation_adds_listed")
                            .with("name", &m.name),
                    );
                }
            }
            for (j, name) in situation.not_needed.iter().enumerate() {
                if !self.materials.iter().any(|own| &own.name == name) {
                    problems.push(
                        P::new(format!("{at}.not_needed[{j}]"), "item_situation_not_needed")
                            .with("name", name),
                    );
                }
            }
        }
    }

    /// The materials a case of this item needs in the chosen situations: the item's own,
    /// without those any chosen situation does not need, followed by what the chosen
    /// situations add (a material two situations add is listed once).
    ///
    /// Errs with the first name that is not one of the item's situations.
    pub fn materials_for(&self, chosen: &[String]) -> Result<Vec<Material>, String> {
        let mut situations = Vec::new();
        for name in chosen {
            let situation = self
                .situations
                .iter()
                .find(|s| &s.name == name)
                .ok_or_else(|| name.clone())?;
            situations.push(situation);
        }
        let mut materials: Vec<Material> = self
            .materials
            .iter()
            .filter(|m| !situations.iter().any(|s| s.not_needed.contains(&m.name)))
            .cloned()
            .collect();
        for added in situations.iter().flat_map(|s| &s.adds) {
            if !materials.iter().any(|m| m.name == added.name) {
                materials.push(added.clone());
            }
        }
        Ok(materials)
    }

    /// The text rule ([`text`](super::text)) for every field a guide prints: names and
    /// codes are one line, conditions, channels and notes may run over several.
    fn text_problems(&self) -> Result<(), super::text::Refused> {
        use super::text::{line, lines};
        line("name", &self.name)?;
        line("category", &self.category)?;
        line("subject.name", &self.subject.name)?;
        line(
            "delegated_by",
            self.delegated_by.as_deref().unwrap_or_default(),
        )?;
        for b in &self.legal_basis {
            line("legal_basis.title", &b.title)?;
            line("legal_basis.article", &b.article)?;
        }
        for c in &self.conditions {
            lines("conditions", c)?;
        }
        line("place.address", &self.place.address)?;
        lines("place.hours", &self.place.hours)?;
        for step in &self.process {
            line("process.name", &step.name)?;
            line("process.post", step.post.as_deref().unwrap_or_default())?;
        }
        for m in self
            .materials
            .iter()
            .chain(self.situations.iter().flat_map(|s| &s.adds))
        {
            line("materials.name", &m.name)?;
            lines(
                "materials.condition",
                m.condition.as_deref().unwrap_or_default(),
            )?;
            lines("materials.note", m.note.as_deref().unwrap_or_default())?;
            line("materials.issuer", m.issuer.as_deref().unwrap_or_default())?;
            line(
                "materials.paper_spec",
                m.paper_spec.as_deref().unwrap_or_default(),
            )?;
            lines(
                "materials.standard",
                m.standard.as_deref().unwrap_or_default(),
            )?;
        }
        for situation in &self.situations {
            line("situations.name", &situation.name)?;
            for name in &situation.not_needed {
                line("situations.not_needed", name)?;
            }
        }
        for p in &self.special_procedures {
            line("special_procedures.name", &p.name)?;
        }
        for fee in &self.fees {
            line("fees.name", &fee.name)?;
            line("fees.standard", &fee.standard)?;
            line("fees.basis", &fee.basis)?;
        }
        for (field, texts) in [
            ("query_channels", &self.query_channels),
            ("consultation", &self.consultation),
            ("complaint", &self.complaint),
        ] {
            for text in texts {
                lines(field, text)?;
            }
        }
        lines("remedies", &self.remedies)?;
        lines("result", &self.result)
    }

    /// Text of the fee element as a guide prints it: 不收费 when there is no fee line.
    pub fn fee_text(&self) -> String {
        if self.fees.is_empty() {
            "不收费".to_string()
        } else {
            self.fees
                .iter()
                .map(|f| format!("{}：{}（依据：{}）", f.name, f.standard, f.basis))
                .collect::<Vec<_>>()
                .join("；")
        }
    }

    /// Time-limit wording of a service guide: 即办 or 自受理之日起 N 个工作日办结 (DOMAIN §4).
    pub fn limit_text(&self) -> String {
        match self.case_type {
            CaseType::Instant => "即办".to_string(),
            CaseType::Committed => format!(
                "自受理之日起{}个工作日办结（法定时限{}个工作日）",
                self.committed_limit_days, self.legal_limit_days
            ),
        }
    }
}

/// A combined item's parts' problem (并联审批, §7.5) as one of the item's.
fn parts_problem(invalid: &super::combined::PartsInvalid) -> ItemProblem {
    use super::combined::PartsInvalid as E;
    let at = |index: &usize| format!("parts[{index}]");
    match invalid {
        E::TooFew => ItemProblem::new("parts", "item_parts_too_few"),
        E::BadDepartment { index, code } => {
            ItemProblem::new(at(index), "item_parts_department").with("code", code)
        }
        E::DepartmentTwice { index, code } => {
            ItemProblem::new(at(index), "item_parts_department_twice").with("code", code)
        }
        E::NoName { index } => ItemProblem::new(format!("parts[{index}].name"), "item_empty"),
        E::Limit { index, days, whole } => ItemProblem::new(at(index), "item_parts_limit")
            .with("days", days)
            .with("whole", whole),
        E::DecidedByOne => ItemProblem::new("decided_by", "item_parts_decided_by_one"),
        E::Instant => ItemProblem::new("case_type", "item_parts_instant"),
    }
}

/// The rules of one material, wherever it is listed (the item's own, or a situation's).
fn material_problems(at: &str, m: &Material, problems: &mut Vec<ItemProblem>) {
    type P = ItemProblem;
    let filled = |s: &str| !s.trim().is_empty();
    let named = |code| P::new(at, code).with("name", &m.name);
    if !filled(&m.name) {
        problems.push(P::new(format!("{at}.name"), "item_empty"));
    }
    if m.name.chars().count() > 200 {
        problems.push(P::new(format!("{at}.name"), "item_too_long").with("max", 200));
    }
    if m.originals == 0 && m.copies == 0 {
        problems.push(named("item_material_copies"));
    }
    if !m.required && m.condition.as_deref().is_none_or(|c| !filled(c)) {
        problems.push(named("item_material_condition"));
    }
    match (m.source, m.issuer.as_deref()) {
        (Some(MaterialSource::Government), issuer) if issuer.is_none_or(|i| !filled(i)) => {
            problems.push(named("item_material_issuer"));
        }
        (Some(MaterialSource::Applicant) | None, Some(_)) => {
            problems.push(named("item_material_no_issuer"));
        }
        _ => {}
    }
    if m.issuer.as_deref().is_some_and(|i| i.chars().count() > 100) {
        problems.push(P::new(format!("{at}.issuer"), "item_too_long").with("max", 100));
    }
    if m.paper_spec.is_some() && m.form == Some(MaterialForm::Electronic) {
        problems.push(named("item_material_paper"));
    }
    for (field, max, text) in [
        ("paper_spec", 50, &m.paper_spec),
        ("standard", 500, &m.standard),
    ] {
        if text
            .as_deref()
            .is_some_and(|p| !filled(p) || p.chars().count() > max)
        {
            problems.push(
                P::new(format!("{at}.{field}"), "item_length")
                    .with("min", 1)
                    .with("max", max),
            );
        }
    }
    for (field, id) in [("blank_form", &m.blank_form), ("sample", &m.sample)] {
        let is_attachment = |id: &str| {
            crate::ids::DocId::parse(id)
                .and_then(|id| crate::ids::DocKind::of_id(&id))
                .is_some_and(|kind| kind == crate::ids::DocKind::Attachment)
        };
        if id.as_deref().is_some_and(|id| !is_attachment(id)) {
            problems.push(P::new(format!("{at}.{field}"), "item_attachment"));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample_item() -> Item {
        Item {
            impl_code: ImplCode::parse("11440399990000017K4000599301000").unwrap(),
            version: 1,
            status: ItemStatus::Published,
            name: "最低生活保障申请".into(),
            kind: PowerKind::Payment,
            category: "社会救助".into(),
            subject: Subject {
                name: "示范区民政局".into(),
                nature: SubjectNature::StatutoryBody,
            },
            service_objects: vec![ServiceObject::NaturalPerson],
            legal_basis: vec![LegalBasis {
                title: "《社会救助暂行办法》".into(),
                article: "第十一条".into(),
            }],
            conditions: vec!["家庭人均收入低于当地最低生活保障标准".into()],
            place: Place {
                address: "示范社区党群服务中心".into(),
                hours: "周一至周五 9:00-12:00，14:00-18:00".into(),
            },
            process: vec![
                ProcessStep {
                    name: "社区代为申请".into(),
                    days: None,
                    post: None,
                },
                ProcessStep {
                    name: "区民政确认".into(),
                    days: Some(10),
                    post: Some("区民政局社会救助科".into()),
                },
            ],
            case_type: CaseType::Committed,
            legal_limit_days: 30,
            legal_extension_days: 15,
            committed_limit_days: 20,
            yellow: YellowThreshold::WorkingDaysBefore(3),
            materials: vec![
                Material {
                    name: "户口簿".into(),
                    originals: 1,
                    copies: 1,
                    required: true,
                    source: Some(MaterialSource::Government),
                    issuer: Some("公安机关".into()),
                    form: Some(MaterialForm::Paper),
                    paper_spec: Some("A4".into()),
                    ..Material::default()
                },
                Material {
                    name: "委托书".into(),
                    originals: 1,
                    copies: 0,
                    required: false,
                    condition: Some("代办时".into()),
                    ..Material::default()
                },
            ],
            special_procedures: vec![
                SpecialProcedure {
                    name: "公示".into(),
                    max_days: Some(7),
                    counted: false,
                },
                SpecialProcedure {
                    name: "专家评审".into(),
                    max_days: None,
                    counted: false,
                },
                SpecialProcedure {
                    name: "现场核查".into(),
                    max_days: Some(5),
                    counted: true,
                },
            ],
            online_depth: OnlineDepth::PreReview,
            fees: vec![],
            query_channels: vec!["窗口查询".into()],
            consultation: vec!["0755-12345678".into()],
            complaint: vec!["12345".into()],
            remedies: "可依法申请行政复议或提起行政诉讼".into(),
            result: "低保证".into(),
            visits: 1,
            delegated_by: None,
            effective_date: None,
            handling_forms: vec![HandlingForm::Window, HandlingForm::Online],
            booking: true,
            situations: vec![Situation {
                name: "申请人为残疾人".into(),
                adds: vec![Material {
                    name: "残疾人证".into(),
                    originals: 1,
                    copies: 1,
                    required: true,
                    source: Some(MaterialSource::Government),
                    issuer: Some("区残疾人联合会".into()),
                    ..Material::default()
                }],
                not_needed: vec![],
            }],
            decided_by: None,
            parts: Vec::new(),
        }
    }

    #[test]
    fn sample_is_valid_and_worded() {
        let item = sample_item();
        item.validate().unwrap();
        assert_eq!(item.fee_text(), "不收费");
        assert_eq!(
            item.limit_text(),
            "自受理之日起20个工作日办结（法定时限30个工作日）"
        );
        assert_eq!(item.level(), HandlingLevel::District);
        assert_eq!(
            Item::doc_id_for(&item.impl_code).as_str(),
            "i-11440399990000017k4000599301000"
        );
    }

    #[test]
    fn validation_table() {
        type Edit = fn(&mut Item);
        let table: &[(&str, Edit, &str)] = &[
            (
                "committed above legal",
                |i| i.committed_limit_days = 31,
                "may not exceed the legal limit",
            ),
            (
                "instant with a committed limit",
                |i| i.case_type = CaseType::Instant,
                "must be 0 for an instant",
            ),
            (
                "committed with zero days",
                |i| i.committed_limit_days = 0,
                "at least 1 working day",
            ),
            ("no legal basis", |i| i.legal_basis.clear(), "legal_basis"),
            (
                "empty name",
                |i| i.name = " ".into(),
                "name: must not be empty",
            ),
            ("no conditions", |i| i.conditions.clear(), "conditions"),
            ("no place", |i| i.place.address.clear(), "place"),
            ("no process", |i| i.process.clear(), "process"),
            (
                "no query channel",
                |i| i.query_channels.clear(),
                "query_channels",
            ),
            (
                "no complaint channel",
                |i| i.complaint = vec!["".into()],
                "complaint",
            ),
            (
                "fee without basis",
                |i| {
                    i.fees.push(FeeLine {
                        name: "工本费".into(),
                        standard: "20元".into(),
                        basis: "".into(),
                        amount_fen: None,
                    })
                },
                "needs the law",
            ),
            (
                "conditional without condition",
                |i| i.materials[1].condition = None,
                "say when it is needed",
            ),
            (
                "material with nothing to bring",
                |i| {
                    i.materials[0].originals = 0;
                    i.materials[0].copies = 0
                },
                "at least one original or copy",
            ),
            (
                "duplicate material",
                |i| {
                    let m = i.materials[0].clone();
                    i.materials.push(m)
                },
                "listed twice",
            ),
            (
                "percentage over 100",
                |i| i.yellow = YellowThreshold::PercentUsed(120),
                "0-100",
            ),
            ("version zero", |i| i.version = 0, "version"),
            (
                "steps longer than the committed limit",
                |i| i.process[0].days = Some(11),
                "the steps take 21 working days together, more than the committed limit of 20",
            ),
            (
                "a step of an instant item that takes a day",
                |i| {
                    i.case_type = CaseType::Instant;
                    i.committed_limit_days = 0;
                    i.process[1].days = Some(1)
                },
                "more than the committed limit of 0",
            ),
            (
                "an empty post",
                |i| i.process[1].post = Some(" ".into()),
                "process[1].post",
            ),
            (
                "a handling form twice",
                |i| i.handling_forms.push(HandlingForm::Window),
                "handling_forms: window is listed twice",
            ),
            (
                "a government material without its issuer",
                |i| i.materials[0].issuer = None,
                "must name the issuer",
            ),
            (
                "an applicant's material with an issuer",
                |i| i.materials[1].issuer = Some("公安机关".into()),
                "only a material a government body issues names an issuer",
            ),
            (
                "an electronic material with a paper size",
                |i| i.materials[0].form = Some(MaterialForm::Electronic),
                "an electronic material has no paper size",
            ),
            (
                "a blank form that is not an attachment",
                |i| i.materials[0].blank_form = Some("i-11440399".into()),
                "materials[0].blank_form: must be the id of an attachment",
            ),
            (
                "an empty acceptance standard",
                |i| i.materials[0].standard = Some("".into()),
                "materials[0].standard",
            ),
            (
                "a situation twice",
                |i| {
                    let s = i.situations[0].clone();
                    i.situations.push(s)
                },
                "situations[1]: 申请人为残疾人 is listed twice",
            ),
            (
                "a situation that changes nothing",
                |i| i.situations[0].adds.clear(),
                "must add materials or leave some out",
            ),
            (
                "a situation adding a material the item has",
                |i| i.situations[0].adds[0].name = "户口簿".into(),
                "situations[0].adds[0]: 户口簿 is already in the list",
            ),
            (
                "a situation leaving out what the item lacks",
                |i| i.situations[0].not_needed.push("房产证".into()),
                "situations[0].not_needed[0]: 房产证 is not one of the item's materials",
            ),
            (
                "a situation's material without copies",
                |i| {
                    i.situations[0].adds[0].originals = 0;
                    i.situations[0].adds[0].copies = 0
                },
                "situations[0].adds[0] (残疾人证): ask for at least one original or copy",
            ),
            (
                "a situation without a name",
                |i| i.situations[0].name = "".into(),
                "situations[0].name",
            ),
            (
                "an override in a situation's name",
                |i| i.situations[0].name = "残疾\u{202E}".into(),
                "situations.name contains the control or layout character U+202E",
            ),
            (
                "an override in the name",
                |i| i.name = "低保\u{202E}请申".into(),
                "name contains the control or layout character U+202E",
            ),
            (
                "a line break in a material's name",
                |i| i.materials[0].name = "户口簿\n".into(),
                "materials.name contains the control or layout character U+000A",
            ),
            (
                "an escape in the result",
                |i| i.result = "\u{1b}[2J".into(),
                "result contains the control or layout character U+001B",
            ),
        ];
        for (why, edit, needle) in table {
            let mut item = sample_item();
            edit(&mut item);
            let err = item.validate().expect_err(why);
            assert!(err.to_string().contains(needle), "{why}: {err}");
            // Every problem is a known code with each of its words' figures given.
            for problem in &err.problems {
                assert!(
                    ITEM_PROBLEMS.iter().any(|(code, _)| *code == problem.code),
                    "{problem:?}"
                );
                assert!(!problem.english().contains('{'), "{why}: {problem}");
            }
        }
    }

    #[test]
    fn situations_change_the_material_list() {
        let mut item = sample_item();
        item.situations.push(Situation {
            name: "本人办理".into(),
            adds: vec![],
            not_needed: vec!["委托书".into()],
        });
        item.validate().unwrap();
        let names = |chosen: &[&str]| {
            let chosen: Vec<String> = chosen.iter().map(|s| s.to_string()).collect();
            item.materials_for(&chosen)
                .map(|ms| ms.into_iter().map(|m| m.name).collect::<Vec<_>>())
        };
        assert_eq!(names(&[]).unwrap(), ["户口簿", "委托书"]);
        assert_eq!(
            names(&["申请人为残疾人"]).unwrap(),
            ["户口簿", "委托书", "残疾人证"]
        );
        assert_eq!(
            names(&["本人办理", "申请人为残疾人"]).unwrap(),
            ["户口簿", "残疾人证"]
        );
        assert_eq!(names(&["没有的情形"]), Err("没有的情形".to_string()));
    }

    #[test]
    fn fee_with_basis_is_printed() {
        let mut item = sample_item();
        item.fees.push(FeeLine {
            name: "工本费".into(),
            standard: "20元/证".into(),
            basis: "《居住证暂行条例》第十五条".into(),
            amount_fen: Some(2000),
        });
        item.validate().unwrap();
        assert_eq!(
            item.fee_text(),
            "工本费：20元/证（依据：《居住证暂行条例》第十五条）"
        );
    }

    #[test]
    fn kinds_on_application() {
        let counter: Vec<_> = PowerKind::ALL
            .iter()
            .filter(|k| k.on_application())
            .map(|k| k.code())
            .collect();
        assert_eq!(counter, ["01", "05", "07", "08", "09", "10", "20"]);
    }

    #[test]
    fn json_round_trip_rejects_unknown_fields() {
        let item = sample_item();
        let json = serde_json::to_value(&item).unwrap();
        let back: Item = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, item);
        let mut extra = json;
        extra["colour"] = "red".into();
        let err = serde_json::from_value::<Item>(extra).unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    }
}
