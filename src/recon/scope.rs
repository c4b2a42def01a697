//! Whose data a stored row is (SPEC R9): bills and tokens belong to an account (the
//! sub-account whose credentials pulled or issued them) and a RuleId. [`Account`] is a
//! checked name (it also names report files, so no path characters); [`Scope`] is an
//! account with a rule filter of the daily bill (`None` = all rules), stored once in
//! `recon_scopes` and referred to by its id from every bill table, so a pull of one day for
//! all rules, for one rule, or for another account never shares a row with another.

use rusqlite::{params, OptionalExtension};

use super::error::{ReconError, ReconResult};
use crate::store::Store;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS recon_scopes (
    scope_id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    rule_key TEXT NOT NULL,
    UNIQUE (account, rule_key)
);
";

/// An account name: 1–64 characters of `A-Z a-z 0-9 . _ @ -`, not starting with `.` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Account(String);

impl Account {
    pub fn parse(s: &str) -> ReconResult<Self> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-');
        if s.is_empty() || s.len() > 64 || !s.chars().all(ok_char) || s.starts_with(['.', '-']) {
            return Err(ReconError::invalid_arg(
                "account",
                "must be 1-64 characters of A-Z a-z 0-9 . _ @ - (no path characters), not starting with . or -",
            ));
        }
        Ok(Account(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a RuleId given on the command line (it is part of keys and report file names).
pub fn check_rule_id(r: &str) -> ReconResult<()> {
    if r.is_empty() || r.len() > 64 || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ReconError::invalid_arg("rule-id", "must be 1-64 characters of A-Z a-z 0-9 _ -"));
    }
    Ok(())
}

/// An account and the rule filter of its bill pulls (`None` = all rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub account: Account,
    pub rule: Option<String>,
}

impl Scope {
    pub fn new(account: Account, rule: Option<&str>) -> Self {
        Scope { account, rule: rule.map(str::to_string) }
    }
    /// The stored rule key: the RuleId, or `""` for all rules.
    pub fn rule_key(&self) -> &str {
        self.rule.as_deref().unwrap_or("")
    }
    /// `account`, `account/rule 1`: for messages.
    pub fn label(&self) -> String {
        match &self.rule {
            Some(r) => format!("account {} rule {r}", self.account),
            None => format!("account {} all rules", self.account),
        }
    }
    /// The id of this scope, created on first use.
    pub fn id(&self, store: &Store) -> ReconResult<i64> {
        if let Some(id) = self.find(store)? {
            return Ok(id);
        }
        store.conn().execute(
            "INSERT INTO recon_scopes (account, rule_key) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![self.account.as_str(), self.rule_key()],
        )?;
        self.find(store)?.ok_or_else(|| ReconError::Protocol("scope vanished".into()))
    }
    /// The id of this scope if anything was ever stored under it.
    pub fn find(&self, store: &Store) -> ReconResult<Option<i64>> {
        Ok(store
            .conn()
            .query_row(
                "SELECT scope_id FROM recon_scopes WHERE account = ?1 AND rule_key = ?2",
                params![self.account.as_str(), self.rule_key()],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// Every account the store holds data of (bills or ledger).
pub fn accounts(store: &Store) -> ReconResult<Vec<Account>> {
    let mut q = store
        .conn()
        .prepare("SELECT account FROM recon_scopes UNION SELECT account FROM recon_ledger_tokens ORDER BY 1")?;
    let names = q.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    names.iter().map(|n| Account::parse(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r9_account_names_refuse_path_characters() {
        for good in ["AKIDfacepaymock", "canteen-01", "sub.account_2", "ops@school"] {
            assert!(Account::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "../etc", "a/b", "a\\b", ".hidden", "-x", "a b", "名字", &"x".repeat(65)] {
            let e = Account::parse(bad).unwrap_err().to_string();
            assert!(e.contains("path characters"), "{bad}: {e}");
        }
        assert!(check_rule_id("1").is_ok());
        assert!(check_rule_id("1/../2").is_err());
    }

    #[test]
    fn r9_scopes_are_distinct_per_account_and_rule() {
        let s = Store::open(&crate::store::StorePath::Memory).expect("store");
        s.ensure_schema(SCHEMA).expect("schema");
        let a = Account::parse("a").expect("a");
        let b = Account::parse("b").expect("b");
        let ids = [
            Scope::new(a.clone(), None).id(&s).expect("id"),
            Scope::new(a.clone(), Some("1")).id(&s).expect("id"),
            Scope::new(b.clone(), None).id(&s).expect("id"),
        ];
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
        assert_eq!(Scope::new(a, Some("1")).id(&s).expect("again"), ids[1]);
        assert_eq!(Scope::new(b, Some("1")).find(&s).expect("find"), None);
    }
}
