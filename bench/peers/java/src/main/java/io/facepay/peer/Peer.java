package io.facepay.peer;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.wechat.pay.java.core.Config;
import com.wechat.pay.java.core.RSAConfig;
import com.wechat.pay.java.core.RSAPublicKeyConfig;
import com.wechat.pay.java.core.exception.ServiceException;
import com.wechat.pay.java.core.http.DefaultHttpClientBuilder;
import com.wechat.pay.java.core.http.HttpClient;
import com.wechat.pay.java.core.http.HttpMethod;
import com.wechat.pay.java.core.http.HttpRequest;
import com.wechat.pay.java.core.http.JsonRequestBody;
import com.wechat.pay.java.core.notification.NotificationConfig;
import com.wechat.pay.java.core.notification.NotificationParser;
import com.wechat.pay.java.core.notification.RSANotificationConfig;
import com.wechat.pay.java.core.notification.RSAPublicKeyNotificationConfig;
import com.wechat.pay.java.core.notification.RequestParam;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Peer client: the official WeChat Pay Java SDK (wechatpay-java, Maven Central) against the
 * facepay mock WeChat Pay, with the SDK's own signing, User-Agent, Wechatpay-Serial and answer
 * validation (public-key mode: RSAPublicKeyConfig; certificates mode: RSAConfig with the
 * platform certificate, parsed by the JDK's X.509 code), and its NotificationParser on a
 * FACEPAY.USER_STATE_CHANGE produced by the mock.
 *
 * <pre>
 *   Peer interop --dir FIXTURE_DIR [--notification FILE]
 *   Peer bench   --dir FIXTURE_DIR --n N --concurrency C
 * </pre>
 *
 * FIXTURE_DIR is what `facepay mock wechatpay --dir` writes (TEST keys, backend.json). Prints
 * one JSON line; exits non-zero on any failure.
 */
public final class Peer {
  private Peer() {}

  private static String opt(String[] args, String key, String dflt) {
    for (int i = 0; i + 1 < args.length; i++) {
      if (args[i].equals(key)) {
        return args[i + 1];
      }
    }
    return dflt;
  }

  private static String read(Path p) throws Exception {
    return new String(Files.readAllBytes(p), StandardCharsets.UTF_8);
  }

  private static String str(JsonObject o, String k) {
    return o.get(k).getAsString();
  }

  /** The SDK configuration for the fixture's platform mode. */
  private static Config config(JsonObject cfg, Path dir) throws Exception {
    String key = read(Path.of(str(cfg, "merchant_key_file")));
    key = key.substring(key.indexOf("-----BEGIN"));
    JsonObject p = cfg.getAsJsonObject("platform");
    String mode = str(p, "mode");
    if (mode.equals("certificates")) {
      return new RSAConfig.Builder()
          .merchantId(str(cfg, "mch_id"))
          .privateKey(key)
          .merchantSerialNumber(str(cfg, "merchant_serial_no"))
          .wechatPayCertificatesFromPath(dir.resolve("platform_certificate.pem").toString())
          .build();
    }
    // public_key, and both (a merchant moving to the public key names it).
    return new RSAPublicKeyConfig.Builder()
        .merchantId(str(cfg, "mch_id"))
        .privateKey(key)
        .merchantSerialNumber(str(cfg, "merchant_serial_no"))
        .publicKeyFromPath(str(p, "public_key_file"))
        .publicKeyId(str(p, "public_key_id"))
        .apiV3Key(str(p, "apiv3_key"))
        .build();
  }

  private static JsonObject call(HttpClient http, HttpMethod m, String url, JsonObject body) {
    HttpRequest.Builder b =
        new HttpRequest.Builder().httpMethod(m).url(url).addHeader("Accept", "application/json");
    if (body != null) {
      b.addHeader("Content-Type", "application/json")
          .body(new JsonRequestBody.Builder().body(body.toString()).build());
    }
    return http.execute(b.build(), JsonObject.class).getServiceResponse();
  }

  private static JsonObject deduction(JsonObject cfg, String code, String outTradeNo) {
    JsonObject amount = new JsonObject();
    amount.addProperty("total", 100);
    amount.addProperty("currency", "CNY");
    JsonObject scene = new JsonObject();
    scene.addProperty("device_ip", "127.0.0.1");
    JsonObject business = new JsonObject();
    business.addProperty("business_product_id", 2);
    business.addProperty("business_scene_id", 3);
    JsonObject b = new JsonObject();
    b.addProperty("auth_code", code);
    b.addProperty("sp_appid", str(cfg, "sp_appid"));
    b.addProperty("sp_mchid", str(cfg, "mch_id"));
    b.addProperty("sub_mchid", str(cfg, "sub_mchid"));
    b.add("amount", amount);
    b.add("scene_info", scene);
    b.addProperty("description", "peer");
    b.addProperty("attach", "peer-" + code);
    b.addProperty("out_trade_no", outTradeNo);
    b.add("business", business);
    return b;
  }

  private static String deduct(HttpClient http, JsonObject cfg, String code) {
    String no = "JV" + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
    JsonObject tx =
        call(http, HttpMethod.POST, str(cfg, "base_url") + "/v3/offlineface/transactions", deduction(cfg, code, no));
    if (!"SUCCESS".equals(str(tx, "trade_state"))) {
      throw new IllegalStateException("trade_state " + tx.get("trade_state"));
    }
    return no;
  }

  /** NotificationParser with the keys of the fixture's mode (both in the migration mode). */
  private static JsonObject parseNotification(JsonObject cfg, Path dir, Path file) throws Exception {
    JsonObject n = JsonParser.parseString(read(file)).getAsJsonObject();
    JsonObject h = n.getAsJsonObject("headers");
    JsonObject p = cfg.getAsJsonObject("platform");
    String mode = str(p, "mode");
    String apiv3 = str(p, "apiv3_key");
    List<NotificationConfig> configs = new ArrayList<>();
    if (!mode.equals("certificates")) {
      configs.add(
          new RSAPublicKeyNotificationConfig.Builder()
              .publicKeyFromPath(str(p, "public_key_file"))
              .publicKeyId(str(p, "public_key_id"))
              .apiV3Key(apiv3)
              .build());
    }
    if (!mode.equals("public_key")) {
      configs.add(
          new RSANotificationConfig.Builder()
              .certificatesFromPath(dir.resolve("platform_certificate.pem").toString())
              .apiV3Key(apiv3)
              .build());
    }
    NotificationParser parser = new NotificationParser(configs.toArray(new NotificationConfig[0]));
    RequestParam rp =
        new RequestParam.Builder()
            .serialNumber(str(h, "wechatpay-serial"))
            .nonce(str(h, "wechatpay-nonce"))
            .signature(str(h, "wechatpay-signature"))
            .timestamp(str(h, "wechatpay-timestamp"))
            .signType(str(h, "wechatpay-signature-type"))
            .body(str(n, "body"))
            .build();
    return parser.parse(rp, JsonObject.class);
  }

  private static void interop(Path dir, String notification) throws Exception {
    JsonObject cfg = JsonParser.parseString(read(dir.resolve("backend.json"))).getAsJsonObject();
    HttpClient http = new DefaultHttpClientBuilder().config(config(cfg, dir)).build();
    String base = str(cfg, "base_url");
    String org = cfg.getAsJsonArray("organizations").get(0).getAsString();
    JsonObject init = new JsonObject();
    init.addProperty("out_user_id", "ou1");
    init.addProperty("organization_id", org);
    JsonObject tokens = new JsonObject();
    tokens.addProperty("scene", "WEBSESSION");
    tokens.add("web_init_data", init);
    if (call(http, HttpMethod.POST, base + "/v3/offlinefacemch/tokens", tokens).get("token") == null) {
      throw new IllegalStateException("no token");
    }
    JsonObject ai = new JsonObject();
    ai.addProperty("sp_appid", str(cfg, "sp_appid"));
    ai.addProperty("sub_mchid", str(cfg, "sub_mchid"));
    ai.addProperty("device_id", "d1");
    ai.addProperty("raw_data", "raw");
    ai.addProperty("organization_id", org);
    if (call(http, HttpMethod.POST, base + "/v3/offlineface/authinfo", ai).get("authinfo") == null) {
      throw new IllegalStateException("no authinfo");
    }
    String code = "java-code-" + UUID.randomUUID().toString().substring(0, 8);
    String no = deduct(http, cfg, code);
    String q =
        base + "/v3/offlineface/transactions/out-trade-no/" + no + "?sp_mchid=" + str(cfg, "mch_id")
            + "&sub_mchid=" + str(cfg, "sub_mchid") + "&business_product_id=2";
    if (!"SUCCESS".equals(str(call(http, HttpMethod.GET, q, null), "trade_state"))) {
      throw new IllegalStateException("query");
    }
    // The charged credential again under another order number: the SDK surfaces the mock's
    // refusal (INVALID_REQUEST) with its code.
    String refused;
    try {
      call(http, HttpMethod.POST, base + "/v3/offlineface/transactions", deduction(cfg, code, no + "Z"));
      refused = "none";
    } catch (ServiceException e) {
      refused = e.getHttpStatusCode() + " " + e.getErrorCode();
    }
    JsonObject out = new JsonObject();
    out.addProperty("peer", "wechatpay-java");
    out.addProperty("mode", str(cfg.getAsJsonObject("platform"), "mode"));
    out.addProperty("ok", true);
    out.addProperty("calls", 5);
    out.addProperty("refused", refused);
    if (notification != null) {
      JsonObject r = parseNotification(cfg, dir, Path.of(notification));
      out.addProperty("notification_out_user_id", str(r, "out_user_id"));
    }
    System.out.println(out);
  }

  private static void bench(Path dir, int n, int conc) throws Exception {
    JsonObject cfg = JsonParser.parseString(read(dir.resolve("backend.json"))).getAsJsonObject();
    HttpClient http = new DefaultHttpClientBuilder().config(config(cfg, dir)).build();
    deduct(http, cfg, "jwarm-" + UUID.randomUUID());
    ExecutorService ex = Executors.newFixedThreadPool(conc);
    // The process's CPU time over the timed phase, every thread (JIT and GC included).
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    long cpu0 = os.getProcessCpuTime();
    long t0 = System.nanoTime();
    List<Future<String>> fs = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      fs.add(ex.submit(() -> deduct(http, cfg, "jvb-" + UUID.randomUUID())));
    }
    for (Future<String> f : fs) {
      f.get();
    }
    double dt = (System.nanoTime() - t0) / 1e9;
    double cpuUs = (os.getProcessCpuTime() - cpu0) / 1e3;
    ex.shutdown();
    JsonObject out = new JsonObject();
    out.addProperty("peer", "wechatpay-java");
    out.addProperty("deductions", n);
    out.addProperty("concurrency", conc);
    out.addProperty("seconds", Math.round(dt * 1000) / 1000.0);
    out.addProperty("deductions_per_s", Math.round(n / dt * 10) / 10.0);
    out.addProperty("client_cpu_us_per_deduction", Math.round(cpuUs / n * 10) / 10.0);
    System.out.println(out);
  }

  public static void main(String[] args) {
    try {
      Path dir = Path.of(opt(args, "--dir", "."));
      if (args.length > 0 && args[0].equals("bench")) {
        bench(
            dir,
            Integer.parseInt(opt(args, "--n", "2000")),
            Integer.parseInt(opt(args, "--concurrency", "16")));
      } else {
        interop(dir, opt(args, "--notification", null));
      }
    } catch (Exception e) {
      JsonObject out = new JsonObject();
      out.addProperty("peer", "wechatpay-java");
      out.addProperty("ok", false);
      String m = String.valueOf(e);
      out.addProperty("error", m.substring(0, Math.min(300, m.length())));
      System.out.println(out);
      System.exit(1);
    }
  }
}
