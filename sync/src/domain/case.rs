//! Cases (办件): the intake written once at submission and an append-only list of events.
//!
//! The status of a case is never stored as a field that nodes could overwrite; it is
//! [`derive`]d from the set of events by one deterministic function, so every node holding
//! the same events shows the same status (DESIGN §6). Events are ordered by their hybrid
//! logical clock time and then by node id. An event that the state machine does not allow
//! at its place in that order can only come from two nodes acting concurrently (each node
//! checks its own events with [`validate`] before writing them); it is kept, listed in
//! [`CaseState::conflicts`], and the case is flagged for a person — never dropped.

use std::fmt;

use super::calendar::{
    Calendar, Date, DateSpan, Deadlines, Limits, StepDeadline, WarningLevel, YellowThreshold,
};
use super::codes::{CreditCode, DivisionCode, ImplCode, ResidentId};
use super::fee::{self, CaseFees, FeeRefused, PayMethod};
use super::hlc::Hlc;
use super::item::{CaseType, FeeLine, Item, ItemStatus, ServiceObject};
use super::serial::SerialNo;
use super::text;
use crate::ids::{DocId, NodeId};

/// What a case keeps of its item, frozen at submission (DOMAIN §11): later catalog changes
/// never alter the limits or materials a case was accepted under.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ItemSnapshot {
    pub impl_code: ImplCode,
    pub version: u32,
    pub name: String,
    pub case_type: CaseType,
    pub committed_limit_days: u32,
    pub legal_limit_days: u32,
    pub legal_extension_days: u32,
    pub yellow: YellowThreshold,
    pub materials: Vec<MaterialRule>,
    /// The special procedures (特别程序) the item allows and whether their time counts.
    #[serde(default)]
    pub special_procedures: Vec<ProcedureRule>,
    /// The department the item's acceptance is delegated by (§5.5.2 代为受理), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_by: Option<String>,
    /// The names of the item's situations (情形) in this version, so every receiver can
    /// check the ones an intake chose; `materials` is already the list of those chosen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub situations: Vec<String>,
    /// The department that decides (§5.7.2), when the item names one: its code, name and
    /// hall, resolved at intake ([`Intake::with_decider`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<crate::domain::department::Decider>,
    /// The item's process steps with their limits and posts (办理流程, SZDB/Z 176 §9.2.2),
    /// frozen so a later catalog change never moves a running case's step limits. Empty
    /// in cases received before steps were kept, and for items that list none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRule>,
    /// The parts of a combined item (并联审批, §7.5), their departments resolved at intake
    /// ([`Intake::with_parts`]); a sub-case keeps them too, so its binding is checked
    /// from its own intake (`domain::combined`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<crate::domain::combined::PartSnapshot>,
    /// The fee lines of the item version (§9.5.2), so a case charges what its version
    /// said whatever the catalog says later; none (不收费) in cases written before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fees: Vec<FeeLine>,
}

/// A process step of the item a case was received under (环节, DOMAIN §4 Process).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepRule {
    pub name: String,
    /// The step's own limit in working days (环节时限); none when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// 责任岗位: the post that carries the step out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<String>,
}

/// A special procedure of the item.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcedureRule {
    pub name: String,
    /// Whether its time counts toward the limits (是否计算在法定办结时限内); only procedures
    /// that do not count suspend a case.
    pub counted: bool,
    /// Longest the procedure may stop the clock, in calendar days; time beyond it counts.
    #[serde(default)]
    pub max_days: Option<u32>,
}

/// A material the item asks for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaterialRule {
    pub name: String,
    pub originals: u32,
    pub copies: u32,
    pub required: bool,
}

impl ItemSnapshot {
    /// The snapshot of an item for an application in no particular situation.
    pub fn of(item: &Item) -> ItemSnapshot {
        ItemSnapshot::in_situations(item, &item.materials)
    }

    /// The snapshot of an item whose materials are those of the chosen situations
    /// ([`Item::materials_for`]).
    fn in_situations(item: &Item, materials: &[crate::domain::item::Material]) -> ItemSnapshot {
        ItemSnapshot {
            impl_code: item.impl_code.clone(),
            version: item.version,
            name: item.name.clone(),
            case_type: item.case_type,
            committed_limit_days: item.committed_limit_days,
            legal_limit_days: item.legal_limit_days,
            legal_extension_days: item.legal_extension_days,
            yellow: item.yellow,
            materials: materials
                .iter()
                .map(|m| MaterialRule {
                    name: m.name.clone(),
                    originals: m.originals,
                    copies: m.copies,
                    required: m.required,
                })
                .collect(),
            special_procedures: item
                .special_procedures
                .iter()
                .map(|p| ProcedureRule {
                    name: p.name.clone(),
                    counted: p.counted,
                    max_days: p.max_days,
                })
                .collect(),
            delegated_by: item.delegated_by.clone(),
            situations: item.situations.iter().map(|s| s.name.clone()).collect(),
            decided_by: None,
            steps: item
                .process
                .iter()
                .map(|p| StepRule {
                    name: p.name.clone(),
                    days: p.days,
                    post: p.post.clone(),
                })
                .collect(),
            parts: Vec::new(),
            fees: item.fees.clone(),
        }
    }

    /// The special procedure of this name, if the item has it.
    pub fn procedure(&self, name: &str) -> Option<&ProcedureRule> {
        self.special_procedures
            .iter()
            .find(|p| p.name == name.trim())
    }

    pub fn limits(&self) -> Limits {
        Limits {
            committed_days: self.committed_limit_days,
            legal_days: self.legal_limit_days,
            yellow: self.yellow,
        }
    }
}

/// 申请人: a natural person or a legal person (服务对象, §3.3).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Applicant {
    NaturalPerson {
        name: String,
        id_number: ResidentId,
        phone: Phone,
    },
    LegalPerson {
        name: String,
        credit_code: CreditCode,
        contact_name: String,
        phone: Phone,
    },
}

impl Applicant {
    pub fn name(&self) -> &str {
        match self {
            Applicant::NaturalPerson { name, .. } | Applicant::LegalPerson { name, .. } => name,
        }
    }

    pub fn phone(&self) -> &Phone {
        match self {
            Applicant::NaturalPerson { phone, .. } | Applicant::LegalPerson { phone, .. } => phone,
        }
    }

    /// The identity number as lists show it: masked for people, in full for organisations
    /// (a credit code is public).
    pub fn id_masked(&self) -> String {
        match self {
            Applicant::NaturalPerson { id_number, .. } => id_number.masked(),
            Applicant::LegalPerson { credit_code, .. } => credit_code.to_string(),
        }
    }
}

impl fmt::Debug for Applicant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print personal data in logs or panics.
        write!(
            f,
            "Applicant({} …{})",
            self.id_masked(),
            self.phone().tail()
        )
    }
}

/// 代理人 who applies on the applicant's behalf.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Agent {
    pub name: String,
    pub id_number: ResidentId,
    pub phone: Phone,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Agent({})", self.id_number.masked())
    }
}

/// A telephone number: a mainland mobile (11 digits) or a landline with area code.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(s: &str) -> Result<Phone, CaseError> {
        let s = s.trim();
        let digits = s.bytes().filter(u8::is_ascii_digit).count();
        let ok = (7..=20).contains(&s.len())
            && (7..=15).contains(&digits)
            && s.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_digit() || b == b'-' || b == b' ' || (i == 0 && b == b'+')
            });
        if ok {
            Ok(Phone(s.to_string()))
        } else {
            Err(CaseError::Invalid {
                field: "phone",
                rule: Rule::Phone,
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last four digits, which an applicant types to look up a case.
    pub fn tail(&self) -> String {
        let digits: Vec<u8> = self.0.bytes().filter(u8::is_ascii_digit).collect();
        String::from_utf8_lossy(&digits[digits.len().saturating_sub(4)..]).into_owned()
    }
}

impl serde::Serialize for Phone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Phone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Phone, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Phone::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone(…{})", self.tail())
    }
}

/// How much of one material was handed in.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaterialReceived {
    pub name: String,
    pub originals: u32,
    pub copies: u32,
}

/// What was recorded when the application was received (收件).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Intake {
    pub item: ItemSnapshot,
    pub applicant: Applicant,
    #[serde(default)]
    pub agent: Option<Agent>,
    pub materials: Vec<MaterialReceived>,
    /// 窗口 where it was received.
    pub counter: String,
    /// Username of the worker who received it.
    pub staff: String,
    /// Node and division that received it; the case belongs to this division's scope.
    pub node: NodeId,
    pub division: DivisionCode,
    pub submitted_at: Hlc,
    #[serde(default)]
    pub note: String,
    /// The item's situations (情形) chosen at intake (DOMAIN §11: a case freezes its item,
    /// version and situation); the snapshot's materials are theirs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub situations: Vec<String>,
    /// For a sub-case of a combined item (并联审批, §7.5): its parent and part; fixed at
    /// creation like the rest of the intake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_of: Option<crate::domain::combined::PartOf>,
}

/// Everything needed to receive an application, before it has a time and a node.
#[derive(Clone, Debug)]
pub struct NewCase {
    /// The item's situations (情形) that apply, chosen by the counter; none for the
    /// item's own list.
    pub situations: Vec<String>,
    pub applicant: Applicant,
    pub agent: Option<Agent>,
    pub materials: Vec<MaterialReceived>,
    pub counter: String,
    pub note: String,
}

impl Intake {
    /// Freezes the department that decides the case (§5.7.2), when the item names one:
    /// `department` is the one of that code this node knows (the nearest hall's).
    pub fn with_decider(
        mut self,
        item: &Item,
        department: Option<&crate::domain::department::Department>,
    ) -> Result<Intake, CaseError> {
        self.item.decided_by = match (&item.decided_by, department) {
            (None, _) => None,
            (Some(code), Some(d)) if d.code.eq_ignore_ascii_case(code) => Some(d.decider()),
            (Some(code), _) => {
                return Err(CaseError::UnknownDecidingDepartment { code: code.clone() });
            }
        };
        Ok(self)
    }

    /// Freezes a combined item's parts (并联审批, §7.5) with their departments (`find`:
    /// the department of a code this node knows) and the whole's limits (行政许可法 §26:
    /// 45 working days, +15, unless the item says less).
    pub fn with_parts(
        mut self,
        item: &Item,
        find: impl Fn(&str) -> Option<crate::domain::department::Department>,
    ) -> Result<Intake, CaseError> {
        if item.parts.is_empty() {
            return Ok(self);
        }
        let whole = crate::domain::combined::whole_limits(
            item.committed_limit_days,
            item.legal_limit_days,
            item.legal_extension_days,
        );
        self.item.committed_limit_days = whole.committed_days;
        self.item.legal_limit_days = whole.legal_days;
        self.item.legal_extension_days = whole.extension_days;
        self.item.parts = item
            .parts
            .iter()
            .map(|part| {
                let department = find(&part.department)
                    .filter(|d| d.code.eq_ignore_ascii_case(&part.department))
                    .ok_or_else(|| CaseError::UnknownDecidingDepartment {
                        code: part.department.clone(),
                    })?;
                Ok(crate::domain::combined::PartSnapshot {
                    decider: department.decider(),
                    name: part.name.clone(),
                    limit_days: crate::domain::combined::part_limits(whole, part.limit_days)
                        .legal_days,
                })
            })
            .collect::<Result<_, CaseError>>()?;
        Ok(self)
    }

    /// Checks an application against the item and builds its intake.
    pub fn new(
        item: &Item,
        new: NewCase,
        staff: &str,
        node: NodeId,
        division: DivisionCode,
        submitted_at: Hlc,
    ) -> Result<Intake, CaseError> {
        if item.status == ItemStatus::Cancelled {
            return Err(CaseError::ItemCancelled {
                name: item.name.clone(),
            });
        }
        // A new item is taken only from its effective date (生效日期), on the day the
        // application is received, in China time.
        if let Some(date) = item.effective_date
            && crate::domain::calendar::Date::from_unix_ms_cst(submitted_at.unix_ms() as i64) < date
        {
            return Err(CaseError::NotYetEffective {
                name: item.name.clone(),
                date: date.to_string(),
            });
        }
        if !item.kind.on_application() {
            return Err(CaseError::NotOnApplication {
                name: item.name.clone(),
                kind: item.kind.zh(),
            });
        }
        let wanted = match &new.applicant {
            Applicant::NaturalPerson { .. } => ServiceObject::NaturalPerson,
            Applicant::LegalPerson { .. } => ServiceObject::LegalPerson,
        };
        if !item.service_objects.contains(&wanted) {
            return Err(CaseError::WrongApplicant {
                applicant: wanted,
                serves: item.service_objects.clone(),
            });
        }
        let name_ok = |s: &str| !s.trim().is_empty() && s.chars().count() <= 100;
        if !name_ok(new.applicant.name()) {
            return Err(CaseError::Invalid {
                field: "applicant.name",
                rule: Rule::Name,
            });
        }
        if let Applicant::LegalPerson { contact_name, .. } = &new.applicant
            && !name_ok(contact_name)
        {
            return Err(CaseError::Invalid {
                field: "applicant.contact_name",
                rule: Rule::ContactName,
            });
        }
        if let Some(agent) = &new.agent
            && !name_ok(&agent.name)
        {
            return Err(CaseError::Invalid {
                field: "agent.name",
                rule: Rule::Name,
            });
        }
        if new.counter.chars().count() > 40 || new.note.chars().count() > 2000 {
            return Err(CaseError::Invalid {
                field: "counter",
                rule: Rule::CounterAndNote,
            });
        }
        check_intake_texts(&new)?;
        check_situations(
            &new.situations,
            item.situations.iter().map(|s| s.name.as_str()),
        )?;
        let materials = item
            .materials_for(&new.situations)
            .map_err(|name| CaseError::UnknownSituation { name })?;
        let snapshot = ItemSnapshot::in_situations(item, &materials);
        let known: Vec<&str> = snapshot.materials.iter().map(|m| m.name.as_str()).collect();
        check_materials(&known, &new.materials)?;
        Ok(Intake {
            item: snapshot,
            situations: new.situations,
            applicant: new.applicant,
            agent: new.agent,
            materials: new.materials,
            counter: new.counter,
            staff: staff.to_string(),
            node,
            division,
            submitted_at,
            note: new.note,
            part_of: None,
        })
    }

    /// The document id of the case: its submission time and node, unique because a node's
    /// clock never issues the same time twice.
    pub fn doc_id(&self) -> DocId {
        DocId::parse(&format!(
            "c-{}-{}",
            self.submitted_at.to_hex(),
            self.node.to_hex()
        ))
        .expect("hex is a valid id")
    }
}

/// The text rule ([`text`]) for everything typed at intake.
fn check_intake_texts(new: &NewCase) -> Result<(), text::Refused> {
    check_typed_at_intake(
        &new.applicant,
        new.agent.as_ref(),
        &new.materials,
        &new.counter,
        &new.note,
    )
}

fn check_typed_at_intake(
    applicant: &Applicant,
    agent: Option<&Agent>,
    materials: &[MaterialReceived],
    counter: &str,
    note: &str,
) -> Result<(), text::Refused> {
    text::line("applicant.name", applicant.name())?;
    if let Applicant::LegalPerson { contact_name, .. } = applicant {
        text::line("applicant.contact_name", contact_name)?;
    }
    if let Some(agent) = agent {
        text::line("agent.name", &agent.name)?;
    }
    for m in materials {
        text::line("materials.name", &m.name)?;
    }
    text::line("counter", counter)?;
    text::lines("note", note)
}

/// The text rule for an intake another node wrote: every receiver checks what people
/// typed elsewhere, as the node that took it should have (a hostile or older node may
/// not have).
pub fn check_received_intake(intake: &Intake) -> Result<(), text::Refused> {
    check_typed_at_intake(
        &intake.applicant,
        intake.agent.as_ref(),
        &intake.materials,
        &intake.counter,
        &intake.note,
    )?;
    for name in &intake.situations {
        text::line("situations", name)?;
    }
    text::line("staff", &intake.staff)
}

/// The situations an intake chose must be the item's, each once: asked where the intake
/// is made, of the item, and by every receiver, of the item version the intake names
/// (its snapshot), which is what a receiver can know of the item.
pub fn check_situations<'a>(
    chosen: &[String],
    known: impl Iterator<Item = &'a str> + Clone,
) -> Result<(), CaseError> {
    for (i, name) in chosen.iter().enumerate() {
        if !known.clone().any(|k| k == name) {
            return Err(CaseError::UnknownSituation { name: name.clone() });
        }
        if chosen[..i].contains(name) {
            return Err(CaseError::Invalid {
                field: "situations",
                rule: Rule::SituationsOnce,
            });
        }
    }
    Ok(())
}

/// The text rule for an event another node recorded: its action's texts, and the staff
/// member and counter it names.
pub fn check_received_event(event: &Event) -> Result<(), text::Refused> {
    text::line("staff", &event.staff)?;
    text::line("counter", &event.counter)?;
    check_action_texts(&event.action)
}

fn check_materials(known: &[&str], received: &[MaterialReceived]) -> Result<(), CaseError> {
    for (i, m) in received.iter().enumerate() {
        if !known.contains(&m.name.as_str()) {
            return Err(CaseError::UnknownMaterial {
                name: m.name.clone(),
            });
        }
        if received[..i].iter().any(|other| other.name == m.name) {
            return Err(CaseError::Invalid {
                field: "materials",
                rule: Rule::MaterialsOnce,
            });
        }
        if m.originals > 99 || m.copies > 99 {
            return Err(CaseError::Invalid {
                field: "materials",
                rule: Rule::MaterialCounts,
            });
        }
    }
    Ok(())
}

/// A material the one-time notice (一次性告知) asks for, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MissingMaterial {
    pub name: String,
    pub reason: String,
}

