import express from "express";
import type Stripe from "stripe";
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";
import type { ReconcileDeps } from "./reconcile.ts";
import { processStripeEvent } from "./stripe-events.ts";

export interface AppDeps extends ReconcileDeps {
  stripe: Stripe;
  webhookSecret: string;
  log: Logger;
  /** Signature timestamps older (or newer) than this are refused (default 300 s). */
  toleranceSeconds?: number;
  /** Counters for /metrics (served only when given). */
  metrics?: Metrics;
}

/**
 * POST /stripe/webhook: Stripe's signature is verified on the raw body before anything is parsed;
 * 400 for a bad signature (Stripe does not retry those), 500 when processing failed (Stripe retries),
 * 200 for processed, stale, ignored and duplicate events.
 * GET /healthz: the process is up (liveness). GET /readyz: the database answers (readiness).
 * GET /metrics: Prometheus.
 */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  const count = (status: string) => deps.metrics?.stripeWebhooks.inc({ status });
  app.get("/healthz", (_req, res) => { res.json({ ok: true }); });
  app.get("/readyz", async (_req, res) => {
    try {
      await Promise.race([
        deps.db.prisma.$queryRaw`select 1`,
        new Promise((_r, reject) => setTimeout(() => reject(new Error("database did not answer within 2 s")), 2000).unref()),
      ]);
      res.json({ ok: true });
    } catch (err) {
      res.status(503).json({ ok: false, error: { code: "database_unavailable", message: (err as Error).message } });
    }
  });
  if (deps.metrics) {
    const { registry } = deps.metrics;
    app.get("/metrics", async (_req, res) => {
      try {
        res.type(registry.contentType).send(await registry.metrics());
      } catch (err) {
        res.status(500).type("text/plain").send(`metrics unavailable: ${(err as Error).message}\n`);
      }
    });
  }
  app.post("/stripe/webhook", express.raw({ type: () => true, limit: "1mb" }), async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const header = req.get("stripe-signature");
    if (!header) {
      deps.log.warn("Refused Stripe webhook without a signature", { ip: req.ip });
      count("missing_signature");
      res.status(400).json({ error: { code: "missing_signature", message: "Stripe-Signature header is required" } });
      return;
    }
    let event: Stripe.Event;
    const tolerance = deps.toleranceSeconds ?? 300;
    try {
      // Stripe's library refuses old timestamps only; one too far in the future is refused too.
      const t = Number(/(?:^|,)\s*t=(\d+)/.exec(header)?.[1]);
      if (t > Date.now() / 1000 + tolerance) throw new Error("timestamp is in the future beyond the tolerance");
      event = deps.stripe.webhooks.constructEvent(body, header, deps.webhookSecret, tolerance);
    } catch (err) {
      deps.log.warn("Refused Stripe webhook with an invalid signature", { ip: req.ip, error: (err as Error).message });
      count("invalid_signature");
      res.status(400).json({ error: { code: "invalid_signature", message: "signature verification failed" } });
      return;
    }
    try {
      const result = await processStripeEvent(deps, event as unknown as Parameters<typeof processStripeEvent>[1]);
      count(result.status);
      deps.log.info("Received Stripe event", { eventId: event.id, type: event.type, status: result.status, tenant: result.tenant, detail: result.detail });
      res.json({ received: true, status: result.status });
    } catch (err) {
      count("error");
      deps.log.error("Processing Stripe event failed", { eventId: event.id, type: event.type, error: (err as Error).message });
      res.status(500).json({ error: { code: "processing_failed", message: "event not processed; retry" } });
    }
  });
  app.use((_req: express.Request, res: express.Response) => { res.status(404).json({ error: { code: "not_found", message: "not found" } }); });
  return app;
}
