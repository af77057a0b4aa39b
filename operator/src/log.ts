/** winston JSON loggers: operational logs, and audit lines in the security document's format. */
import winston from "winston";
import { auditEvent, type AuditAction, type AuditEvent } from "@crosslogic/crds";

export function createLogger(level: string): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json()),
    defaultMeta: { component: "operator" },
    transports: [new winston.transports.Console()],
  });
}

export interface AuditSink {
  record(action: AuditAction, fields: Partial<Omit<AuditEvent, "action" | "timestamp">>): AuditEvent;
}

/**
 * One JSON line per event (`log: "audit"` tells it from operational lines), API keys by prefix
 * only; with `persist` (DATABASE_URL set) each event is also handed to the database writer.
 */
export function createAuditLog(persist?: (event: AuditEvent) => void): AuditSink & { logger: winston.Logger } {
  const logger = winston.createLogger({
    level: "info",
    format: winston.format.printf((info) => JSON.stringify({ log: "audit", ...(info.event as AuditEvent) })),
    transports: [new winston.transports.Console()],
  });
  return {
    logger,
    record(action, fields) {
      const event = auditEvent(action, { actor_id: "operator", ...fields });
      logger.info("audit", { event });
      persist?.(event);
      return event;
    },
  };
}