/// What happened to a case. Each variant records a person's decision with what the law
/// requires written down with it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// 一次性告知补正: the application lacks materials; the applicant is told all of them
    /// at once (§7.5 一次性告知制度).
    NotifyMissing {
        missing: Vec<MissingMaterial>,
        #[serde(default)]
        note: String,
    },
    /// 补正: materials handed in later.
    Supplement { materials: Vec<MaterialReceived> },
    /// 受理, with the serial number issued (§8.5) and the calendar the limits count on.
    Accept {
        serial_no: SerialNo,
        calendar: String,
    },
    /// 不予受理: written reason, legal basis and remedies (§7.5, 行政许可法 §32, §38).
    Refuse {
        reason: String,
        basis: String,
        remedies: String,
        /// Where to apply instead, when the item is outside this office's competence.
        #[serde(default)]
        competent_authority: Option<String>,
    },
    /// 特别程序开始: the clock stops.
    Suspend { procedure: String, reason: String },
    /// 特别程序结束: the clock runs again.
    Resume {
        #[serde(default)]
        note: String,
    },
    /// 延期: both limits grow, within what the law allows. Recorded by a lead (行政许可法
    /// §42: 经本行政机关负责人批准), approving a worker's [`Action::RequestExtension`]
    /// when `request` names it.
    Extend {
        days: u32,
        reason: String,
        /// The id of the request this extension approves, if it approves one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
    /// A worker asks the lead to extend the limits (延期申请); nothing moves until a lead
    /// approves it with [`Action::Extend`] or declines it.
    RequestExtension { days: u32, reason: String },
    /// A lead declines the pending extension request, with the reason.
    DeclineExtension { reason: String },
    /// 决定: approval, or denial with reason, basis and remedies.
    Decide {
        approved: bool,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        basis: String,
        #[serde(default)]
        remedies: String,
        /// The department (without a node of its own) whose decision this is, entered
        /// by the node it sent the case back through (代录部门决定).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<String>,
    },
    /// 办结, with the result and how it reached the applicant (送达).
    Complete { result: String, delivery: String },
    /// 撤回 at the applicant's request.
    Withdraw { reason: String },
    /// 转办 (§5.5.4): the case is handed to another office to handle — a department, or
    /// a hall above the station. The status does not change and the time limits keep
    /// running; the case now lies with `to`.
    Transfer {
        to: String,
        reason: String,
        /// The node of the hall the case went to, when it went to one: only that node
        /// signs for it. `None` for a department without a node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_node: Option<NodeId>,
    },
    /// 签收: the office a case was transferred to confirms it has taken it in.
    SignFor {
        #[serde(default)]
        note: String,
        /// The department (without a node of its own) this signature is recorded for, by
        /// the node that sent the case there (代为签收).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<String>,
    },
    /// A lead's resolution of concurrent incompatible events: the events named in `void`
    /// no longer count, with the reason on record. Syncs like any other event. `keep`
    /// names the sides chosen, so a later resolution made elsewhere that voids one of
    /// them does not apply (the first decision stands).
    Resolve {
        void: Vec<String>,
        reason: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keep: Vec<String>,
    },
    /// 好差评 (§8.7; 国办发〔2019〕51号): the applicant's rating, 5 = 非常满意 … 1 = 非常
    /// 不满意. The two lowest levels are 差评 and open a rectification due
    /// `rectify_days` working days later (the node's setting when the rating was given,
    /// so every node derives the same deadline).
    Rate {
        level: u8,
        #[serde(default)]
        comment: String,
        #[serde(default)]
        rectify_days: u32,
    },
    /// 整改: the written response that closes the rectification a bad rating opened.
    Rectify { response: String },
    /// 环节办结 (SZDB/Z 176 §9.2.2 办理流程, §10.2 全过程跟踪): step `step` (counted from 1,
    /// of the item snapshot's steps) is finished, and the next one starts the same day.
    /// The first step starts with the acceptance; steps finish in order, one at a time.
    FinishStep {
        step: u32,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        note: String,
    },
    /// 收费 (§9.5.2): a payment of one of the item's fee lines, in fen, how it was paid
    /// and the number of the finance department's receipt (票据) handed over. Rules in
    /// [`fee`].
    Pay {
        fee: String,
        amount_fen: u64,
        method: PayMethod,
        receipt: String,
    },
    /// 减免: part or all of a fee line waived, with the reason and the policy it rests on.
    Exempt {
        fee: String,
        amount_fen: u64,
        reason: String,
        basis: String,
    },
}

/// The kind of an [`Action`], without its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    NotifyMissing,
    Supplement,
    Accept,
    Refuse,
    Suspend,
    Resume,
    Extend,
    RequestExtension,
    DeclineExtension,
    Decide,
    Complete,
    Withdraw,
    Transfer,
    SignFor,
    Resolve,
    Rate,
    Rectify,
    FinishStep,
    Pay,
    Exempt,
}

impl ActionKind {
    pub const ALL: [ActionKind; 20] = [
        ActionKind::NotifyMissing,
        ActionKind::Supplement,
        ActionKind::Accept,
        ActionKind::Refuse,
        ActionKind::Suspend,
        ActionKind::Resume,
        ActionKind::Extend,
        ActionKind::RequestExtension,
        ActionKind::DeclineExtension,
        ActionKind::Decide,
        ActionKind::Complete,
        ActionKind::Withdraw,
        ActionKind::Transfer,
        ActionKind::SignFor,
        ActionKind::Resolve,
        ActionKind::Rate,
        ActionKind::Rectify,
        ActionKind::FinishStep,
        ActionKind::Pay,
        ActionKind::Exempt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::NotifyMissing => "notify_missing",
            ActionKind::Supplement => "supplement",
            ActionKind::Accept => "accept",
            ActionKind::Refuse => "refuse",
            ActionKind::Suspend => "suspend",
            ActionKind::Resume => "resume",
            ActionKind::Extend => "extend",
            ActionKind::RequestExtension => "request_extension",
            ActionKind::DeclineExtension => "decline_extension",
            ActionKind::Decide => "decide",
            ActionKind::Complete => "complete",
            ActionKind::Withdraw => "withdraw",
            ActionKind::Transfer => "transfer",
            ActionKind::SignFor => "sign_for",
            ActionKind::Resolve => "resolve",
            ActionKind::Rate => "rate",
            ActionKind::Rectify => "rectify",
            ActionKind::FinishStep => "finish_step",
            ActionKind::Pay => "pay",
            ActionKind::Exempt => "exempt",
        }
    }

    pub fn parse(s: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::NotifyMissing { .. } => ActionKind::NotifyMissing,
            Action::Supplement { .. } => ActionKind::Supplement,
            Action::Accept { .. } => ActionKind::Accept,
            Action::Refuse { .. } => ActionKind::Refuse,
            Action::Suspend { .. } => ActionKind::Suspend,
            Action::Resume { .. } => ActionKind::Resume,
            Action::Extend { .. } => ActionKind::Extend,
            Action::RequestExtension { .. } => ActionKind::RequestExtension,
            Action::DeclineExtension { .. } => ActionKind::DeclineExtension,
            Action::Decide { .. } => ActionKind::Decide,
            Action::Complete { .. } => ActionKind::Complete,
            Action::Withdraw { .. } => ActionKind::Withdraw,
            Action::Transfer { .. } => ActionKind::Transfer,
            Action::SignFor { .. } => ActionKind::SignFor,
            Action::Resolve { .. } => ActionKind::Resolve,
            Action::Rate { .. } => ActionKind::Rate,
            Action::Rectify { .. } => ActionKind::Rectify,
            Action::FinishStep { .. } => ActionKind::FinishStep,
            Action::Pay { .. } => ActionKind::Pay,
            Action::Exempt { .. } => ActionKind::Exempt,
        }
    }
}

/// One event on a case: what, when (HLC), where (node) and who (staff).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub at: Hlc,
    pub node: NodeId,
    pub staff: String,
    /// The counter (窗口) the staff member acted at (DOMAIN §11).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub counter: String,
    /// The staff member `staff` acted in place of, as their stand-in (B角 for the A角 who
    /// holds the case, SZDB/Z 176 §7.4.1.3; `engine::stand_in_for`). Absent in events
    /// written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stand_in_for: Option<String>,
    #[serde(flatten)]
    pub action: Action,
}

impl Event {
    /// Unique per event (a node never issues the same HLC twice); its string order is the
    /// order in which [`derive`] applies events.
    pub fn id(&self) -> String {
        format!("{}-{}", self.at.to_hex(), self.node.to_hex())
    }

    /// The day the event happened, China Standard Time.
    pub fn date(&self) -> Date {
        Date::from_unix_ms_cst(self.at.unix_ms() as i64)
    }
}

/// The status of a case.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 已收件: received, not yet accepted or refused.
    Submitted,
    /// 待补正: a one-time notice was issued; waiting for materials.
    AwaitingSupplement,
    /// 已受理 / 办理中.
    Accepted,
    /// 特别程序中: the clock is stopped.
    Suspended,
    /// 已决定: decided, result not yet delivered.
    Decided,
    /// 已办结.
    Completed,
    /// 不予受理.
    Refused,
    /// 已撤回.
    Withdrawn,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Submitted,
        Status::AwaitingSupplement,
        Status::Accepted,
        Status::Suspended,
        Status::Decided,
        Status::Completed,
        Status::Refused,
        Status::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::AwaitingSupplement => "awaiting_supplement",
            Status::Accepted => "accepted",
            Status::Suspended => "suspended",
            Status::Decided => "decided",
            Status::Completed => "completed",
            Status::Refused => "refused",
            Status::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn zh(self) -> &'static str {
        match self {
            Status::Submitted => "已收件",
            Status::AwaitingSupplement => "待补正",
            Status::Accepted => "办理中",
            Status::Suspended => "特别程序中",
            Status::Decided => "已决定",
            Status::Completed => "已办结",
            Status::Refused => "不予受理",
            Status::Withdrawn => "已撤回",
        }
    }

    /// Closed cases change status no more and carry no warning level; a completed case
    /// can still be rated (and a bad rating rectified).
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Refused | Status::Withdrawn
        )
    }

    /// Whether time limits run (or are stopped but pending) in this status.
    pub fn has_deadlines(self) -> bool {
        matches!(
            self,
            Status::Accepted | Status::Suspended | Status::Decided | Status::Completed
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state machine: the status after `action` in `status`, or `None` if not allowed.
///
/// Signing for a transfer, rating, rectifying, paying, exempting and resolving a conflict
/// record something about the case without moving it; a resolution is possible in every
/// status.
pub fn transition(status: Status, action: ActionKind) -> Option<Status> {
    use ActionKind as A;
    use Status as S;
    match (status, action) {
        (_, A::Resolve) => Some(status),
        (S::Accepted | S::Suspended | S::Decided, A::SignFor | A::FinishStep) => Some(status),
        (S::Completed, A::Rate | A::Rectify) => Some(S::Completed),
        // A fee is paid or waived while the case is open, or at the handover that
        // completes it; never on a case refused or withdrawn (no refunds in this version).
        (
            S::Submitted
            | S::AwaitingSupplement
            | S::Accepted
            | S::Suspended
            | S::Decided
            | S::Completed,
            A::Pay | A::Exempt,
        ) => Some(status),
        (S::Submitted, A::NotifyMissing) => Some(S::AwaitingSupplement),
        (S::Submitted | S::AwaitingSupplement, A::Supplement) => Some(S::Submitted),
        (S::Submitted, A::Accept) => Some(S::Accepted),
        (S::Submitted | S::AwaitingSupplement, A::Refuse) => Some(S::Refused),
        (S::Accepted, A::Suspend) => Some(S::Suspended),
        (S::Suspended, A::Resume) => Some(S::Accepted),
        (S::Accepted, A::Extend | A::RequestExtension | A::DeclineExtension) => Some(S::Accepted),
        (S::Accepted, A::Transfer) => Some(S::Accepted),
        (S::Accepted, A::Decide) => Some(S::Decided),
        (S::Accepted | S::Decided, A::Complete) => Some(S::Completed),
        (S::Submitted | S::AwaitingSupplement | S::Accepted | S::Suspended, A::Withdraw) => {
            Some(S::Withdrawn)
        }
        _ => None,
    }
}

/// An event that could not apply where it fell in the merged order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub event_id: String,
    pub action: ActionKind,
    pub node: NodeId,
    /// The status the case had, in the merged order, when the event came.
    pub status_then: Status,
    /// The event that brought the case into `status_then`: the other branch.
    pub against: Option<String>,
}

/// Who signed for a transferred case, and when (签收).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedFor {
    pub on: Date,
    pub node: NodeId,
    pub staff: String,
    /// The department without a node the signature was recorded for, by the sender.
    pub on_behalf_of: Option<String>,
}

/// A worker's request to extend the limits, waiting for a lead (延期申请).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionRequest {
    /// The request's event id, which the lead's approval names.
    pub event_id: String,
    pub days: u32,
    pub reason: String,
    pub on: Date,
    pub staff: String,
}

/// The applicant's rating (好差评).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rating {
    pub level: u8,
    pub comment: String,
    pub on: Date,
}

impl Rating {
    /// The two lowest of the five levels are 差评 (DOMAIN §8).
    pub fn is_bad(level: u8) -> bool {
        level <= 2
    }
}

/// The rectification a bad rating opens (整改), due a number of working days later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rectification {
    pub opened_on: Date,
    pub days: u32,
    pub closed_on: Option<Date>,
    pub response: String,
}

impl Rectification {
    /// The last day to close it: `days` working days after the rating, by the calendar.
    pub fn due(&self, calendar: &Calendar) -> Date {
        calendar.add_working_days(self.opened_on, self.days, &[])
    }
}

/// A material still missing, with how much is asked and how much arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    pub name: String,
    pub originals_needed: u32,
    pub copies_needed: u32,
    pub originals_received: u32,
    pub copies_received: u32,
}

/// Everything derived from a case's intake and events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseState {
    pub status: Status,
    pub serial_no: Option<SerialNo>,
    pub accepted_on: Option<Date>,
    pub calendar: Option<String>,
    /// Days the clock stood still: closed suspensions, and an open one whose procedure
    /// has a longest duration (counted as lasting that long until it is resumed).
    pub suspensions: Vec<DateSpan>,
    /// Day the current suspension began, while suspended.
    pub suspended_since: Option<Date>,
    /// Whether the current suspension is open-ended (its procedure has no longest
    /// duration), so the case's warning level is frozen until it resumes.
    pub clock_frozen: bool,
    pub extension_days: u32,
    /// An extension a worker asked for that no lead has approved or declined yet.
    pub extension_request: Option<ExtensionRequest>,
    pub decision: Option<bool>,
    /// The department whose decision it was, when another node entered it for it.
    pub decided_on_behalf_of: Option<String>,
    /// The office the case was last transferred to (转办), if any.
    pub holder: Option<String>,
    /// The hall node the case was last transferred to, if it went to a node.
    pub holder_node: Option<NodeId>,
    /// The node that made the last transfer: for a department without a node, it signs
    /// for the case and enters the department's answer on its behalf.
    pub transferred_by: Option<NodeId>,
    /// Whether (and by whom) the last transfer was signed for.
    pub signed_for: Option<SignedFor>,
    pub rating: Option<Rating>,
    pub rectification: Option<Rectification>,
    /// Events a lead's resolution voided: kept in the record, without effect.
    pub voided: Vec<String>,
    pub closed_on: Option<Date>,
    /// All materials received, at intake and in supplements.
    pub received: Vec<MaterialReceived>,
    /// Required materials not (fully) received.
    pub missing: Vec<Shortfall>,
    pub conflicts: Vec<Conflict>,
    pub last_event_at: Option<Hlc>,
    /// The process steps started so far, in order (§9.2.2): the first from the
    /// acceptance, each next one from the day the one before finished. Empty before
    /// acceptance and for items without steps.
    pub steps: Vec<StepRecord>,
    /// The item's fee lines with their payments and exemptions (§9.5).
    pub fees: CaseFees,
}

/// One step of a case as its events record it (环节开始, 环节办结).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    pub started_on: Date,
    /// When and by whom it finished, if it has.
    pub finished: Option<StepFinished>,
}

/// Who finished a step, where and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepFinished {
    pub on: Date,
    pub node: NodeId,
    pub staff: String,
}

/// A step of a case on a given day: its rule, when it ran and how it stands against its
/// limit ([`CaseState::step_times`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepTime {
    /// Counted from 1.
    pub number: u32,
    pub rule: StepRule,
    pub started_on: Option<Date>,
    pub finished: Option<StepFinished>,
    /// Its deadline, once started, when it has a limit of its own.
    pub deadline: Option<StepDeadline>,
    /// Whether it is the step the case is in now (started, not finished, case open).
    pub current: bool,
    /// The current step's warning level, by the case's own rule; `Normal` for the others.
    pub level: WarningLevel,
    /// Working days past its deadline: on the day asked for while it runs, on the day it
    /// finished once finished (0 when on time).
    pub late_days: u32,
}

impl CaseState {
    /// The number (from 1) of the step the case is in now: started, not finished, and the
    /// case still open. `None` before acceptance, after the last step and once closed.
    pub fn current_step(&self) -> Option<u32> {
        if self.status.is_closed() {
            return None;
        }
        let last = self.steps.last()?;
        last.finished.is_none().then_some(self.steps.len() as u32)
    }

    /// Every step of the item with where it stands on `today` (SZDB/Z 176 §10.2 全过程跟踪
    /// 和预警): a step's deadline counts its days on the case's calendar from the day it
    /// started, skipping the case's suspensions as the case's own limit does; its warning
    /// uses the case's rule and thresholds, frozen like the case's while an open-ended
    /// procedure stops the clock.
    pub fn step_times(&self, intake: &Intake, calendar: &Calendar, today: Date) -> Vec<StepTime> {
        let current = self.current_step();
        let until = self.counted_until(today);
        intake
            .item
            .steps
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let number = i as u32 + 1;
                let record = self.steps.get(i);
                let deadline = record.zip(rule.days).map(|(r, days)| {
                    StepDeadline::compute(
                        calendar,
                        r.started_on,
                        days,
                        intake.item.yellow,
                        &self.suspensions,
                    )
                });
                let is_current = current == Some(number);
                let level = match deadline {
                    Some(d) if is_current => d.level_on(match self.suspended_since {
                        Some(since) if self.clock_frozen => since,
                        _ => today,
                    }),
                    _ => WarningLevel::Normal,
                };
                // Lateness counts to the day the step finished; a step still open counts
                // to the last counted day (its closing day, once the case closed with it).
                let end = match record.and_then(|r| r.finished.as_ref()) {
                    Some(finished) => finished.on,
                    None => until,
                };
                let late_days = deadline.map_or(0, |d| {
                    calendar.working_days_between(d.due, end, &self.suspensions)
                });
                StepTime {
                    number,
                    rule: rule.clone(),
                    started_on: record.map(|r| r.started_on),
                    finished: record.and_then(|r| r.finished.clone()),
                    deadline,
                    current: is_current,
                    level,
                    late_days,
                }
            })
            .collect()
    }

    /// The last day time is counted to on `today`: while the clock is frozen (an
    /// open-ended procedure), the day before it stopped (that day itself does not count);
    /// a procedure with a longest duration is already among the suspensions, so time runs
    /// to today. A closed case counts to its closing day.
    fn counted_until(&self, today: Date) -> Date {
        match self.suspended_since {
            Some(since) if self.clock_frozen => since.add_days(-1).min(today),
            _ => today,
        }
        .min(self.closed_on.unwrap_or(today))
    }

    /// Both deadlines and warning dates, once accepted. While suspended, the dates are
    /// those the case had when the clock stopped; [`CaseState::suspended_since`] says so.
    pub fn deadlines(&self, intake: &Intake, calendar: &Calendar) -> Option<Deadlines> {
        let accepted_on = self.accepted_on?;
        Some(Deadlines::compute(
            calendar,
            accepted_on,
            intake.item.limits(),
            &self.suspensions,
            self.extension_days,
        ))
    }

    /// How much of each time limit is used and left on `today`, in working days: what the
    /// case page shows beside the deadlines. `None` before acceptance and for cases
    /// without time limits.
    pub fn time_used(&self, intake: &Intake, calendar: &Calendar, today: Date) -> Option<TimeUsed> {
        if !self.status.has_deadlines() {
            return None;
        }
        let accepted = self.accepted_on?;
        let deadlines = self.deadlines(intake, calendar)?;
        let until = self.counted_until(today);
        let excluded = &self.suspensions;
        let limit = |due: Date| LimitUsed {
            due,
            used: calendar.working_days_between(accepted, until.min(due), excluded),
            left: calendar.working_days_between(until, due, excluded),
            overdue: calendar.working_days_between(due, until, excluded),
        };
        Some(TimeUsed {
            committed: limit(deadlines.committed_due),
            legal: limit(deadlines.legal_due),
            // Working days the clock stood still.
            suspended_days: excluded
                .iter()
                .map(|s| {
                    calendar.working_days_between(s.start.add_days(-1), s.end.add_days(-1), &[])
                })
                .sum(),
        })
    }
}

