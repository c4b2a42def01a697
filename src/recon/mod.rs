//! Tencent Cloud FaceID billing reconciliation (SPEC R1–R8). Method 1 is the BizToken
//! ledger ([`ledger`]: R1–R4), fed by the sweeper that refetches `GetDetectInfoEnhanced`
//! until each token is final; method 2 is the daily bill ([`bill`]: R5–R8), pulled page by
//! page from `GetWeChatBillDetails` with crash-safe cursors. [`check`] holds the R6 three-way
//! check and the cross-method reconciliation, [`report`] renders a day. Time rules live in
//! pure policy types ([`calendar`], [`ledger::SweepPolicy`]) that take `now` as an argument;
//! IO happens only in [`client`] and the CLI. R9: every stored key names the account and
//! the RuleId ([`scope`]); [`migrate`] brings a store of the previous layout over.

pub mod bill;
pub mod calendar;
pub mod check;
pub mod client;
pub mod error;
pub mod ledger;
pub mod migrate;
pub mod models;
pub mod report;
pub mod scope;
pub mod tc3;

pub use error::ReconError;

/// Opens a reconciliation store: both methods' tables (ledger and bill) on `path`. A store
/// of the layout before R9 is refused with the command that migrates it.
pub fn open_store(path: &crate::store::StorePath) -> Result<crate::store::Store, ReconError> {
    let store = crate::store::Store::open(path)?;
    // A bounded page cache (16 MiB) for day-sized pulls and checks; memory stays flat.
    store.conn().execute_batch("PRAGMA cache_size = -16384;")?;
    if migrate::needs_migration(&store)? {
        return Err(ReconError::Refused(
            "this store was written before accounts and RuleIds were part of every key (R9): run \
             `facepay recon migrate --db FILE --account NAME`, naming the account whose credentials filled it"
                .into(),
        ));
    }
    create_tables(&store)?;
    Ok(store)
}

fn create_tables(store: &crate::store::Store) -> Result<(), ReconError> {
    store.ensure_schema(scope::SCHEMA)?;
    ledger::open(store)?;
    bill::open(store)?;
    store.kv_put(migrate::SCHEMA_KEY, migrate::SCHEMA_VERSION)?;
    Ok(())
}
