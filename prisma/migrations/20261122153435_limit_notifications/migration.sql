-- CreateTable
CREATE TABLE "ProcessingCursor" (
    "name" TEXT NOT NULL,
    "position" BIGINT NOT NULL DEFAULT 0,
    "gapSince" TIMESTAMPTZ(3),
    "updatedAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "ProcessingCursor_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "LimitNotification" (
    "id" BIGSERIAL NOT NULL,
    "tenant" TEXT NOT NULL,
    "keyPrefix" TEXT NOT NULL,
    "layer" TEXT NOT NULL,
    "auditEventId" BIGINT NOT NULL,
    "eventAt" TIMESTAMPTZ(3) NOT NULL,
    "notificationId" TEXT NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LimitNotification_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "LimitNotification_auditEventId_key" ON "LimitNotification"("auditEventId");

-- CreateIndex
CREATE INDEX "LimitNotification_tenant_keyPrefix_layer_eventAt_idx" ON "LimitNotification"("tenant", "keyPrefix", "layer", "eventAt");