/// One time limit on a given day, in working days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitUsed {
    pub due: Date,
    pub used: u32,
    pub left: u32,
    /// Working days past the deadline (0 when not overdue).
    pub overdue: u32,
}

/// Both time limits of an accepted case on a given day (see [`CaseState::time_used`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeUsed {
    pub committed: LimitUsed,
    pub legal: LimitUsed,
    /// Working days the clock stood still for special procedures.
    pub suspended_days: u32,
}

/// Derives the state of a case from its intake and events, in any order given.
pub fn derive(intake: &Intake, events: &[Event]) -> CaseState {
    let mut ordered: Vec<&Event> = events.iter().collect();
    ordered.sort_by_key(|e| (e.at, e.node));
    ordered.dedup_by_key(|e| (e.at, e.node));
    // A resolution voids the events it names wherever they fall, so the order in which
    // events arrive does not matter. Resolutions apply in (time, node) order; one that
    // reverses an earlier one (voids a side it kept and keeps a side it voided: two leads
    // deciding one conflict opposite ways while apart) is itself voided, and the earlier
    // decision stands. A resolution of a conflict the earlier lead never saw (the side it
    // kept against something else) applies.
    let mut voided: Vec<String> = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    for e in &ordered {
        let Action::Resolve { void, keep, .. } = &e.action else {
            continue;
        };
        let reverses =
            void.iter().any(|id| kept.contains(id)) && keep.iter().any(|id| voided.contains(id));
        if reverses {
            voided.push(e.id());
            continue;
        }
        voided.extend(
            void.iter()
                .filter(|id| {
                    ordered
                        .iter()
                        .any(|e| e.id() == **id && e.action.kind() != ActionKind::Resolve)
                })
                .cloned(),
        );
        kept.extend(keep.iter().cloned());
    }
    voided.sort();
    voided.dedup();

    let mut state = CaseState {
        status: Status::Submitted,
        serial_no: None,
        accepted_on: None,
        calendar: None,
        suspensions: Vec::new(),
        suspended_since: None,
        clock_frozen: false,
        extension_days: 0,
        extension_request: None,
        decision: None,
        decided_on_behalf_of: None,
        holder: None,
        holder_node: None,
        transferred_by: None,
        signed_for: None,
        rating: None,
        rectification: None,
        voided: Vec::new(),
        closed_on: None,
        received: Vec::new(),
        missing: Vec::new(),
        conflicts: Vec::new(),
        last_event_at: None,
        steps: Vec::new(),
        fees: CaseFees::of(&intake.item.fees),
    };
    add_received(&mut state.received, &intake.materials);
    // The longest duration of the running suspension's procedure, if it has one.
    let mut suspension_cap: Option<u32> = None;
    // The last event that changed the status: what a conflicting event went against.
    let mut last_move: Option<String> = None;
    // What a guard conflict goes against: the rating already given, the last extension.
    let mut rated_by: Option<String> = None;
    let mut last_extend: Option<String> = None;
    let close_suspension = |state: &mut CaseState, cap: Option<u32>, end: Date| {
        if let Some(start) = state.suspended_since.take() {
            let end = end.max(start);
            let end = cap.map_or(end, |days| end.min(start.add_days(days as i32)));
            state.suspensions.push(DateSpan { start, end });
        }
    };
    for event in ordered {
        state.last_event_at = Some(event.at);
        let kind = event.action.kind();
        if kind == ActionKind::Resolve || voided.contains(&event.id()) {
            continue;
        }
        // A second finishing of a step already finished (two people at once) changes
        // nothing.
        if let Action::FinishStep { step, .. } = &event.action
            && step
                .checked_sub(1)
                .and_then(|i| state.steps.get(i as usize))
                .is_some_and(|s| s.finished.is_some())
        {
            continue;
        }
        // A second closing of the same rectification (two leads at once) changes nothing.
        if kind == ActionKind::Rectify
            && state
                .rectification
                .as_ref()
                .is_some_and(|r| r.closed_on.is_some())
        {
            continue;
        }
        let allowed = transition(state.status, kind).filter(|_| match &event.action {
            // Concurrent extensions may not add up beyond what the law allows, and a
            // request is approved once (two leads approving it at once: one conflicts).
            Action::Extend { days, request, .. } => {
                state.extension_days + days <= intake.item.legal_extension_days
                    && request.as_ref().is_none_or(|id| {
                        state
                            .extension_request
                            .as_ref()
                            .is_some_and(|r| r.event_id == *id)
                    })
            }
            Action::DeclineExtension { .. } => state.extension_request.is_some(),
            // One rating per case; a rectification closes once.
            Action::Rate { .. } => state.rating.is_none(),
            Action::Rectify { .. } => state
                .rectification
                .as_ref()
                .is_some_and(|r| r.closed_on.is_none()),
            // Steps finish in order, the one the case is in.
            Action::FinishStep { step, .. } => state.current_step() == Some(*step),
            // Two payments of one line recorded apart, or together beyond its amount:
            // the later one conflicts.
            Action::Pay {
                fee, amount_fen, ..
            } => fee::check_against(&state.fees, fee::Record::Payment, fee, *amount_fen).is_ok(),
            Action::Exempt {
                fee, amount_fen, ..
            } => fee::check_against(&state.fees, fee::Record::Exemption, fee, *amount_fen).is_ok(),
            _ => true,
        });
        let Some(next) = allowed else {
            let against = match kind {
                ActionKind::Rate if rated_by.is_some() => rated_by.clone(),
                ActionKind::Extend if transition(state.status, kind).is_some() => {
                    last_extend.clone()
                }
                _ => last_move.clone(),
            };
            state.conflicts.push(Conflict {
                event_id: event.id(),
                action: kind,
                node: event.node,
                status_then: state.status,
                against,
            });
            continue;
        };
        match kind {
            ActionKind::Rate => rated_by = Some(event.id()),
            ActionKind::Extend => last_extend = Some(event.id()),
            _ => {}
        }
        if next != state.status {
            last_move = Some(event.id());
        }
        match &event.action {
            Action::Supplement { materials } => add_received(&mut state.received, materials),
            Action::Accept {
                serial_no,
                calendar,
            } => {
                state.serial_no = Some(serial_no.clone());
                state.accepted_on = Some(event.date());
                state.calendar = Some(calendar.clone());
                // The first step starts with the acceptance (§9.2.2).
                if !intake.item.steps.is_empty() {
                    state.steps.push(StepRecord {
                        started_on: event.date(),
                        finished: None,
                    });
                }
            }
            Action::Suspend { procedure, .. } => {
                state.suspended_since = Some(event.date());
                suspension_cap = intake.item.procedure(procedure).and_then(|p| p.max_days);
            }
            Action::Resume { .. } => close_suspension(&mut state, suspension_cap, event.date()),
            Action::Extend { days, .. } => {
                state.extension_days += days;
                state.extension_request = None;
            }
            Action::RequestExtension { days, reason } => {
                state.extension_request = Some(ExtensionRequest {
                    event_id: event.id(),
                    days: *days,
                    reason: reason.clone(),
                    on: event.date(),
                    staff: event.staff.clone(),
                });
            }
            Action::DeclineExtension { .. } => state.extension_request = None,
            Action::Decide {
                approved,
                on_behalf_of,
                ..
            } => {
                state.decision = Some(*approved);
                state.decided_on_behalf_of = on_behalf_of.clone();
            }
            Action::Transfer { to, to_node, .. } => {
                state.holder = Some(to.clone());
                state.holder_node = *to_node;
                state.transferred_by = Some(event.node);
                state.signed_for = None;
            }
            Action::SignFor { on_behalf_of, .. } => {
                // Only the hall the case went to signs for it (anyone, for a department
                // without a node); a second signature (two people at once) changes nothing.
                if state.holder.is_some()
                    && state.signed_for.is_none()
                    && state.holder_node.is_none_or(|n| n == event.node)
                {
                    state.signed_for = Some(SignedFor {
                        on: event.date(),
                        node: event.node,
                        staff: event.staff.clone(),
                        on_behalf_of: on_behalf_of.clone(),
                    });
                }
            }
            Action::Rate {
                level,
                comment,
                rectify_days,
            } => {
                state.rating = Some(Rating {
                    level: *level,
                    comment: comment.clone(),
                    on: event.date(),
                });
                if Rating::is_bad(*level) {
                    state.rectification = Some(Rectification {
                        opened_on: event.date(),
                        days: *rectify_days,
                        closed_on: None,
                        response: String::new(),
                    });
                }
            }
            Action::Rectify { response } => {
                if let Some(r) = state.rectification.as_mut() {
                    r.closed_on = Some(event.date());
                    r.response = response.clone();
                }
            }
            Action::FinishStep { .. } => {
                if let Some(running) = state.steps.last_mut() {
                    running.finished = Some(StepFinished {
                        on: event.date(),
                        node: event.node,
                        staff: event.staff.clone(),
                    });
                }
                if state.steps.len() < intake.item.steps.len() {
                    state.steps.push(StepRecord {
                        started_on: event.date(),
                        finished: None,
                    });
                }
            }
            Action::Pay {
                fee,
                amount_fen,
                method,
                receipt,
            } => {
                if let Some(line) = state.fees.lines.iter_mut().find(|l| l.line.name == *fee) {
                    line.payment = Some(fee::Payment {
                        event_id: event.id(),
                        amount_fen: *amount_fen,
                        method: *method,
                        receipt: receipt.clone(),
                        staff: event.staff.clone(),
                        on: event.date(),
                    });
                }
            }
            Action::Exempt {
                fee,
                amount_fen,
                reason,
                basis,
            } => {
                if let Some(line) = state.fees.lines.iter_mut().find(|l| l.line.name == *fee) {
                    line.exemption = Some(fee::Exemption {
                        event_id: event.id(),
                        amount_fen: *amount_fen,
                        reason: reason.clone(),
                        basis: basis.clone(),
                        staff: event.staff.clone(),
                        on: event.date(),
                    });
                }
            }
            Action::Resolve { .. } => {}
            Action::NotifyMissing { .. }
            | Action::Refuse { .. }
            | Action::Complete { .. }
            | Action::Withdraw { .. } => {}
        }
        if next.is_closed() && !state.status.is_closed() {
            state.closed_on = Some(event.date());
            close_suspension(&mut state, suspension_cap, event.date());
        }
        state.status = next;
    }
    if let Some(start) = state.suspended_since {
        match suspension_cap {
            // The clock runs again after the procedure's longest duration at the latest.
            Some(days) => state.suspensions.push(DateSpan {
                start,
                end: start.add_days(days as i32),
            }),
            None => state.clock_frozen = true,
        }
    }
    state.missing = shortfalls(&intake.item, &state.received);
    state.voided = voided;
    state
}

/// The sides a resolution keeps: for each conflict, the side it does not void.
pub fn kept_sides(state: &CaseState, void: &[String]) -> Vec<String> {
    let mut keep: Vec<String> = Vec::new();
    for c in &state.conflicts {
        let sides = std::iter::once(c.event_id.clone()).chain(c.against.clone());
        let sides: Vec<String> = sides.collect();
        if sides.iter().any(|s| void.contains(s)) {
            keep.extend(sides.into_iter().filter(|s| !void.contains(s)));
        }
    }
    keep.sort();
    keep.dedup();
    keep
}

/// Checks that a lead's resolution, added to `events`, leaves the case without conflicts:
/// it must void one side of every conflict, and only events of this case.
pub fn check_resolution(
    intake: &Intake,
    events: &[Event],
    void: &[String],
) -> Result<(), CaseError> {
    let before = derive(intake, events);
    if before.conflicts.is_empty() {
        return Err(CaseError::NothingToResolve);
    }
    let sides: Vec<&str> = before
        .conflicts
        .iter()
        .flat_map(|c| std::iter::once(c.event_id.as_str()).chain(c.against.as_deref()))
        .collect();
    if let Some(id) = void.iter().find(|id| !sides.contains(&id.as_str())) {
        return Err(CaseError::NotASide {
            event_id: id.clone(),
        });
    }
    let mut with: Vec<Event> = events.to_vec();
    let latest = events.iter().map(|e| e.at).max();
    with.push(Event {
        at: latest.map_or(Hlc::new(0, 0), |at| Hlc::new(at.unix_ms() + 1, 0)),
        node: NodeId([0; 16]),
        staff: String::new(),
        counter: String::new(),
        stand_in_for: None,
        action: Action::Resolve {
            void: void.to_vec(),
            reason: String::new(),
            keep: kept_sides(&before, void),
        },
    });
    let after = derive(intake, &with);
    if !after.conflicts.is_empty() {
        return Err(CaseError::ResolutionIncomplete {
            left: after.conflicts.len(),
        });
    }
    Ok(())
}

fn add_received(received: &mut Vec<MaterialReceived>, more: &[MaterialReceived]) {
    for m in more {
        match received.iter_mut().find(|r| r.name == m.name) {
            Some(r) => {
                r.originals += m.originals;
                r.copies += m.copies;
            }
            None => received.push(m.clone()),
        }
    }
}

fn shortfalls(item: &ItemSnapshot, received: &[MaterialReceived]) -> Vec<Shortfall> {
    item.materials
        .iter()
        .filter(|rule| rule.required)
        .filter_map(|rule| {
            let (originals, copies) = received
                .iter()
                .find(|r| r.name == rule.name)
                .map_or((0, 0), |r| (r.originals, r.copies));
            (originals < rule.originals || copies < rule.copies).then(|| Shortfall {
                name: rule.name.clone(),
                originals_needed: rule.originals,
                copies_needed: rule.copies,
                originals_received: originals,
                copies_received: copies,
            })
        })
        .collect()
}

/// What a field of an action or an application must hold: a stable code the UI words in
/// the reader's language (`error.rule.CODE`), with an English sentence for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    Phone,
    Name,
    ContactName,
    CounterAndNote,
    MaterialsOnce,
    MaterialCounts,
    ResolutionReason,
    TextLength,
    MissingList,
    SupplementEmpty,
    SuspendReason,
    ExtensionDays,
    DeclineReason,
    CompleteResult,
    WithdrawReason,
    RectifyDays,
    RectifyResponse,
    TransferTo,
    WrittenReasons,
    SituationsOnce,
    PaymentReceipt,
    ExemptionReason,
}

impl Rule {
    pub const ALL: [Rule; 22] = [
        Rule::Phone,
        Rule::Name,
        Rule::ContactName,
        Rule::CounterAndNote,
        Rule::MaterialsOnce,
        Rule::MaterialCounts,
        Rule::ResolutionReason,
        Rule::TextLength,
        Rule::MissingList,
        Rule::SupplementEmpty,
        Rule::SuspendReason,
        Rule::ExtensionDays,
        Rule::DeclineReason,
        Rule::CompleteResult,
        Rule::WithdrawReason,
        Rule::RectifyDays,
        Rule::RectifyResponse,
        Rule::TransferTo,
        Rule::WrittenReasons,
        Rule::SituationsOnce,
        Rule::PaymentReceipt,
        Rule::ExemptionReason,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Rule::Phone => "phone",
            Rule::Name => "name",
            Rule::ContactName => "contact_name",
            Rule::CounterAndNote => "counter_and_note",
            Rule::MaterialsOnce => "materials_once",
            Rule::MaterialCounts => "material_counts",
            Rule::ResolutionReason => "resolution_reason",
            Rule::TextLength => "text_length",
            Rule::MissingList => "missing_list",
            Rule::SupplementEmpty => "supplement_empty",
            Rule::SuspendReason => "suspend_reason",
            Rule::ExtensionDays => "extension_days",
            Rule::DeclineReason => "decline_reason",
            Rule::CompleteResult => "complete_result",
            Rule::WithdrawReason => "withdraw_reason",
            Rule::RectifyDays => "rectify_days",
            Rule::RectifyResponse => "rectify_response",
            Rule::TransferTo => "transfer_to",
            Rule::WrittenReasons => "written_reasons",
            Rule::SituationsOnce => "situations_once",
            Rule::PaymentReceipt => "payment_receipt",
            Rule::ExemptionReason => "exemption_reason",
        }
    }

    /// The rule in English, for logs and the command line.
    pub fn english(self) -> &'static str {
        match self {
            Rule::Phone => "a telephone number of 7-15 digits (e.g. 13800138000 or 0755-12345678)",
            Rule::Name => "a name of 1-100 characters",
            Rule::ContactName => "the name of the contact person, 1-100 characters",
            Rule::CounterAndNote => {
                "a counter name of at most 40 characters and a note of at most 2000"
            }
            Rule::MaterialsOnce => "each material once, with its counts of originals and copies",
            Rule::MaterialCounts => "at most 99 originals or copies",
            Rule::ResolutionReason => "the side decided against and the reason for the decision",
            Rule::TextLength => "texts of at most 4000 characters",
            Rule::MissingList => {
                "every missing material, each with the reason it is needed (一次性告知)"
            }
            Rule::SupplementEmpty => "the materials handed in",
            Rule::SuspendReason => "the special procedure (e.g. 公示, 鉴定) and the reason",
            Rule::ExtensionDays => {
                "a number of working days above zero and the reason (told to the applicant)"
            }
            Rule::DeclineReason => "the reason the extension is declined",
            Rule::CompleteResult => "the result and how it was delivered (送达方式)",
            Rule::WithdrawReason => "the applicant's reason for withdrawing",
            Rule::RectifyDays => "a rectification period of 1 to 120 working days",
            Rule::SituationsOnce => "each situation (情形) once",
            Rule::RectifyResponse => "the written response to the applicant's complaint (整改情况)",
            Rule::TransferTo => {
                "the office the case goes to and the reason for transferring it (转办)"
            }
            Rule::WrittenReasons => {
                "a refusal needs the reason, its legal basis and the applicant's remedies (复议/诉讼)"
            }
            Rule::PaymentReceipt => {
                "the number of the receipt (票据号) handed over, at most 40 characters"
            }
            Rule::ExemptionReason => {
                "the reason for the exemption (减免) and the policy it rests on"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.english())
    }
}

