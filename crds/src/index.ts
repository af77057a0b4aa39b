export * from "./api-key.ts";
export * from "./audit.ts";
export * from "./gateway-config.ts";
export * from "./labels.ts";
export * from "./usage.ts";
export * from "./conditions.ts";
export * from "./plans.ts";
export * from "./resources.ts";
