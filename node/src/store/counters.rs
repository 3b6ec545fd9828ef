//! A node's counters (窗口, SZDB/Z 176 §7.4: the service units its staff work at) as
//! records: number, name and what each serves, managed by the node's admin. An account's
//! counter names one; naming a counter the node has no record of adds its record in the
//! same transaction, so accounts and counters never disagree (migration 019 made records
//! of the counters accounts named before).

use rusqlite::{Connection, params};

use super::{Store, StoreError};
use crate::i18n::Words;

/// One counter of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    /// What accounts and cases name it by (`3`, `1号窗口`).
    pub number: String,
    pub name: String,
    /// What it serves (items, kinds of applicant), as the admin writes it.
    pub serves: String,
}

impl Store {
    /// The counters of this node, by number.
    pub async fn counters(&self) -> Result<Vec<Counter>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT number, name, serves FROM counters ORDER BY number")?
                .query_map([], |r| {
                    Ok(Counter {
                        number: r.get(0)?,
                        name: r.get(1)?,
                        serves: r.get(2)?,
                    })
                })?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Adds a counter, or gives an existing one a new name and what it serves.
    pub async fn put_counter(&self, counter: Counter, now_ms: u64) -> Result<(), StoreError> {
        check(&counter)?;
        self.write(move |ctx| {
            ctx.conn.execute(
                "INSERT INTO counters (number, name, serves, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (number) DO UPDATE SET name = excluded.name, serves = excluded.serves",
                params![counter.number, counter.name, counter.serves, now_ms as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// Removes a counter no local account names.
    pub async fn remove_counter(&self, number: String) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let named: bool = ctx.conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE counter = ?1 AND role <> 'department')",
                [&number],
                |r| r.get(0),
            )?;
            if named {
                return Err(StoreError::Conflict(
                    Words::new("counter_in_use").text("name", number),
                ));
            }
            let removed = ctx
                .conn
                .execute("DELETE FROM counters WHERE number = ?1", [&number])?;
            if removed == 0 {
                return Err(StoreError::NotFound {
                    what: format!("counter {number}"),
                });
            }
            Ok(())
        })
        .await
    }
}

fn check(counter: &Counter) -> Result<(), StoreError> {
    let number = counter.number.trim();
    if number.is_empty() || number != counter.number || counter.number.chars().count() > 40 {
        return Err(StoreError::Invalid(
            Words::new("counter_number").text("name", counter.number.clone()),
        ));
    }
    for (field, text) in [
        ("counter", &counter.number),
        ("counter_name", &counter.name),
        ("counter_serves", &counter.serves),
    ] {
        yizhan_sync::domain::text::line(field, text)
            .map_err(|e| StoreError::Case(yizhan_sync::domain::case::CaseError::Text(e)))?;
    }
    Ok(())
}

/// Makes sure the counter an account of `role` names has its record (a department
/// account's counter field names its department, not a counter).
pub(super) fn ensure_counter(
    conn: &Connection,
    role: super::Role,
    number: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    if number.is_empty() || role == super::Role::Department {
        return Ok(());
    }
    conn.prepare_cached("INSERT OR IGNORE INTO counters (number, created_ms) VALUES (?1, ?2)")?
        .execute(params![number, now_ms as i64])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::open_temp;
    use crate::store::{NewUser, Role};

    #[tokio::test]
    async fn accounts_name_counters_that_are_records() {
        let (_dir, store) = open_temp();
        store
            .add_user(
                NewUser {
                    username: "li".into(),
                    display_name: "李".into(),
                    role: Role::Worker,
                    counter: "3".into(),
                    password_hash: "$argon2id$x".into(),
                },
                1,
            )
            .await
            .unwrap();
        store
            .add_user(
                NewUser {
                    username: "mz".into(),
                    display_name: "民政".into(),
                    role: Role::Department,
                    counter: "民政局".into(),
                    password_hash: "$argon2id$x".into(),
                },
                1,
            )
            .await
            .unwrap();
        let numbers = |counters: Vec<Counter>| -> Vec<String> {
            counters.into_iter().map(|c| c.number).collect()
        };
        assert_eq!(numbers(store.counters().await.unwrap()), ["3"]);
        store
            .put_counter(
                Counter {
                    number: "3".into(),
                    name: "社保窗口".into(),
                    serves: "社会保障".into(),
                },
                2,
            )
            .await
            .unwrap();
        store
            .set_role_and_counter("li".into(), Role::Worker, "5".into())
            .await
            .unwrap();
        let counters = store.counters().await.unwrap();
        assert_eq!(counters[0].name, "社保窗口");
        assert_eq!(numbers(counters), ["3", "5"]);
        // A counter an account names stays; an unnamed one goes.
        assert!(matches!(
            store.remove_counter("5".into()).await,
            Err(StoreError::Conflict(_))
        ));
        store.remove_counter("3".into()).await.unwrap();
        assert!(matches!(
            store.remove_counter("3".into()).await,
            Err(StoreError::NotFound { .. })
        ));
        for bad in ["", " 3", "3\u{202E}"] {
            let refused = store
                .put_counter(
                    Counter {
                        number: bad.into(),
                        name: String::new(),
                        serves: String::new(),
                    },
                    3,
                )
                .await;
            assert!(refused.is_err(), "{bad:?}");
        }
    }
}
