//! `facepay mock faceid`: the mock FaceID server for manual runs, third-party clients and
//! benchmarks (127.0.0.1 only). Prints one line with its URL, then serves until Ctrl-C.

use clap::{Args, Subcommand};
use facepay::sim::faceid::{self, MockConfig};

#[derive(Args)]
pub struct FaceIdMockArgs {
    /// TCP port on 127.0.0.1 (0 = any free port; the chosen one is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seed of the generated bills (same seed, same bills).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// ChargeDetails per generated day.
    #[arg(long, default_value_t = 2_000)]
    pub details: u64,
    /// A bill page holds whole tokens up to this many ChargeDetails.
    #[arg(long, default_value_t = 2_000)]
    pub page_details: u64,
    /// GetWeChatBillDetails requests per second before RequestLimitExceeded (0 = unlimited).
    #[arg(long, default_value_t = 20)]
    pub rate_limit: u32,
    /// DetectAuth and GetDetectInfoEnhanced requests per second, each (0 = unlimited).
    #[arg(long, default_value_t = 100)]
    pub api_rate_limit: u32,
    /// Every Nth request answers --fail-code (0 = never).
    #[arg(long, default_value_t = 0)]
    pub fail_every: u64,
    /// The error code of injected faults.
    #[arg(long, default_value = "InternalError")]
    pub fail_code: String,
    /// The HTTP status of injected faults: 200 (a business error) or a 5xx carrying the error body.
    #[arg(long, default_value_t = 200)]
    pub fail_status: u16,
    /// Every Nth bill request answers a truncated body (0 = never).
    #[arg(long, default_value_t = 0)]
    pub malformed_every: u64,
    /// From the second page on, repeat the request's cursor as NextCursor (a cursor loop).
    #[arg(long)]
    pub cursor_loop: bool,
    /// Inject R6 mismatches (ChargeCount or IsNeedCharge disagreeing with the codes).
    #[arg(long)]
    pub anomalies: bool,
    /// Late-data revision of the bills (0 = original; 1 adds, changes and removes details).
    #[arg(long, default_value_t = 0)]
    pub revision: u32,
    /// RuleIds that exist, comma separated.
    #[arg(long, default_value = "1,2")]
    pub rules: String,
    /// Temporary credentials of the account, ID:KEY:TOKEN (valid for a day; repeatable): a
    /// request signed with ID must carry TOKEN as X-TC-Token.
    #[arg(long, value_name = "ID:KEY:TOKEN")]
    pub temp_credential: Vec<String>,
}

#[derive(Subcommand)]
pub enum MockServer {
    /// Tencent Cloud FaceID API 3.0 (TC3-signed; accepts TENCENTCLOUD_SECRET_ID/KEY when set,
    /// else the documented test pair AKIDfacepaymock / facepay-mock-secret-key).
    Faceid(FaceIdMockArgs),
    #[command(flatten)]
    Wechatpay(crate::backend::MockServer),
}

pub fn config(a: &FaceIdMockArgs) -> Result<MockConfig, String> {
    let rules: Vec<String> = a.rules.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect();
    if rules.is_empty() {
        return Err("--rules must name at least one RuleId".into());
    }
    if !(a.fail_status == 200 || (500..600).contains(&a.fail_status)) {
        return Err("--fail-status must be 200 or a 5xx status".into());
    }
    if a.page_details == 0 {
        return Err("--page-details must be greater than 0".into());
    }
    let mut temp_credentials = Vec::new();
    for t in &a.temp_credential {
        let mut parts = t.splitn(3, ':');
        let (Some(id), Some(key), Some(token)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("--temp-credential must be ID:KEY:TOKEN".into());
        };
        if id.is_empty() || key.is_empty() || token.is_empty() {
            return Err("--temp-credential must be ID:KEY:TOKEN, none empty".into());
        }
        let expires_ms = facepay::clock::unix_ms(std::time::SystemTime::now()) + 86_400_000;
        temp_credentials.push((
            0,
            faceid::TempCredential { secret_id: id.into(), secret_key: key.into(), token: token.into(), expires_ms },
        ));
    }
    let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    Ok(MockConfig {
        seed: a.seed,
        secret_id: env("TENCENTCLOUD_SECRET_ID").unwrap_or_else(|| faceid::DEFAULT_SECRET_ID.into()),
        secret_key: env("TENCENTCLOUD_SECRET_KEY").unwrap_or_else(|| faceid::DEFAULT_SECRET_KEY.into()),
        rules,
        details_per_day: a.details,
        page_details: a.page_details,
        bill_rate_limit: a.rate_limit,
        api_rate_limit: a.api_rate_limit,
        fail_every: a.fail_every,
        fail_code: a.fail_code.clone(),
        fail_status: a.fail_status,
        malformed_every: a.malformed_every,
        cursor_loop: a.cursor_loop,
        anomalies: a.anomalies,
        revision: a.revision,
        temp_credentials,
        ..MockConfig::default()
    })
}

pub fn run(server: &MockServer) -> Result<(), String> {
    let a = match server {
        MockServer::Faceid(a) => a,
        MockServer::Wechatpay(w) => return crate::backend::mock(w),
    };
    let cfg = config(a)?;
    let rt = crate::network_runtime()?;
    rt.block_on(async {
        let m = faceid::start(cfg, a.port).await.map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", a.port))?;
        crate::out::say(format_args!("facepay mock faceid listening on {}", m.endpoint()))?;
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
        drop(m);
        Ok(())
    })
}
