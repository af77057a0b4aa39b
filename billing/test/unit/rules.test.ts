import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyStripeEvent, billingDecision, type AccountState } from "../../src/billing-state.ts";
import { loadConfig } from "../../src/config.ts";
import { backoffMs } from "../../src/sender.ts";
import { refusedAddress, refusedUrl } from "../../src/ssrf.ts";

const empty: AccountState = { subscriptionId: null, subscriptionStatus: null, subscriptionEventAt: null, paymentFailingSince: null, paymentEventAt: null, cancelledAt: null };
const ev = (type: string, created: number, object: Record<string, unknown> = {}) => ({ id: `evt_${type}_${created}`, type, created, data: { object: { id: "x", customer: "cus_1", ...object } } });
const apply = (events: ReturnType<typeof ev>[]) => events.reduce((s, e) => { const o = applyStripeEvent(s, e); return o.kind === "applied" ? o.state : s; }, empty);

describe("billing rules", () => {
  it("a payment success and failure in the same second end paid, in either order", () => {
    const fail = ev("invoice.payment_failed", 100), paid = ev("invoice.paid", 100);
    assert.equal(apply([fail, paid]).paymentFailingSince, null);
    assert.equal(apply([paid, fail]).paymentFailingSince, null);
  });
  it("repeated failures keep the first failure time (the grace period does not restart)", () => {
    assert.deepEqual(apply([ev("invoice.payment_failed", 100), ev("invoice.payment_failed", 200)]).paymentFailingSince, new Date(100_000));
  });
  it("cancellation beats an update of the same second, whatever the order", () => {
    const del = ev("customer.subscription.deleted", 50, { status: "canceled" }), upd = ev("customer.subscription.updated", 50, { status: "active" });
    assert.notEqual(apply([del, upd]).cancelledAt, null);
    assert.notEqual(apply([upd, del]).cancelledAt, null);
    assert.equal(apply([del, ev("customer.subscription.created", 60, { status: "active" })]).cancelledAt, null, "a newer subscription restores");
  });
  it("unknown event types are ignored", () => {
    assert.equal(applyStripeEvent(empty, ev("charge.refunded", 1)).kind, "ignored");
  });
  it("suspends exactly when the grace period has passed", () => {
    const since = new Date(1_000_000);
    const cases: Array<[string, Partial<AccountState>, number, boolean]> = [
      ["no problem", {}, 10_000_000, false],
      ["failing, inside grace", { paymentFailingSince: since }, 1_000_000 + 59_999, false],
      ["failing, grace over", { paymentFailingSince: since }, 1_060_000, true],
      ["cancelled, grace over", { cancelledAt: since }, 1_060_000, true],
    ];
    for (const [name, state, now, suspend] of cases) {
      assert.equal(billingDecision({ ...empty, ...state }, new Date(now), 60_000).suspend, suspend, name);
    }
  });
});

describe("webhook targets", () => {
  it("refuses internal addresses, including IPv6 forms of IPv4 ones", () => {
    for (const a of ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "::", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:a9fe:a9fe", "64:ff9b::a00:1", "224.0.0.1"]) {
      assert.notEqual(refusedAddress(a), null, a);
    }
    for (const a of ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"]) assert.equal(refusedAddress(a), null, a);
    assert.equal(refusedAddress("127.0.0.1", { allowLoopback: true }), null);
    assert.notEqual(refusedAddress("10.0.0.1", { allowLoopback: true }), null, "the test option allows loopback only");
  });
  it("refuses non-HTTPS URLs and URLs with credentials", () => {
    assert.notEqual(refusedUrl("http://hooks.example.com/x"), null);
    assert.notEqual(refusedUrl("https://user:pw@hooks.example.com/x"), null);
    assert.equal(refusedUrl("https://hooks.example.com/x"), null);
    assert.notEqual(refusedUrl("https://169.254.169.254/latest/meta-data"), null, "IP literals are checked without DNS");
    assert.notEqual(refusedUrl("https://[::1]:8443/x"), null);
    assert.equal(refusedUrl("https://127.0.0.1:8443/x", { allowLoopback: true }), null);
  });
  it("backs off exponentially with jitter, up to the cap", () => {
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffMs(n, 1000, 5000, () => 1)), [1000, 2000, 4000, 5000]);
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffMs(n, 1000, 5000, () => 0)), [500, 1000, 2000, 2500]);
  });
});

describe("billing configuration", () => {
  it("lists every problem at once", () => {
    assert.throws(() => loadConfig({ STRIPE_WEBHOOK_SECRET: "nope", STRIPE_SECRET_KEY: "sk", PORT: "x" }), (err: Error) =>
      ["DATABASE_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "PORT"].every((n) => err.message.includes(n)));
  });
  it("runs without STRIPE_SECRET_KEY (usage reporting off), never without the webhook secret", () => {
    const c = loadConfig({ DATABASE_URL: "postgresql://x@127.0.0.1/db", STRIPE_WEBHOOK_SECRET: "whsec_1" });
    assert.equal(c.STRIPE_SECRET_KEY, undefined);
    assert.equal(c.LIMIT_NOTIFICATION_WINDOW_SECONDS, 3600);
    assert.equal(c.ANOMALY_NOTIFICATION_WINDOW_SECONDS, 3600);
    assert.throws(() => loadConfig({ DATABASE_URL: "postgresql://x@127.0.0.1/db" }), /STRIPE_WEBHOOK_SECRET/);
  });
  it("applies defaults (90-day usage retention)", () => {
    const c = loadConfig({ DATABASE_URL: "postgresql://x@127.0.0.1/db", STRIPE_SECRET_KEY: "sk_test_123", STRIPE_WEBHOOK_SECRET: "whsec_1", BILLING_GRACE_PERIOD_SECONDS: "60" });
    assert.equal(c.USAGE_RETENTION_DAYS, 90);
    assert.equal(c.BILLING_GRACE_PERIOD_SECONDS, 60);
    assert.equal(c.PORT, 8082);
    assert.ok(Object.isFrozen(c));
  });
});