/// Why an action on a case was refused. Each message says what to do instead; the UI and
/// the API word it from [`CaseError::code`] and [`CaseError::params`] in the reader's
/// language, the `Display` text is English for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("cannot {action} a case that is {status}", action = .action.as_str(), status = .status.as_str())]
    NotAllowed { action: ActionKind, status: Status },
    #[error(
        "required materials are missing: {}; issue a one-time notice (notify_missing) instead of accepting",
        .missing.join("、")
    )]
    MaterialsMissing { missing: Vec<String> },
    #[error("{field} is required: {rule}")]
    Invalid { field: &'static str, rule: Rule },
    #[error("{name:?} is not one of this item's materials")]
    UnknownMaterial { name: String },
    #[error("{name:?} is not one of this item's situations (情形)")]
    UnknownSituation { name: String },
    #[error("the item {name:?} is cancelled and takes no new applications")]
    ItemCancelled { name: String },
    #[error("the item {name} takes applications from {date}, its effective date")]
    NotYetEffective { name: String, date: String },
    #[error(
        "the item {name:?} is a {kind}, which is started by the authority, not by application at a counter"
    )]
    NotOnApplication { name: String, kind: &'static str },
    #[error(
        "an extension of {requested} working days exceeds what the law allows here ({left} left of {allowed})"
    )]
    ExtensionTooLong {
        requested: u32,
        left: u32,
        allowed: u32,
    },
    #[error("an extension request is already waiting for a lead's decision")]
    ExtensionPending,
    #[error("a lead extends the limits directly; asking for an extension is a worker's step")]
    LeadsExtendDirectly,
    #[error("the case has no extension request waiting for a lead")]
    NoExtensionRequest,
    #[error(
        "the item is accepted here on behalf of {department} (代为受理), which decides; transfer the case to it and enter its decision when it comes back"
    )]
    DelegatedDecision { department: String },
    /// §5.7.2: the decision is the deciding department's, recorded by its members at the
    /// hall where it works.
    #[error(
        "only members of {department}, at the hall where it works, decide cases of this item (§5.7.2)"
    )]
    NotDecidingDepartment { department: String },
    #[error("the item is decided by department {code}, which this node does not know yet")]
    UnknownDecidingDepartment { code: String },
    /// 并联审批 (§7.5; 行政许可法 §26): a combined case is decided by its parts'
    /// departments; it is neither decided as a whole nor completed before they all are.
    #[error(
        "this combined case is decided by its {parts} parts' departments, and completed once all have decided"
    )]
    DecidedByParts { parts: u32 },
    #[error("the case has a conflict between concurrent events; a lead must resolve it first")]
    Conflicted,
    #[error("the case has no conflict to resolve")]
    NothingToResolve,
    #[error(
        "event {event_id} is not one side of this case's conflicts; void the event you decide against"
    )]
    NotASide { event_id: String },
    #[error("this resolution leaves {left} conflict(s) open; choose one side of every conflict")]
    ResolutionIncomplete { left: usize },
    #[error("the case was not transferred, or its transfer is already signed for")]
    NothingToSignFor,
    #[error("the case was transferred to another office's node; only that node signs for it")]
    NotTheHolder,
    #[error(
        "the case went to a department without a node; the node that sent it signs for it on the department's behalf"
    )]
    NotTheSender,
    #[error("this node may not record {action} on this case: it is an act of the office that received the application", action = .action.as_str())]
    NotThisNodes { action: ActionKind },
    #[error("only a lead (现场负责人) or an admin may {action} a case", action = .action.as_str())]
    LeadsOnly { action: ActionKind },
    #[error("department staff may only sign for and decide the cases sent to their department, not {action}", action = .action.as_str())]
    DepartmentsCasesOnly { action: ActionKind },
    #[error("a supervisor supervises the stations' cases and records none of them, not {action}", action = .action.as_str())]
    SupervisorsSuperviseOnly { action: ActionKind },
    #[error("the catalog's editors and reviewers author items and record no act on a case, not {action}", action = .action.as_str())]
    CatalogStaffOnly { action: ActionKind },
    #[error("a hall may {action} only a case a station sent it (转办); it supervises the others", action = .action.as_str())]
    NotSentHere { action: ActionKind },
    #[error("an applicant may only rate a completed case")]
    ApplicantsRateOnly,
    #[error("the rating must be one of the five levels, 1 (非常不满意) to 5 (非常满意)")]
    BadRating,
    #[error("this case has already been rated; a case is rated once (一事一评)")]
    AlreadyRated,
    #[error("the case has no open rectification")]
    NoOpenRectification,
    #[error("{name:?} is not a special procedure of this item (it lists: {})", if .listed.is_empty() { "none".to_string() } else { .listed.join("、") })]
    UnknownProcedure { name: String, listed: Vec<String> },
    #[error("the time of {name:?} counts toward the limit, so it does not suspend the case")]
    CountedProcedure { name: String },
    #[error("step {step} is not the step the case is in (now: {current}; 0 when none)")]
    NotCurrentStep { step: u32, current: u32 },
    #[error("no process step of this case is under way")]
    NoStepUnderWay,
    #[error("the case lies with another office's node; its steps are finished there")]
    StepsLieElsewhere,
    #[error("a {applicant} cannot apply for this item; it serves {}", .serves.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and "))]
    WrongApplicant {
        applicant: ServiceObject,
        serves: Vec<ServiceObject>,
    },
    /// A field holds a control or layout character (see [`text`]).
    #[error(transparent)]
    Text(#[from] text::Refused),
    /// A payment or an exemption the fee rules refuse (§9.5, [`fee`]).
    #[error(transparent)]
    Fee(#[from] FeeRefused),
}

impl CaseError {
    /// Every code [`CaseError::code`] returns, so a test can check each has its words.
    pub const CODES: [&'static str; 46] = [
        "not_allowed",
        "materials_missing",
        "invalid",
        "unknown_material",
        "item_cancelled",
        "item_not_yet_effective",
        "not_on_application",
        "extension_too_long",
        "extension_pending",
        "leads_extend_directly",
        "no_extension_request",
        "delegated_decision",
        "not_deciding_department",
        "unknown_deciding_department",
        "decided_by_parts",
        "conflicted",
        "nothing_to_resolve",
        "not_a_side",
        "resolution_incomplete",
        "nothing_to_sign_for",
        "not_the_holder",
        "not_the_sender",
        "not_this_nodes",
        "leads_only",
        "departments_cases_only",
        "supervisors_supervise_only",
        "catalog_staff_only",
        "not_sent_here",
        "applicants_rate_only",
        "bad_rating",
        "already_rated",
        "no_open_rectification",
        "unknown_procedure",
        "counted_procedure",
        "wrong_applicant",
        "control_character",
        "unknown_situation",
        "not_current_step",
        "no_step_under_way",
        "steps_lie_elsewhere",
        "no_fees",
        "unknown_fee_line",
        "fee_amount_zero",
        "fee_too_much",
        "fee_already_paid",
        "fee_already_exempted",
    ];

    /// A stable name for the error, which the UI and the API word in the reader's language
    /// (with the error's fields as parameters).
    pub fn code(&self) -> &'static str {
        match self {
            CaseError::NotAllowed { .. } => "not_allowed",
            CaseError::MaterialsMissing { .. } => "materials_missing",
            CaseError::Invalid { .. } => "invalid",
            CaseError::UnknownMaterial { .. } => "unknown_material",
            CaseError::UnknownSituation { .. } => "unknown_situation",
            CaseError::ItemCancelled { .. } => "item_cancelled",
            CaseError::NotYetEffective { .. } => "item_not_yet_effective",
            CaseError::NotOnApplication { .. } => "not_on_application",
            CaseError::ExtensionTooLong { .. } => "extension_too_long",
            CaseError::ExtensionPending => "extension_pending",
            CaseError::LeadsExtendDirectly => "leads_extend_directly",
            CaseError::NoExtensionRequest => "no_extension_request",
            CaseError::DelegatedDecision { .. } => "delegated_decision",
            CaseError::NotDecidingDepartment { .. } => "not_deciding_department",
            CaseError::UnknownDecidingDepartment { .. } => "unknown_deciding_department",
            CaseError::DecidedByParts { .. } => "decided_by_parts",
            CaseError::Conflicted => "conflicted",
            CaseError::NothingToResolve => "nothing_to_resolve",
            CaseError::NotASide { .. } => "not_a_side",
            CaseError::ResolutionIncomplete { .. } => "resolution_incomplete",
            CaseError::NothingToSignFor => "nothing_to_sign_for",
            CaseError::NotTheHolder => "not_the_holder",
            CaseError::NotTheSender => "not_the_sender",
            CaseError::NotThisNodes { .. } => "not_this_nodes",
            CaseError::LeadsOnly { .. } => "leads_only",
            CaseError::DepartmentsCasesOnly { .. } => "departments_cases_only",
            CaseError::SupervisorsSuperviseOnly { .. } => "supervisors_supervise_only",
            CaseError::CatalogStaffOnly { .. } => "catalog_staff_only",
            CaseError::NotSentHere { .. } => "not_sent_here",
            CaseError::ApplicantsRateOnly => "applicants_rate_only",
            CaseError::BadRating => "bad_rating",
            CaseError::AlreadyRated => "already_rated",
            CaseError::NoOpenRectification => "no_open_rectification",
            CaseError::UnknownProcedure { .. } => "unknown_procedure",
            CaseError::NotCurrentStep { .. } => "not_current_step",
            CaseError::NoStepUnderWay => "no_step_under_way",
            CaseError::StepsLieElsewhere => "steps_lie_elsewhere",
            CaseError::CountedProcedure { .. } => "counted_procedure",
            CaseError::WrongApplicant { .. } => "wrong_applicant",
            CaseError::Text(_) => text::Refused::CODE,
            CaseError::Fee(refused) => match refused {
                FeeRefused::NoFees => "no_fees",
                FeeRefused::UnknownLine { .. } => "unknown_fee_line",
                FeeRefused::Zero => "fee_amount_zero",
                FeeRefused::TooMuch { .. } => "fee_too_much",
                FeeRefused::AlreadyPaid { .. } => "fee_already_paid",
                FeeRefused::AlreadyExempted { .. } => "fee_already_exempted",
            },
        }
    }

    /// The error's fields, typed so the UI words each in the reader's language.
    pub fn params(&self) -> Vec<(&'static str, Param)> {
        use Param as P;
        match self {
            CaseError::NotAllowed { action, status } => {
                vec![
                    ("action", P::Action(*action)),
                    ("status", P::Status(*status)),
                ]
            }
            CaseError::MaterialsMissing { missing } => vec![("missing", P::List(missing.clone()))],
            CaseError::Invalid { field, rule } => {
                vec![
                    ("field", P::Text((*field).to_string())),
                    ("rule", P::Rule(*rule)),
                ]
            }
            CaseError::UnknownMaterial { name }
            | CaseError::UnknownSituation { name }
            | CaseError::ItemCancelled { name }
            | CaseError::CountedProcedure { name } => vec![("name", P::Text(name.clone()))],
            CaseError::NotYetEffective { name, date } => vec![
                ("name", P::Text(name.clone())),
                ("date", P::Text(date.clone())),
            ],
            CaseError::NotOnApplication { name, kind } => vec![
                ("name", P::Text(name.clone())),
                ("kind", P::Text((*kind).to_string())),
            ],
            CaseError::ExtensionTooLong {
                requested,
                left,
                allowed,
            } => vec![
                ("requested", P::Number(u64::from(*requested))),
                ("left", P::Number(u64::from(*left))),
                ("allowed", P::Number(u64::from(*allowed))),
            ],
            CaseError::DelegatedDecision { department }
            | CaseError::NotDecidingDepartment { department } => {
                vec![("department", P::Text(department.clone()))]
            }
            CaseError::UnknownDecidingDepartment { code } => {
                vec![("code", P::Text(code.clone()))]
            }
            CaseError::DecidedByParts { parts } => {
                vec![("parts", P::Number(u64::from(*parts)))]
            }
            CaseError::NotASide { event_id } => vec![("event", P::Text(event_id.clone()))],
            CaseError::ResolutionIncomplete { left } => vec![("left", P::Number(*left as u64))],
            CaseError::NotThisNodes { action }
            | CaseError::LeadsOnly { action }
            | CaseError::DepartmentsCasesOnly { action }
            | CaseError::SupervisorsSuperviseOnly { action }
            | CaseError::CatalogStaffOnly { action }
            | CaseError::NotSentHere { action } => {
                vec![("action", P::Action(*action))]
            }
            CaseError::UnknownProcedure { name, listed } => vec![
                ("name", P::Text(name.clone())),
                ("listed", P::List(listed.clone())),
            ],
            CaseError::NotCurrentStep { step, current } => vec![
                ("step", P::Number(u64::from(*step))),
                ("current", P::Number(u64::from(*current))),
            ],
            CaseError::WrongApplicant { applicant, serves } => vec![
                ("applicant", P::Object(*applicant)),
                ("serves", P::Objects(serves.clone())),
            ],
            CaseError::Text(refused) => vec![
                ("field", P::Field(refused.field)),
                ("char", P::Text(refused.code_point())),
            ],
            CaseError::Fee(refused) => match refused {
                FeeRefused::NoFees | FeeRefused::Zero => Vec::new(),
                FeeRefused::UnknownLine { name }
                | FeeRefused::AlreadyPaid { name }
                | FeeRefused::AlreadyExempted { name } => vec![("name", P::Text(name.clone()))],
                FeeRefused::TooMuch { name, allowed } => vec![
                    ("name", P::Text(name.clone())),
                    ("allowed", P::Text(fee::yuan(*allowed))),
                ],
            },
            CaseError::ExtensionPending
            | CaseError::LeadsExtendDirectly
            | CaseError::NoExtensionRequest
            | CaseError::Conflicted
            | CaseError::NothingToResolve
            | CaseError::NothingToSignFor
            | CaseError::NotTheHolder
            | CaseError::NotTheSender
            | CaseError::ApplicantsRateOnly
            | CaseError::BadRating
            | CaseError::AlreadyRated
            | CaseError::NoOpenRectification
            | CaseError::NoStepUnderWay
            | CaseError::StepsLieElsewhere => Vec::new(),
        }
    }

    /// One error of every kind (and an [`CaseError::Invalid`] of every rule), for tests
    /// that word them all.
    pub fn examples() -> Vec<CaseError> {
        let name = || "户口簿".to_string();
        let mut all = vec![
            CaseError::NotAllowed {
                action: ActionKind::Resume,
                status: Status::Accepted,
            },
            CaseError::MaterialsMissing {
                missing: vec![name(), "收入证明".into()],
            },
            CaseError::UnknownMaterial { name: name() },
            CaseError::UnknownSituation {
                name: "委托他人代办".into(),
            },
            CaseError::ItemCancelled { name: name() },
            CaseError::NotYetEffective {
                name: name(),
                date: "2027-01-01".into(),
            },
            CaseError::NotOnApplication {
                name: name(),
                kind: "行政检查",
            },
            CaseError::ExtensionTooLong {
                requested: 99,
                left: 10,
                allowed: 15,
            },
            CaseError::ExtensionPending,
            CaseError::LeadsExtendDirectly,
            CaseError::NoExtensionRequest,
            CaseError::DelegatedDecision {
                department: "示范区民政局".into(),
            },
            CaseError::NotDecidingDepartment {
                department: "民政局".into(),
            },
            CaseError::UnknownDecidingDepartment { code: "M1".into() },
            CaseError::DecidedByParts { parts: 3 },
            CaseError::Conflicted,
            CaseError::NothingToResolve,
            CaseError::NotASide {
                event_id: "x".into(),
            },
            CaseError::ResolutionIncomplete { left: 2 },
            CaseError::NothingToSignFor,
            CaseError::NotTheHolder,
            CaseError::NotTheSender,
            CaseError::NotThisNodes {
                action: ActionKind::Accept,
            },
            CaseError::LeadsOnly {
                action: ActionKind::Extend,
            },
            CaseError::DepartmentsCasesOnly {
                action: ActionKind::Decide,
            },
            CaseError::SupervisorsSuperviseOnly {
                action: ActionKind::Decide,
            },
            CaseError::CatalogStaffOnly {
                action: ActionKind::Accept,
            },
            CaseError::NotSentHere {
                action: ActionKind::Decide,
            },
            CaseError::ApplicantsRateOnly,
            CaseError::BadRating,
            CaseError::AlreadyRated,
            CaseError::NoOpenRectification,
            CaseError::UnknownProcedure {
                name: "听证".into(),
                listed: vec!["公示".into()],
            },
            CaseError::CountedProcedure {
                name: "现场核查".into(),
            },
            CaseError::NotCurrentStep {
                step: 3,
                current: 2,
            },
            CaseError::NoStepUnderWay,
            CaseError::StepsLieElsewhere,
            CaseError::WrongApplicant {
                applicant: ServiceObject::LegalPerson,
                serves: vec![ServiceObject::NaturalPerson],
            },
            CaseError::Text(text::Refused {
                field: "reason",
                found: '\u{202E}',
            }),
            CaseError::Fee(FeeRefused::NoFees),
            CaseError::Fee(FeeRefused::UnknownLine {
                name: "办证费".into(),
            }),
            CaseError::Fee(FeeRefused::Zero),
            CaseError::Fee(FeeRefused::TooMuch {
                name: "工本费".into(),
                allowed: 2000,
            }),
            CaseError::Fee(FeeRefused::AlreadyPaid {
                name: "工本费".into(),
            }),
            CaseError::Fee(FeeRefused::AlreadyExempted {
                name: "工本费".into(),
            }),
        ];
        all.extend(Rule::ALL.into_iter().map(|rule| CaseError::Invalid {
            field: "reason",
            rule,
        }));
        // Adding a variant fails to compile here until it is among the examples.
        for e in &all {
            match e {
                CaseError::NotAllowed { .. }
                | CaseError::MaterialsMissing { .. }
                | CaseError::Invalid { .. }
                | CaseError::UnknownMaterial { .. }
                | CaseError::UnknownSituation { .. }
                | CaseError::ItemCancelled { .. }
                | CaseError::NotYetEffective { .. }
                | CaseError::NotOnApplication { .. }
                | CaseError::ExtensionTooLong { .. }
                | CaseError::ExtensionPending
                | CaseError::LeadsExtendDirectly
                | CaseError::NoExtensionRequest
                | CaseError::DelegatedDecision { .. }
                | CaseError::NotDecidingDepartment { .. }
                | CaseError::UnknownDecidingDepartment { .. }
                | CaseError::DecidedByParts { .. }
                | CaseError::Conflicted
                | CaseError::NothingToResolve
                | CaseError::NotASide { .. }
                | CaseError::ResolutionIncomplete { .. }
                | CaseError::NothingToSignFor
                | CaseError::NotTheHolder
                | CaseError::NotTheSender
                | CaseError::NotThisNodes { .. }
                | CaseError::LeadsOnly { .. }
                | CaseError::DepartmentsCasesOnly { .. }
                | CaseError::SupervisorsSuperviseOnly { .. }
                | CaseError::CatalogStaffOnly { .. }
                | CaseError::NotSentHere { .. }
                | CaseError::ApplicantsRateOnly
                | CaseError::BadRating
                | CaseError::AlreadyRated
                | CaseError::NoOpenRectification
                | CaseError::UnknownProcedure { .. }
                | CaseError::CountedProcedure { .. }
                | CaseError::NotCurrentStep { .. }
                | CaseError::NoStepUnderWay
                | CaseError::StepsLieElsewhere
                | CaseError::WrongApplicant { .. }
                | CaseError::Text(_)
                | CaseError::Fee(_) => {}
            }
        }
        all
    }

    /// Whether the error says who may not do this (a 403), rather than what the case or
    /// the request lacks.
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            CaseError::LeadsOnly { .. }
                | CaseError::NotThisNodes { .. }
                | CaseError::CatalogStaffOnly { .. }
                | CaseError::ApplicantsRateOnly
                | CaseError::DelegatedDecision { .. }
                | CaseError::NotDecidingDepartment { .. }
                | CaseError::NotTheHolder
                | CaseError::NotTheSender
                | CaseError::StepsLieElsewhere
        )
    }
}

