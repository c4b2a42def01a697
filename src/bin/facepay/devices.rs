//! `facepay backend devices add|list|revoke` (SPEC S1, S2): the reference backend's
//! enrolled terminals, in the backend's own store. `add` prints the device credential
//! once — it is never shown again, and never logged; `list` never shows one; `revoke`
//! takes effect at the running backend's next request from that device.

use std::path::Path;

use facepay::merchant::config::BackendConfig;
use facepay::merchant::devices::Registry;
use facepay::store::StorePath;

#[derive(clap::Subcommand, Debug)]
pub enum DevicesCmd {
    /// Enrol a terminal; prints its credential once (put it in the terminal's configuration).
    Add {
        #[arg(long)]
        device_id: String,
        /// The organisation it serves (one of the configuration's `organizations`).
        #[arg(long)]
        organization: String,
        /// Its amount limit in fen (default: the configuration's `link.max_amount_fen`).
        #[arg(long)]
        max_amount: Option<u64>,
    },
    /// Every enrolled device, one JSON line each (no credential).
    List,
    /// Revoke a device at once.
    Revoke { device_id: String },
}

pub fn run(config: &Path, cmd: &DevicesCmd) -> Result<(), String> {
    let cfg = BackendConfig::load(config).map_err(|e| e.to_string())?;
    let reg = Registry::open(&StorePath::File(cfg.db_path.clone())).map_err(|e| e.to_string())?;
    let now = facepay::clock::unix_s(std::time::SystemTime::now());
    match cmd {
        DevicesCmd::Add { device_id, organization, max_amount } => {
            cfg.check_organization(organization).map_err(|e| e.to_string())?;
            let c = reg.add(device_id, organization, *max_amount, now).map_err(|e| e.to_string())?;
            crate::out::line(&serde_json::json!({
                "device_id": device_id, "organization_id": organization,
                "max_amount_fen": max_amount.unwrap_or(cfg.link.max_amount_fen),
                "device_credential": c.expose(),
            }))?;
            eprintln!("facepay: the device credential is shown once: put it in the terminal's configuration now");
            Ok(())
        }
        DevicesCmd::List => {
            for d in reg.list().map_err(|e| e.to_string())? {
                crate::out::line(&d)?;
            }
            Ok(())
        }
        DevicesCmd::Revoke { device_id } => {
            reg.revoke(device_id, now).map_err(|e| e.to_string())?;
            crate::out::line(&serde_json::json!({"device_id": device_id, "revoked_at": now}))
        }
    }
}
