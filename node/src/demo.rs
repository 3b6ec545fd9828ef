//! `yizhan demo`: a station node with a built-in catalog and example cases in every state,
//! working with no network at all.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use yizhan_sync::domain::calendar::{Calendar, Date};
use yizhan_sync::domain::case::{
    Action, Applicant, MaterialReceived, MissingMaterial, NewCase, Phone,
};
use yizhan_sync::domain::codes::{DivisionCode, ResidentId};
use yizhan_sync::domain::item::Item;
use yizhan_sync::ids::{DocId, Scope};

use crate::accounts::{generate_password, generate_token, hash_password};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, HttpSection, NodeSection, Role, StoreSection};
use crate::data_dir::{self, DataDir};
use crate::node::OpenNode;
use crate::store::{NewAction, NewUser, Role as StaffRole, Staff, Store};

/// The demo station's division: 示范区 示范街道 示范社区 (fictitious codes).
pub const DEMO_DIVISION: &str = "440399001001";
/// The district whose catalog the demo station uses.
pub const DEMO_DISTRICT: &str = "440399";

/// The project's demo catalog (see the comment at the top of the file).
const DEMO_CATALOG: &str = include_str!("../data/demo-catalog.toml");

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    items: Vec<Item>,
}

/// The items of the built-in demo catalog.
pub fn demo_catalog() -> Vec<Item> {
    toml::from_str::<CatalogFile>(DEMO_CATALOG)
        .expect("the demo catalog is valid TOML")
        .items
}

/// Runs the demo: creates the node on first use, then serves it.
pub async fn run(
    data_dir: Option<PathBuf>,
    listen: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let dir = DataDir::new(data_dir.unwrap_or_else(|| {
        let mut suffix = [0u8; 4];
        crate::accounts::fill_random(&mut suffix);
        std::env::temp_dir().join(format!("yizhan-demo-{}", yizhan_sync::ids::hex(&suffix)))
    }));
    let fresh = !dir.is_initialized();
    if fresh {
        let config = Config {
            node: NodeSection {
                role: Role::Station,
                division: DEMO_DIVISION.into(),
                name: "示范社区党群服务中心（演示）".into(),
            },
            http: HttpSection {
                listen,
                ..HttpSection::default()
            },
            store: StoreSection::default(),
            sync: Default::default(),
            backup: Default::default(),
            discovery: Default::default(),
            service: Default::default(),
            appointments: Default::default(),
            sink: Default::default(),
            supervision: Default::default(),
        };
        data_dir::create_data_dir(&dir, &config)?;
    }
    let (_lock, opened) = OpenNode::exclusive(&dir)?;
    if fresh {
        let credentials = seed(&opened.store, &SystemClock)
            .await
            .context("seeding the demo data")?;
        println!("demo data dir: {}", dir.path.display());
        println!("demo accounts (sign-in name / password):");
        for (username, role, password) in &credentials.accounts {
            println!("  {username:<8} {role:<7} {password}");
        }
        println!("API token of `worker`: {}", credentials.worker_token);
    } else {
        println!(
            "demo data dir: {} (existing; its accounts were printed when it was created)",
            dir.path.display()
        );
    }
    println!("try: curl -s http://{listen}/api/v1/items | head -c 300");
    opened.serve(Some(listen), shutdown).await
}

/// What seeding printed once.
pub struct DemoCredentials {
    pub accounts: Vec<(String, &'static str, String)>,
    pub worker_token: String,
}

impl std::fmt::Debug for DemoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.accounts.iter().map(|a| a.0.as_str()).collect();
        write!(f, "DemoCredentials({names:?}, secrets redacted)")
    }
}

/// Publishes the catalog, creates the demo accounts and example cases.
pub async fn seed(store: &Store, clock: &dyn Clock) -> anyhow::Result<DemoCredentials> {
    let now = clock.now_ms();
    let district = DivisionCode::parse(DEMO_DISTRICT).expect("valid");
    for item in demo_catalog() {
        store
            .publish_item(Scope::catalog(&district), item, now)
            .await?;
    }
    let mut accounts = Vec::new();
    for (username, display_name, role, counter) in [
        ("admin", "管理员", StaffRole::Admin, ""),
        ("lead", "王主任", StaffRole::Lead, ""),
        ("worker", "李敏", StaffRole::Worker, "1号窗口"),
    ] {
        let password = generate_password();
        store
            .add_user(
                NewUser {
                    username: username.into(),
                    display_name: display_name.into(),
                    role,
                    counter: counter.into(),
                    password_hash: hash_password(&password)?,
                },
                now,
            )
            .await?;
        accounts.push((username.to_string(), role.as_str(), password));
    }
    let (token, hash) = generate_token();
    store
        .add_token("worker".into(), hash, "demo".into(), now)
        .await?;
    seed_cases(store, now).await?;
    Ok(DemoCredentials {
        accounts,
        worker_token: token,
    })
}