/// A parameter of an error, typed so the UI words it in the reader's language: an action
/// or a status by its name there, a list joined as the language joins lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    /// Words as they are (a name, an id, item data).
    Text(String),
    Number(u64),
    List(Vec<String>),
    Action(ActionKind),
    Status(Status),
    Rule(Rule),
    Object(ServiceObject),
    Objects(Vec<ServiceObject>),
    /// The kind of a code with a check character (an identity number, a credit code).
    Code(super::codes::CodeKind),
    /// A field of a form or a request, by the name the API gives it (`applicant.name`).
    Field(&'static str),
    /// A field of an item by its path (`materials[1].name`), worded part by part.
    ItemField(String),
    /// An item's problems, each worded in turn.
    ItemProblems(Vec<super::item::ItemProblem>),
}

/// Whether the case, as this node sees it, allows an action of `kind` at all, whoever
/// asks: the state machine, an open conflict (only a resolution is possible then), and
/// what each kind needs of the case (a conflict to resolve, a transfer to sign for, an
/// open rectification to close, all materials before acceptance, no earlier rating).
pub fn state_allows(state: &CaseState, kind: ActionKind) -> Result<(), CaseError> {
    if kind == ActionKind::Resolve {
        return if state.conflicts.is_empty() {
            Err(CaseError::NothingToResolve)
        } else {
            Ok(())
        };
    }
    if !state.conflicts.is_empty() {
        return Err(CaseError::Conflicted);
    }
    if kind == ActionKind::Rate && state.rating.is_some() {
        return Err(CaseError::AlreadyRated);
    }
    if transition(state.status, kind).is_none() {
        return Err(CaseError::NotAllowed {
            action: kind,
            status: state.status,
        });
    }
    match kind {
        ActionKind::Accept if !state.missing.is_empty() => Err(CaseError::MaterialsMissing {
            missing: state.missing.iter().map(|s| s.name.clone()).collect(),
        }),
        ActionKind::SignFor if state.holder.is_none() || state.signed_for.is_some() => {
            Err(CaseError::NothingToSignFor)
        }
        ActionKind::RequestExtension if state.extension_request.is_some() => {
            Err(CaseError::ExtensionPending)
        }
        ActionKind::DeclineExtension if state.extension_request.is_none() => {
            Err(CaseError::NoExtensionRequest)
        }
        // A step finishes only while one is under way (§9.2.2).
        ActionKind::FinishStep if state.current_step().is_none() => Err(CaseError::NoStepUnderWay),
        ActionKind::Rectify
            if state
                .rectification
                .as_ref()
                .is_none_or(|r| r.closed_on.is_some()) =>
        {
            Err(CaseError::NoOpenRectification)
        }
        // §9.5.1: nothing to pay on an item that charges nothing.
        ActionKind::Pay | ActionKind::Exempt if state.fees.lines.is_empty() => {
            Err(FeeRefused::NoFees.into())
        }
        _ => Ok(()),
    }
}

/// Whether step `step` may finish now: it is the step the case is in (started, not
/// finished, the case open), so no step finishes before it started, twice, out of order or
/// after the case closed (§9.2.2). The one rule for a person's act ([`validate`]) and for
/// every receiver's judgement of a received one (`effect`, on the case as its author saw
/// it).
pub fn check_finish_step(state: &CaseState, step: u32) -> Result<(), CaseError> {
    match state.current_step() {
        Some(current) if current == step => Ok(()),
        current => Err(CaseError::NotCurrentStep {
            step,
            current: current.unwrap_or(0),
        }),
    }
}

