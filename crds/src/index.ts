export * from "./api-key.ts";
export * from "./gateway-config.ts";
