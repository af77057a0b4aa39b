import winston from "winston";

export type Logger = winston.Logger;

export function createLogger(level = "info"): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: "billing" },
    transports: [new winston.transports.Console()],
  });
}

/** A logger that drops everything (tests). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