/// One example case: when it was received, what happened since (working days before today).
struct Example {
    item: &'static str,
    applicant: (&'static str, &'static str, &'static str),
    received_days_ago: u32,
    materials_short: bool,
    steps: Vec<(u32, NewAction)>,
}

fn examples() -> Vec<Example> {
    let done = |result: &str| {
        NewAction::Do(Action::Complete {
            result: result.into(),
            delivery: "窗口当场领取".into(),
        })
    };
    vec![
        Example { item: "最低生活保障申请", applicant: ("陈建华", "19620315", "13800000001"), received_days_ago: 25, materials_short: false,
                  steps: vec![(25, NewAction::Accept)] },
        Example { item: "临时救助申请（一般程序）", applicant: ("刘秀英", "19750822", "13800000002"), received_days_ago: 9, materials_short: false,
                  steps: vec![(9, NewAction::Accept)] },
        Example { item: "居住证申领", applicant: ("黄志强", "19900101", "13800000003"), received_days_ago: 2, materials_short: false,
                  steps: vec![(2, NewAction::Accept)] },
        Example { item: "老年人优待证办理", applicant: ("周桂兰", "19550607", "13800000004"), received_days_ago: 12, materials_short: false,
                  steps: vec![(12, NewAction::Accept)] },
        Example { item: "特困人员救助供养认定", applicant: ("吴国平", "19480930", "13800000005"), received_days_ago: 6, materials_short: false,
                  steps: vec![(6, NewAction::Accept), (2, NewAction::Do(Action::Suspend {
                      procedure: "公示".into(), reason: "在社区公示栏公示7天，公示期不计入办理时限".into() }))] },
        Example { item: "残疾人证新办", applicant: ("郑晓东", "19881111", "13800000006"), received_days_ago: 0, materials_short: true,
                  steps: vec![(0, NewAction::Do(Action::NotifyMissing {
                      missing: vec![MissingMaterial { name: "近期免冠照片".into(), reason: "制证需要，一寸白底彩色照片".into() }],
                      note: "补齐后可在本窗口继续办理，无需重新排队".into() }))] },
        Example { item: "社会保障卡申领", applicant: ("孙丽娟", "19950418", "13800000007"), received_days_ago: 0, materials_short: false,
                  steps: vec![] },
        Example { item: "失业登记", applicant: ("马军", "19830726", "13800000008"), received_days_ago: 1, materials_short: false,
                  steps: vec![(1, NewAction::Accept), (1, done("已办理失业登记，登记记录已录入系统"))] },
        Example { item: "高龄老人津贴申请", applicant: ("林玉珍", "19490102", "13800000009"), received_days_ago: 3, materials_short: false,
                  steps: vec![(3, NewAction::Do(Action::Refuse {
                      reason: "申请人户籍不在本市，不符合高龄老人津贴的申请条件".into(),
                      basis: "《中华人民共和国老年人权益保障法》第三十三条；本市高龄老人津贴发放办法".into(),
                      remedies: "可以自知道之日起六十日内向示范区人民政府申请行政复议，或者六个月内向示范区人民法院提起行政诉讼".into(),
                      competent_authority: Some("户籍所在地街道办事处".into()) }))] },
        Example { item: "居住登记", applicant: ("何静", "19970909", "13800000010"), received_days_ago: 0, materials_short: false,
                  steps: vec![(0, NewAction::Accept), (0, done("居住登记回执已当场发放"))] },
    ]
}

/// A fictitious but well-formed resident identity number (address code of the demo district).
fn demo_resident_id(birth: &str, order: u32) -> ResidentId {
    let body = format!("{DEMO_DISTRICT}{birth}{order:03}");
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    ResidentId::parse(&format!("{body}{check}")).expect("built with its check digit")
}

/// The working day `n` working days before `today` (`today` itself for 0).
fn working_days_before(today: Date, n: u32) -> Date {
    let calendar = Calendar::china();
    let mut day = today;
    let mut left = n;
    while left > 0 {
        day = day.add_days(-1);
        if calendar.is_working_day(day) {
            left -= 1;
        }
    }
    day
}

async fn seed_cases(store: &Store, now: u64) -> anyhow::Result<()> {
    let today = Date::from_unix_ms_cst(now as i64);
    let worker = Staff {
        username: "worker".into(),
        counter: "1号窗口".into(),
        role: StaffRole::Worker,
    };
    let items: HashMap<String, Item> = demo_catalog()
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    // Every write happens at its own (past) time, in time order, so the node's clock and the
    // dates on receipts and deadlines are those of a station that has been working for weeks.
    let at = |days_ago: u32, minute: u64| -> u64 {
        if days_ago == 0 {
            now - 3_600_000 + minute * 60_000
        } else {
            let day = working_days_before(today, days_ago);
            // 10:00 China Standard Time on that day.
            (day.days_since_epoch() as u64 * 86_400 + 2 * 3600) * 1000 + minute * 60_000
        }
    };
    let mut writes: Vec<(u64, usize, Option<NewAction>)> = Vec::new();
    for (idx, example) in examples().into_iter().enumerate() {
        writes.push((at(example.received_days_ago, idx as u64 * 3), idx, None));
        for (step, (days_ago, action)) in example.steps.into_iter().enumerate() {
            writes.push((
                at(days_ago, idx as u64 * 3 + 1 + step as u64),
                idx,
                Some(action),
            ));
        }
    }
    writes.sort_by_key(|w| w.0);
    let examples = examples();
    let mut ids: HashMap<usize, DocId> = HashMap::new();
    for (time, idx, action) in writes {
        let example = &examples[idx];
        match action {
            None => {
                let item = &items[example.item];
                let (name, birth, phone) = example.applicant;
                let mut materials: Vec<MaterialReceived> = item
                    .materials
                    .iter()
                    .filter(|m| m.required)
                    .map(|m| MaterialReceived {
                        name: m.name.clone(),
                        originals: m.originals,
                        copies: m.copies,
                    })
                    .collect();
                if example.materials_short {
                    materials.retain(|m| !m.name.contains("照片"));
                }
                let new = NewCase {
                    situations: Vec::new(),
                    applicant: Applicant::NaturalPerson {
                        name: name.into(),
                        id_number: demo_resident_id(birth, 10 + idx as u32),
                        phone: Phone::parse(phone)?,
                    },
                    agent: None,
                    materials,
                    counter: worker.counter.clone(),
                    note: String::new(),
                };
                let id = store
                    .create_case(item.impl_code.to_string(), new, worker.clone(), time)
                    .await?;
                ids.insert(idx, id);
            }
            Some(action) => {
                store
                    .act_on_case(ids[&idx].clone(), vec![action], worker.clone(), time)
                    .await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_catalog_is_complete_and_valid() {
        let items = demo_catalog();
        assert!(items.len() >= 20, "{} items", items.len());
        for item in &items {
            item.validate()
                .unwrap_or_else(|e| panic!("{}: {e}", item.name));
        }
        let mut codes: Vec<_> = items.iter().map(|i| i.impl_code.clone()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), items.len(), "implementation codes are unique");
        for example in examples() {
            assert!(
                items.iter().any(|i| i.name == example.item),
                "{} is in the catalog",
                example.item
            );
        }
    }

    #[test]
    fn demo_identity_numbers_are_valid() {
        for n in 0..50 {
            demo_resident_id("19900101", n);
        }
    }

    #[test]
    fn working_days_back() {
        let friday: Date = "2026-03-06".parse().unwrap();
        assert_eq!(working_days_before(friday, 0), friday);
        // Saturday 02-28 is a make-up working day.
        assert_eq!(
            working_days_before(friday, 5),
            "2026-02-28".parse().unwrap()
        );
        // Back over 春节: 02-24 is the first working day after it, 02-14 (Saturday) the last before.
        assert_eq!(
            working_days_before("2026-02-24".parse().unwrap(), 1),
            "2026-02-14".parse().unwrap()
        );
    }
}
