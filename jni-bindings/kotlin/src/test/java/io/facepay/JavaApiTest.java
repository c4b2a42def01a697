package io.facepay;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.After;
import org.junit.Test;

/**
 * The Java API end to end, as a Java app uses it: a config from the Java builder (typed
 * durations, validated by the core), init, a pay flow through futures (SPEC T7 order), the events
 * listener, bad input, close.
 */
public class JavaApiTest {
    private FacePay fp;

    @After
    public void tearDown() {
        if (fp != null) fp.close();
    }

    private static FacePayConfig config(String deviceId) {
        return FacePayConfig.builder()
                .deviceId(deviceId)
                .appid("wx-sim-app")
                .mchId("1900000100")
                .mchName("canteen")
                .organizationId("org-canteen-1")
                .backendUrl("http://backend.invalid")
                .simulatedBackend(true)
                .memoryStore(true)
                .timing(Timing.builder().flowTimeout(Duration.ofSeconds(30)).build())
                .build();
    }

    @Test
    public void init_pay_through_futures_listen_and_close() throws Exception {
        fp = FacePay.initHost(config("java-1"), new SimulatedFaceDriver(7));
        List<FacePayEvent> events = new CopyOnWriteArrayList<>();
        AutoCloseable listening = fp.addEventListener(events::add);

        fp.initFuture().get(60, TimeUnit.SECONDS);
        Waits.INSTANCE.until("authinfo cached", () -> fp.refreshHealth().getAuthinfoValidForMs() != null);

        // Step by step, each step a future.
        long flow = fp.startFlowFuture(250, "java-order-1").get(60, TimeUnit.SECONDS);
        Recognition rec = fp.waitRecognitionFuture(flow).get(60, TimeUnit.SECONDS);
        if (rec.getNeedExtVerify()) fp.extVerifyFuture(flow, "1234").get(60, TimeUnit.SECONDS);
        assertEquals(rec.getUserId(), fp.finishFuture(flow).get(60, TimeUnit.SECONDS));
        String key = fp.credentialFuture(flow).get(60, TimeUnit.SECONDS);
        assertFalse(key.isEmpty());

        // A whole payment, composed the Java way.
        Paid paid = fp.payFuture(100, null, "1234").thenApply(p -> p).get(60, TimeUnit.SECONDS);
        assertFalse(paid.getIdempotencyKey().isEmpty());

        Waits.INSTANCE.until("both payments final through the listener", () ->
                events.stream().filter(e -> e instanceof FacePayEvent.PaymentFinal).count() >= 2);
        assertTrue(events.stream().anyMatch(e -> e instanceof FacePayEvent.FlowEnded
                && ((FacePayEvent.FlowEnded) e).getOutcome() == Outcome.Credential.INSTANCE));
        assertEquals(ServiceState.READY, fp.getHealth().getValue().getState());
        listening.close();

        fp.close();
        fp.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> fp.payFuture(100, null, null));
        IllegalStateException closed = assertThrows(IllegalStateException.class, () -> fp.initFuture());
        assertTrue(closed.getMessage().contains("closed"));
    }

    @Test
    public void bad_input_from_java_names_the_problem() throws Exception {
        FacePayException e = assertThrows(FacePayException.class,
                () -> FacePayConfig.builder().deviceId("d").appid("a").mchId("1900000100").mchName("m")
                        .organizationId("o").backendUrl("ftp://x").build());
        assertEquals(FacePayException.INVALID_CONFIG, e.getCode());
        assertTrue(e.getMessage(), e.getMessage().contains("backend_url"));
        FacePayException missing = assertThrows(FacePayException.class, () -> FacePayConfig.builder().build());
        assertTrue(missing.getMessage().contains("device_id"));
        FacePayException rel = assertThrows(FacePayException.class,
                () -> FacePayConfig.builder().deviceId("d").appid("a").mchId("1900000100").mchName("m")
                        .organizationId("o").backendUrl("http://127.0.0.1:1").storePath("relative/t.db").build());
        assertTrue(rel.getMessage().contains("store_path"));

        fp = FacePay.initHost(config("java-2"), new SimulatedFaceDriver(7));
        fp.initFuture().get(60, TimeUnit.SECONDS);
        IllegalArgumentException amount = assertThrows(IllegalArgumentException.class, () -> fp.payFuture(0, null, null));
        assertTrue(amount.getMessage().contains("amountFen"));
        assertThrows(IllegalArgumentException.class, () -> fp.waitRecognitionFuture(-1));
        IllegalStateException other = assertThrows(IllegalStateException.class,
                () -> FacePay.initHost(config("java-other"), new SimulatedFaceDriver(7)));
        assertTrue(other.getMessage().contains("different config"));
    }
}