/// Checks an action a person wants to record, against the case as this node sees it:
/// [`state_allows`] for its kind, then what it must carry (reasons, materials, limits).
/// Who may record it is the engine's question (`engine::act`).
pub fn validate(intake: &Intake, state: &CaseState, action: &Action) -> Result<(), CaseError> {
    let kind = action.kind();
    state_allows(state, kind)?;
    if let Action::Resolve { void, reason, .. } = action {
        if void.is_empty() || void.len() > 64 || reason.trim().is_empty() {
            return Err(CaseError::Invalid {
                field: "reason",
                rule: Rule::ResolutionReason,
            });
        }
        if reason.chars().count() > 4000 {
            return Err(CaseError::Invalid {
                field: "text",
                rule: Rule::TextLength,
            });
        }
        check_action_texts(action)?;
        return Ok(());
    }
    let filled = |s: &str| !s.trim().is_empty();
    match action {
        Action::NotifyMissing { missing, .. } => {
            if missing.is_empty()
                || missing
                    .iter()
                    .any(|m| !filled(&m.name) || !filled(&m.reason))
            {
                return Err(CaseError::Invalid {
                    field: "missing",
                    rule: Rule::MissingList,
                });
            }
            let names: Vec<&str> = intake
                .item
                .materials
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            if let Some(m) = missing.iter().find(|m| !names.contains(&m.name.as_str())) {
                return Err(CaseError::UnknownMaterial {
                    name: m.name.clone(),
                });
            }
        }
        Action::Supplement { materials } => {
            if materials.is_empty() {
                return Err(CaseError::Invalid {
                    field: "materials",
                    rule: Rule::SupplementEmpty,
                });
            }
            let names: Vec<&str> = intake
                .item
                .materials
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            check_materials(&names, materials)?;
        }
        Action::Accept { .. } => {}
        Action::Refuse {
            reason,
            basis,
            remedies,
            ..
        } => {
            require_written_reasons(reason, basis, remedies)?;
        }
        Action::Suspend { procedure, reason } => {
            if !filled(procedure) || !filled(reason) {
                return Err(CaseError::Invalid {
                    field: "procedure",
                    rule: Rule::SuspendReason,
                });
            }
            match intake.item.procedure(procedure) {
                None => {
                    return Err(CaseError::UnknownProcedure {
                        name: procedure.clone(),
                        listed: intake
                            .item
                            .special_procedures
                            .iter()
                            .map(|p| p.name.clone())
                            .collect(),
                    });
                }
                Some(rule) if rule.counted => {
                    return Err(CaseError::CountedProcedure {
                        name: rule.name.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        Action::Resume { .. } => {}
        Action::Extend {
            days,
            reason,
            request,
        } => {
            if let Some(id) = request
                && state
                    .extension_request
                    .as_ref()
                    .is_none_or(|r| r.event_id != *id)
            {
                return Err(CaseError::NoExtensionRequest);
            }
            check_extension(intake, state, *days, reason)?;
        }
        Action::RequestExtension { days, reason } => {
            check_extension(intake, state, *days, reason)?;
        }
        Action::DeclineExtension { reason } => {
            if !filled(reason) {
                return Err(CaseError::Invalid {
                    field: "reason",
                    rule: Rule::DeclineReason,
                });
            }
        }
        Action::Decide {
            approved,
            reason,
            basis,
            remedies,
            ..
        } => {
            if !approved {
                require_written_reasons(reason, basis, remedies)?;
            }
        }
        Action::Complete { result, delivery } => {
            if !filled(result) || !filled(delivery) {
                return Err(CaseError::Invalid {
                    field: "result",
                    rule: Rule::CompleteResult,
                });
            }
        }
        Action::Withdraw { reason } => {
            if !filled(reason) {
                return Err(CaseError::Invalid {
                    field: "reason",
                    rule: Rule::WithdrawReason,
                });
            }
        }
        Action::SignFor { .. } => {}
        Action::Rate {
            level,
            rectify_days,
            ..
        } => {
            if !(1..=5).contains(level) {
                return Err(CaseError::BadRating);
            }
            if Rating::is_bad(*level) && !(1..=120).contains(rectify_days) {
                return Err(CaseError::Invalid {
                    field: "rectify_days",
                    rule: Rule::RectifyDays,
                });
            }
        }
        Action::Rectify { response } => {
            if !filled(response) {
                return Err(CaseError::Invalid {
                    field: "response",
                    rule: Rule::RectifyResponse,
                });
            }
        }
        Action::Pay {
            fee,
            amount_fen,
            receipt,
            ..
        } => {
            fee::check_line(&intake.item.fees, fee, *amount_fen)?;
            if !filled(receipt) || receipt.chars().count() > 40 {
                return Err(CaseError::Invalid {
                    field: "receipt",
                    rule: Rule::PaymentReceipt,
                });
            }
            fee::check_against(&state.fees, fee::Record::Payment, fee, *amount_fen)?;
        }
        Action::Exempt {
            fee,
            amount_fen,
            reason,
            basis,
        } => {
            fee::check_line(&intake.item.fees, fee, *amount_fen)?;
            if !filled(reason) || !filled(basis) {
                return Err(CaseError::Invalid {
                    field: "reason",
                    rule: Rule::ExemptionReason,
                });
            }
            fee::check_against(&state.fees, fee::Record::Exemption, fee, *amount_fen)?;
        }
        Action::Resolve { .. } => {}
        Action::Transfer { to, reason, .. } => {
            if !filled(to) || !filled(reason) {
                return Err(CaseError::Invalid {
                    field: "to",
                    rule: Rule::TransferTo,
                });
            }
        }
        Action::FinishStep { step, .. } => check_finish_step(state, *step)?,
    }
    let texts_too_long = match action {
        Action::Refuse {
            reason,
            basis,
            remedies,
            ..
        }
        | Action::Decide {
            reason,
            basis,
            remedies,
            ..
        } => [reason, basis, remedies]
            .iter()
            .any(|s| s.chars().count() > 4000),
        Action::Suspend { procedure, reason } => {
            procedure.chars().count() > 200 || reason.chars().count() > 4000
        }
        Action::Extend { reason, .. } | Action::Withdraw { reason } => {
            reason.chars().count() > 4000
        }
        Action::Transfer { to, reason, .. } => {
            to.chars().count() > 200 || reason.chars().count() > 4000
        }
        Action::SignFor { note, .. } => note.chars().count() > 1000,
        Action::RequestExtension { reason, .. } | Action::DeclineExtension { reason } => {
            reason.chars().count() > 4000
        }
        Action::Rate { comment, .. } => comment.chars().count() > 1000,
        Action::Rectify { response } => response.chars().count() > 4000,
        Action::FinishStep { note, .. } => note.chars().count() > 4000,
        Action::Complete { result, delivery } => {
            result.chars().count() > 4000 || delivery.chars().count() > 200
        }
        _ => false,
    };
    if texts_too_long {
        return Err(CaseError::Invalid {
            field: "text",
            rule: Rule::TextLength,
        });
    }
    check_action_texts(action)?;
    Ok(())
}

/// An extension (or a request for one): days above zero within what the law leaves, and
/// the reason told to the applicant.
fn check_extension(
    intake: &Intake,
    state: &CaseState,
    days: u32,
    reason: &str,
) -> Result<(), CaseError> {
    if days == 0 || reason.trim().is_empty() {
        return Err(CaseError::Invalid {
            field: "days",
            rule: Rule::ExtensionDays,
        });
    }
    let allowed = intake.item.legal_extension_days;
    let left = allowed.saturating_sub(state.extension_days);
    if days > left {
        return Err(CaseError::ExtensionTooLong {
            requested: days,
            left,
            allowed,
        });
    }
    Ok(())
}

/// The text rule ([`text`]) for what an action carries: names and places are one line,
/// reasons and notes may run over several.
fn check_action_texts(action: &Action) -> Result<(), text::Refused> {
    use text::{line, lines};
    match action {
        Action::NotifyMissing { missing, note } => {
            for m in missing {
                line("missing.name", &m.name)?;
                lines("missing.reason", &m.reason)?;
            }
            lines("note", note)
        }
        Action::Supplement { materials } => materials
            .iter()
            .try_for_each(|m| line("materials.name", &m.name)),
        Action::Accept { .. } => Ok(()),
        Action::FinishStep { note, .. } => lines("note", note),
        Action::Refuse {
            reason,
            basis,
            remedies,
            competent_authority,
        } => {
            lines("reason", reason)?;
            lines("basis", basis)?;
            lines("remedies", remedies)?;
            line(
                "competent_authority",
                competent_authority.as_deref().unwrap_or_default(),
            )
        }
        Action::Suspend { procedure, reason } => {
            line("procedure", procedure)?;
            lines("reason", reason)
        }
        Action::Resume { note } => lines("note", note),
        Action::SignFor { note, on_behalf_of } => {
            line("on_behalf_of", on_behalf_of.as_deref().unwrap_or_default())?;
            lines("note", note)
        }
        Action::Extend { reason, .. }
        | Action::RequestExtension { reason, .. }
        | Action::DeclineExtension { reason }
        | Action::Withdraw { reason } => lines("reason", reason),
        Action::Decide {
            reason,
            basis,
            remedies,
            on_behalf_of,
            ..
        } => {
            lines("reason", reason)?;
            lines("basis", basis)?;
            lines("remedies", remedies)?;
            line("on_behalf_of", on_behalf_of.as_deref().unwrap_or_default())
        }
        Action::Complete { result, delivery } => {
            lines("result", result)?;
            line("delivery", delivery)
        }
        Action::Transfer { to, reason, .. } => {
            line("to", to)?;
            lines("reason", reason)
        }
        Action::Pay { fee, receipt, .. } => {
            line("fee", fee)?;
            line("receipt", receipt)
        }
        Action::Exempt {
            fee, reason, basis, ..
        } => {
            line("fee", fee)?;
            lines("reason", reason)?;
            lines("basis", basis)
        }
        Action::Resolve { void, reason, keep } => {
            for id in void.iter().chain(keep) {
                line("void", id)?;
            }
            lines("reason", reason)
        }
        Action::Rate { comment, .. } => lines("comment", comment),
        Action::Rectify { response } => lines("response", response),
    }
}

fn require_written_reasons(reason: &str, basis: &str, remedies: &str) -> Result<(), CaseError> {
    let filled = |s: &str| !s.trim().is_empty();
    if !filled(reason) || !filled(basis) || !filled(remedies) {
        return Err(CaseError::Invalid {
            field: "reason",
            rule: Rule::WrittenReasons,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::calendar::WarningLevel;
    use crate::domain::item::tests::sample_item;

    pub(crate) const STATION: NodeId = NodeId([1; 16]);
    pub(crate) const HALL: NodeId = NodeId([2; 16]);

    pub(crate) fn ms(date: &str, hour: u64) -> u64 {
        let d: Date = date.parse().unwrap();
        // Midnight CST of `date` is 16:00 UTC the day before.
        (d.days_since_epoch() as u64 * 86_400 + hour * 3600 - 8 * 3600) * 1000
    }

    pub(crate) fn intake() -> Intake {
        let item = sample_item();
        Intake::new(
            &item,
            NewCase {
                situations: Vec::new(),
                applicant: Applicant::NaturalPerson {
                    name: "张三".into(),
                    id_number: ResidentId::parse("440304199001011233").unwrap(),
                    phone: Phone::parse("13800138000").unwrap(),
                },
                agent: None,
                materials: vec![MaterialReceived {
                    name: "户口簿".into(),
                    originals: 1,
                    copies: 1,
                }],
                counter: "1号窗口".into(),
                note: String::new(),
            },
            "worker",
            STATION,
            DivisionCode::parse("440399001001").unwrap(),
            Hlc::new(ms("2026-03-02", 9), 0),
        )
        .unwrap()
    }

    /// The sample intake of an item that charges a fixed 工本费 of ¥20.00 (§9.5.2).
    pub(crate) fn intake_with_fee() -> Intake {
        let mut intake = intake();
        intake.item.fees.push(fee_line());
        intake
    }

    pub(crate) fn fee_line() -> FeeLine {
        FeeLine {
            name: "工本费".into(),
            standard: "20元/证".into(),
            basis: "《居住证暂行条例》第十五条".into(),
            amount_fen: Some(2000),
        }
    }

    pub(crate) fn event(node: NodeId, date: &str, hour: u64, action: Action) -> Event {
        Event {
            at: Hlc::new(ms(date, hour), 0),
            node,
            staff: "worker".into(),
            counter: String::new(),
            stand_in_for: None,
            action,
        }
    }

    pub(crate) fn serial() -> SerialNo {
        SerialNo::parse("11440399990000017K4000599301000202603029900100110001").unwrap()
    }

    pub(crate) fn sample_action(kind: ActionKind) -> Action {
        match kind {
            ActionKind::NotifyMissing => Action::NotifyMissing {
                missing: vec![MissingMaterial {
                    name: "户口簿".into(),
                    reason: "核验家庭成员".into(),
                }],
                note: String::new(),
            },
            ActionKind::Supplement => Action::Supplement {
                materials: vec![MaterialReceived {
                    name: "户口簿".into(),
                    originals: 1,
                    copies: 1,
                }],
            },
            ActionKind::Accept => Action::Accept {
                serial_no: serial(),
                calendar: "cn".into(),
            },
            ActionKind::Refuse => Action::Refuse {
                reason: "不属于本机关职权范围".into(),
                basis: "《行政许可法》第三十二条".into(),
                remedies: "可申请行政复议或提起行政诉讼".into(),
                competent_authority: Some("示范区民政局".into()),
            },
            ActionKind::Suspend => Action::Suspend {
                procedure: "公示".into(),
                reason: "公示7天".into(),
            },
            ActionKind::Resume => Action::Resume {
                note: String::new(),
            },
            ActionKind::Extend => Action::Extend {
                days: 5,
                reason: "情况复杂".into(),
                request: None,
            },
            ActionKind::RequestExtension => Action::RequestExtension {
                days: 5,
                reason: "需入户核查".into(),
            },
            ActionKind::DeclineExtension => Action::DeclineExtension {
                reason: "可在期限内办结".into(),
            },
            ActionKind::Decide => Action::Decide {
                approved: true,
                reason: String::new(),
                basis: String::new(),
                remedies: String::new(),
                on_behalf_of: None,
            },
            ActionKind::Complete => Action::Complete {
                result: "准予".into(),
                delivery: "窗口领取".into(),
            },
            ActionKind::Withdraw => Action::Withdraw {
                reason: "申请人主动撤回".into(),
            },
            ActionKind::Transfer => Action::Transfer {
                to: "福田区民政局".into(),
                reason: "需区级部门审批".into(),
                to_node: None,
            },
            ActionKind::SignFor => Action::SignFor {
                note: String::new(),
                on_behalf_of: None,
            },
            ActionKind::Resolve => Action::Resolve {
                void: vec!["x".into()],
                reason: "组长裁定".into(),
                keep: Vec::new(),
            },
            ActionKind::Rate => Action::Rate {
                level: 4,
                comment: String::new(),
                rectify_days: 15,
            },
            ActionKind::Pay => Action::Pay {
                fee: "工本费".into(),
                amount_fen: 2000,
                method: PayMethod::Cash,
                receipt: "NO.0001".into(),
            },
            ActionKind::Exempt => Action::Exempt {
                fee: "工本费".into(),
                amount_fen: 500,
                reason: "低保户减半".into(),
                basis: "市政府文件".into(),
            },
            ActionKind::Rectify => Action::Rectify {
                response: "已回访".into(),
            },
            ActionKind::FinishStep => Action::FinishStep {
                step: 1,
                note: String::new(),
            },
        }
    }

    /// The examples cover every code, and every code is listed.
    #[test]
    fn every_error_code_is_listed_and_exemplified() {
        let mut seen: Vec<&str> = CaseError::examples().iter().map(CaseError::code).collect();
        seen.sort();
        seen.dedup();
        let mut listed = CaseError::CODES.to_vec();
        listed.sort();
        assert_eq!(seen, listed);
    }

    /// Every (status, action) pair of the state machine.
    #[test]
    fn transition_table_covers_every_pair() {
        use ActionKind as A;
        use Status as S;
        let allowed: &[(S, A, S)] = &[
            (S::Submitted, A::NotifyMissing, S::AwaitingSupplement),
            (S::Submitted, A::Supplement, S::Submitted),
            (S::Submitted, A::Accept, S::Accepted),
            (S::Submitted, A::Refuse, S::Refused),
            (S::Submitted, A::Withdraw, S::Withdrawn),
            (S::AwaitingSupplement, A::Supplement, S::Submitted),
            (S::AwaitingSupplement, A::Refuse, S::Refused),
            (S::AwaitingSupplement, A::Withdraw, S::Withdrawn),
            (S::Accepted, A::Suspend, S::Suspended),
            (S::Accepted, A::Extend, S::Accepted),
            (S::Accepted, A::RequestExtension, S::Accepted),
            (S::Accepted, A::DeclineExtension, S::Accepted),
            (S::Accepted, A::Transfer, S::Accepted),
            (S::Accepted, A::Decide, S::Decided),
            (S::Accepted, A::Complete, S::Completed),
            (S::Accepted, A::Withdraw, S::Withdrawn),
            (S::Suspended, A::Resume, S::Accepted),
            (S::Suspended, A::Withdraw, S::Withdrawn),
            (S::Decided, A::Complete, S::Completed),
            (S::Accepted, A::SignFor, S::Accepted),
            (S::Suspended, A::SignFor, S::Suspended),
            (S::Decided, A::SignFor, S::Decided),
            (S::Completed, A::Rate, S::Completed),
            (S::Completed, A::Rectify, S::Completed),
            (S::Accepted, A::FinishStep, S::Accepted),
            (S::Suspended, A::FinishStep, S::Suspended),
            (S::Decided, A::FinishStep, S::Decided),
            (S::Submitted, A::Pay, S::Submitted),
            (S::AwaitingSupplement, A::Pay, S::AwaitingSupplement),
            (S::Accepted, A::Pay, S::Accepted),
            (S::Suspended, A::Pay, S::Suspended),
            (S::Decided, A::Pay, S::Decided),
            (S::Completed, A::Pay, S::Completed),
            (S::Submitted, A::Exempt, S::Submitted),
            (S::AwaitingSupplement, A::Exempt, S::AwaitingSupplement),
            (S::Accepted, A::Exempt, S::Accepted),
            (S::Suspended, A::Exempt, S::Suspended),
            (S::Decided, A::Exempt, S::Decided),
            (S::Completed, A::Exempt, S::Completed),
        ];
        let mut checked = 0;
        for status in Status::ALL {
            for action in ActionKind::ALL {
                // A resolution is possible in every status and moves nothing.
                let expected = if action == A::Resolve {
                    Some(status)
                } else {
                    allowed
                        .iter()
                        .find(|(s, a, _)| *s == status && *a == action)
                        .map(|(_, _, next)| *next)
                };
                assert_eq!(
                    transition(status, action),
                    expected,
                    "{status:?} + {action:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 8 * 20);
        // A closed case changes status no more.
        for status in [S::Completed, S::Refused, S::Withdrawn] {
            assert!(
                ActionKind::ALL
                    .iter()
                    .all(|a| transition(status, *a).is_none_or(|next| next == status))
            );
        }
    }

    /// §9.5: what a payment or an exemption may be, against the case as it stands.
    #[test]
    fn fees_are_recorded_only_as_the_item_allows() {
        let with_fee = intake_with_fee();
        let without = intake();
        let accepted = |intake: &Intake| {
            derive(
                intake,
                &[event(
                    STATION,
                    "2026-03-02",
                    10,
                    sample_action(ActionKind::Accept),
                )],
            )
        };
        let pay = |fee: &str, amount_fen: u64, receipt: &str| Action::Pay {
            fee: fee.into(),
            amount_fen,
            method: PayMethod::Card,
            receipt: receipt.into(),
        };
        let exempt = |amount_fen: u64, reason: &str, basis: &str| Action::Exempt {
            fee: "工本费".into(),
            amount_fen,
            reason: reason.into(),
            basis: basis.into(),
        };
        let invalid = |field, rule| Err(CaseError::Invalid { field, rule });
        let fee_err = |r: FeeRefused| Err(CaseError::Fee(r));
        let cases: Vec<(&str, &Intake, Action, Result<(), CaseError>)> = vec![
            (
                "the whole fee",
                &with_fee,
                pay("工本费", 2000, "NO.1"),
                Ok(()),
            ),
            ("part of it", &with_fee, pay("工本费", 1000, "NO.1"), Ok(())),
            (
                "an item without fees",
                &without,
                pay("工本费", 2000, "NO.1"),
                fee_err(FeeRefused::NoFees),
            ),
            (
                "a line the item lacks",
                &with_fee,
                pay("办证费", 2000, "NO.1"),
                fee_err(FeeRefused::UnknownLine {
                    name: "办证费".into(),
                }),
            ),
            (
                "nothing",
                &with_fee,
                pay("工本费", 0, "NO.1"),
                fee_err(FeeRefused::Zero),
            ),
            (
                "more than the standard",
                &with_fee,
                pay("工本费", 2001, "NO.1"),
                fee_err(FeeRefused::TooMuch {
                    name: "工本费".into(),
                    allowed: 2000,
                }),
            ),
            (
                "no receipt",
                &with_fee,
                pay("工本费", 2000, " "),
                invalid("receipt", Rule::PaymentReceipt),
            ),
            (
                "a receipt number too long",
                &with_fee,
                pay("工本费", 2000, &"9".repeat(41)),
                invalid("receipt", Rule::PaymentReceipt),
            ),
            (
                "an exemption",
                &with_fee,
                exempt(2000, "残疾人", "市政策"),
                Ok(()),
            ),
            (
                "an exemption without its basis",
                &with_fee,
                exempt(2000, "残疾人", ""),
                invalid("reason", Rule::ExemptionReason),
            ),
            (
                "an exemption without its reason",
                &with_fee,
                exempt(2000, "", "市政策"),
                invalid("reason", Rule::ExemptionReason),
            ),
        ];
        for (what, intake, action, expected) in cases {
            assert_eq!(
                validate(intake, &accepted(intake), &action),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn payments_add_up_to_the_line_and_a_second_one_conflicts() {
        let intake = intake_with_fee();
        let accept = event(STATION, "2026-03-02", 10, sample_action(ActionKind::Accept));
        let exempt = event(
            STATION,
            "2026-03-03",
            9,
            Action::Exempt {
                fee: "工本费".into(),
                amount_fen: 500,
                reason: "低保户减半".into(),
                basis: "市政府文件".into(),
            },
        );
        let pay = |hour, node, amount_fen| {
            event(
                node,
                "2026-03-03",
                hour,
                Action::Pay {
                    fee: "工本费".into(),
                    amount_fen,
                    method: PayMethod::Mobile,
                    receipt: "NO.0001".into(),
                },
            )
        };
        let state = derive(&intake, std::slice::from_ref(&accept));
        assert_eq!(state.fees.outstanding_fen(), 2000);
        assert_eq!(state.fees.unsettled().len(), 1);
        let state = derive(
            &intake,
            &[accept.clone(), exempt.clone(), pay(10, STATION, 1500)],
        );
        assert!(state.conflicts.is_empty());
        assert_eq!(
            (
                state.fees.paid_fen(),
                state.fees.exempt_fen(),
                state.fees.outstanding_fen()
            ),
            (1500, 500, 0)
        );
        assert!(state.fees.unsettled().is_empty());
        let line = &state.fees.lines[0];
        let payment = line.payment.as_ref().unwrap();
        assert_eq!(
            (payment.receipt.as_str(), payment.staff.as_str()),
            ("NO.0001", "worker")
        );
        assert_eq!(payment.on, "2026-03-03".parse().unwrap());
        // The same line paid twice, at two nodes apart: the later one is a conflict and
        // counts for nothing until a lead resolves it; so is a payment beyond what is
        // left after the exemption.
        let twice = derive(
            &intake,
            &[accept.clone(), pay(10, STATION, 2000), pay(11, HALL, 2000)],
        );
        assert_eq!(twice.conflicts.len(), 1);
        assert_eq!(twice.fees.paid_fen(), 2000);
        let beyond = derive(&intake, &[accept.clone(), exempt, pay(10, STATION, 2000)]);
        assert_eq!(beyond.conflicts.len(), 1);
        assert_eq!(beyond.fees.paid_fen(), 0);
        // Not on a withdrawn case (no refunds in this version), still at the handover.
        let withdrawn = derive(
            &intake,
            &[
                accept.clone(),
                event(
                    STATION,
                    "2026-03-03",
                    8,
                    sample_action(ActionKind::Withdraw),
                ),
            ],
        );
        assert_eq!(
            state_allows(&withdrawn, ActionKind::Pay),
            Err(CaseError::NotAllowed {
                action: ActionKind::Pay,
                status: Status::Withdrawn
            })
        );
        let completed = derive(
            &intake,
            &[
                accept,
                event(
                    STATION,
                    "2026-03-03",
                    8,
                    sample_action(ActionKind::Complete),
                ),
            ],
        );
        assert_eq!(state_allows(&completed, ActionKind::Pay), Ok(()));
        // Cases of an item without fees are offered neither.
        let plain = derive(&super::tests::intake(), &[]);
        assert_eq!(
            state_allows(&plain, ActionKind::Exempt),
            Err(CaseError::Fee(FeeRefused::NoFees))
        );
    }

    /// A case written before fees existed reads, charging nothing; one written now keeps
    /// its item version's fee lines.
    #[test]
    fn the_snapshot_keeps_the_fee_lines_and_old_cases_read() {
        let intake = intake_with_fee();
        let json = serde_json::to_value(&intake).unwrap();
        assert_eq!(json["item"]["fees"][0]["amount_fen"], 2000);
        let mut old = serde_json::to_value(super::tests::intake()).unwrap();
        assert!(old["item"].get("fees").is_none());
        old["item"].as_object_mut().unwrap().remove("fees");
        let read: Intake = serde_json::from_value(old).unwrap();
        assert!(read.item.fees.is_empty());
        let mut item = sample_item();
        item.fees.push(fee_line());
        assert_eq!(ItemSnapshot::of(&item).fees, vec![fee_line()]);
    }

    /// `validate` refuses exactly the pairs the state machine refuses, with a message that
    /// names both, for every (status, action) pair.
    #[test]
    fn validate_follows_the_state_machine_for_every_pair() {
        let intake = intake_with_fee();
        for status in Status::ALL {
            for kind in ActionKind::ALL {
                // What the action itself needs besides the status.
                let mut state = CaseState {
                    status,
                    ..derive(&intake, &[])
                };
                match kind {
                    ActionKind::SignFor => state.holder = Some("福田区民政局".into()),
                    ActionKind::DeclineExtension => {
                        state.extension_request = Some(ExtensionRequest {
                            event_id: "r".into(),
                            days: 5,
                            reason: "需入户核查".into(),
                            on: "2026-03-10".parse().unwrap(),
                            staff: "worker".into(),
                        })
                    }
                    ActionKind::Rectify => {
                        state.rectification = Some(Rectification {
                            opened_on: "2026-03-10".parse().unwrap(),
                            days: 15,
                            closed_on: None,
                            response: String::new(),
                        })
                    }
                    ActionKind::FinishStep => state.steps.push(StepRecord {
                        started_on: "2026-03-10".parse().unwrap(),
                        finished: None,
                    }),
                    ActionKind::Resolve => state.conflicts.push(Conflict {
                        event_id: "x".into(),
                        action: ActionKind::Decide,
                        node: HALL,
                        status_then: status,
                        against: None,
                    }),
                    _ => {}
                }
                let result = validate(&intake, &state, &sample_action(kind));
                match transition(status, kind) {
                    Some(_) => assert_eq!(result, Ok(()), "{status:?} + {kind:?}"),
                    None => {
                        let err = result.unwrap_err();
                        assert_eq!(
                            err,
                            CaseError::NotAllowed {
                                action: kind,
                                status
                            }
                        );
                        assert!(
                            err.to_string().contains(kind.as_str())
                                && err.to_string().contains(status.as_str())
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_full_case_with_a_suspension() {
        let intake = intake();
        let events = vec![
            event(
                STATION,
                "2026-03-02",
                10,
                Action::Accept {
                    serial_no: serial(),
                    calendar: "cn".into(),
                },
            ),
            event(HALL, "2026-03-04", 10, sample_action(ActionKind::Suspend)),
            event(HALL, "2026-03-06", 10, sample_action(ActionKind::Resume)),
            event(HALL, "2026-03-20", 10, sample_action(ActionKind::Decide)),
        ];
        let state = derive(&intake, &events);
        assert_eq!(state.status, Status::Decided);
        assert_eq!(state.accepted_on, Some("2026-03-02".parse().unwrap()));
        assert_eq!(
            state.suspensions,
            vec![DateSpan {
                start: "2026-03-04".parse().unwrap(),
                end: "2026-03-06".parse().unwrap()
            }]
        );
        assert!(state.conflicts.is_empty() && state.missing.is_empty());
        let dl = state.deadlines(&intake, Calendar::china()).unwrap();
        // 20 working days from 03-02 would end 03-30; two suspended days push it to 04-01.
        assert_eq!(dl.committed_due, "2026-04-01".parse().unwrap());
        // Legal 30: 03-02 + 30 wd = 04-14 (04-06 is 清明), + 2 suspended days = 04-16.
        assert_eq!(dl.legal_due, "2026-04-16".parse().unwrap());
        assert_eq!(
            dl.level_on("2026-04-02".parse().unwrap()),
            WarningLevel::Red
        );
    }

    #[test]
    fn a_transfer_hands_the_case_on_without_stopping_its_clock() {
        let intake = intake();
        let accept = event(
            STATION,
            "2026-03-03",
            10,
            Action::Accept {
                serial_no: serial(),
                calendar: "cn".into(),
            },
        );
        let accepted = derive(&intake, std::slice::from_ref(&accept));
        let transfer = event(HALL, "2026-03-04", 10, sample_action(ActionKind::Transfer));
        let transferred = derive(&intake, &[accept, transfer]);
        assert_eq!(transferred.status, Status::Accepted);
        assert_eq!(transferred.holder.as_deref(), Some("福田区民政局"));
        assert!(transferred.conflicts.is_empty());
        // The limits keep running as before (§5.5.4: a transfer is not a suspension).
        assert_eq!(transferred.suspensions, accepted.suspensions);
        assert_eq!(transferred.accepted_on, accepted.accepted_on);
        // Where to and why are written down.
        let blank = Action::Transfer {
            to: " ".into(),
            reason: "需区级部门审批".into(),
            to_node: None,
        };
        assert!(matches!(
            validate(&intake, &transferred, &blank),
            Err(CaseError::Invalid { field: "to", .. })
        ));
    }

    #[test]
    fn derive_is_independent_of_input_order() {
        let intake = intake();
        let events = vec![
            event(
                STATION,
                "2026-03-02",
                10,
                sample_action(ActionKind::NotifyMissing),
            ),
            event(
                STATION,
                "2026-03-03",
                10,
                sample_action(ActionKind::Supplement),
            ),
            event(
                STATION,
                "2026-03-03",
                11,
                Action::Accept {
                    serial_no: serial(),
                    calendar: "cn".into(),
                },
            ),
            event(
                STATION,
                "2026-03-05",
                10,
                sample_action(ActionKind::Withdraw),
            ),
            event(HALL, "2026-03-05", 10, sample_action(ActionKind::Decide)),
        ];
        let reference = derive(&intake, &events);
        let mut permuted = events.clone();
        for i in 0..events.len() * 3 {
            permuted.rotate_left(1);
            permuted.swap(i % events.len(), (i * 7 + 3) % events.len());
            assert_eq!(derive(&intake, &permuted), reference);
        }
        // Same instant on two nodes: the node id breaks the tie, so the station (01..)
        // withdraws first and the hall's decision is the conflicting one.
        assert_eq!(reference.status, Status::Withdrawn);
        assert_eq!(reference.conflicts.len(), 1);
        assert_eq!(reference.conflicts[0].action, ActionKind::Decide);
        assert_eq!(reference.conflicts[0].node, HALL);
        assert_eq!(reference.conflicts[0].status_then, Status::Withdrawn);
    }

    #[test]
    fn concurrent_withdrawal_and_approval_are_both_kept_and_flagged() {
        let intake = intake();
        let accept = event(
            STATION,
            "2026-03-02",
            10,
            Action::Accept {
                serial_no: serial(),
                calendar: "cn".into(),
            },
        );
        // The hall approves at 10:00 on 03-05 without having seen the station's withdrawal
        // at 11:00; both nodes validated their own event against what they knew.
        let approve = event(HALL, "2026-03-05", 10, sample_action(ActionKind::Decide));
        let withdraw = event(
            STATION,
            "2026-03-05",
            11,
            sample_action(ActionKind::Withdraw),
        );
        let state = derive(&intake, &[accept, withdraw, approve]);
        assert_eq!(state.status, Status::Decided);
        assert_eq!(state.conflicts.len(), 1);
        assert_eq!(state.conflicts[0].action, ActionKind::Withdraw);
        // Further actions wait for a person to resolve it.
        let err = validate(&intake, &state, &sample_action(ActionKind::Complete)).unwrap_err();
        assert_eq!(err, CaseError::Conflicted);
    }

    #[test]
    fn accepting_needs_every_required_material() {
        let item = sample_item();
        let mut new_case = NewCase {
            situations: Vec::new(),
            applicant: intake().applicant,
            agent: None,
            materials: vec![MaterialReceived {
                name: "户口簿".into(),
                originals: 1,
                copies: 0,
            }],
            counter: String::new(),
            note: String::new(),
        };
        let division = DivisionCode::parse("440399001001").unwrap();
        let short = Intake::new(
            &item,
            new_case.clone(),
            "w",
            STATION,
            division.clone(),
            Hlc::new(1, 0),
        )
        .unwrap();
        let state = derive(&short, &[]);
        assert_eq!(state.missing.len(), 1);
        assert_eq!(state.missing[0].copies_needed, 1);
        let accept = Action::Accept {
            serial_no: serial(),
            calendar: "cn".into(),
        };
        let err = validate(&short, &state, &accept).unwrap_err();
        assert!(
            err.to_string().contains("户口簿") && err.to_string().contains("one-time notice"),
            "{err}"
        );
        // The conditional material (委托书) is never required for acceptance.
        new_case.materials[0].copies = 1;
        let full = Intake::new(&item, new_case, "w", STATION, division, Hlc::new(1, 0)).unwrap();
        assert_eq!(validate(&full, &derive(&full, &[]), &accept), Ok(()));
        // A supplement completes what was short.
        let supplemented = derive(
            &short,
            &[event(
                STATION,
                "2026-03-03",
                9,
                Action::Supplement {
                    materials: vec![MaterialReceived {
                        name: "户口簿".into(),
                        originals: 0,
                        copies: 1,
                    }],
                },
            )],
        );
        assert!(supplemented.missing.is_empty());
    }

    #[test]
    fn content_rules() {
        let intake = intake();
        let accepted = derive(
            &intake,
            &[event(
                STATION,
                "2026-03-02",
                10,
                sample_action(ActionKind::Accept),
            )],
        );
        let submitted = derive(&intake, &[]);
        type Case = (&'static str, bool, Action, &'static str);
        let table: Vec<Case> = vec![
            (
                "refusal without reason",
                false,
                Action::Refuse {
                    reason: "".into(),
                    basis: "x".into(),
                    remedies: "y".into(),
                    competent_authority: None,
                },
                "reason, its legal basis and the applicant's remedies",
            ),
            (
                "refusal without remedies",
                false,
                Action::Refuse {
                    reason: "x".into(),
                    basis: "x".into(),
                    remedies: " ".into(),
                    competent_authority: None,
                },
                "remedies",
            ),
            (
                "denial without basis",
                true,
                Action::Decide {
                    approved: false,
                    reason: "x".into(),
                    basis: "".into(),
                    remedies: "y".into(),
                    on_behalf_of: None,
                },
                "legal basis",
            ),
            (
                "extension beyond the law",
                true,
                Action::Extend {
                    days: 16,
                    reason: "x".into(),
                    request: None,
                },
                "15 left of 15",
            ),
            (
                "zero extension",
                true,
                Action::Extend {
                    days: 0,
                    reason: "x".into(),
                    request: None,
                },
                "above zero",
            ),
            (
                "empty notice",
                false,
                Action::NotifyMissing {
                    missing: vec![],
                    note: "".into(),
                },
                "every missing material",
            ),
            (
                "notice for an unknown material",
                false,
                Action::NotifyMissing {
                    missing: vec![MissingMaterial {
                        name: "护照".into(),
                        reason: "x".into(),
                    }],
                    note: "".into(),
                },
                "not one of this item's materials",
            ),
            (
                "completion without delivery",
                true,
                Action::Complete {
                    result: "x".into(),
                    delivery: "".into(),
                },
                "delivered",
            ),
            (
                "suspension without reason",
                true,
                Action::Suspend {
                    procedure: "公示".into(),
                    reason: "".into(),
                },
                "special procedure",
            ),
        ];
        for (why, on_accepted, action, needle) in table {
            let state = if on_accepted { &accepted } else { &submitted };
            let err = validate(&intake, state, &action).expect_err(why);
            assert!(err.to_string().contains(needle), "{why}: {err}");
        }
        let extended = derive(
            &intake,
            &[
                event(STATION, "2026-03-02", 10, sample_action(ActionKind::Accept)),
                event(
                    STATION,
                    "2026-03-03",
                    10,
                    Action::Extend {
                        days: 10,
                        reason: "x".into(),
                        request: None,
                    },
                ),
            ],
        );
        let err = validate(
            &intake,
            &extended,
            &Action::Extend {
                days: 6,
                reason: "x".into(),
                request: None,
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            CaseError::ExtensionTooLong {
                requested: 6,
                left: 5,
                allowed: 15
            }
        );
    }

    #[test]
    fn intake_rules() {
        let item = sample_item();
        let base = NewCase {
            situations: Vec::new(),
            applicant: intake().applicant,
            agent: None,
            materials: vec![],
            counter: String::new(),
            note: String::new(),
        };
        let division = DivisionCode::parse("440399001001").unwrap();
        let make = |item: &Item, new: NewCase| {
            Intake::new(item, new, "w", STATION, division.clone(), Hlc::new(1, 0))
        };
        let mut unknown = base.clone();
        unknown.materials.push(MaterialReceived {
            name: "护照".into(),
            originals: 1,
            copies: 0,
        });
        assert_eq!(
            make(&item, unknown).unwrap_err(),
            CaseError::UnknownMaterial {
                name: "护照".into()
            }
        );
        let mut cancelled = item.clone();
        cancelled.status = ItemStatus::Cancelled;
        assert!(matches!(
            make(&cancelled, base.clone()),
            Err(CaseError::ItemCancelled { .. })
        ));
        // A new item is taken from its effective date, on the day received (China time:
        // 16:00 UTC on the 9th is already the 10th).
        let received = |utc: &str| {
            let day: crate::domain::calendar::Date = utc.parse().unwrap();
            Hlc::new(
                day.days_since_epoch() as u64 * 86_400_000 + 16 * 3_600_000,
                0,
            )
        };
        let mut scheduled = item.clone();
        scheduled.effective_date = Some("2026-03-10".parse().unwrap());
        let on = |utc: &str| {
            Intake::new(
                &scheduled,
                base.clone(),
                "w",
                STATION,
                division.clone(),
                received(utc),
            )
            .err()
            .map(|e| e.code())
        };
        assert_eq!(on("2026-03-08"), Some("item_not_yet_effective"));
        assert_eq!(on("2026-03-09"), None);
        assert_eq!(on("2026-03-20"), None);
        let mut penalty = item.clone();
        penalty.kind = crate::domain::item::PowerKind::Penalty;
        assert!(matches!(
            make(&penalty, base.clone()),
            Err(CaseError::NotOnApplication { .. })
        ));
        let mut both = item.clone();
        both.service_objects
            .push(crate::domain::item::ServiceObject::LegalPerson);
        let mut nameless = base.clone();
        nameless.applicant = Applicant::LegalPerson {
            name: "示范公司".into(),
            credit_code: CreditCode::parse("91350100M000100Y43").unwrap(),
            contact_name: " ".into(),
            phone: Phone::parse("0755-12345678").unwrap(),
        };
        assert!(
            make(&both, nameless)
                .unwrap_err()
                .to_string()
                .contains("contact_name")
        );
        assert!(make(&item, base).is_ok());
    }

    /// The text rule at intake and on every action: which field refuses which character.
    #[test]
    fn control_characters_are_refused_where_people_type() {
        let item = sample_item();
        let division = DivisionCode::parse("440399001001").unwrap();
        let base = NewCase {
            situations: Vec::new(),
            applicant: intake().applicant,
            agent: None,
            materials: vec![],
            counter: "1号窗口".into(),
            note: "第一行\r\n第二行\t备注".into(),
        };
        let rlo_name = |new: &mut NewCase| {
            new.applicant = Applicant::NaturalPerson {
                name: "张\u{202E}三".into(),
                id_number: ResidentId::parse("440304199001011233").unwrap(),
                phone: Phone::parse("13800138000").unwrap(),
            }
        };
        type Edit = fn(&mut NewCase);
        let intakes: Vec<(Edit, Option<(&str, char)>)> = vec![
            (|_| {}, None),
            (rlo_name, Some(("applicant.name", '\u{202E}'))),
            (|n| n.counter = "1号\n窗口".into(), Some(("counter", '\n'))),
            (|n| n.note = "\u{0}".into(), Some(("note", '\u{0}'))),
            (
                |n| {
                    n.agent = Some(Agent {
                        name: "王\u{1b}五".into(),
                        id_number: ResidentId::parse("11010519491231002X").unwrap(),
                        phone: Phone::parse("13900139000").unwrap(),
                    })
                },
                Some(("agent.name", '\u{1b}')),
            ),
        ];
        for (edit, refused) in intakes {
            let mut new = base.clone();
            edit(&mut new);
            let got = Intake::new(&item, new, "w", STATION, division.clone(), Hlc::new(1, 0));
            let expected =
                refused.map(|(field, found)| CaseError::Text(text::Refused { field, found }));
            assert_eq!(got.err(), expected);
        }

        let intake = intake();
        let accepted = derive(
            &intake,
            &[event(
                STATION,
                "2026-03-02",
                10,
                sample_action(ActionKind::Accept),
            )],
        );
        let actions: Vec<(Action, Option<(&str, char)>)> = vec![
            (
                Action::Withdraw {
                    reason: "申请人\r\n本人要求".into(),
                },
                None,
            ),
            (
                Action::Withdraw {
                    reason: "\u{2066}x".into(),
                },
                Some(("reason", '\u{2066}')),
            ),
            (
                Action::Complete {
                    result: "准予".into(),
                    delivery: "窗口\t领取".into(),
                },
                Some(("delivery", '\t')),
            ),
            (
                Action::Transfer {
                    to: "民政局\u{202E}".into(),
                    reason: "x".into(),
                    to_node: None,
                },
                Some(("to", '\u{202E}')),
            ),
            (
                Action::Extend {
                    days: 1,
                    reason: "x\u{7f}".into(),
                    request: None,
                },
                Some(("reason", '\u{7f}')),
            ),
        ];
        for (action, refused) in actions {
            let expected =
                refused.map(|(field, found)| CaseError::Text(text::Refused { field, found }));
            assert_eq!(
                validate(&intake, &accepted, &action).err(),
                expected,
                "{action:?}"
            );
        }
        let err = CaseError::Text(text::Refused {
            field: "reason",
            found: '\0',
        });
        assert_eq!(err.code(), "control_character");
    }

    #[test]
    fn special_procedures_decide_whether_the_clock_stops() {
        let intake = intake();
        let accepted = derive(
            &intake,
            &[event(
                STATION,
                "2026-03-02",
                10,
                sample_action(ActionKind::Accept),
            )],
        );
        let suspend = |procedure: &str| Action::Suspend {
            procedure: procedure.into(),
            reason: "r".into(),
        };
        let err = validate(&intake, &accepted, &suspend("听证")).unwrap_err();
        assert!(
            err.to_string().contains("公示、专家评审、现场核查"),
            "{err}"
        );
        let err = validate(&intake, &accepted, &suspend("现场核查")).unwrap_err();
        assert_eq!(
            err,
            CaseError::CountedProcedure {
                name: "现场核查".into()
            }
        );
        assert_eq!(validate(&intake, &accepted, &suspend(" 公示 ")), Ok(()));

        // 公示 stops the clock for at most 7 calendar days, even if resumed later.
        let base = vec![
            event(STATION, "2026-03-02", 10, sample_action(ActionKind::Accept)),
            event(STATION, "2026-03-04", 10, suspend("公示")),
        ];
        let mut late = base.clone();
        late.push(event(
            STATION,
            "2026-03-20",
            10,
            sample_action(ActionKind::Resume),
        ));
        let state = derive(&intake, &late);
        let span = DateSpan {
            start: "2026-03-04".parse().unwrap(),
            end: "2026-03-11".parse().unwrap(),
        };
        assert_eq!(state.suspensions, vec![span]);
        // Still open: counted as lasting its 7 days, and the level is not frozen.
        let open = derive(&intake, &base);
        assert_eq!(
            (open.suspensions.clone(), open.clock_frozen, open.status),
            (vec![span], false, Status::Suspended)
        );
        // An open-ended procedure freezes the level instead.
        let expert = derive(
            &intake,
            &[
                base[0].clone(),
                event(STATION, "2026-03-04", 10, suspend("专家评审")),
            ],
        );
        assert!(expert.clock_frozen && expert.suspensions.is_empty());
    }

    #[test]
    fn concurrent_extensions_cannot_exceed_the_legal_allowance() {
        let intake = intake();
        let extend = |days| Action::Extend {
            days,
            reason: "情况复杂".into(),
            request: None,
        };
        let events = vec![
            event(STATION, "2026-03-02", 10, sample_action(ActionKind::Accept)),
            event(STATION, "2026-03-05", 10, extend(10)),
            event(HALL, "2026-03-05", 10, extend(10)),
        ];
        let state = derive(&intake, &events);
        assert_eq!(state.extension_days, 10);
        assert_eq!(state.conflicts.len(), 1);
        assert_eq!(state.conflicts[0].action, ActionKind::Extend);
    }

    #[test]
    fn the_applicant_must_be_one_the_item_serves() {
        let item = sample_item();
        let company = NewCase {
            situations: Vec::new(),
            applicant: Applicant::LegalPerson {
                name: "示范公司".into(),
                credit_code: CreditCode::parse("91350100M000100Y43").unwrap(),
                contact_name: "赵六".into(),
                phone: Phone::parse("0755-12345678").unwrap(),
            },
            agent: None,
            materials: vec![],
            counter: String::new(),
            note: String::new(),
        };
        let division = DivisionCode::parse("440399001001").unwrap();
        let err = Intake::new(&item, company, "w", STATION, division, Hlc::new(1, 0)).unwrap_err();
        assert!(
            err.to_string().contains("legal person") && err.to_string().contains("natural person"),
            "{err}"
        );
    }

    #[test]
    fn phones() {
        for ok in [
            "13800138000",
            "0755-12345678",
            "+86 138 0013 8000",
            "1234567",
        ] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "12345", "138-0013-800a", "1380013800013800138", "+"] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Phone::parse("0755-1234 5678").unwrap().tail(), "5678");
        assert_eq!(
            format!("{:?}", Phone::parse("13800138000").unwrap()),
            "Phone(…8000)"
        );
    }

    #[test]
    fn event_json_is_stable() {
        let e = event(
            STATION,
            "2026-03-02",
            10,
            sample_action(ActionKind::Withdraw),
        );
        let json = serde_json::to_string(&e).unwrap();
        let expected = format!(
            r#"{{"at":"{}","node":"01010101010101010101010101010101","staff":"worker","kind":"withdraw","reason":"申请人主动撤回"}}"#,
            e.at.to_hex()
        );
        assert_eq!(json, expected);
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert!(e.id().starts_with(&e.at.to_hex()));
    }

    fn accepted_on(date: &str) -> Event {
        event(
            STATION,
            date,
            10,
            Action::Accept {
                serial_no: serial(),
                calendar: "cn".into(),
            },
        )
    }

    /// Time used and left, the way the case page shows it, day by day: table-driven over
    /// the plain case and one with a special procedure (20 and 30 working days).
    #[test]
    fn time_used_and_left_in_working_days() {
        let intake = intake();
        let cal = Calendar::china();
        let plain = vec![accepted_on("2026-03-02")];
        let mut suspended = plain.clone();
        suspended.push(event(
            HALL,
            "2026-03-04",
            10,
            sample_action(ActionKind::Suspend),
        ));
        suspended.push(event(
            HALL,
            "2026-03-06",
            10,
            sample_action(ActionKind::Resume),
        ));
        // (events, today) → (committed used, left, overdue), (legal used, left, overdue), suspended days
        type Days = (u32, u32, u32);
        let table: [(&[Event], &str, Days, Days, u32); 6] = [
            (&plain, "2026-03-02", (0, 20, 0), (0, 30, 0), 0),
            (&plain, "2026-03-09", (5, 15, 0), (5, 25, 0), 0),
            (&plain, "2026-03-30", (20, 0, 0), (20, 10, 0), 0),
            (&plain, "2026-03-31", (20, 0, 1), (21, 9, 0), 0),
            (&plain, "2026-04-15", (20, 0, 11), (30, 0, 1), 0),
            (&suspended, "2026-03-09", (3, 17, 0), (3, 27, 0), 2),
        ];
        for (events, today, committed, legal, suspended_days) in table {
            let state = derive(&intake, events);
            let used = state
                .time_used(&intake, cal, today.parse().unwrap())
                .unwrap();
            let row = |l: LimitUsed| (l.used, l.left, l.overdue);
            assert_eq!(
                (row(used.committed), row(used.legal), used.suspended_days),
                (committed, legal, suspended_days),
                "{today} with {} events",
                events.len()
            );
        }
        assert_eq!(
            derive(&intake, &[]).time_used(&intake, cal, "2026-03-09".parse().unwrap()),
            None,
            "not accepted: no limits run"
        );
    }

    /// A suspension and an extension move both deadlines: the suspended days and the
    /// extension's working days are added to the committed and to the legal limit alike.
    #[test]
    fn suspension_and_extension_move_both_deadlines() {
        let intake = intake();
        let cal = Calendar::china();
        let base = [accepted_on("2026-03-02")];
        let plain = derive(&intake, &base).deadlines(&intake, cal).unwrap();
        // 20 wd from 03-02 → 03-30; 30 wd → 04-14 (04-06 is 清明).
        assert_eq!(plain.committed_due, "2026-03-30".parse().unwrap());
        assert_eq!(plain.legal_due, "2026-04-14".parse().unwrap());

        let mut events = base.to_vec();
        events.push(event(
            HALL,
            "2026-03-04",
            10,
            sample_action(ActionKind::Suspend),
        ));
        events.push(event(
            HALL,
            "2026-03-06",
            10,
            sample_action(ActionKind::Resume),
        ));
        let suspended = derive(&intake, &events).deadlines(&intake, cal).unwrap();
        // 03-05 and 03-06 did not count: both deadlines move by two working days.
        assert_eq!(suspended.committed_due, "2026-04-01".parse().unwrap());
        assert_eq!(suspended.legal_due, "2026-04-16".parse().unwrap());

        events.push(event(
            HALL,
            "2026-03-10",
            10,
            sample_action(ActionKind::Extend),
        ));
        let state = derive(&intake, &events);
        assert_eq!(state.extension_days, 5);
        let extended = state.deadlines(&intake, cal).unwrap();
        // Five more working days each; 04-04..04-06 are 清明 holidays.
        assert_eq!(extended.committed_due, "2026-04-09".parse().unwrap());
        assert_eq!(extended.legal_due, "2026-04-23".parse().unwrap());
        // Used and left, counted on the calendar without the suspended days.
        assert_eq!(
            cal.working_days_between(
                "2026-03-02".parse().unwrap(),
                "2026-03-13".parse().unwrap(),
                &state.suspensions
            ),
            7
        );
        // The allowance is 15 days: 10 more are fine, 11 are not.
        let more = |days| Action::Extend {
            days,
            reason: "情况复杂".into(),
            request: None,
        };
        assert_eq!(validate(&intake, &state, &more(10)), Ok(()));
        assert_eq!(
            validate(&intake, &state, &more(11)),
            Err(CaseError::ExtensionTooLong {
                requested: 11,
                left: 10,
                allowed: 15
            })
        );
        // While suspended the clock is stopped: the dates are those of the day it stopped.
        let open = derive(
            &intake,
            &[
                accepted_on("2026-03-02"),
                event(HALL, "2026-03-04", 10, sample_action(ActionKind::Suspend)),
            ],
        );
        assert_eq!(open.status, Status::Suspended);
        assert_eq!(open.suspended_since, Some("2026-03-04".parse().unwrap()));
    }

    fn completed() -> Vec<Event> {
        vec![
            accepted_on("2026-09-01"),
            event(
                STATION,
                "2026-09-21",
                10,
                sample_action(ActionKind::Complete),
            ),
        ]
    }

    fn rate(level: u8, date: &str) -> Event {
        event(
            STATION,
            date,
            15,
            Action::Rate {
                level,
                comment: String::new(),
                rectify_days: 15,
            },
        )
    }

    #[test]
    fn a_case_is_rated_once_and_only_after_completion() {
        let intake = intake();
        let good = Action::Rate {
            level: 5,
            comment: "很好".into(),
            rectify_days: 15,
        };
        // Before completion: refused, naming the status.
        let open = derive(&intake, &[accepted_on("2026-09-01")]);
        assert_eq!(
            validate(&intake, &open, &good),
            Err(CaseError::NotAllowed {
                action: ActionKind::Rate,
                status: Status::Accepted
            })
        );
        let done = derive(&intake, &completed());
        assert_eq!(validate(&intake, &done, &good), Ok(()));
        // Out of range levels are refused.
        for level in [0, 6, 255] {
            let bad = Action::Rate {
                level,
                comment: String::new(),
                rectify_days: 15,
            };
            assert_eq!(validate(&intake, &done, &bad), Err(CaseError::BadRating));
        }
        // Once rated, a second rating is refused, whatever it says.
        let mut events = completed();
        events.push(rate(4, "2026-09-22"));
        let rated = derive(&intake, &events);
        assert_eq!(rated.rating.as_ref().map(|r| r.level), Some(4));
        assert!(rated.rectification.is_none());
        assert_eq!(rated.closed_on, Some("2026-09-21".parse().unwrap()));
        assert_eq!(
            validate(&intake, &rated, &good),
            Err(CaseError::AlreadyRated)
        );
        // Two ratings that met in a merge: the first counts, the second is flagged.
        events.push(rate(1, "2026-09-23"));
        let merged = derive(&intake, &events);
        assert_eq!(merged.rating.as_ref().map(|r| r.level), Some(4));
        assert_eq!(merged.conflicts.len(), 1);
        assert_eq!(merged.conflicts[0].action, ActionKind::Rate);
    }

    /// A bad rating on 09-22 opens a rectification of 15 working days. 中秋 (09-25..27)
    /// and 国庆 (10-01..07) are off and 10-10 (Saturday) is a make-up working day, so it
    /// is due 10-20, not 10-13 as weekends alone would give.
    #[test]
    fn the_rectification_deadline_counts_working_days_across_holidays() {
        let intake = intake();
        let cal = Calendar::china();
        let mut events = completed();
        events.push(rate(2, "2026-09-22"));
        let state = derive(&intake, &events);
        let r = state.rectification.clone().unwrap();
        assert_eq!(r.opened_on, "2026-09-22".parse().unwrap());
        assert_eq!(r.due(cal), "2026-10-20".parse().unwrap());
        assert_eq!(cal.working_days_between(r.opened_on, r.due(cal), &[]), 15);
        // Only a bad rating (the two lowest levels) opens one.
        for (level, opens) in [(1, true), (2, true), (3, false), (4, false), (5, false)] {
            let mut events = completed();
            events.push(rate(level, "2026-09-22"));
            assert_eq!(
                derive(&intake, &events).rectification.is_some(),
                opens,
                "{level}"
            );
        }
        // It closes with a written response, once.
        let blank = Action::Rectify {
            response: " ".into(),
        };
        assert!(matches!(
            validate(&intake, &state, &blank),
            Err(CaseError::Invalid {
                field: "response",
                ..
            })
        ));
        events.push(event(
            STATION,
            "2026-10-12",
            10,
            Action::Rectify {
                response: "已回访申请人并整改".into(),
            },
        ));
        let closed = derive(&intake, &events);
        let r = closed.rectification.unwrap();
        assert_eq!(r.closed_on, Some("2026-10-12".parse().unwrap()));
        assert_eq!(r.response, "已回访申请人并整改");
        assert_eq!(
            validate(
                &intake,
                &derive(&intake, &events),
                &sample_action(ActionKind::Rectify)
            ),
            Err(CaseError::NoOpenRectification)
        );
        // No rectification without a bad rating.
        assert_eq!(
            validate(
                &intake,
                &derive(&intake, &completed()),
                &sample_action(ActionKind::Rectify)
            ),
            Err(CaseError::NoOpenRectification)
        );
    }

    #[test]
    fn a_transfer_is_signed_for_once_and_a_new_transfer_needs_a_new_signature() {
        let intake = intake();
        let mut events = vec![accepted_on("2026-03-02")];
        let state = derive(&intake, &events);
        assert_eq!(
            validate(&intake, &state, &sample_action(ActionKind::SignFor)),
            Err(CaseError::NothingToSignFor)
        );
        events.push(event(
            STATION,
            "2026-03-03",
            10,
            Action::Transfer {
                to: "园岭街道办事处".into(),
                reason: "需街道审核".into(),
                to_node: Some(HALL),
            },
        ));
        let sent = derive(&intake, &events);
        assert_eq!(sent.holder_node, Some(HALL));
        assert!(sent.signed_for.is_none());
        events.push(event(
            HALL,
            "2026-03-04",
            9,
            sample_action(ActionKind::SignFor),
        ));
        let signed = derive(&intake, &events);
        assert_eq!(
            signed.signed_for.as_ref().map(|s| (s.node, s.on)),
            Some((HALL, "2026-03-04".parse().unwrap()))
        );
        assert_eq!(signed.status, Status::Accepted);
        assert_eq!(
            validate(&intake, &signed, &sample_action(ActionKind::SignFor)),
            Err(CaseError::NothingToSignFor)
        );
        // A second signature from elsewhere (met in a merge) changes nothing.
        events.push(event(
            STATION,
            "2026-03-04",
            11,
            sample_action(ActionKind::SignFor),
        ));
        assert_eq!(derive(&intake, &events).signed_for, signed.signed_for);
        // Passed on again: the new office has to sign.
        events.push(event(
            HALL,
            "2026-03-05",
            9,
            sample_action(ActionKind::Transfer),
        ));
        let again = derive(&intake, &events);
        assert_eq!(again.holder.as_deref(), Some("福田区民政局"));
        assert!(again.signed_for.is_none() && again.holder_node.is_none());
    }

    /// The station withdraws while the hall approves: a lead resolves it by voiding one
    /// side; either choice leaves no conflict, and the voided event stays on record.
    #[test]
    fn a_lead_resolves_a_conflict_by_voiding_one_side() {
        let intake = intake();
        let accept = accepted_on("2026-03-02");
        let approve = event(HALL, "2026-03-05", 10, sample_action(ActionKind::Decide));
        let withdraw = event(
            STATION,
            "2026-03-05",
            11,
            sample_action(ActionKind::Withdraw),
        );
        let events = vec![accept.clone(), approve.clone(), withdraw.clone()];
        let state = derive(&intake, &events);
        assert_eq!(state.conflicts.len(), 1);
        let c = &state.conflicts[0];
        assert_eq!(c.event_id, withdraw.id());
        assert_eq!(c.against.as_deref(), Some(approve.id().as_str()));

        let resolve = |void: &Event, hour| {
            event(
                STATION,
                "2026-03-06",
                hour,
                Action::Resolve {
                    void: vec![void.id()],
                    reason: "与申请人核实".into(),
                    keep: Vec::new(),
                },
            )
        };
        // Keep the withdrawal: void the approval.
        assert_eq!(check_resolution(&intake, &events, &[approve.id()]), Ok(()));
        let mut kept_withdrawal = events.clone();
        kept_withdrawal.push(resolve(&approve, 9));
        let s = derive(&intake, &kept_withdrawal);
        assert_eq!(s.status, Status::Withdrawn);
        assert!(s.conflicts.is_empty());
        assert_eq!(s.voided, vec![approve.id()]);
        // Keep the approval: void the withdrawal.
        let mut kept_approval = events.clone();
        kept_approval.push(resolve(&withdraw, 9));
        let s = derive(&intake, &kept_approval);
        assert_eq!(s.status, Status::Decided);
        assert!(s.conflicts.is_empty());
        // Once resolved, there is nothing more to resolve, and the case moves on.
        assert_eq!(
            validate(&intake, &s, &sample_action(ActionKind::Resolve)),
            Err(CaseError::NothingToResolve)
        );
        assert_eq!(
            validate(&intake, &s, &sample_action(ActionKind::Complete)),
            Ok(())
        );
        // Voiding the acceptance, or nothing of the conflict, is refused.
        assert_eq!(
            check_resolution(&intake, &events, &[accept.id()]),
            Err(CaseError::NotASide {
                event_id: accept.id()
            })
        );
        assert_eq!(
            check_resolution(&intake, std::slice::from_ref(&accept), &[accept.id()]),
            Err(CaseError::NothingToResolve)
        );
        // The order of arrival does not matter, and another Resolve cannot void one.
        let mut reversed = kept_approval.clone();
        reversed.reverse();
        let r = resolve(&withdraw, 9);
        reversed.push(event(
            HALL,
            "2026-03-07",
            9,
            Action::Resolve {
                void: vec![r.id()],
                reason: "x".into(),
                keep: Vec::new(),
            },
        ));
        assert_eq!(derive(&intake, &reversed).status, Status::Decided);
    }

    /// Two leads, apart, resolve the same conflict opposite ways: the first resolution in
    /// the merged order stands, the second is voided, and nothing is left in conflict.
    #[test]
    fn opposite_resolutions_made_apart_keep_the_first() {
        let intake = intake();
        let approve = event(HALL, "2026-03-05", 10, sample_action(ActionKind::Decide));
        let withdraw = event(
            STATION,
            "2026-03-05",
            11,
            sample_action(ActionKind::Withdraw),
        );
        let base = vec![accepted_on("2026-03-02"), approve.clone(), withdraw.clone()];
        let state = derive(&intake, &base);
        assert_eq!(kept_sides(&state, &[withdraw.id()]), vec![approve.id()]);
        assert_eq!(kept_sides(&state, &[approve.id()]), vec![withdraw.id()]);
        let resolve = |node, hour, void: &Event| {
            event(
                node,
                "2026-03-06",
                hour,
                Action::Resolve {
                    void: vec![void.id()],
                    reason: "核实".into(),
                    keep: kept_sides(&state, &[void.id()]),
                },
            )
        };
        let at_station = resolve(STATION, 9, &withdraw);
        let at_hall = resolve(HALL, 10, &approve);
        for events in [
            [base.clone(), vec![at_station.clone(), at_hall.clone()]].concat(),
            [vec![at_hall.clone(), at_station.clone()], base.clone()].concat(),
        ] {
            let s = derive(&intake, &events);
            assert_eq!(s.status, Status::Decided);
            assert!(s.conflicts.is_empty());
            assert!(s.voided.contains(&withdraw.id()) && s.voided.contains(&at_hall.id()));
            assert!(!s.voided.contains(&approve.id()));
        }
    }

    /// A side kept against one event can still be voided against another that the first
    /// lead never saw: the hall kept its decision against the sub-district's, then the
    /// station's completion (made earlier, arriving later) conflicts with it.
    #[test]
    fn a_kept_side_can_lose_a_later_conflict() {
        let intake = intake();
        let complete = event(
            STATION,
            "2026-03-04",
            9,
            sample_action(ActionKind::Complete),
        );
        let first = event(HALL, "2026-03-05", 9, sample_action(ActionKind::Decide));
        let second = event(
            NodeId([3; 16]),
            "2026-03-05",
            10,
            sample_action(ActionKind::Decide),
        );
        // The hall saw only the two decisions.
        let at_hall = vec![accepted_on("2026-03-02"), first.clone(), second.clone()];
        let hall_state = derive(&intake, &at_hall);
        assert_eq!(hall_state.conflicts.len(), 1);
        let keep_first = event(
            HALL,
            "2026-03-06",
            9,
            Action::Resolve {
                void: vec![second.id()],
                reason: "以区级决定为准".into(),
                keep: kept_sides(&hall_state, &[second.id()]),
            },
        );
        // With the completion, the kept decision conflicts with it; voiding it is allowed.
        let mut all = at_hall.clone();
        all.extend([keep_first.clone(), complete.clone()]);
        let state = derive(&intake, &all);
        assert_eq!(state.conflicts.len(), 1, "{:?}", state.conflicts);
        assert_eq!(check_resolution(&intake, &all, &[first.id()]), Ok(()));
        let void_first = event(
            STATION,
            "2026-03-07",
            9,
            Action::Resolve {
                void: vec![first.id()],
                reason: "已办结".into(),
                keep: kept_sides(&state, &[first.id()]),
            },
        );
        all.push(void_first);
        let settled = derive(&intake, &all);
        assert!(settled.conflicts.is_empty(), "{:?}", settled.conflicts);
        assert_eq!(settled.status, Status::Completed);
    }

    /// A conflict from a guard points at the event it collides with: the rating already
    /// given, the extension that used up the allowance.
    #[test]
    fn guard_conflicts_name_the_event_they_collide_with() {
        let intake = intake();
        let mut events = completed();
        let first = rate(4, "2026-09-22");
        let second = rate(1, "2026-09-23");
        events.extend([first.clone(), second.clone()]);
        let state = derive(&intake, &events);
        assert_eq!(state.conflicts[0].event_id, second.id());
        assert_eq!(
            state.conflicts[0].against.as_deref(),
            Some(first.id().as_str())
        );
        // Either rating can be kept.
        assert_eq!(check_resolution(&intake, &events, &[second.id()]), Ok(()));
        assert_eq!(check_resolution(&intake, &events, &[first.id()]), Ok(()));

        let long = |node, hour| {
            event(
                node,
                "2026-03-05",
                hour,
                Action::Extend {
                    days: 10,
                    reason: "复杂".into(),
                    request: None,
                },
            )
        };
        let (a, b) = (long(STATION, 10), long(HALL, 11));
        let events = vec![accepted_on("2026-03-02"), a.clone(), b.clone()];
        let state = derive(&intake, &events);
        assert_eq!(state.conflicts[0].event_id, b.id());
        assert_eq!(state.conflicts[0].against.as_deref(), Some(a.id().as_str()));
    }

    /// Only the hall a case went to signs for it; a signature from elsewhere is ignored.
    #[test]
    fn only_the_receiving_node_signs_for_a_transfer() {
        let intake = intake();
        let events = vec![
            accepted_on("2026-03-02"),
            event(
                STATION,
                "2026-03-03",
                10,
                Action::Transfer {
                    to: "园岭街道".into(),
                    reason: "需街道审核".into(),
                    to_node: Some(HALL),
                },
            ),
            event(
                STATION,
                "2026-03-03",
                11,
                sample_action(ActionKind::SignFor),
            ),
        ];
        assert!(derive(&intake, &events).signed_for.is_none());
    }

    /// A situation chosen at intake changes the list the case is checked against: what it
    /// adds is missing until handed in, and a situation the item lacks is refused.
    #[test]
    fn the_chosen_situation_sets_the_materials() {
        let item = sample_item();
        let application = |situations: Vec<String>| NewCase {
            situations,
            ..intake_application()
        };
        let at = |situations| {
            Intake::new(
                &item,
                application(situations),
                "worker",
                STATION,
                DivisionCode::parse("440304001001").unwrap(),
                Hlc::new(ms("2026-03-02", 10), 0),
            )
        };
        let plain = at(Vec::new()).unwrap();
        assert!(derive(&plain, &[]).missing.is_empty());
        let disabled = at(vec!["申请人为残疾人".into()]).unwrap();
        assert_eq!(disabled.situations, ["申请人为残疾人"]);
        assert_eq!(disabled.item.situations, ["申请人为残疾人"]);
        let missing: Vec<String> = derive(&disabled, &[])
            .missing
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(missing, ["残疾人证"]);
        assert_eq!(
            at(vec!["没有的情形".into()]).unwrap_err().code(),
            "unknown_situation"
        );
        assert_eq!(
            at(vec!["申请人为残疾人".into(), "申请人为残疾人".into()])
                .unwrap_err()
                .code(),
            "invalid"
        );
        // Materials of a situation not chosen are not this case's.
        let mut handed_in = application(Vec::new());
        handed_in.materials.push(MaterialReceived {
            name: "残疾人证".into(),
            originals: 1,
            copies: 1,
        });
        let refused = Intake::new(
            &item,
            handed_in,
            "worker",
            STATION,
            DivisionCode::parse("440304001001").unwrap(),
            Hlc::new(ms("2026-03-02", 10), 0),
        );
        assert_eq!(refused.unwrap_err().code(), "unknown_material");
        // An intake written before situations existed still reads.
        let mut old = serde_json::to_value(&plain).unwrap();
        old.as_object_mut().unwrap().remove("situations");
        old["item"].as_object_mut().unwrap().remove("situations");
        let back: Intake = serde_json::from_value(old).unwrap();
        assert!(back.situations.is_empty());
    }

    fn intake_application() -> NewCase {
        NewCase {
            situations: Vec::new(),
            applicant: Applicant::NaturalPerson {
                name: "张三".into(),
                id_number: ResidentId::parse("440304199001011233").unwrap(),
                phone: Phone::parse("13800138000").unwrap(),
            },
            agent: None,
            materials: vec![MaterialReceived {
                name: "户口簿".into(),
                originals: 1,
                copies: 1,
            }],
            counter: "1号窗口".into(),
            note: String::new(),
        }
    }
}

#[cfg(test)]
mod step_tests;
