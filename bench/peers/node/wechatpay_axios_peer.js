#!/usr/bin/env node
// Peer client: the third-party `wechatpay-axios-plugin` SDK (npm) against the facepay mock
// WeChat Pay, with its own signing and verification (public-key mode).
//   node wechatpay_axios_peer.js interop|bench --dir FIXTURE_DIR [--n N] [--concurrency C]
// FIXTURE_DIR is what `facepay mock wechatpay --dir` writes (TEST keys, backend.json).
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { Wechatpay } = require('wechatpay-axios-plugin');

const args = process.argv.slice(2);
const mode = args[0];
const opt = (k, d) => { const i = args.indexOf(k); return i >= 0 ? args[i + 1] : d; };
const dir = opt('--dir');
const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'backend.json'), 'utf8'));
const keyPem = fs.readFileSync(cfg.merchant_key_file, 'utf8');
const wxpay = new Wechatpay({
  mchid: cfg.mch_id,
  serial: cfg.merchant_serial_no,
  privateKey: keyPem.slice(keyPem.indexOf('-----BEGIN')),
  certs: { [cfg.platform.public_key_id]: fs.readFileSync(cfg.platform.public_key_file, 'utf8') },
  baseURL: cfg.base_url + '/',
  timeout: 10000,
});

async function deduct(code) {
  const body = {
    auth_code: code, sp_appid: cfg.sp_appid, sp_mchid: cfg.mch_id, sub_mchid: cfg.sub_mchid,
    amount: { total: 100, currency: 'CNY' }, scene_info: { device_ip: '127.0.0.1' }, description: 'peer', attach: 'peer-' + code,
    out_trade_no: 'JS' + crypto.randomBytes(12).toString('hex'),
    business: { business_product_id: 2, business_scene_id: 3 },
  };
  const r = await wxpay.v3.offlineface.transactions.post(body);
  if (r.status !== 200 || r.data.trade_state !== 'SUCCESS') throw new Error('transaction ' + r.status);
  return body.out_trade_no;
}

async function interop() {
  const org = cfg.organizations[0];
  const t = await wxpay.v3.offlinefacemch.tokens.post({ scene: 'WEBSESSION', web_init_data: { out_user_id: 'ou1', organization_id: org } });
  if (!t.data.token) throw new Error('no token');
  const no = await deduct('js-code-' + crypto.randomBytes(4).toString('hex'));
  const q = await wxpay.v3.offlineface.transactions.outTradeNo.$out_trade_no$.get({ out_trade_no: no, params: { sp_mchid: cfg.mch_id, sub_mchid: cfg.sub_mchid, business_product_id: 2 } });
  if (q.data.trade_state !== 'SUCCESS') throw new Error('query');
  console.log(JSON.stringify({ peer: 'wechatpay-axios-plugin', mode: 'public_key', ok: true, calls: 3 }));
}

async function bench() {
  const n = Number(opt('--n', '2000'));
  const c = Number(opt('--concurrency', '16'));
  await deduct('warm-' + crypto.randomBytes(8).toString('hex'));
  let next = 0;
  const cpu0 = process.cpuUsage(); // this process's user + system CPU over the timed phase
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: c }, async () => {
    while (next < n) { next += 1; await deduct('jsb-' + crypto.randomBytes(12).toString('hex')); }
  }));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ peer: 'wechatpay-axios-plugin', deductions: n, concurrency: c, seconds: +s.toFixed(3), deductions_per_s: +(n / s).toFixed(1),
    client_cpu_us_per_deduction: +((cpu.user + cpu.system) / n).toFixed(1) }));
}

(mode === 'bench' ? bench() : interop()).catch((e) => {
  console.log(JSON.stringify({ peer: 'wechatpay-axios-plugin', ok: false, error: String(e && e.message || e).slice(0, 300) }));
  process.exit(1);
});
