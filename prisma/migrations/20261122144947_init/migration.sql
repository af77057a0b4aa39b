-- CreateTable
CREATE TABLE "UsageRecord" (
    "requestId" TEXT NOT NULL,
    "tenant" TEXT NOT NULL,
    "environment" TEXT NOT NULL,
    "keyPrefix" TEXT NOT NULL,
    "keyName" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "endpoint" TEXT NOT NULL,
    "promptTokens" INTEGER NOT NULL,
    "completionTokens" INTEGER NOT NULL,
    "totalTokens" INTEGER NOT NULL,
    "latencyMs" INTEGER NOT NULL,
    "status" INTEGER NOT NULL,
    "streamed" BOOLEAN NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "UsageRecord_pkey" PRIMARY KEY ("requestId","createdAt")
) PARTITION BY RANGE ("createdAt");

-- CreateTable
CREATE TABLE "AuditEvent" (
    "id" BIGSERIAL NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL,
    "requestId" TEXT,
    "action" TEXT NOT NULL,
    "actorId" TEXT,
    "tenant" TEXT,
    "ipAddress" TEXT,
    "details" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "AuditEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "BillingAccount" (
    "tenant" TEXT NOT NULL,
    "stripeCustomerId" TEXT,
    "subscriptionId" TEXT,
    "subscriptionStatus" TEXT,
    "subscriptionEventAt" TIMESTAMPTZ(3),
    "paymentFailingSince" TIMESTAMPTZ(3),
    "paymentEventAt" TIMESTAMPTZ(3),
    "cancelledAt" TIMESTAMPTZ(3),
    "suspendedByBilling" BOOLEAN NOT NULL DEFAULT false,
    "suspendedAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "BillingAccount_pkey" PRIMARY KEY ("tenant")
);

-- CreateTable
CREATE TABLE "StripeEvent" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "created" TIMESTAMPTZ(3) NOT NULL,
    "livemode" BOOLEAN NOT NULL,
    "tenant" TEXT,
    "objectId" TEXT,
    "status" TEXT NOT NULL,
    "detail" TEXT,
    "receivedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "processedAt" TIMESTAMPTZ(3),

    CONSTRAINT "StripeEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookDelivery" (
    "id" UUID NOT NULL,
    "tenant" TEXT NOT NULL,
    "eventId" TEXT NOT NULL,
    "eventType" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "secretRef" JSONB NOT NULL,
    "body" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lockedUntil" TIMESTAMPTZ(3),
    "lockedBy" TEXT,
    "lastError" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deliveredAt" TIMESTAMPTZ(3),

    CONSTRAINT "WebhookDelivery_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookAttempt" (
    "id" BIGSERIAL NOT NULL,
    "deliveryId" UUID NOT NULL,
    "tenant" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "startedAt" TIMESTAMPTZ(3) NOT NULL,
    "durationMs" INTEGER NOT NULL,
    "statusCode" INTEGER,
    "error" TEXT,

    CONSTRAINT "WebhookAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "UsageReport" (
    "id" BIGSERIAL NOT NULL,
    "tenant" TEXT NOT NULL,
    "periodStart" TIMESTAMPTZ(3) NOT NULL,
    "periodEnd" TIMESTAMPTZ(3) NOT NULL,
    "quantity" BIGINT NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "stripeRef" TEXT,
    "lastError" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "reportedAt" TIMESTAMPTZ(3),

    CONSTRAINT "UsageReport_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "UsageRecord_tenant_createdAt_idx" ON "UsageRecord"("tenant", "createdAt");

-- CreateIndex
CREATE INDEX "UsageRecord_tenant_environment_createdAt_idx" ON "UsageRecord"("tenant", "environment", "createdAt");

-- CreateIndex
CREATE INDEX "UsageRecord_keyPrefix_createdAt_idx" ON "UsageRecord"("keyPrefix", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "AuditEvent_fingerprint_key" ON "AuditEvent"("fingerprint");

-- CreateIndex
CREATE INDEX "AuditEvent_tenant_timestamp_idx" ON "AuditEvent"("tenant", "timestamp");

-- CreateIndex
CREATE INDEX "AuditEvent_action_timestamp_idx" ON "AuditEvent"("action", "timestamp");

-- CreateIndex
CREATE INDEX "AuditEvent_timestamp_idx" ON "AuditEvent"("timestamp");

-- CreateIndex
CREATE UNIQUE INDEX "BillingAccount_stripeCustomerId_key" ON "BillingAccount"("stripeCustomerId");

-- CreateIndex
CREATE INDEX "BillingAccount_suspendedByBilling_idx" ON "BillingAccount"("suspendedByBilling");

-- CreateIndex
CREATE INDEX "StripeEvent_tenant_created_idx" ON "StripeEvent"("tenant", "created");

-- CreateIndex
CREATE INDEX "StripeEvent_status_receivedAt_idx" ON "StripeEvent"("status", "receivedAt");

-- CreateIndex
CREATE INDEX "WebhookDelivery_status_nextAttemptAt_idx" ON "WebhookDelivery"("status", "nextAttemptAt");

-- CreateIndex
CREATE INDEX "WebhookDelivery_tenant_createdAt_idx" ON "WebhookDelivery"("tenant", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_eventId_url_key" ON "WebhookDelivery"("eventId", "url");

-- CreateIndex
CREATE INDEX "WebhookAttempt_deliveryId_idx" ON "WebhookAttempt"("deliveryId");

-- CreateIndex
CREATE INDEX "WebhookAttempt_tenant_startedAt_idx" ON "WebhookAttempt"("tenant", "startedAt");

-- CreateIndex
CREATE UNIQUE INDEX "UsageReport_idempotencyKey_key" ON "UsageReport"("idempotencyKey");

-- CreateIndex
CREATE INDEX "UsageReport_status_idx" ON "UsageReport"("status");

-- CreateIndex
CREATE UNIQUE INDEX "UsageReport_tenant_periodStart_key" ON "UsageReport"("tenant", "periodStart");

-- AddForeignKey
ALTER TABLE "WebhookAttempt" ADD CONSTRAINT "WebhookAttempt_deliveryId_fkey" FOREIGN KEY ("deliveryId") REFERENCES "WebhookDelivery"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Hand-written (Prisma cannot declare partitioning): one partition per UTC day, created on demand
-- by the writers (prisma/src/usage.ts) and ahead of time by the retention job, which drops whole
-- partitions once they are past retention (prisma/src/retention.ts).
CREATE FUNCTION crosslogic_usage_partition(day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  name text := 'UsageRecord_p' || to_char(day, 'YYYYMMDD');
BEGIN
  EXECUTE format(
    'CREATE TABLE IF NOT EXISTS %I PARTITION OF "UsageRecord" FOR VALUES FROM (%L) TO (%L)',
    name, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
  RETURN name;
EXCEPTION WHEN duplicate_table OR unique_violation THEN
  -- Another writer created it between our check and our CREATE.
  RETURN name;
END $$;
